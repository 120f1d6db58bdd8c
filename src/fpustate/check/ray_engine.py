"""The partitioned search on Ray actors (`--engine ray [--ray-address ADDR]`), for clusters.

Each partition (`parallel.Partition`) is a Ray actor. Per layer the driver calls
`expand` on every actor, which returns its statistics and one buffer per owner
as separate objects; each owner's `absorb` takes the buffers addressed to it as
object references, so Ray moves them between nodes through its object store and
nothing passes through the driver but the per-layer keys. Ray is the optional
extra `ray` (`pip install 'fpustate[ray]'`).

Actors are separate interpreters with their own hash secret, so they partition
by the deterministic 64-bit `fingerprint` rather than Python's hash.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

from ..errors import UsageError
from ..kernel.machine import Model
from ..kernel.properties import Property
from .store import fingerprint
from .parallel import Partition, PartitionFailure


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

    spread = staticmethod(fingerprint)

    def __init__(self, model: Model, properties: Sequence[Property], key: Callable[[bytes], bytes], n: int,
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
        self.actors = [actor.remote(model, properties, key, self.spread, i, n) for i in range(n)]

    def _get(self, refs):
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, PartitionFailure):
                raise PartitionFailure(cause.state, cause.message) from None
            raise PartitionFailure(None, str(e).splitlines()[0]) from None

    def seed(self, owner: int, s: bytes) -> None:
        self._get(self.actors[owner].seed.remote(s))

    def layer(self, pending: list[str], keyblobs: Optional[list[bytes]], start: int) -> list[tuple]:
        n = self.n
        kref = self.ray.put(keyblobs)
        out = [a.expand.options(num_returns=n + 1).remote(pending, kref, start) for a in self.actors]
        absorbed = [a.absorb.remote(*[out[i][1 + j] for i in range(n)]) for j, a in enumerate(self.actors)]
        stats = self._get([o[0] for o in out])
        return [(st, count, kb) for st, (count, kb) in zip(stats, self._get(absorbed))]

    def lookup(self, g: int) -> tuple[bytes, int]:
        return next(r for r in self._get([a.lookup.remote(g) for a in self.actors]) if r is not None)

    def transitions_upto(self, g: int) -> int:
        return sum(self._get([a.transitions_upto.remote(g) for a in self.actors]))

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
