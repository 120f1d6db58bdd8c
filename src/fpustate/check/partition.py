"""One partition of the parallel search (`--jobs N`): the states whose fingerprint is its number mod N.

A partition does for its share of a layer what the sequential `Explorer` does
for a whole one, with the same machinery: it expands its frontier in numpy
batches (`explore.expand_block`), hashes the successors incrementally from
their parents (`Symmetry.successor_hashes`), takes their canonical
fingerprints (`Symmetry.canonical`), drops the repeats it generated itself
and those it knows are visited (its own states, and what it routed in earlier
layers), and routes each remaining successor to its owner, `fingerprint % N`,
with its hash row and its *key*, `parent_index << POS_BITS | position`. The owner keeps, per
fingerprint (per canonical image with `--store exact`), the successor with
the smallest key, drops those it has visited, and keeps the rest, in key
order, as its share of the next layer.

The sequential search discovers a layer in key order, keeping each orbit's
first state, so the states kept are the ones `--jobs 1` keeps, and a state's
sequential index is the layer's start plus the number of the layer's keys
below its own, counted over every partition's sorted keys (`rank`). The
Zobrist tables have a fixed seed, so every process, forked or on a Ray node,
computes the same fingerprints and agrees on the owners.

Memory: each partition keeps 8 bytes of fingerprint and 16 of sequential index
and key per state it owns, plus 8 per state it routed elsewhere; with
`--store exact`, the canonical images it owns or generated.
"""

from __future__ import annotations

from array import array
from typing import Optional, Sequence

import numpy as np

from ..errors import InternalError
from ..kernel.machine import Model, initial_state, successors
from ..kernel.properties import Property
from .explore import expand_block
from .layer import frontier_chunks, positions
from .store import CHUNK, FingerprintRuns, FingerprintSet, FrontierBlocks
from .symmetry import Symmetry

POS_BITS = 16  # a key is parent_index << POS_BITS | position among the parent's successors


class PartitionFailure(Exception):
    """A design hook or property raised inside a partition; carries the state, so the
    coordinator can reproduce the failure with a real traceback."""

    def __init__(self, state: Optional[bytes], message: str) -> None:
        super().__init__(state, message)
        self.state, self.message = state, message


class Partition:
    """The states one partition owns, and its share of each layer's work."""

    def __init__(self, model: Model, properties: Sequence[Property], sym: Symmetry, store: str, me: int,
                 n: int) -> None:
        self.model, self.sym, self.me, self.n = model, sym, me, n
        self.props = {p.name: p for p in properties}
        self.exact = store == "exact"
        self.width = len(initial_state(model))
        self.visited = FingerprintSet()  # the fingerprint store
        self.routed = FingerprintSet()  # what it sent other owners in earlier layers: visited there
        self.seen: set[bytes] = set()  # the exact store: canonical images ...
        self.sent: set[bytes] = set()  # ... and, likewise exact, what it generated: visited at the owner
        self.seq = array("q")  # per owned state, ascending: its sequential index ...
        self.keys = array("q")  # ... and its key (-1: the root)
        self.frontier: list = []  # this partition's share of the layer (PackedBlocks) ...
        self.fhash: list = []  # ... and their hash rows
        self.new_keys = np.empty(0, np.int64)  # the layer absorbed last, in key order: keys ...
        self.new_orbits = np.empty(0, np.int64)  # ... and the concrete states each stands for
        self.expanded_seq = np.empty(0, np.int64)  # the layer expanded last: indices ...
        self.nsucc = np.empty(0, np.int64)  # ... and successor counts (for an exact --max-states cut)
        self.own: tuple = ()  # what this partition routed to itself this layer

    def seed(self) -> tuple[int, int, bytes]:
        """Own the initial state if its fingerprint says so (as absorb(): ranked by the first expand())."""
        row = np.frombuffer(initial_state(self.model), dtype=np.uint8)[None, :]
        h = self.sym.hashes(row)
        if int(self.sym.canonical(h)[1][0]) % self.n != self.me:
            return self._absorbed(row[:0], h[:0], np.empty(0, np.int64))
        if self.exact:
            self.seen.update(self._images(row, h))
        else:
            self.visited.merge(self.sym.canonical(h)[1])
        return self._absorbed(row, h, np.array([-1], np.int64))

    def expand(self, pending: Sequence[str], keyblobs: Optional[list[bytes]], start: int) -> tuple:
        """Rank the current layer (`keyblobs`: every partition's sorted keys of it, `start`:
        its first index), check the pending properties and generate the successors.
        Returns (transitions, expanded, violations) and one (rows, hashes, keys) buffer per owner."""
        if keyblobs is not None:
            self._rank(keyblobs, start)
        layer_seq = np.frombuffer(self.seq[len(self.seq) - len(self.new_keys):], np.int64)  # a copy: seq grows
        props = [self.props[name] for name in pending]
        out: list[list[tuple]] = [[] for _ in range(self.n)]
        runs = FingerprintRuns()  # what this partition generated this layer
        found, nsucc, lo = [], [], 0
        for block, fhash in frontier_chunks(self.frontier, self.fhash, True):  # freed as expanded
            seq = layer_seq[lo: lo + len(block)]
            lo += len(block)
            try:
                rows, counts, viols = expand_block(self.model, block, props)
            except (Exception, SystemExit) as e:  # a user's hook may call sys.exit(): a failure like any other
                raise PartitionFailure(self._culprit(block, props), f"{type(e).__name__}: {e}") from e
            for p, r, detail in viols:
                found.append((p.name, int(seq[r]), detail))
                props = [q for q in props if q is not p]
            nsucc += counts
            if len(rows):
                if max(counts) >> POS_BITS:
                    raise InternalError(f"a state has {max(counts)} successors; keys hold {1 << POS_BITS}")
                prow, pos = positions(counts)
                h = self.sym.successor_hashes(block, fhash, prow, rows)
                fps = self.sym.canonical(h)[1]
                keep = self._first_seen(rows, h, fps, runs)
                keys = (seq[prow[keep]] << POS_BITS) | pos[keep]
                owner = fps[keep] % np.uint64(self.n)
                for o in range(self.n):
                    sel = keep[owner == o]
                    if len(sel):
                        out[o].append((rows[sel], h[sel], keys[owner == o]))
        self.frontier, self.fhash = [], []
        if not self.exact:
            sent = np.concatenate(runs.runs) if runs.runs else np.empty(0, np.uint64)
            self.routed.merge(sent[sent % np.uint64(self.n) != self.me])
        self.expanded_seq, self.nsucc = layer_seq.copy(), np.asarray(nsucc, np.int64)
        buckets = []
        for o in range(self.n):  # one owner at a time, its batches freed once joined
            buckets.append(_join(out[o], self.width, 2 * self.sym.size))
            out[o] = None
        self.own = buckets[self.me]
        stats = (int(self.nsucc.sum()), len(self.nsucc), found)
        empty = (np.empty(0, np.uint8),) * 3  # this partition's own slot: those stay here
        return (stats, *[empty if o == self.me else b for o, b in enumerate(buckets)])

    def _first_seen(self, rows: np.ndarray, h: np.ndarray, fps: np.ndarray, runs: FingerprintRuns) -> np.ndarray:
        """Positions of the first successor of each orbit in this batch, in order, leaving out
        orbits this partition generated before (earlier in the layer, with a smaller key, or in
        an earlier layer: visited at their owner by now) and those it has visited. The exact
        store compares canonical images, so a fingerprint collision loses nothing."""
        if self.exact:
            seen, sent = self.seen, self.sent
            keep = []
            for i, c in enumerate(self._images(rows, h)):
                if c not in sent and c not in seen:
                    sent.add(c)
                    keep.append(i)
            return np.asarray(keep, np.intp)
        uniq, first = np.unique(fps, return_index=True)
        fresh = ~(runs.contains(uniq) | self.visited.contains(uniq) | self.routed.contains(uniq))
        runs.add(uniq[fresh])
        return np.sort(first[fresh])

    def _images(self, rows: np.ndarray, h: np.ndarray) -> list[bytes]:
        """Canonical images of `rows` as bytes."""
        flat = (self.sym.images(rows, self.sym.canonical(h)[0]) if self.sym.size > 1 else rows).tobytes()
        w = self.width
        return [flat[i: i + w] for i in range(0, len(flat), w)]

    def absorb(self, *buckets: tuple) -> tuple[int, int, bytes]:
        """Take the (rows, hashes, keys) buffers every partition routed here (this partition's own
        slot is empty: those stayed here); the new ones, in key order, are its share of the next
        layer. Returns their count, the concrete states they stand for, and their sorted keys."""
        g2 = 2 * self.sym.size
        parts = [self.own] + [(np.frombuffer(r, np.uint8).reshape(-1, self.width),
                               np.frombuffer(h, np.uint64).reshape(-1, g2), np.frombuffer(k, np.int64))
                              for i, (r, h, k) in enumerate(buckets) if i != self.me]
        self.own = ()
        rows, h, keys = (np.concatenate([p[i] for p in parts]) for i in range(3))
        del parts
        order = np.argsort(keys)  # keys are distinct: one per (parent, position)
        if self.exact:  # in key order: the first copy of an image has its smallest key
            seen, images = self.seen, self._images(rows, h)
            keep = []
            for i in order.tolist():
                if images[i] not in seen:
                    seen.add(images[i])
                    keep.append(i)
            sel = np.asarray(keep, np.intp)
        else:
            uniq, first = np.unique(self.sym.canonical(h)[1][order], return_index=True)
            fresh = ~self.visited.contains(uniq)
            self.visited.merge(uniq[fresh])
            sel = order[np.sort(first[fresh])]
        return self._absorbed(rows[sel], h[sel], keys[sel])

    def _absorbed(self, rows: np.ndarray, h: np.ndarray, keys: np.ndarray) -> tuple[int, int, bytes]:
        """Make `rows` (in key order) this partition's share of the next layer."""
        blocks = FrontierBlocks()
        for i in range(0, len(rows), CHUNK):
            blocks.add(rows[i: i + CHUNK], h[i: i + CHUNK])
        self.frontier, self.fhash = blocks.done()
        self.keys.frombytes(keys.astype(np.int64).tobytes())
        self.new_keys = keys
        self.new_orbits = self.sym.orbit_sizes(h).astype(np.int64)
        return len(rows), int(self.new_orbits.sum()), keys.astype(np.int64).tobytes()

    def _rank(self, keyblobs: list[bytes], start: int) -> None:
        """Sequential indices of the layer absorbed last: its start, plus the keys below each
        state's own, this partition's and every other's."""
        mine = self.new_keys
        rank = start + np.arange(len(mine), dtype=np.int64)
        for w, blob in enumerate(keyblobs):
            if w != self.me:
                rank += np.searchsorted(np.frombuffer(blob, np.int64), mine)
        self.seq.frombytes(rank.tobytes())

    def _culprit(self, block: np.ndarray, props: Sequence[Property]) -> Optional[bytes]:
        """The first state of `block` whose checks or successors raise (hooks are pure)."""
        for r in range(len(block)):
            s = block[r].tobytes()
            try:
                for p in props:
                    p.check(self.model, s)
                successors(self.model, s)
            except (Exception, SystemExit):
                return s
        return None

    def lookup(self, g: int) -> Optional[int]:
        """The key of the state with sequential index g, if this partition owns it."""
        seq = np.frombuffer(self.seq, np.int64)
        i = int(np.searchsorted(seq, g))
        return self.keys[i] if i < len(seq) and seq[i] == g else None

    def upto(self, g: int) -> tuple[int, int, int]:
        """For a cut after the state with index g: the successors the last layer's states up to
        g generated, and the new states (and concrete states) found from them."""
        parents = self.new_keys >> POS_BITS
        return (int(self.nsucc[self.expanded_seq <= g].sum()), int((parents <= g).sum()),
                int(self.new_orbits[parents <= g].sum()))


def _join(parts: list[tuple], width: int, g2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One owner's buffer: the rows, hash rows and keys of every batch, concatenated."""
    if not parts:
        return np.empty((0, width), np.uint8), np.empty((0, g2), np.uint64), np.empty(0, np.int64)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))
