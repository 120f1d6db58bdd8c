"""The partitioned search on Ray actors (`--engine ray [--ray-address ADDR]`), for clusters.

Each partition (`partition.Partition`) is a Ray actor. Per layer the driver calls
`expand` on every actor, which returns its statistics and one buffer per owner
as separate objects; each owner's `absorb` takes the buffers addressed to it as
object references, so Ray moves them between nodes through its object store and
nothing passes through the driver but the per-layer keys. Ray is the optional
extra `ray` (`pip install 'fpustate[ray]'`).

The coordinator's `Symmetry` tables go to the object store once and every actor
reads them from there; their Zobrist fingerprints have a fixed seed, so actors
on any node agree on which owns a state.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

from ..errors import UsageError
from ..kernel.machine import Model
from ..kernel.properties import Property
from .partition import Partition, PartitionFailure
from .symmetry import Symmetry


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray: Ray is not installed; install it with: pip install 'fpustate[ray]'") from None
    return ray


def _ship_user_modules(ray, model: Model) -> None:
    """A design from --design-file lives in a module no worker can import: pickle it by value."""
    import importlib.machinery
    import sys

    for hook in vars(model.design).values():
        name = getattr(hook, "__module__", None) or ""
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None) \
                and importlib.machinery.PathFinder.find_spec(name.split(".")[0]) is None:
            ray.cloudpickle.register_pickle_by_value(mod)


class RayTransport:
    """N partition actors on a Ray cluster (the one at `address`, a local one, or the one
    this process already joined)."""

    def __init__(self, model: Model, properties: Sequence[Property], sym: Symmetry, store: str, n: int,
                 address: Optional[str]) -> None:
        ray = self.ray = _ray()
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f"at {address!r}" if address else "locally"
                raise UsageError(f"--engine ray: cannot start or reach a Ray cluster {where}: {e}") from None
        if not n:
            n = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.n = n
        _ship_user_modules(ray, model)
        actor = ray.remote(num_cpus=1)(Partition)
        sref = ray.put(sym)
        self.actors = [actor.remote(model, properties, sref, store, i, n) for i in range(n)]

    def _get(self, refs):
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, PartitionFailure):
                raise PartitionFailure(cause.state, cause.message) from None
            # A KeyboardInterrupt raised in an actor (by a hook) reaches us as a cancelled task; fpustate
            # never cancels one itself: an interrupt, as on the local engine.
            if isinstance(cause, (KeyboardInterrupt, self.ray.exceptions.TaskCancelledError)):
                raise KeyboardInterrupt from None
            raise PartitionFailure(None, str(e).splitlines()[0]) from None

    def seed(self) -> list[tuple]:
        return self._get([a.seed.remote() for a in self.actors])

    def layer(self, pending: list[str], keyblobs: Optional[list[bytes]], start: int) -> list[tuple]:
        n = self.n
        kref = self.ray.put(keyblobs)
        out = [a.expand.options(num_returns=n + 1).remote(pending, kref, start) for a in self.actors]
        absorbed = [a.absorb.remote(*[out[i][1 + j] for i in range(n)]) for j, a in enumerate(self.actors)]
        stats = self._get([o[0] for o in out])
        return [(st, *absorb) for st, absorb in zip(stats, self._get(absorbed))]

    def lookup(self, g: int) -> int:
        return next(r for r in self._get([a.lookup.remote(g) for a in self.actors]) if r is not None)

    def upto(self, g: int) -> list[tuple[int, int, int]]:
        return self._get([a.upto.remote(g) for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
