"""Pieces of a BFS layer that the sequential search (`check.explore`) and the partitioned
one (`check.partition`) share besides `explore.expand_block`: the positions of successors,
walking a frontier in blocks, and replaying a counterexample from parent indices and
action positions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import InternalError
from ..kernel.machine import Action, Model, initial_state, successors
from .store import CHUNK

if TYPE_CHECKING:  # explore imports this module
    from .explore import Violation


def positions(counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """For successors listed parent after parent: each one's parent row and its position
    among that parent's successors."""
    prow = np.repeat(np.arange(len(counts)), counts)
    return prow, np.arange(len(prow)) - np.repeat(np.cumsum(counts) - counts, counts)


def frontier_chunks(frontier: list, fhash: list, release: bool):
    """A frontier's blocks in pieces of at most CHUNK states (with their hashes); blocks are freed
    once expanded if `release` (no checkpoint needs the layer again)."""
    for bi in range(len(frontier)):
        block, h = frontier[bi].unpack(), fhash[bi]
        if release:
            frontier[bi] = fhash[bi] = None
        for i in range(0, len(block), CHUNK):
            yield block[i: i + CHUNK], None if h is None else h[i: i + CHUNK]


def replay(m: Model, parent, via, v: Violation, states=None) -> list[tuple[Action, bytes]]:
    """The path to a violation's state from `parent` and `via` (index -> parent index and the
    step's position among the parent's successors), replayed from the initial state; `states`
    (index -> state), when kept, are checked on the way. Sets and returns `v.path`."""
    chain = []
    j = v.state_index
    while j > 0:
        chain.append(j)
        j = parent[j]
    chain.reverse()
    path: list[tuple[Action, bytes]] = []
    prev = initial_state(m)
    diverged = False
    for j in chain:
        succ = successors(m, prev)
        k = via[j]
        if k >= len(succ) or (states is not None and succ[k][1] != states[j]):
            diverged = True
            break
        path.append((Action(*succ[k][0]), succ[k][1]))
        prev = succ[k][1]
    if diverged or v.prop.check(m, prev) is None:
        raise InternalError(
            "replaying a counterexample diverged: the successor function returned a different "
            "state for the same action. A design hook must be a pure function of the state "
            "(no globals, no randomness, no iteration over sets)."
        )
    v.path = path
    return path
