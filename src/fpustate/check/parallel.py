"""Breadth-first search on every core (`--jobs N`): partitioned and layer-synchronous.

Each of N partitions owns the states whose `spread(key(s)) % N` is its number
(`key` gives a state's canonical form; `spread` is a hash every partition agrees on). A layer is expanded by all
partitions at once; each one deduplicates the successors it generated,
routes them to their owners in one joined buffer per owner, and takes in what
it was sent. The layers are exactly those of the sequential `Explorer`, and
so are the counts, the depth and the counterexamples, because every state
carries what the sequential search would number it:

- a successor's *key* is `parent_index << 16 | position` (its position in the
  parent's successor list), and the sequential search discovers a layer in
  the order of those keys, each state with its smallest key;
- after a layer, the partitions exchange their sorted keys, and a state's
  sequential index is the layer's start plus the number of keys below its own.

Properties are checked per layer in index order, so each property's first
violation is the state `--jobs 1` reports, with the same look-past rule.
Counterexamples keep the parent index and position of every state; the chain
is fetched from the owners and replayed from the initial state, so traces
print real steps and index paths (`check.trace.index_path`) replay as today.

The partitions run in forked processes that exchange buffers directly over
pipes (`check.local_engine`), or on Ray actors (`check.ray_engine`).
"""

from __future__ import annotations

import os
import time
from array import array
from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Callable, Optional, Sequence

from ..errors import InternalError, UsageError
from ..kernel.machine import Action, Model, initial_state, successors
from ..kernel.properties import PROPERTIES, Property
from .explore import LOOK_PAST, Explorer, Result, Violation
from .symmetry import canonicalizer

POS_BITS = 16  # a key is parent_index << POS_BITS | position among the parent's successors
ENGINES = ("local", "ray")
FOREIGN, PENDING = -1, -2  # index values besides local numbers: owned elsewhere; new here this layer


def default_jobs() -> int:
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0))


class PartitionFailure(Exception):
    """A design hook or property raised inside a partition; carries the state, so the
    coordinator can reproduce the failure with a real traceback."""

    def __init__(self, state: Optional[bytes], message: str) -> None:
        super().__init__(state, message)
        self.state, self.message = state, message


class Partition:
    """The states one partition owns, and its share of each layer's work."""

    def __init__(self, model: Model, properties: Sequence[Property], key: Callable[[bytes], bytes],
                 spread: Callable[[bytes], int], me: int, n: int) -> None:
        self.model, self.key, self.spread, self.me, self.n = model, key, spread, me, n
        self.props = {p.name: p for p in properties}
        self.width = len(initial_state(model))
        # canonical state -> local number; FOREIGN for states of other partitions this one has
        # routed (so it routes each at most once); PENDING while a new state waits for its number
        self.index: dict[bytes, int] = {}
        self.states: list[bytes] = []  # local number -> canonical state
        self.keys = array("q")  # local number -> parent index << POS_BITS | position (-1: the root)
        self.seq = array("q")  # local number -> sequential index (-1 until ranked)
        self.first = self.end = 0  # the current layer: local numbers [first, end)
        self.expanded_seq = array("q")  # sequential indices of the last expanded layer
        self.nsucc = array("I")  # and their successor counts (for an exact --max-states cut)
        self.current: Optional[bytes] = None  # the state being worked on
        self.own: tuple[list[bytes], array] = ([], array("q"))  # this layer's new states found here

    def seed(self, s: bytes) -> None:
        """Own the initial state: sequential index 0."""
        self.index[s] = 0
        self.states.append(s)
        self.keys.append(-1)
        self.seq.append(0)
        self.first, self.end = 0, 1

    def expand(self, pending: Sequence[str], keyblobs: Optional[list[bytes]], start: int) -> tuple:
        """Rank the current layer (`keyblobs`: every partition's sorted keys of it, `start`:
        its first index), check the pending properties and generate the successors.
        Returns (transitions, expanded, violations) and one (states, keys) buffer per owner."""
        try:
            if keyblobs is not None:
                self._rank(keyblobs, start)
            return self._expand([self.props[name] for name in pending])
        except (Exception, SystemExit) as e:  # a user's hook may call sys.exit(): a failure like any other
            raise PartitionFailure(self.current, f"{type(e).__name__}: {e}") from e

    def _rank(self, keyblobs: list[bytes], start: int) -> None:
        others = []
        for w, blob in enumerate(keyblobs):
            if w != self.me:
                a = array("q")
                a.frombytes(blob)
                others.append(a)
        seq, keys, first = self.seq, self.keys, self.first
        if len(others) == 1:  # two partitions: one bisect per state
            other = others[0]
            for j in range(first, self.end):
                seq[j] = start + (j - first) + bisect_left(other, keys[j])
            return
        for j in range(first, self.end):
            k = keys[j]
            rank = start + (j - first)
            for o in others:
                rank += bisect_left(o, k)
            seq[j] = rank

    def _expand(self, pending: list[Property]) -> tuple:
        m, states, seq, index = self.model, self.states, self.seq, self.index
        key, spread, n, me = self.key, self.spread, self.n, self.me
        bstates: list[list[bytes]] = [[] for _ in range(n)]
        bkeys = [array("q") for _ in range(n)]
        add_state = [b.append for b in bstates]
        add_key = [b.append for b in bkeys]
        found = []
        nsucc = array("I")
        for j in range(self.first, self.end):
            s = self.current = states[j]
            if pending:
                for p in pending:
                    detail = p.check(m, s)
                    if detail is not None:
                        found.append((p.name, seq[j], detail))
                        pending = [q for q in pending if q is not p]
            succ = successors(m, s)
            if len(succ) >> POS_BITS:
                raise InternalError(f"a state has {len(succ)} successors; keys hold at most {1 << POS_BITS}")
            nsucc.append(len(succ))
            k = seq[j] << POS_BITS
            for _, s2 in succ:
                if s2 not in index:
                    c = key(s2)
                    if c is s2 or c not in index:
                        # The first (parent, position) reaching c here is the smallest key this
                        # partition has for it: parents go in index order.
                        o = spread(c) % n
                        index[c] = PENDING if o == me else FOREIGN
                        add_state[o](c)
                        add_key[o](k)
                k += 1
        self.current = None
        self.expanded_seq, self.nsucc = seq[self.first:self.end], nsucc
        stats = (sum(nsucc), self.end - self.first, found)
        self.own = (bstates[me], bkeys[me])  # what this partition routes to itself stays here
        return (stats, *[(b"", b"") if o == me else (b"".join(bs), bk.tobytes())
                         for o, (bs, bk) in enumerate(zip(bstates, bkeys))])

    def absorb(self, *buckets: tuple[bytes, bytes]) -> tuple[int, bytes]:
        """Take the successors every partition routed here (this partition's own slot is
        empty: those stayed here); the new ones, in key order, are the next layer. Returns
        their count and their sorted keys."""
        w, index = self.width, self.index
        # First what this partition found itself: new here, each once, with its smallest key here.
        new: dict[bytes, int] = dict(zip(*self.own))
        self.own = ([], array("q"))
        get = index.get
        for sender, (sblob, kblob) in enumerate(buckets):
            if sender == self.me:
                continue
            off = 0
            for k in _keys(kblob):
                s = sblob[off:off + w]
                off += w
                v = get(s)
                if v is None:
                    index[s] = PENDING
                    new[s] = k
                elif v == PENDING and k < new[s]:
                    new[s] = k
        items = sorted(new.items(), key=itemgetter(1))
        states, keys = self.states, self.keys
        self.first = len(states)
        for s, k in items:
            index[s] = len(states)
            states.append(s)
            keys.append(k)
        self.end = len(states)
        self.seq.frombytes(b"\xff" * (8 * len(items)))
        return len(items), keys[self.first:self.end].tobytes()

    def lookup(self, g: int) -> Optional[tuple[bytes, int]]:
        """The state with sequential index g and its key, if this partition owns it."""
        try:
            j = self.seq.index(g)
        except ValueError:
            return None
        return self.states[j], self.keys[j]

    def transitions_upto(self, g: int) -> int:
        """Successors generated by the last layer's states numbered g or less."""
        return sum(c for s, c in zip(self.expanded_seq, self.nsucc) if s <= g)


# ---------------------------------------------------------------- the coordinator
class ParallelExplorer:
    """`Explorer`'s interface (run, trace, parent, via) over N partitions."""

    def __init__(self, model: Model, properties: Sequence[Property] = PROPERTIES, jobs: int = 0,
                 engine: str = "local", ray_address: Optional[str] = None,
                 key: Optional[Callable[[bytes], bytes]] = None) -> None:
        self.model = model
        self.properties = tuple(properties)
        self.engine, self.ray_address = engine, ray_address
        self.jobs = jobs
        self.key = key or canonicalizer(model, enabled=False)
        self.symmetry_name = "off"  # make_explorer() names the group its key reduces by
        self.parent: dict[int, int] = {}  # along counterexamples only: index -> parent index
        self.via: dict[int, int] = {}  # index -> position of the step in the parent's successors
        self.chains: dict[int, list[tuple[int, bytes]]] = {}  # violating index -> [(index, canonical state)]

    def _transport(self):
        if self.engine == "ray":
            from .ray_engine import RayTransport

            return RayTransport(self.model, self.properties, self.key, self.jobs, self.ray_address)
        from .local_engine import LocalTransport

        return LocalTransport(self.model, self.properties, self.key, self.jobs or default_jobs())

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
        m, key = self.model, self.key
        order = {p.name: n for n, p in enumerate(self.properties)}
        by_name = {p.name: p for p in self.properties}
        root = key(initial_state(m))
        t.seed(t.spread(root) % t.n, root)
        pending = [p.name for p in self.properties]
        found: list[Violation] = []
        keyblobs: Optional[list[bytes]] = None
        start, total, depth, transitions, expanded = 0, 1, 0, 0, 0
        complete, stopped, interrupted = True, False, False
        try:
            while True:
                replies = t.layer(pending, keyblobs, start)
                layer_start, start = start, total
                firsts: dict[str, tuple[int, str]] = {}
                for (trans, exp, viols), count, _ in replies:
                    transitions += trans
                    expanded += exp
                    total += count
                    for name, g, detail in viols:
                        if name not in firsts or g < firsts[name][0]:
                            firsts[name] = (g, detail)
                keyblobs = [kb for _, _, kb in replies]
                cut = None
                if max_states and total >= max_states:  # stop where --jobs 1 stops, inside this layer
                    cut = self._cut(keyblobs, layer_start, start, max_states)
                    total = start + sum(bisect_right(a, (cut << POS_BITS) | ((1 << POS_BITS) - 1))
                                        for a in map(_keys, keyblobs))
                    transitions -= sum(r[0][0] for r in replies) - t.transitions_upto(cut)
                    expanded = cut + 1
                    firsts = {n: v for n, v in firsts.items() if v[0] <= cut}
                for name in sorted(firsts, key=lambda n: firsts[n][0]):
                    g, detail = firsts[name]
                    found.append(Violation(by_name[name], detail, g, depth))
                    pending.remove(name)
                    self._fetch_chain(t, g)
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
                      symmetry=self.symmetry_name, store="exact")

    @staticmethod
    def _cut(keyblobs: list[bytes], layer_start: int, next_start: int, max_states: int) -> int:
        """The index of the state after whose expansion `--jobs 1` reaches max_states."""
        need = max_states - next_start
        if need <= 0:
            return layer_start
        keys = sorted(k for blob in keyblobs for k in _keys(blob))
        return keys[need - 1] >> POS_BITS

    def _fetch_chain(self, t, g: int) -> None:
        """Ask the owners for the states from the initial one to index g."""
        chain = []
        j = g
        while j > 0:
            s, k = t.lookup(j)
            chain.append((j, s))
            self.parent[j] = k >> POS_BITS
            j = k >> POS_BITS
        chain.reverse()
        self.chains[g] = chain

    def trace(self, v: Violation) -> list[tuple[Action, bytes]]:
        """The path from the initial state to the violating one, replayed: at each step the
        first successor whose canonical form is the next state of the chain."""
        m, key = self.model, self.key
        prev = initial_state(m)
        path: list[tuple[Action, bytes]] = []
        for j, target in self.chains[v.state_index]:
            succ = successors(m, prev)
            k = next((k for k, (_, s2) in enumerate(succ) if key(s2) == target), None)
            if k is None:
                raise InternalError(
                    "replaying a counterexample diverged: the successor function returned a different "
                    "state for the same action. A design hook must be a pure function of the state "
                    "(no globals, no randomness, no iteration over sets)."
                )
            self.via[j] = k
            path.append((Action(*succ[k][0]), succ[k][1]))
            prev = succ[k][1]
        v.path = path
        return path

    def _reproduce(self, e: PartitionFailure) -> None:
        """Run the failing state's checks and successors here, to raise with a real traceback."""
        if e.state is not None:
            for p in self.properties:
                p.check(self.model, e.state)
            successors(self.model, e.state)


def _keys(blob: bytes) -> array:
    a = array("q")
    a.frombytes(blob)
    return a


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
    """The sequential Explorer for one local job (with the symmetry reduction and the store
    asked for), the partitioned search otherwise: it reduces by symmetry through canonical
    keys and keeps exact states in its partitions (`store` applies to one job only)."""
    check_engine_flags(jobs, engine, ray_address)
    if engine == "local" and (jobs or default_jobs()) == 1:
        return Explorer(model, properties, symmetry=symmetry, store=store)
    from .symmetry import Symmetry

    px = ParallelExplorer(model, properties, jobs, engine, ray_address, key=canonicalizer(model, symmetry))
    px.symmetry_name = Symmetry(model, enabled=symmetry).describe()
    return px
