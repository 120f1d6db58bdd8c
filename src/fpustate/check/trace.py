"""Counterexamples printed like a kernel trace: one line per step.

Each line: step number, CPU, the task that acts (prev->next for switches),
its context, the kernel function(s) the step runs, and what changed:
registers, fpu_fpregs_owner_ctx, last_cpu, the design's load flag, PKRU, the
user program's view. The last lines name the violated property, its detail
and its docstring. A compact index path (`0/3/1/4`, Stateright style) follows,
which `fpustate check DESIGN --replay PATH` accepts.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..designs.base import _no_snapshot
from ..kernel import machine as M
from ..kernel.machine import Action, Model
from ..kernel.state import (
    CTX_NAMES,
    DEAD,
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
    """(actor, context, kernel function) for one action taken in state `before`."""
    d = m.design
    ks = decode(before)
    if a.code == M.PTRACE_SET:
        t, kind = divmod(a.arg, 3)
        what = {M.PTRACE_VALUES: "new register values", M.PTRACE_BOGUS: "a bogus xsave header (xcomp_bv != 0)",
                M.PTRACE_PKRU: "new register values and PKRU"}[kind]
        return "tracer", "task", f"PTRACE_SETREGSET({m.name(t)}): {_fn(d.xstateregs_set)}() with {what}"
    if a.code == M.PTRACE_GET:
        return "tracer", "task", f"PTRACE_GETREGSET({m.name(a.arg)}): {_fn(d.xstateregs_get)}()"
    if a.cpu == NULL:
        return "-", "-", f"try_to_wake_up({m.name(a.arg)})"
    cur = ks.cpus[a.cpu].curr
    who = m.name(cur)
    code = a.code
    if code == M.USER_WRITE:
        return who, "user", "writes its FPU registers"
    if code == M.WRPKRU:
        return who, "user", "WRPKRU: changes its protection keys"
    if code == M.NM_TRAP:
        return who, "user", f"#NM: {_fn(d.do_device_not_available)}() -> exit_to_user_mode_loop"
    if code == M.SYSCALL:
        return who, "user", "syscall entry"
    if code == M.SIGRETURN:
        frame = "ia32 FXSR frame" if a.arg == M.PATH_SIGRETURN_IA32 else "64-bit frame"
        return who, "user", f"rt_sigreturn() entry ({frame})"
    if code == M.SIGFRAME_CORRUPT:
        return who, "user", "overwrites its signal frame's xsave header"
    if code == M.FPU_SYNC:
        return who, "task", f"coredump/regset read of self: {_fn(d.fpu_sync_fpstate)}(), copy the image"
    snap = ""
    if d.exit_to_user_snapshot is not _no_snapshot:  # only stale-snapshot designs keep one
        t = ks.cpus[a.cpu].curr
        snap = f" (cached_flags: {d.flag_name}={d.exit_to_user_snapshot(before, a.cpu, t)})"
    if code == M.IRQ_FROM_USER:
        return who, "hardirq", "IRQ from user mode, work pending -> exit_to_user_mode_loop" + snap
    if code == M.HARDIRQ_KFPU_USER:
        return who, "hardirq", f"IRQ from user mode: {_fn(d.kernel_fpu_begin)}() .. {_fn(d.kernel_fpu_end)}() -> exit_to_user_mode_loop"
    if code == M.SOFTIRQ_KFPU_USER:
        return who, "softirq", f"IRQ from user mode, softirq: {_fn(d.kernel_fpu_begin)}()"
    if code == M.HARDIRQ_KFPU:
        return who, "hardirq", f"IRQ: {_fn(d.kernel_fpu_begin)}() .. {_fn(d.kernel_fpu_end)}()"
    if code == M.SOFTIRQ_KFPU_BEGIN:
        return who, "softirq", f"softirq: {_fn(d.kernel_fpu_begin)}()"
    if code == M.SOFTIRQ_KFPU_END:
        return who, "softirq", f"softirq: {_fn(d.kernel_fpu_end)}()"
    if code == M.KFPU_BEGIN:
        return who, "task", f"{_fn(d.kernel_fpu_begin)}()"
    if code == M.KFPU_END:
        return who, "task", f"{_fn(d.kernel_fpu_end)}()"
    if code == M.SYSCALL_EXIT:
        return who, "task", f"syscall exit, no work pending: {_fn(d.exit_to_user)}() -> user mode"
    if code == M.ENTER_EXIT_LOOP:
        return who, "task", "syscall exit, work pending -> exit_to_user_mode_loop" + snap
    if code == M.EXIT_TO_USER:
        kept = ""
        if snap:
            kept = f" (cached_flags: {d.flag_name}={ks.tasks[cur].local})"
        return who, "task", f"loop done, IRQs off: {_fn(d.exit_to_user)}(){kept} -> user mode"
    if code in (M.PREEMPT, M.SLEEP, M.TASK_DEAD):
        why = {M.PREEMPT: "preempted", M.SLEEP: "schedule() to sleep", M.TASK_DEAD: "do_task_dead()"}[code]
        return f"{who}->{m.name(a.arg)}", "task", f"{why}: __switch_to: {_fn(d.switch_fpu)}()"
    if code == M.FORK:
        return who, "task", f"fork: copy_process -> {_fn(d.fpu_clone)}() for child {m.name(a.arg)}"
    if code in M.PATH_ACTIONS:
        path = M.PATH_ACTIONS.index(code)
        step = a.arg % M.FAULTED
        fault = " -> page fault, retry" if a.arg >= M.FAULTED else ""
        label = ("exec", "signal delivery", "sigreturn", "sigreturn (ia32)", "exit")[path]
        name = M.path_steps(d, path)[step].name
        return who, "task", f"{label}: {name}{'()' if name.isidentifier() else ''}{fault}"
    return who, "?", code


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
    flag = m.design.flag_name
    for t, (x, y) in enumerate(zip(a.tasks, b.tasks)):
        n = m.name(t)
        if x.fpstate != y.fpstate:
            out.append(f"{n}.fpstate={m.value(y.fpstate)}")
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
    for t, (x, y) in enumerate(zip(a.ghost, b.ghost)):
        if x.value != y.value and b.tasks[t].run != DEAD:
            out.append(f"[{m.name(t)} expects {m.value(y.value)}]")
    return " ".join(out)


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


def replay(m: Model, index_path_text: str) -> list[tuple[Action, bytes]]:
    """Follow an index path (`1/10/11/3/2`) from the initial state."""
    from ..errors import UsageError
    from ..kernel.machine import initial_state, successors

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
