"""Explicit-state breadth-first search to a fixpoint, one BFS layer at a time.

Per state we keep only the parent index and the position of the action in the
parent's (deterministic) successor list, as compact arrays. Counterexamples
are rebuilt by replaying those positions from the initial state, which also
re-checks determinism. States are numbered in the order a sequential BFS
discovers them: by parent, then by action position.

Every state is checked against every property not yet violated; the first
violation of a property found in BFS order is its shortest counterexample.
States that violate a property are still expanded, so one design can report
several independent violations (e.g. a PKRU leak *and* a register leak).

Two independent choices (`check.symmetry`, `check.store`):
- symmetry: states that differ only by a permutation of CPUs or of
  interchangeable task slots are one orbit, stored once under a canonical
  image; the first concrete state reached is the one kept and expanded.
- store: `exact` keeps every state (and, with symmetry, its canonical image)
  as bytes; `fingerprint` keeps 64-bit fingerprints in a sorted array and only
  the frontier as states.
The reduced modes hash successors in numpy batches of `CHUNK` parents.

A run can save its position at layer boundaries (`check.checkpoint`) and
resume from it with identical results.
"""

from __future__ import annotations

import time
import tracemalloc
from array import array
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import UsageError
from ..kernel.machine import Action, Model, initial_state, successors
from ..kernel.properties import BY_NAME, PROPERTIES, Property
from .layer import frontier_chunks, positions, replay
from .store import CHUNK, STORES, FingerprintRuns, FingerprintSet, FrontierBlocks, PackedBlock, expected_omissions
from .symmetry import Symmetry

LOOK_PAST = 6  # BFS layers explored past the first violation


@dataclass
class Violation:
    prop: Property
    detail: str
    state_index: int
    depth: int
    path: list[tuple[Action, bytes]] = field(default_factory=list)  # filled by trace()


@dataclass
class Result:
    design: str
    states: int
    transitions: int
    depth: int
    seconds: float
    complete: bool  # reached the fixpoint (not interrupted, not capped)
    violations: list[Violation]
    peak_bytes: int = 0  # with measure_memory
    stopped_after_violation: bool = False  # look_past layers after the first violation were done
    expanded: int = 0  # states whose successors were generated
    interrupted: bool = False  # stopped by Ctrl-C (not complete, not capped by max_states)
    symmetry: str = "off"  # the permutation group the states were reduced by
    store: str = "exact"
    resumed: bool = False  # continued from a checkpoint
    represented: int = 0  # concrete states the stored ones stand for (= states without symmetry)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0

    @property
    def expected_omissions(self) -> float:
        """Expected states missed through fingerprint collisions (0 for the exact store)."""
        return expected_omissions(self.states) if self.store == "fingerprint" else 0.0


class Explorer:
    """BFS over one model; keeps what is needed to rebuild counterexamples."""

    def __init__(self, model: Model, properties: Sequence[Property] = PROPERTIES, symmetry: bool = False,
                 store: str = "exact") -> None:
        if store not in STORES:
            raise UsageError(f"--store: unknown store {store!r}; available: {', '.join(STORES)}")
        self.model = model
        self.properties = tuple(properties)
        self.store = store
        self.sym: Optional[Symmetry] = None
        if symmetry or store == "fingerprint":
            self.sym = Symmetry(model, enabled=symmetry)
        self.reduced = self.sym is not None and self.sym.size > 1
        self.batched = self.sym is not None and (self.reduced or store == "fingerprint")
        self.states: Optional[list[bytes]] = [] if store == "exact" else None
        self._width = len(initial_state(model))
        self.parent = array("i")
        self.via = array("H")

    # ---------------------------------------------------------------- checkpoints
    def snapshot(self) -> dict:
        """Everything a resumed run needs, at the current layer boundary."""
        snap = dict(depth=self._depth, transitions=self._transitions, expanded=self._expanded,
                    seconds=self._seconds_before + time.perf_counter() - self._start,
                    found=[(v.prop.name, v.detail, v.state_index, v.depth) for v in self._found],
                    done=self._done, complete=self._complete, stopped=self._stopped,
                    represented=self._represented,
                    parent=np.frombuffer(self.parent, dtype=np.int32), via=np.frombuffer(self.via, dtype=np.uint16),
                    frontier=np.concatenate([b.unpack() for b in self._frontier]) if self._frontier
                    else np.empty((0, self._width), np.uint8))
        if self.store == "exact":
            snap["states"] = np.frombuffer(b"".join(self.states), dtype=np.uint8).reshape(len(self.states), -1)
        else:
            snap["visited"] = self._visited.values
        return snap

    def _restore(self, snap: dict) -> None:
        self.parent = array("i", snap["parent"].astype(np.int32).tobytes())
        self.via = array("H", snap["via"].astype(np.uint16).tobytes())
        self._depth, self._transitions, self._expanded = snap["depth"], snap["transitions"], snap["expanded"]
        self._seconds_before = snap["seconds"]
        self._found = [Violation(BY_NAME[p], d, i, dep) for p, d, i, dep in snap["found"]]
        self._done, self._complete, self._stopped = snap["done"], snap["complete"], snap["stopped"]
        f = snap["frontier"]
        self._frontier = [PackedBlock(f[i: i + CHUNK]) for i in range(0, len(f), CHUNK)]
        if self.store == "exact":
            self.states = [r.tobytes() for r in snap["states"]]
            rows = snap["states"]
            self._seen = set(self.states) if not self.reduced else {
                key for lo in range(0, len(rows), 65536)
                for key in self._keys(rows[lo: lo + 65536], self.sym.hashes(rows[lo: lo + 65536]))}
        else:
            self._visited = FingerprintSet(snap["visited"])
        self._n = len(self.parent)
        self._fhash = [self._hash_rows(b.unpack()) for b in self._frontier]
        self._represented = snap["represented"]

    def _keys(self, rows: np.ndarray, h: np.ndarray) -> list[bytes]:
        """Canonical images of `rows` as bytes, from their hashes."""
        g, _ = self.sym.canonical(h)
        flat = self.sym.images(rows, g).tobytes()
        w = rows.shape[1]
        return [flat[i: i + w] for i in range(0, len(flat), w)]

    # ---------------------------------------------------------------- search
    def run(
        self,
        progress: Optional[Callable[[int, int, int], None]] = None,
        max_states: int = 0,
        measure_memory: bool = False,
        look_past: int = LOOK_PAST,
        checkpoint=None,
    ) -> Result:
        """Explore to the fixpoint; after the first violation, only `look_past` more BFS
        layers, to report the other properties' shortest counterexamples without
        exploring everything a broken design can reach. `checkpoint`
        (`check.checkpoint.Checkpoint`) resumes from and saves at layer boundaries."""
        m = self.model
        interrupted = False
        if measure_memory:
            tracemalloc.start()
        self._start = time.perf_counter()
        snap = checkpoint.load() if checkpoint is not None else None
        if snap is not None:
            self._restore(snap)
        else:
            self._begin()
        self._nnew = 0
        self._committing = False
        self._release = checkpoint is None
        self._pending = [p for p in self.properties if p.name not in {v.prop.name for v in self._found}]
        try:
            while not self._done:
                self._mark = (self._depth, self._transitions, self._expanded, len(self._found), self._represented)
                if self._layer(progress, max_states):
                    break
                if self._found and not self._done and self._depth > self._found[0].depth + look_past:
                    self._depth -= 1  # the layer just found is stored, not expanded
                    self._done, self._complete, self._stopped = True, False, True
                if checkpoint is not None and checkpoint.due(self._done):
                    checkpoint.save(self.snapshot())
        except KeyboardInterrupt:
            if checkpoint is not None and not self._committing:
                checkpoint.save(self._boundary_snapshot())
            self._complete = False
            interrupted = True
        seconds = self._seconds_before + time.perf_counter() - self._start
        peak = 0
        if measure_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        # Most severe first: the property order of PROPERTIES (user-visible
        # register corruption first, exposure last), not discovery depth.
        order = {p.name: n for n, p in enumerate(self.properties)}
        found = sorted(self._found, key=lambda v: order[v.prop.name])
        return Result(m.design.name, self._n + self._nnew, self._transitions, self._depth, seconds,
                      self._complete, found, peak, stopped_after_violation=self._stopped, expanded=self._expanded,
                      symmetry=self.sym.describe() if self.sym else "off", store=self.store,
                      resumed=snap is not None, represented=self._represented,
                      interrupted=interrupted)

    def _boundary_snapshot(self) -> dict:
        """The snapshot of the last layer boundary, taken while a layer was half expanded."""
        depth, transitions, expanded, nfound, represented = self._mark
        now = self._depth, self._transitions, self._expanded, self._found, self._represented
        self._depth, self._transitions, self._expanded, self._represented = depth, transitions, expanded, represented
        self._found = self._found[:nfound]
        try:
            return self.snapshot()
        finally:
            self._depth, self._transitions, self._expanded, self._found, self._represented = now

    def _begin(self) -> None:
        init = initial_state(self.model)
        self._frontier = [PackedBlock(np.frombuffer(init, dtype=np.uint8)[None, :])]
        self.parent, self.via = array("i", [-1]), array("H", [0])
        self._n, self._depth, self._transitions, self._expanded, self._seconds_before = 1, 0, 0, 0, 0.0
        self._found: list[Violation] = []
        self._done, self._complete, self._stopped = False, True, False
        if self.store == "exact":
            self.states = [init]
            self._seen = {self._key(init)}
        else:
            row = np.frombuffer(init, dtype=np.uint8)[None, :]
            self._visited = FingerprintSet(self.sym.canonical(self.sym.hashes(row))[1])
        self._fhash = [self._hash_rows(self._frontier[0].unpack())]
        self._represented = int(self.sym.orbit_sizes(self._fhash[0]).sum()) if self.batched else 1

    def _hash_rows(self, rows: np.ndarray) -> Optional[np.ndarray]:
        """Full hashes of the frontier (later layers carry them from their parents)."""
        return self.sym.hashes(rows) if self.batched else None

    def _key(self, s: bytes) -> bytes:
        return self.sym.canonical_state(s) if self.reduced else s

    def _layer(self, progress, max_states: int) -> bool:
        """Expand the frontier (one BFS layer) and commit the next one. True if max_states cut the run."""
        m, w = self.model, self._width
        base = self._n - sum(len(b) for b in self._frontier)  # PackedBlock blocks
        self._nnew = 0
        new_states: list[bytes] = []  # the exact store's
        new_parent, new_via, new_fps = array("i"), array("H"), []
        blocks = FrontierBlocks()
        exact_plain = not self.batched
        seen = self._seen if self.store == "exact" else None
        layer = FingerprintRuns()
        cut = False
        lo = 0
        for block, fhash in frontier_chunks(self._frontier, self._fhash, self._release):
            if exact_plain:
                counts, cut = self._expand_plain(block, base + lo, seen, new_states, new_parent, new_via, max_states)
                self._nnew = len(new_states)
            else:
                rows, counts, found = expand_block(m, block, self._pending)
                for p, r, detail in found:
                    self._found.append(Violation(p, detail, base + lo + r, self._depth))
                    self._pending = [q for q in self._pending if q is not p]
                if len(rows):
                    prow, pos = positions(counts)
                    h = self.sym.successor_hashes(block, fhash, prow, rows)
                    keep = self._fresh(rows, h, seen, layer, new_fps)
                    if max_states:
                        keep, counts, cut = self._cap(keep, prow, counts, max_states, base + lo)
                    if self.store == "exact":
                        new_states += [rows[i].tobytes() for i in keep.tolist()]
                    blocks.add(rows[keep], h[keep])
                    new_parent.frombytes((base + lo + prow[keep]).astype(np.int32).tobytes())
                    new_via.frombytes(pos[keep].astype(np.uint16).tobytes())
                    self._represented += int(self.sym.orbit_sizes(h[keep]).sum())
                    self._nnew += len(keep)
            self._transitions += sum(counts)
            self._expanded += len(counts)
            if progress is not None:
                progress(self._expanded, self._n + self._nnew, self._depth)
            lo += len(block)
            if cut:
                break
        if exact_plain:
            self._represented += len(new_states)
            for i in range(0, len(new_states), CHUNK):
                part = new_states[i: i + CHUNK]
                blocks.add(np.frombuffer(b"".join(part), np.uint8).reshape(len(part), w), None)
        self._committing = True
        self.parent.extend(new_parent)
        self.via.extend(new_via)
        self._n += self._nnew
        if self.store == "exact":
            self.states.extend(new_states)
        else:
            self._visited.merge(np.concatenate(new_fps) if new_fps else np.empty(0, np.uint64))
        if cut:
            self._done, self._complete = True, False
        elif not self._nnew:
            self._done = True
        else:
            self._depth += 1
            self._frontier, self._fhash = blocks.done()
        self._nnew = 0
        self._committing = False
        return cut

    def _expand_plain(self, block, first: int, seen, new_states, new_parent, new_via, max_states: int):
        """The exact store without symmetry: no hashing, one set lookup per successor, the cut
        checked after each parent. (successor counts, cut)"""
        m, w = self.model, self._width
        flat = block.tobytes()
        counts: list[int] = []
        for r in range(len(block)):
            s = flat[r * w: r * w + w]
            for p in self._pending:
                detail = p.check(m, s)
                if detail is not None:
                    self._found.append(Violation(p, detail, first + r, self._depth))
                    self._pending = [q for q in self._pending if q is not p]
            out = successors(m, s)
            counts.append(len(out))
            for k, (_, s2) in enumerate(out):
                if s2 not in seen:
                    seen.add(s2)
                    new_states.append(s2)
                    new_parent.append(first + r)
                    new_via.append(k)
            if max_states and self._n + len(new_states) >= max_states:
                return counts, True
        return counts, False

    def _fresh(self, rows, h, seen, layer: "FingerprintRuns", new_fps) -> np.ndarray:
        """Positions of the successors never seen before, in order, marking them seen."""
        if self.store == "exact":
            keep = []
            for i, key in enumerate(self._keys(rows, h)):
                if key not in seen:
                    seen.add(key)
                    keep.append(i)
            return np.asarray(keep, dtype=np.intp)
        _, fps = self.sym.canonical(h)
        uniq, first = np.unique(fps, return_index=True)
        fresh = ~(self._visited.contains(uniq) | layer.contains(uniq))
        layer.add(uniq[fresh])
        keep = np.sort(first[fresh])
        new_fps.append(fps[keep])
        return keep

    def _cap(self, keep: np.ndarray, prow: np.ndarray, counts: list[int], max_states: int, first: int):
        """Cut a batch where a sequential BFS would stop: after the parent whose successors
        bring the count to max_states. (keep, counts, cut)"""
        total = self._n + self._nnew
        kept_by = np.searchsorted(prow[keep], np.arange(len(counts)), side="right")  # new states up to parent p
        over = np.flatnonzero(total + kept_by >= max_states)
        if not len(over):
            return keep, counts, False
        p = int(over[0])
        self._found = [v for v in self._found if v.state_index <= first + p]
        return keep[: kept_by[p]], counts[: p + 1], True

    # ---------------------------------------------------------------- counterexamples
    def trace(self, v: Violation) -> list[tuple[Action, bytes]]:
        """The path from the initial state to the violating one, replayed."""
        return replay(self.model, self.parent, self.via, v, self.states)


def expand_block(m: Model, block: np.ndarray, pending: Sequence[Property]):
    """Check the `pending` properties on each row of `block` and generate its successors
    (a property found is not checked on later rows). Returns the successor rows (N, L) uint8,
    each row's successor count, and the violations as (property, row, detail)."""
    w = block.shape[1]
    flat = block.tobytes()
    succ: list[bytes] = []
    counts: list[int] = []
    found = []
    for r in range(len(block)):
        s = flat[r * w: r * w + w]
        for p in pending:
            detail = p.check(m, s)
            if detail is not None:
                found.append((p, r, detail))
                pending = [q for q in pending if q is not p]
        out = successors(m, s)
        counts.append(len(out))
        succ += [s2 for _, s2 in out]
    return np.frombuffer(b"".join(succ), np.uint8).reshape(len(succ), w), counts, found


def check(model: Model, properties: Sequence[Property] = PROPERTIES, **kw) -> tuple[Result, Explorer]:
    opts = {k: kw.pop(k) for k in ("symmetry", "store") if k in kw}
    ex = Explorer(model, properties, **opts)
    res = ex.run(**kw)
    for v in res.violations:
        ex.trace(v)
    return res, ex
