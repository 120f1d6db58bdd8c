"""Andy Lutomirski's FPU state classes (seed thread, Oct 2016), measured on a design.

For a live user task T, in the kernel's own bookkeeping:
- class 1: the CPU copy is valid (T runs with its registers live, or some CPU's
  copy passes fpregs_state_valid) and the memory image is stale;
- class 2a: both the CPU copy and the memory image are valid;
- class 2b: only the memory image is valid;
- "lost": neither (a state_survives violation).

"Valid" means the copy holds T's current state (the ghost value) *and* the
kernel would use it. `explain()` walks the whole reachable state space and
reports which classes occur for running and for not-running tasks, and every
class change, with the kernel functions whose steps cause it. (A user write
that lands in 2a is left out: with a finite value domain a write can wrap back
to the value in memory, which would show as a spurious 1 -> 2a. The real
write edge, 2a -> 1, is Rik's point in the thread: nothing marks it.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..kernel.context import fpregs_state_valid
from ..kernel.machine import USER_WRITE, Action, Model, successors
from ..kernel.properties import in_flux
from ..kernel.state import C_FPREGS, DEAD, G_VALUE, NULL, T_CPU, T_PC, T_RUN, cpu, ghost, task
from .explore import Explorer
from .trace import describe

CLASSES = ("1", "2a", "2b", "lost")
MEANING = {
    "1": "CPU copy valid, memory stale",
    "2a": "CPU copy and memory both valid",
    "2b": "memory valid, CPU holds something else",
    "lost": "neither copy valid (state lost)",
}


def task_class(m: Model, s: bytes, t: int) -> str | None:
    """Andy's class of user task t in state s, or None for dead tasks and tasks inside exit or
    sigreturn (whose state is being dropped or replaced by the frame's)."""
    p = task(s, t)
    if s[p + T_RUN] >= DEAD or in_flux(s[p + T_PC]):
        return None
    want = s[ghost(s, t) + G_VALUE]
    mem = m.design.fpstate_image(s, t) == want
    on = s[p + T_CPU]
    if on != NULL:
        cpu_ok = s[cpu(on) + C_FPREGS] == want and (m.design.regs_live(s, t, on) or fpregs_state_valid(s, t, on))
    else:
        cpu_ok = any(fpregs_state_valid(s, t, c) and s[cpu(c) + C_FPREGS] == want for c in range(m.scenario.cpus))
    if cpu_ok:
        return "2a" if mem else "1"
    return "2b" if mem else "lost"


@dataclass
class Explanation:
    design: str
    states: int
    complete: bool
    occupancy: dict[tuple[str, bool], int] = field(default_factory=dict)  # (class, running) -> task-states
    changes: Counter = field(default_factory=Counter)  # (from, to, running_after, function) -> count
    interrupted: bool = False  # Ctrl-C stopped the exploration (else incomplete means --max-states)


def _function(m: Model, a: tuple, before: bytes) -> str:
    _, _, fn = describe(m, Action(*a), before)
    return fn


def explain(m: Model, max_states: int = 0) -> Explanation:
    ex = Explorer(m, ())
    res = ex.run(max_states=max_states)
    out = Explanation(m.design.name, res.states, res.complete, interrupted=res.interrupted)
    occ: Counter = Counter()
    users = range(m.scenario.slots)
    for s in ex.states:
        before = {t: task_class(m, s, t) for t in users}
        for t, k in before.items():
            if k is not None:
                occ[(k, s[task(s, t) + T_CPU] != NULL)] += 1
        for a, s2 in successors(m, s):
            for t in users:
                k2 = task_class(m, s2, t)
                if a[0] == USER_WRITE and k2 == "2a":
                    continue  # only a wrap of the finite value domain makes a write "validate" memory
                if k2 is not None and before[t] is not None and k2 != before[t]:
                    running = s2[task(s2, t) + T_CPU] != NULL
                    out.changes[(before[t], k2, running, _function(m, a, s))] += 1
    out.occupancy = dict(occ)
    return out


def format_explanation(m: Model, e: Explanation) -> str:
    lines = [f"{e.design} ({m.design.kernel}): Andy Lutomirski's FPU state classes over "
             f"{e.states:,} states{'' if e.complete else ' (partial)'}",
             f"  {'class':<6} {'meaning':<42} {'running':>10} {'not running':>12}"]
    for k in CLASSES:
        run_n, idle_n = e.occupancy.get((k, True), 0), e.occupancy.get((k, False), 0)
        lines.append(f"  {k:<6} {MEANING[k]:<42} {_mark(run_n):>10} {_mark(idle_n):>12}")
    lines.append("  class changes (task running afterwards?) and the kernel functions that cause them:")
    by_edge: dict[tuple[str, str, bool], Counter] = {}
    for (a, b, running, fn), n in e.changes.items():
        by_edge.setdefault((a, b, running), Counter())[fn] += n
    for (a, b, running) in sorted(by_edge, key=lambda x: (CLASSES.index(x[0]), CLASSES.index(x[1]), not x[2])):
        fns = by_edge[(a, b, running)]
        top = ", ".join(f for f, _ in sorted(fns.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
        more = f" (+{len(fns) - 4} more)" if len(fns) > 4 else ""
        lines.append(f"    {a:>4} -> {b:<4} {'running' if running else 'not running':<12} {top}{more}")
    return "\n".join(lines)


def _mark(n: int) -> str:
    return f"{n:,}" if n else "-"
