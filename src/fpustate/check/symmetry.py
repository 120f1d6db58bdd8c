"""Symmetry reduction: CPUs, and task slots of one kind, are interchangeable.

The machine treats every CPU alike and every user slot (every kernel thread,
every user worker) alike, so permuting them maps the reachable graph onto
itself: a state and its permuted images satisfy the same properties, and
their shortest paths from boot have the same length. The checker therefore
stores one *orbit* per set of images (Ip and Dill's scalarsets, SPIN's and
Murphi's symmetry reduction), keyed by a canonical image, while it keeps and
expands the first concrete state it reached, so counterexamples stay real
steps from boot.

A permutation moves whole CPU and task records and rewrites every byte that
names a CPU, a task slot, or a value or PKRU tagged with its owner; which
bytes those are is the field-kind table of `kernel/fields.py`. An idle task
belongs to its CPU: permuting CPUs permutes their idle slots with them.

Canonical image: each state has 2 Zobrist hashes per permutation (h1, h2;
random 64-bit tables, fixed seed). The image with the least h1 is the
canonical one and its h2 is the state's fingerprint. Both are kept per
frontier state, so a successor's hashes are its parent's with the few bytes a
step changed swapped out (incremental Zobrist hashing), for a whole batch of
successors at once with numpy. Two images of one orbit tie on h1 only with
probability 2^-64 per pair; a tie can only store an orbit twice, never lose
one.

Equivariance limit: fork reuses the *lowest* dead user slot
(`machine._free_slot`), a rule that picks by slot number. When a scenario can
have two dead user slots while forks remain (forks > 0 and spare + exits >= 2)
user slots are not interchangeable and their symmetry is switched off.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import numpy as np

from ..kernel.machine import Model, initial_state
from ..kernel.state import (
    CPU_W,
    GHOST_OFF,
    HEADER,
    PKRU_HW_INIT,
    PKRU_INIT,
    TASK_W,
    pkru_of,
    pkru_owner,
    pkru_version,
    user_value,
    value_owner,
    value_version,
)
from ..kernel.fields import (
    CPU_FIELDS,
    FIELD_CPU,
    FIELD_DATA,
    FIELD_LOCAL,
    FIELD_PKRU,
    FIELD_TASK,
    FIELD_TASK_PLUS1,
    FIELD_VALUE,
    GHOST_FIELDS,
    HEADER_FIELDS,
    TASK_FIELDS,
)

MAX_GROUP = 48  # permutations tried per state; bigger groups keep their largest factors that fit
SEED = 0x46505553  # the Zobrist tables are fixed: fingerprints are the same in every process and run


class Factor(NamedTuple):
    """One set of interchangeable objects."""

    name: str  # "CPUs", "user tasks", "kernel threads", "user workers"
    members: tuple[int, ...]  # CPU numbers, or task slots


def factors(m: Model) -> list[Factor]:
    """The interchangeable sets of a model (singletons left out)."""
    sc = m.scenario
    # CPU 0 never goes offline (--hotplug): then only the others are interchangeable.
    out = [Factor("CPUs", tuple(range(1 if sc.hotplug else 0, sc.cpus))),
           Factor("kernel threads", tuple(range(sc.slots, sc.slots + sc.kthreads))),
           Factor("user workers", tuple(range(sc.slots + sc.kthreads, m.idle_base)))]
    if not (sc.forks and sc.spare + sc.exits >= 2):  # fork's lowest-dead-slot rule (module docstring)
        # The first --vcpus user tasks are KVM vCPU threads: interchangeable among themselves only.
        out.insert(1, Factor("user tasks", tuple(range(sc.vcpus, sc.slots))))
        out.insert(1, Factor("vCPU threads", tuple(range(sc.vcpus))))
    return [f for f in out if len(f.members) > 1]


def _fit(fs: list[Factor], cap: int) -> list[Factor]:
    """The subset of factors with the largest group of at most `cap` permutations."""
    best: list[Factor] = []
    best_size = 1
    for n in range(len(fs), 0, -1):
        for sub in itertools.combinations(fs, n):
            size = math.prod(math.factorial(len(f.members)) for f in sub)
            if best_size < size <= cap:
                best, best_size = list(sub), size
    return best


def _remap_table(kind: str, cpu_map: list[int], task_map: list[int]) -> np.ndarray:
    """What each byte value of a field of `kind` becomes under the permutation."""
    nc, nt = len(cpu_map), len(task_map)
    out = np.arange(256, dtype=np.uint8)
    for v in range(256):
        if kind == FIELD_CPU and v < nc:
            out[v] = cpu_map[v]
        elif kind == FIELD_TASK and v < nt:
            out[v] = task_map[v]
        elif kind == FIELD_TASK_PLUS1 and 0 < v <= nt:
            out[v] = task_map[v - 1] + 1
        elif kind == FIELD_VALUE and value_owner(v) < nt and v < 255:
            w = user_value(task_map[value_owner(v)], value_version(v))
            if w < 255:
                out[v] = w
        elif kind == FIELD_PKRU and v not in (PKRU_INIT, PKRU_HW_INIT) and pkru_owner(v) < nt and v < 255:
            w = pkru_of(task_map[pkru_owner(v)], pkru_version(v))
            if w < 255:
                out[v] = w
    return out


class Symmetry:
    """The permutation group of a model, its Zobrist tables and batch canonicalization.

    With `enabled=False` the group is the identity alone: the same hashing,
    without reduction (the fingerprint store uses it)."""

    def __init__(self, m: Model, enabled: bool = True, cap: int = MAX_GROUP) -> None:
        sc = m.scenario
        self.model = m
        self.width = L = len(initial_state(m))
        nc, nt = sc.cpus, m.idle_base + sc.cpus
        self.factors = _fit(factors(m), cap) if enabled else []
        kinds = self._kinds(m, nc, nt)
        perms = []  # (cpu_map, task_map)
        choices = [itertools.permutations(f.members) for f in self.factors]
        for combo in itertools.product(*choices):
            cpu_map, task_map = list(range(nc)), list(range(nt))
            for f, image in zip(self.factors, combo):
                target = cpu_map if f.name == "CPUs" else task_map
                for a, b in zip(f.members, image):
                    target[a] = b
            for c in range(nc):  # the idle task follows its CPU
                task_map[m.idle_of(c)] = m.idle_of(cpu_map[c])
            perms.append((cpu_map, task_map))
        self.size = G = len(perms)
        rng = np.random.default_rng(SEED)
        z1 = rng.integers(0, 2**64, size=(L, 256), dtype=np.uint64, endpoint=False)
        z2 = rng.integers(0, 2**64, size=(L, 256), dtype=np.uint64, endpoint=False)
        self.zobrist = np.empty((L * 256, 2 * G), dtype=np.uint64)  # row j*256+v: every image's hashes
        self.src = np.empty((G, L), dtype=np.intp)  # image byte d comes from source byte src[g, d]
        self.lut = np.empty((G, L, 256), dtype=np.uint8)  # ... rewritten through lut[g, d]
        tb = HEADER + nc * CPU_W
        for g, (cpu_map, task_map) in enumerate(perms):
            tables = {k: _remap_table(k, cpu_map, task_map) for k in set(kinds)}
            dest = np.empty(L, dtype=np.intp)
            for j in range(L):
                if j < HEADER:
                    dest[j] = j
                elif j < tb:
                    c, off = divmod(j - HEADER, CPU_W)
                    dest[j] = HEADER + cpu_map[c] * CPU_W + off
                else:
                    t, off = divmod(j - tb, TASK_W)
                    dest[j] = tb + task_map[t] * TASK_W + off
            remap = np.stack([tables[k] for k in kinds])  # (L, 256): source byte j's values
            self.zobrist[:, g] = z1[dest[:, None], remap].ravel()
            self.zobrist[:, G + g] = z2[dest[:, None], remap].ravel()
            self.src[g, dest] = np.arange(L)
            self.lut[g, dest] = remap
        self._offsets = (np.arange(L, dtype=np.intp) * 256)

    @staticmethod
    def _kinds(m: Model, nc: int, nt: int) -> list[str]:
        """The field kind of every byte of the model's state vector."""
        local = m.design.local_kind
        out = [HEADER_FIELDS[j] for j in range(HEADER)]
        out += [CPU_FIELDS[j] for _ in range(nc) for j in range(CPU_W)]
        task_kinds = []
        for j in range(TASK_W):  # kernel fields at their offsets, ghost fields at GHOST_OFF + theirs
            kinds = [k for k in (TASK_FIELDS.get(j), GHOST_FIELDS.get(j - GHOST_OFF)) if k is not None]
            if len(kinds) != 1:
                raise AssertionError(f"task record byte {j} has {len(kinds)} field kinds (kernel/fields.py)")
            task_kinds.append(local if kinds[0] == FIELD_LOCAL else kinds[0])
        out += task_kinds * nt
        assert all(k in (FIELD_DATA, FIELD_CPU, FIELD_TASK, FIELD_VALUE, FIELD_PKRU, FIELD_TASK_PLUS1) for k in out)
        return out

    def describe(self) -> str:
        """E.g. "CPUs x user tasks (4 permutations)", or "off"."""
        if self.size == 1:
            return "off"
        return " x ".join(f.name for f in self.factors) + f" ({self.size} permutations)"

    # ---------------------------------------------------------------- batches
    def hashes(self, rows: np.ndarray) -> np.ndarray:
        """(N, L) uint8 states -> (N, 2G) uint64: h1 of every image, then h2 of every image."""
        out = np.zeros((len(rows), 2 * self.size), dtype=np.uint64)
        idx = rows.astype(np.intp) + self._offsets
        for j in range(self.width):
            out ^= self.zobrist[idx[:, j]]
        return out

    def successor_hashes(self, parents: np.ndarray, parent_hashes: np.ndarray, prow: np.ndarray,
                         rows: np.ndarray) -> np.ndarray:
        """Hashes of successors `rows` (N, L) of `parents[prow]`, from the parents' hashes and
        the bytes each step changed."""
        before = parents[prow]
        r, c = np.nonzero(rows != before)
        out = parent_hashes[prow]
        if len(r):
            base = c * 256
            delta = self.zobrist[base + before[r, c]] ^ self.zobrist[base + rows[r, c]]
            starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
            out[r[starts]] ^= np.bitwise_xor.reduceat(delta, starts, axis=0)
        return out

    def canonical(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(permutation index of each canonical image, its fingerprint) from `hashes()` rows."""
        g = np.argmin(h[:, : self.size], axis=1)
        return g, h[np.arange(len(h)), self.size + g]

    def images(self, rows: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The images of `rows` under permutations `g`: (N, L) uint8."""
        n = np.arange(len(rows))[:, None]
        return self.lut[g[:, None], np.arange(self.width)[None, :], rows[n, self.src[g]]]

    def orbit_sizes(self, h: np.ndarray) -> np.ndarray:
        """How many concrete states the orbit of each hash row stands for: |G| / |stabilizer|
        (image 0 is the identity; images equal to it fix the state)."""
        g = self.size
        return g // (h[:, :g] == h[:, :1]).sum(axis=1) if len(h) else np.zeros(0, np.int64)

    # ---------------------------------------------------------------- one state
    def canonical_state(self, s: bytes) -> bytes:
        """The canonical image of one state."""
        row = np.frombuffer(s, dtype=np.uint8)[None, :]
        g, _ = self.canonical(self.hashes(row))
        return self.images(row, g)[0].tobytes()


def canonicalizer(m: Model, enabled: bool = True) -> Callable[[bytes], bytes]:
    """A function from a state to its orbit's canonical image (the identity when symmetry is
    off or the model has no interchangeable objects). States with the same image are
    permutations of one another."""
    if not enabled:
        return _identity
    sym = Symmetry(m)
    return _identity if sym.size == 1 else sym.canonical_state


def _identity(s: bytes) -> bytes:
    return s
