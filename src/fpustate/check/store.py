"""Visited-state stores: exact, or 64-bit fingerprints (hash compaction).

`--store exact` keeps every state (or canonical image) as `bytes` in a set:
nothing can be missed, at about 200-400 bytes per state. `--store fingerprint`
keeps one 64-bit fingerprint per state in a sorted numpy array, merged once
per BFS layer (`np.searchsorted` to test a batch, one merge to add a layer),
so a state costs 8 bytes there plus 6 for its parent index and action
position; only the BFS frontier is kept as full states. Two different states
with the same fingerprint make the second look visited: Holzmann's hash
compaction, whose expected number of missed states for n states is about
n^2 / 2^65 (SPIN reports the same figure for its 64-bit hash compaction).

The frontier itself is kept in blocks of about CHUNK states, each stored as
its first row and the columns that vary in it (about a third of the bytes),
and freed block by block as it is expanded.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np

STORES = ("exact", "fingerprint")
CHUNK = 1024  # frontier states expanded (and their successors hashed) in one numpy batch


def fingerprint(s: bytes) -> int:
    """A deterministic 64-bit fingerprint of a state (BLAKE2b; the same in every process,
    unlike hash(), which Python salts per process)."""
    return int.from_bytes(hashlib.blake2b(s, digest_size=8).digest(), "little")


def expected_omissions(n: int) -> float:
    """Expected number of states a fingerprint store of n states missed: n^2 / 2^65."""
    return n * n / 2.0**65


class FingerprintSet:
    """A sorted array of distinct uint64 fingerprints."""

    def __init__(self, values: np.ndarray | None = None) -> None:
        self.values = np.empty(0, dtype=np.uint64) if values is None else values

    def __len__(self) -> int:
        return len(self.values)

    def contains(self, fps: np.ndarray) -> np.ndarray:
        """Which of `fps` are in the set (a boolean array)."""
        v = self.values
        if not len(v):
            return np.zeros(len(fps), dtype=bool)
        pos = np.searchsorted(v, fps)
        pos[pos == len(v)] = 0
        return v[pos] == fps

    def merge(self, fps: np.ndarray) -> None:
        """Add distinct fingerprints that are not in the set yet."""
        if len(fps):
            new = np.sort(fps)
            self.values = np.insert(self.values, np.searchsorted(self.values, new), new)


class FingerprintRuns:
    """Distinct fingerprints added in sorted batches (the current BFS layer's): kept as sorted runs,
    neighbours merged when the newer is at least half the older, so a layer of n costs
    O(n log n) and a lookup O(log^2 n)."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def add(self, sorted_fps: np.ndarray) -> None:
        if not len(sorted_fps):
            return
        self.runs.append(sorted_fps)
        while len(self.runs) > 1 and 2 * len(self.runs[-1]) >= len(self.runs[-2]):
            b, a = self.runs.pop(), self.runs.pop()
            self.runs.append(np.insert(a, np.searchsorted(a, b), b))

    def contains(self, fps: np.ndarray) -> np.ndarray:
        out = np.zeros(len(fps), dtype=bool)
        for run in self.runs:
            pos = np.searchsorted(run, fps)
            pos[pos == len(run)] = 0
            out |= run[pos] == fps
        return out


class PackedBlock:
    """A block of frontier states stored as its first row and the columns that vary in it
    (about a third of the bytes: most fields are equal across a block)."""

    __slots__ = ("first", "cols", "vals")

    def __init__(self, rows: np.ndarray) -> None:
        self.first = rows[0].copy()
        self.cols = np.flatnonzero((rows != self.first).any(axis=0))
        self.vals = np.ascontiguousarray(rows[:, self.cols])

    def __len__(self) -> int:
        return len(self.vals)

    def unpack(self) -> np.ndarray:
        rows = np.repeat(self.first[None, :], len(self.vals), axis=0)
        rows[:, self.cols] = self.vals
        return rows


class FrontierBlocks:
    """The next frontier, gathered in blocks of about CHUNK rows (with their hashes), so that no
    layer is ever copied whole."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.hashes: list = []
        self.pending: list[tuple[np.ndarray, Optional[np.ndarray]]] = []
        self.size = 0

    def add(self, rows: np.ndarray, hashes: Optional[np.ndarray]) -> None:
        if len(rows):
            self.pending.append((rows, hashes))
            self.size += len(rows)
            if self.size >= CHUNK:
                self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.rows.append(PackedBlock(np.concatenate([r for r, _ in self.pending])))
            hs = [h for _, h in self.pending]
            self.hashes.append(None if hs[0] is None else np.concatenate(hs))
            self.pending, self.size = [], 0

    def done(self) -> tuple[list["PackedBlock"], list]:
        self._flush()
        return self.rows, self.hashes
