"""Explicit-state breadth-first search to a fixpoint.

The visited set maps each state to its index; per index we keep only the
parent index and the position of the action in the parent's (deterministic)
successor list, as compact arrays. Counterexamples are rebuilt by replaying
those positions, which also re-checks determinism.

Every state is checked against every property not yet violated; the first
violation of a property found in BFS order is its shortest counterexample.
States that violate a property are still expanded, so one design can report
several independent violations (e.g. a PKRU leak *and* a register leak).
"""

from __future__ import annotations

import time
import tracemalloc
from array import array
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from ..errors import InternalError
from ..kernel.machine import Action, Model, initial_state, successors
from ..kernel.properties import PROPERTIES, Property


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

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


class Explorer:
    """BFS over one model; keeps what is needed to rebuild counterexamples."""

    def __init__(self, model: Model, properties: Sequence[Property] = PROPERTIES) -> None:
        self.model = model
        self.properties = tuple(properties)
        self.states: list[bytes] = []
        self.parent = array("i")
        self.via = array("H")

    def run(
        self,
        progress: Optional[Callable[[int, int, int], None]] = None,
        max_states: int = 0,
        measure_memory: bool = False,
        look_past: int = LOOK_PAST,
    ) -> Result:
        """Explore to the fixpoint; after the first violation, only `look_past` more BFS
        layers, to report the other properties' shortest counterexamples without
        exploring everything a broken design can reach."""
        m = self.model
        if measure_memory:
            tracemalloc.start()
        start = time.perf_counter()
        init = initial_state(m)
        index = {init: 0}
        setdefault = index.setdefault
        states = self.states = [init]
        parent = self.parent = array("i", [-1])
        via = self.via = array("H", [0])
        pending = list(self.properties)
        add_state, add_parent, add_via = states.append, parent.append, via.append
        found: list[Violation] = []
        transitions = 0
        depth = 0
        layer_end = 1
        i = 0
        complete = True
        stopped = False  # by look_past, after a violation
        interrupted = False
        try:
            while i < len(states):
                if i == layer_end:
                    if found and depth >= found[0].depth + look_past:
                        complete = False
                        stopped = True
                        break
                    depth += 1
                    layer_end = len(states)
                s = states[i]
                for p in pending:
                    detail = p.check(m, s)
                    if detail is not None:
                        found.append(Violation(p, detail, i, depth))
                        pending = [q for q in pending if q is not p]
                succ = successors(m, s)
                transitions += len(succ)
                n = len(states)
                k = 0
                for _, s2 in succ:
                    if setdefault(s2, n) == n:
                        add_state(s2)
                        add_parent(i)
                        add_via(k)
                        n += 1
                    k += 1
                i += 1
                if progress is not None and (i & 0x3FFF) == 0:
                    progress(i, len(states), depth)
                if max_states and len(states) >= max_states:
                    complete = False
                    break
        except KeyboardInterrupt:
            complete = False
            interrupted = True
        seconds = time.perf_counter() - start
        peak = 0
        if measure_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        # Most severe first: the property order of PROPERTIES (user-visible
        # register corruption first, exposure last), not discovery depth.
        order = {p.name: n for n, p in enumerate(self.properties)}
        found.sort(key=lambda v: order[v.prop.name])
        return Result(m.design.name, len(states), transitions, depth, seconds, complete, found, peak,
                      stopped_after_violation=stopped, expanded=i, interrupted=interrupted)

    def trace(self, v: Violation) -> list[tuple[Action, bytes]]:
        """The path from the initial state to the violating one, replayed."""
        chain = []
        j = v.state_index
        while j > 0:
            chain.append(j)
            j = self.parent[j]
        chain.reverse()
        path: list[tuple[Action, bytes]] = []
        prev = self.states[0]
        for j in chain:
            succ = successors(self.model, prev)
            k = self.via[j]
            if k >= len(succ) or succ[k][1] != self.states[j]:
                raise InternalError(
                    "replaying a counterexample diverged: the successor function returned a different "
                    "state for the same action. A design hook must be a pure function of the state "
                    "(no globals, no randomness, no iteration over sets)."
                )
            path.append((Action(*succ[k][0]), succ[k][1]))
            prev = succ[k][1]
        v.path = path
        return path


def check(model: Model, properties: Sequence[Property] = PROPERTIES, **kw) -> tuple[Result, Explorer]:
    ex = Explorer(model, properties)
    res = ex.run(**kw)
    for v in res.violations:
        ex.trace(v)
    return res, ex
