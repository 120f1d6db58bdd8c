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
"""

from __future__ import annotations

import hashlib

import numpy as np

STORES = ("exact", "fingerprint")


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
