"""Counterexamples printed like a kernel trace: one line per step.

Each line: step number, CPU, the task that acts (prev->next for switches),
its context, the kernel function(s) the step runs, and what changed:
registers, fpu_fpregs_owner_ctx, last_cpu, the design's load flag, PKRU, the
user program's view. The last lines name the violated property, its detail
and its docstring. A compact index path (`0/3/1/4`, Stateright style) follows, prefixed by
the model's tag (`model_tag`), which `fpustate check DESIGN --replay PATH` accepts.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..kernel.machine import Action, Model
from ..kernel.state import (
    CTX_NAMES,
    DEAD,
    KVM_PCS,
    NULL,
    PC_EXIT_LOOP,
    RUN_NAMES,
    RUNNABLE,
    RUNNING,
    decode,
    pc_name,
)


def _fn(f) -> str:
    return getattr(f, "__name__", str(f))


def describe(m: Model, a: Action, before: bytes) -> tuple[str, str, str]:
    """(actor, context, kernel function) for one action taken in state `before`, as the
    action table (`kernel.actions`) prints it."""
    ev = m.table.by_code.get(a.code)
    if ev is None:
        return "-" if a.cpu == NULL else m.name(decode(before).cpus[a.cpu].curr), "?", a.code
    who, fn = ev.text(m, a, before)
    return who, ev.ctx, fn


def changes(m: Model, before: bytes, after: bytes) -> str:
    """What a step changed, in kernel terms."""
    a, b = decode(before), decode(after)
    out: list[str] = []
    for c, (x, y) in enumerate(zip(a.cpus, b.cpus)):
        if x.fpregs != y.fpregs:
            out.append(f"cpu{c}.regs={m.value(y.fpregs)}")
        if x.owner != y.owner:
            out.append(f"owner[cpu{c}]={m.owner(y.owner)}")
        if x.pkru != y.pkru:
            out.append(f"cpu{c}.PKRU={m.pkru(y.pkru)}")
        if x.ts != y.ts:
            out.append(f"cpu{c}.CR0.TS={y.ts}")
        if x.in_kernel_fpu != y.in_kernel_fpu:
            out.append(f"cpu{c}.in_kernel_fpu={y.in_kernel_fpu}")
        if x.xfd != y.xfd:
            out.append(f"cpu{c}.MSR_IA32_XFD={_xfd(y.xfd)}")
        if x.xfd_state != y.xfd_state:
            out.append(f"cpu{c}.xfd_state={_xfd(y.xfd_state)}")
    flag = m.design.flag_name
    for t, (x, y) in enumerate(zip(a.tasks, b.tasks)):
        n = m.name(t)
        out += _kvm_changes(m, n, x, y)
        if _host(x, "fpstate") != _host(y, "fpstate"):
            out.append(f"{n}.fpstate={m.value(_host(y, 'fpstate'))}")
        if x.last_cpu != y.last_cpu:
            out.append(f"{n}.last_cpu={-1 if y.last_cpu == NULL else y.last_cpu}")
        if x.need_load != y.need_load and flag not in ("fpregs_active", "fpu->initialized"):
            out.append(f"{n}.{flag}={y.need_load}")
        if x.fpregs_active != y.fpregs_active:
            out.append(f"{n}.fpregs_active={y.fpregs_active}")
        if x.fpstate_active != y.fpstate_active:
            out.append(f"{n}.{'initialized' if flag == 'fpu->initialized' else 'fpstate_active'}={y.fpstate_active}")
        if x.counter != y.counter:
            out.append(f"{n}.counter={y.counter}")
        if x.local != y.local and y.pc == PC_EXIT_LOOP:
            out.append(f"{n}.cached_flags={flag if y.local else 0}")
        if x.run != y.run and (x.run, y.run) not in ((RUNNING, RUNNABLE), (RUNNABLE, RUNNING)):
            out.append(f"{n} {RUN_NAMES[y.run]}")
        if x.pkru != y.pkru and m.design.has_pkru:
            out.append(f"{n}.pkru={m.pkru(y.pkru)}")
        for i, (f, g) in enumerate(zip((x.sigframe0, x.sigframe1), (y.sigframe0, y.sigframe1))):
            if f != g and i < max(x.sigdepth, y.sigdepth) + 1:
                out.append(f"{n}.sigframe{i}={m.value(g)}")
        if x.sigdepth != y.sigdepth:
            out.append(f"{n}.signal_frames={y.sigdepth}")
    if a.stale_read != b.stale_read:
        out.append(f"[the reader got {m.name(b.stale_read)}'s stale state]")
    if a.xfd_nm != b.xfd_nm:
        out.append(f"[XRSTOR of {m.name(b.xfd_nm)}'s tiles with XFD armed: #NM in the kernel]")
    for t, (x, y) in enumerate(zip(a.ghost, b.ghost)):
        xs, ys = a.tasks[t].pc in KVM_PCS, b.tasks[t].pc in KVM_PCS
        host = (x.swap_value if xs else x.value), (y.swap_value if ys else y.value)
        guest = (x.value if xs else x.swap_value), (y.value if ys else y.swap_value)
        if host[0] != host[1] and b.tasks[t].run < DEAD:
            out.append(f"[{m.name(t)} expects {m.value(host[1])}]")
        if guest[0] != guest[1] and b.tasks[t].run < DEAD:
            out.append(f"[{m.name(t)}'s guest expects {m.value(guest[1])}]")
    return " ".join(out)


def _xfd(v: int) -> str:
    return "XTILE_DATA" if v else "0"


def _host(x, field: str) -> int:
    """A task's own (host) fpstate field, wherever fpu->fpstate points (KVM swaps it)."""
    return getattr(x, "swap_" + field) if x.pc in KVM_PCS else getattr(x, field)


def _guest(x, field: str) -> int:
    return getattr(x, field) if x.pc in KVM_PCS else getattr(x, "swap_" + field)


def _kvm_changes(m: Model, n: str, x, y) -> list[str]:
    """The fpstate pointer swap, the guest's fpstate, and AMX/XFD fields of one task."""
    out = []
    if (x.pc in KVM_PCS) != (y.pc in KVM_PCS):
        out.append(f"{n}.fpu->fpstate={'guest_fpu.fpstate' if y.pc in KVM_PCS else '&fpu->__fpstate'}")
    if _guest(x, "fpstate") != _guest(y, "fpstate"):
        out.append(f"{n}.guest_fpstate={m.value(_guest(y, 'fpstate'))}")
    if _host(x, "xsize") != _host(y, "xsize"):
        out.append(f"{n}.fpstate->size={'large (AMX)' if _host(y, 'xsize') else 'default'}")
    if _host(x, "xfd") != _host(y, "xfd"):
        out.append(f"{n}.fpstate->xfd={_xfd(_host(y, 'xfd'))}")
    if x.xperm != y.xperm:
        out.append(f"{n}.perm+=XTILE_DATA")
    return out


class Step(NamedTuple):
    """One counterexample step as data: what the text trace prints, the JSON lists and the
    HTML timeline draws (`steps()` builds them with `describe()` and `changes()`)."""

    n: int  # 1-based
    action: Action
    cpu: Optional[int]  # None for actions not bound to a CPU (wake-ups)
    actor: str  # the task that acts (prev->next for switches)
    context: str  # user, task, softirq, hardirq or -
    function: str  # the kernel function(s) the step runs
    changes: str  # what changed, in kernel terms
    before: bytes
    after: bytes


def steps(m: Model, path: list[tuple[Action, bytes]], init: bytes) -> list[Step]:
    """The steps of a path from `init`, as records."""
    out = []
    prev = init
    for n, (a, s) in enumerate(path, 1):
        who, ctx, fn = describe(m, a, prev)
        out.append(Step(n, a, None if a.cpu == NULL else a.cpu, who, ctx, fn, changes(m, prev, s), prev, s))
        prev = s
    return out


def format_steps(m: Model, path: list[tuple[Action, bytes]], init: bytes) -> list[str]:
    """One line per step (plus a line of changes), kernel-trace style."""
    lines = [f"  {'#':>3}  {'cpu':<4}  {'task':<16} {'ctx':<8} kernel function / what changed"]
    for st in steps(m, path, init):
        cpu_s = "-" if st.cpu is None else f"cpu{st.cpu}"
        lines.append(f"  {st.n:>3}  {cpu_s:<4}  {st.actor:<16} {st.context:<8} {st.function}")
        if st.changes:
            lines.append(f"  {'':>3}  {'':<4}  {'':<16} {'':<8}   {st.changes}")
    return lines


def format_trace(m: Model, path: list[tuple[Action, bytes]], init: bytes, violation) -> str:
    """The whole counterexample as text."""
    lines = [f"{m.design.name}: {violation.prop.name} violated after {len(path)} steps "
             f"({m.design.kernel}; {m.scenario.describe()})"]
    lines += format_steps(m, path, init)
    lines.append(f"  violated: {violation.prop.name}: {violation.detail}")
    lines.append(f"  why it matters: {violation.prop.doc}")
    return "\n".join(lines)


def index_path(explorer, violation) -> str:
    """The compact action-index path of a counterexample, e.g. 0/3/1/4."""
    chain = []
    j = violation.state_index
    while j > 0:
        chain.append(explorer.via[j])
        j = explorer.parent[j]
    return "/".join(str(k) for k in reversed(chain))


def state_summary(m: Model, s: bytes) -> str:
    """A multi-line dump of one state (for --replay and debugging)."""
    ks = decode(s)
    lines = []
    for c, x in enumerate(ks.cpus):
        lines.append(f"cpu{c}: current={m.name(x.curr)} ctx={CTX_NAMES[x.ctx]} regs={m.value(x.fpregs)} "
                     f"owner={m.owner(x.owner)} PKRU={m.pkru(x.pkru)} preempt={x.preempt_count} bh={x.bh_count} "
                     f"in_kernel_fpu={x.in_kernel_fpu}" + (f" TS={x.ts}" if x.ts else ""))
    for t, x in enumerate(ks.tasks):
        g = ks.ghost[t]
        lines.append(f"{m.name(t)}: {RUN_NAMES[x.run]} at {pc_name(x.pc)} fpstate={m.value(x.fpstate)} "
                     f"last_cpu={-1 if x.last_cpu == NULL else x.last_cpu} {m.design.flag_name}={x.need_load} "
                     f"expects={m.value(g.value)}")
    return "\n".join(lines)


def model_tag(m: Model) -> str:
    """Six hex digits naming the design and the scenario (every field that differs from its
    default, so a knob added later leaves older tags alone): printed before an index path
    (`3f9c2a:1/10/11/3/2`), so that `--replay` refuses a path recorded on another design or
    scenario instead of silently following other actions."""
    import hashlib
    from dataclasses import fields

    sc = m.scenario
    text = "|".join([m.design.name, m.design.kernel] + [f"{f.name}={getattr(sc, f.name)!r}" for f in fields(sc)
                                                        if getattr(sc, f.name) != f.default])
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def replay(m: Model, index_path_text: str) -> list[tuple[Action, bytes]]:
    """Follow an index path (`1/10/11/3/2`, or `TAG:1/10/11/3/2` as printed, whose TAG must
    be this design's and scenario's model_tag) from the initial state."""
    from ..errors import UsageError
    from ..kernel.machine import initial_state, successors

    tag, sep, rest = index_path_text.strip().rpartition(":")
    if sep:
        if tag != model_tag(m):
            raise UsageError(f"--replay: path {index_path_text.strip()} was recorded on another design or scenario "
                             f"(this run is {model_tag(m)}: {m.design.name}; {m.scenario.describe()}); "
                             "give the DESIGN and scenario flags it was printed with")
        index_path_text = rest
    s = initial_state(m)
    path: list[tuple[Action, bytes]] = []
    parts = [p for p in index_path_text.strip().split("/") if p != ""]
    for n, part in enumerate(parts, 1):
        if not part.isdigit():
            raise UsageError(f"--replay: step {n} is {part!r}, expected a whole number (a path looks like 1/10/11/3)")
        succ = successors(m, s)
        k = int(part)
        if k >= len(succ):
            raise UsageError(f"--replay: step {n} asks for action {k}, but only {len(succ)} are enabled there "
                             f"(was the path made with the same design and scenario?)")
        a, s = succ[k]
        path.append((Action(*a), s))
    return path
