"""Breadth-first search on every core (`--jobs N`): partitioned and layer-synchronous.

Each of N partitions (`check.partition.Partition`) owns the states whose
fingerprint is its number mod N. A layer is expanded by all partitions at
once, each in numpy batches as the sequential `Explorer` does; each routes
the successors it generated to their owners in one buffer per owner and takes
in what it was sent. The layers are exactly those of the sequential search,
and so are the counts (stored and represented), the depth and the
counterexamples, because every state carries what the sequential search would
number it:

- a successor's *key* is `parent_index << POS_BITS | position` (its position in
  the parent's successor list), and the sequential search discovers a layer in
  the order of those keys, each orbit with its smallest key;
- after a layer, the partitions exchange their sorted keys, and a state's
  sequential index is the layer's start plus the number of keys below its own.

Properties are checked per layer in index order, so each property's first
violation is the state `--jobs 1` reports, with the same look-past rule and
the same `--max-states` cut. Every state keeps its key, so a counterexample's
chain of parent indices and positions is fetched from the owners and replayed
from the initial state (`layer.replay`), as `--jobs 1` replays its own.

The partitions run in forked processes that exchange buffers directly over
pipes (`check.local_engine`), or on Ray actors (`check.ray_engine`).
Checkpoints are the sequential search's only.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InternalError, UsageError
from ..kernel.machine import Action, Model, successors
from ..kernel.properties import PROPERTIES, Property
from .explore import LOOK_PAST, Explorer, Result, Violation
from .layer import replay
from .partition import POS_BITS, PartitionFailure
from .store import STORES
from .symmetry import Symmetry

ENGINES = ("local", "ray")


def default_jobs() -> int:
    """Every core this process may run on (every core, where the OS cannot say: macOS, Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ---------------------------------------------------------------- the coordinator
class ParallelExplorer:
    """`Explorer`'s interface (run, trace, parent, via) over N partitions."""

    def __init__(self, model: Model, properties: Sequence[Property] = PROPERTIES, jobs: int = 0,
                 engine: str = "local", ray_address: Optional[str] = None, symmetry: bool = False,
                 store: str = "exact") -> None:
        if store not in STORES:
            raise UsageError(f"--store: unknown store {store!r}; available: {', '.join(STORES)}")
        self.model = model
        self.properties = tuple(properties)
        self.engine, self.ray_address = engine, ray_address
        self.jobs, self.store = jobs, store
        self.sym = Symmetry(model, enabled=symmetry)  # built once, before the partitions fork
        self.parent: dict[int, int] = {}  # along counterexamples only: index -> parent index
        self.via: dict[int, int] = {}  # index -> position of the step in the parent's successors

    def _transport(self):
        if self.engine == "ray":
            from .ray_engine import RayTransport

            return RayTransport(self.model, self.properties, self.sym, self.store, self.jobs, self.ray_address)
        from .local_engine import LocalTransport

        return LocalTransport(self.model, self.properties, self.sym, self.store, self.jobs or default_jobs())

    def run(self, progress: Optional[Callable[[int, int, int], None]] = None, max_states: int = 0,
            measure_memory: bool = False, look_past: int = LOOK_PAST) -> Result:
        """As `Explorer.run` (`measure_memory` is not supported across processes: peak_bytes is 0).
        The seconds count from when the partitions are up (a Ray cluster may take seconds to start)."""
        t = self._transport()
        start_time = time.perf_counter()
        try:
            return self._search(t, start_time, progress, max_states, look_past)
        except PartitionFailure as e:
            t.close()
            self._reproduce(e)
            raise InternalError(f"a partition failed: {e.message}") from None
        finally:
            t.close()

    def _search(self, t, start_time: float, progress, max_states: int, look_past: int) -> Result:
        m = self.model
        order = {p.name: n for n, p in enumerate(self.properties)}
        by_name = {p.name: p for p in self.properties}
        seeded = t.seed()
        keyblobs = [kb for _, _, kb in seeded]
        represented = sum(rep for _, rep, _ in seeded)
        pending = [p.name for p in self.properties]
        found: list[Violation] = []
        start, total, depth, transitions, expanded = 0, 1, 0, 0, 0
        complete, stopped, interrupted = True, False, False
        try:
            while True:
                replies = t.layer(pending, keyblobs, start)
                layer_start, start = start, total
                before = transitions, represented
                firsts: dict[str, tuple[int, str]] = {}
                for (trans, exp, viols), count, rep, _ in replies:
                    transitions += trans
                    expanded += exp
                    total += count
                    represented += rep
                    for name, g, detail in viols:
                        if name not in firsts or g < firsts[name][0]:
                            firsts[name] = (g, detail)
                keyblobs = [kb for *_, kb in replies]
                cut = None
                if max_states and total >= max_states:  # stop where --jobs 1 stops, inside this layer
                    cut = _cut(keyblobs, layer_start, start, max_states)
                    upto = t.upto(cut)
                    transitions = before[0] + sum(u[0] for u in upto)
                    total = start + sum(u[1] for u in upto)
                    represented = before[1] + sum(u[2] for u in upto)
                    expanded = cut + 1
                    firsts = {n: v for n, v in firsts.items() if v[0] <= cut}
                for name in sorted(firsts, key=lambda n: firsts[n][0]):
                    g, detail = firsts[name]
                    self._fetch_chain(t, g)  # first: an interrupt here leaves no violation without its chain
                    found.append(Violation(by_name[name], detail, g, depth))
                    pending.remove(name)
                if progress is not None:
                    progress(expanded, total, depth)
                if cut is not None:
                    complete = False
                    break
                if total == start:  # nothing new: the fixpoint
                    break
                if found and depth >= found[0].depth + look_past:
                    complete, stopped = False, True
                    break
                depth += 1
        except KeyboardInterrupt:
            complete, interrupted = False, True
        found.sort(key=lambda v: order[v.prop.name])
        return Result(m.design.name, total, transitions, depth, time.perf_counter() - start_time, complete, found,
                      0, stopped_after_violation=stopped, expanded=expanded, interrupted=interrupted,
                      symmetry=self.sym.describe(), store=self.store, represented=represented)

    def _fetch_chain(self, t, g: int) -> None:
        """Ask the owners for the parent index and position of each state from index g back to 0."""
        j = g
        while j > 0:
            k = t.lookup(j)
            self.parent[j], self.via[j] = k >> POS_BITS, k & ((1 << POS_BITS) - 1)
            j = self.parent[j]

    def trace(self, v: Violation) -> list[tuple[Action, bytes]]:
        """The path from the initial state to the violating one, replayed."""
        return replay(self.model, self.parent, self.via, v)

    def _reproduce(self, e: PartitionFailure) -> None:
        """Run the failing state's checks and successors here, to raise with a real traceback."""
        if e.state is not None:
            for p in self.properties:
                p.check(self.model, e.state)
            successors(self.model, e.state)


def _cut(keyblobs: list[bytes], layer_start: int, next_start: int, max_states: int) -> int:
    """The index of the state after whose expansion `--jobs 1` reaches max_states."""
    need = max_states - next_start
    if need <= 0:
        return layer_start
    keys = np.sort(np.concatenate([np.frombuffer(b, np.int64) for b in keyblobs]))
    return int(keys[need - 1]) >> POS_BITS


def check_engine_flags(jobs: int, engine: str, ray_address: Optional[str]) -> None:
    """--jobs, --engine and --ray-address make sense together (UsageError otherwise)."""
    if engine not in ENGINES:
        raise UsageError(f"--engine: unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    if jobs is not None and jobs < 0:
        raise UsageError(f"--jobs: {jobs} is negative; give 1 or more (0: every core)")
    if ray_address and engine != "ray":
        raise UsageError("--ray-address needs --engine ray")


def make_explorer(model: Model, properties: Sequence[Property] = PROPERTIES, jobs: int = 1, engine: str = "local",
                  ray_address: Optional[str] = None, symmetry: bool = False, store: str = "exact"):
    """The sequential Explorer for one local job, the partitioned search otherwise; both with
    the symmetry reduction and the store asked for."""
    check_engine_flags(jobs, engine, ray_address)
    if engine == "local" and (jobs or default_jobs()) == 1:
        return Explorer(model, properties, symmetry=symmetry, store=store)
    return ParallelExplorer(model, properties, jobs, engine, ray_address, symmetry=symmetry, store=store)
