"""Counterexample timelines as data: the steps of `check.trace.steps()` in CPU lanes, each with
the state that matters after it, and which of those values the step changed.

Per CPU: `current`, the registers and whose data they hold, `fpu_fpregs_owner_ctx`, PKRU (designs
with protection keys), CR0.TS and `in_kernel_fpu` (when the path ever sets them). Per task (every
slot but the idle tasks): where it is, `fpu->last_cpu`, the design's load flag (`TIF_NEED_FPU_LOAD`
in v6.18, `fpregs_active` in lazy v4.8, `fpu->initialized` in v4.19), the memory image, the saved
PKRU and, for user tasks, what the program believes its registers hold (the ghost).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..check.trace import Step, format_trace, steps
from ..kernel.machine import Model, initial_state
from ..kernel.state import GARBAGE, INIT, KERNEL, NULL, RUN_NAMES, USER, decode, pc_name, value_owner


class Cell(NamedTuple):
    label: str
    value: str
    changed: bool  # the step changed this value


class Row(NamedTuple):
    name: str  # cpu0, A, kworker0 ...
    cells: tuple[Cell, ...]


class StepView(NamedTuple):
    step: Step
    lane: int  # index into Timeline.lanes
    cpus: tuple[Row, ...]  # state after the step
    tasks: tuple[Row, ...]
    violation: Optional[str]  # the property this step violates (the last step)


class Timeline(NamedTuple):
    design: str
    kernel: str
    prop: str
    detail: str
    why: str  # the property's docstring: why it matters
    lanes: tuple[str, ...]  # cpu0, cpu1, ... and "no CPU" for wake-ups and tracers
    task_labels: tuple[str, ...]  # the task columns, in order
    steps: tuple[StepView, ...]
    text: str  # the same counterexample as `--trace` prints it
    index_path: str


def whose(v: int, m: Model) -> str:
    """Whose data a register or memory value is."""
    if v == INIT:
        return "init"
    if v == KERNEL:
        return "kernel's"
    if v == GARBAGE:
        return "half-written"
    return f"{m.name(value_owner(v))}'s"


def _flag(m: Model, t) -> int:
    """The design's load flag as its kernel names it (the field `changes()` reports for it)."""
    flag = m.design.flag_name
    if flag == "fpregs_active":
        return t.fpregs_active
    if flag == "fpu->initialized":
        return t.fpstate_active
    return t.need_load


def _cpu_rows(m: Model, s: bytes, extra: frozenset) -> list[tuple[str, list[tuple[str, str]]]]:
    ks = decode(s)
    rows = []
    for c, x in enumerate(ks.cpus):
        cells = [("current", m.name(x.curr)), ("regs", f"{m.value(x.fpregs)} ({whose(x.fpregs, m)})"),
                 ("fpu_fpregs_owner_ctx", m.owner(x.owner))]
        if m.design.has_pkru:
            cells.append(("PKRU", m.pkru(x.pkru)))
        if "ts" in extra:
            cells.append(("CR0.TS", str(x.ts)))
        if "in_kernel_fpu" in extra:
            cells.append(("in_kernel_fpu", str(x.in_kernel_fpu)))
        rows.append((f"cpu{c}", cells))
    return rows


def _task_rows(m: Model, s: bytes) -> list[tuple[str, list[tuple[str, str]]]]:
    ks = decode(s)
    rows = []
    for t, x in enumerate(ks.tasks[: m.idle_base]):
        where = RUN_NAMES[x.run] + ("" if x.cpu == NULL else f" on cpu{x.cpu}") + f" at {pc_name(x.pc)}"
        cells = [("state", where), ("last_cpu", str(-1 if x.last_cpu == NULL else x.last_cpu)),
                 (m.design.flag_name, str(_flag(m, x))), ("fpstate", m.value(x.fpstate))]
        if m.design.has_pkru:
            cells.append(("PKRU", m.pkru(x.pkru)))
        if x.kind == USER:
            cells.append(("program expects", m.value(ks.ghost[t].value)))
        rows.append((m.name(t), cells))
    return rows


def _diff(after: list, before: list) -> tuple[Row, ...]:
    out = []
    for (name, cells), (_, old) in zip(after, before):
        was = dict(old)
        out.append(Row(name, tuple(Cell(label, value, was.get(label) != value) for label, value in cells)))
    return tuple(out)


def timeline(m: Model, violation, index_path: str = "") -> Timeline:
    """The timeline of one traced violation (`Explorer.trace(v)` filled `v.path`)."""
    init = initial_state(m)
    recs = steps(m, violation.path, init)
    states = [init] + [st.after for st in recs]
    extra = frozenset(f for f in ("ts", "in_kernel_fpu") if any(getattr(c, f) for s in states for c in decode(s).cpus))
    ncpus = m.scenario.cpus
    lanes = tuple(f"cpu{c}" for c in range(ncpus))
    if any(st.cpu is None for st in recs):
        lanes += ("no CPU",)
    views = []
    for st in recs:
        last = st.n == len(recs)
        views.append(StepView(
            st, ncpus if st.cpu is None else st.cpu,
            _diff(_cpu_rows(m, st.after, extra), _cpu_rows(m, st.before, extra)),
            _diff(_task_rows(m, st.after), _task_rows(m, st.before)),
            violation.prop.name if last else None))
    labels = tuple(dict.fromkeys(c.label for v in views for row in v.tasks for c in row.cells))
    return Timeline(m.design.name, m.design.kernel, violation.prop.name, violation.detail, violation.prop.doc,
                    lanes, labels, tuple(views), format_trace(m, violation.path, init, violation), index_path)
