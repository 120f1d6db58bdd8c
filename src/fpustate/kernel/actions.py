"""The action table: every kernel or user event the model knows, in one place.

One `Event` per event: its code (what traces and index paths name), the
context it runs in, where it is enabled (the situations of a CPU: the pc of
its current task, or a softirq on top of it; or GLOBAL for events not bound
to a CPU), its outcomes there (`outcomes`, the rest of the enabling test),
the effect of one outcome (`apply`, in `kernel.effects`) and the text the
trace printer shows.

Both engines read it: `machine.successors()` builds every outcome of every
enabled event in a private copy; the cost simulator applies the one outcome its
trace shows to its own vector (`apply_action`). `check.trace` prints from it; a
design adds events of its own (`Design.extra_events`) with the same shape.
Adding an event = one entry here (or in the design) + its hooks.

Where interrupts arrive is not a property of an entry but of the CPU state
the entries leave behind: a hardirq may act wherever a CPU runs kernel code
(IRQ-off regions never span two steps), a softirq wherever BH is enabled in
task context, the scheduler wherever preempt_count and the BH count are 0.
The IRQ-off events (context switch, the exit-to-user tail, hardirq
handlers) are single steps.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional


from .state import (
    C_CTX,
    C_CURR,
    CPU_W,
    CTX_SOFTIRQ_KFPU,
    HEADER,
    NULL,
    PATH_BASE,
    PATH_NAMES,
    PATH_SIGRETURN_IA32,
    PATH_STRIDE,
    PC_EXIT_LOOP,
    PC_GUEST,
    PC_KVM_RUN,
    PC_OFFLINE,
    PC_XFD_NM,
    PC_KTHREAD,
    PC_KTHREAD_KFPU,
    PC_SYSCALL,
    PC_SYSCALL_KFPU,
    PC_USER,
    T_LOCAL,
    T_PC,
    TASK_W,
)
from . import machine as M
from . import paths
from . import effects as E
from . import effects_task as T

GLOBAL = "global"  # an event not bound to a CPU (wake-ups, a tracer on another CPU)
SOFTIRQ = M.SOFTIRQ_SITUATION  # the situation of a CPU whose softirq is inside its kernel-FPU section
KERNEL_PCS = (PC_SYSCALL, PC_SYSCALL_KFPU, PC_EXIT_LOOP, PC_KTHREAD, PC_KTHREAD_KFPU, PC_KVM_RUN, PC_XFD_NM)
PATH_PCS = tuple(range(PATH_BASE, PATH_BASE + len(PATH_NAMES) * PATH_STRIDE))
ANY_KERNEL = KERNEL_PCS + PATH_PCS  # every pc of task context in the kernel


class Event(NamedTuple):
    """One kernel or user event of the action table.

    `outcomes(m, s, c, t)` runs with CPU c's current task t (both NULL for a
    GLOBAL event); it tests what `at` does not say and returns the `(code, arg)`
    of every outcome, in order. `apply(m, k, c, t, code, arg)` is one outcome's
    effect on a working copy k equal to s, in place (`kernel.effects`). An entry
    with neither is the printer's text for a code another entry's outcomes carry
    (`also`). `text(m, a, s)` returns (actor, kernel function) for the trace
    printer, given the action and the state before it."""

    code: str
    ctx: str  # "user", "task", "softirq", "hardirq", "tracer" or "-", as traces print it
    at: tuple  # situations where it may be enabled: pcs, SOFTIRQ, or GLOBAL alone
    outcomes: Optional[Callable]
    apply: Optional[Callable]
    text: Callable
    also: tuple = ()  # codes besides `code` its outcomes may carry (a #NM instead of the write)
    # enabled(m, s, c, t, code, arg): whether (code, arg) is among the outcomes, without listing
    # them (a scheduler event's are O(tasks)); None: look it up in outcomes()
    enabled: Optional[Callable] = None


def _fn(f) -> str:
    return getattr(f, "__name__", str(f))


def _snap(m, c: int, t: int, s) -> str:
    d = m.design
    if not d.stale_snapshot:
        return ""
    return f" (cached_flags: {d.flag_name}={d.exit_to_user_snapshot(s, c, t)})"


# ---------------------------------------------------------------- trace texts
def _who(m, a, s) -> str:
    return m.name(s[HEADER + a.cpu * CPU_W + C_CURR])


def _text(fixed: str):
    return lambda m, a, s: (_who(m, a, s), fixed)


def switch_text(why: str):
    return lambda m, a, s: (f"{_who(m, a, s)}->{m.name(a.arg)}",
                             f"{why}: __switch_to: {_fn(m.design.switch_fpu)}()")


def _ptrace_text(m, a, s):
    d = m.design
    if a.code == M.PTRACE_GET:
        return "tracer", f"PTRACE_GETREGSET({m.name(a.arg)}): {_fn(d.xstateregs_get)}()"
    u, kind = divmod(a.arg, M.PTRACE_KINDS)
    what = {M.PTRACE_VALUES: "new register values", M.PTRACE_BOGUS: "a bogus xsave header (xcomp_bv != 0)",
            M.PTRACE_PKRU: "new register values and PKRU",
            M.PTRACE_PKRU_INIT: "new register values, XSTATE_BV[PKRU] clear"}[kind]
    return "tracer", f"PTRACE_SETREGSET({m.name(u)}): {_fn(d.xstateregs_set)}() with {what}"


def _path_text(m, a, s):
    path = M.PATH_ACTIONS.index(a.code)
    step, choice = a.arg % M.FAULTED, a.arg // M.FAULTED
    st = paths.path_steps(m.design, path)[step]
    label = ("exec", "signal delivery", "sigreturn", "sigreturn (ia32)", "fork", "exit")[path]
    paren = "()" if st.name.isidentifier() else ""
    return _who(m, a, s), f"{label}: {st.name}{paren}{st.outcome_text(st.choices()[choice] if st.choices() else 0)}"


def _fork_text(m, a, s):
    st = m.design.fork_steps[0]
    paren = "()" if st.name.isidentifier() else ""
    return _who(m, a, s), f"fork: copy_process({m.name(a.arg % M.FORK_OUTCOME)}) -> {st.name}{paren}"


def _exit_to_user_text(m, a, s):
    d, cur = m.design, s[HEADER + a.cpu * CPU_W + C_CURR]
    kept = f" (cached_flags: {d.flag_name}={s[s[0] + cur * TASK_W + T_LOCAL]})" if d.stale_snapshot else ""
    return m.name(cur), f"loop done, IRQs off: {_fn(d.exit_to_user)}(){kept} -> user mode"


def _begin(m):
    return _fn(m.design.kernel_fpu_begin)


def _end(m):
    return _fn(m.design.kernel_fpu_end)


KFPU_PCS = (PC_SYSCALL_KFPU, PC_KTHREAD_KFPU)
USER_PCS = (PC_USER,)

EVENTS: tuple[Event, ...] = (
    # A softirq inside its kernel-FPU section: a hardirq may still arrive, then it ends.
    Event(M.HARDIRQ_KFPU, "hardirq", (SOFTIRQ,) + ANY_KERNEL, E.hardirq_kfpu_outcomes, E.hardirq_kfpu,
          lambda m, a, s: (_who(m, a, s), f"IRQ: {_begin(m)}() .. {_end(m)}()")),
    Event(M.SOFTIRQ_KFPU_END, "softirq", (SOFTIRQ,), E.once(M.SOFTIRQ_KFPU_END), E.softirq_kfpu_end,
          lambda m, a, s: (_who(m, a, s), f"softirq: {_end(m)}()")),
    # User mode.
    Event(M.USER_WRITE, "user", USER_PCS, E.user_write_outcomes, E.user_write, _text("writes its FPU registers"),
          (M.NM_TRAP,)),
    Event(M.NM_TRAP, "user", (), None, None,  # user_write's when CR0.TS is set
          lambda m, a, s: (_who(m, a, s), f"#NM: {_fn(m.design.do_device_not_available)}() -> exit_to_user_mode_loop")),
    Event(M.WRPKRU, "user", USER_PCS, E.wrpkru_outcomes, E.wrpkru,
          lambda m, a, s: (_who(m, a, s), "WRPKRU(0): all keys enabled, PKRU in its init state" if a.arg
                            else "WRPKRU: changes its protection keys")),
    Event(M.XRSTOR_USER, "user", USER_PCS, E.xrstor_user_outcomes, E.xrstor_user,
          lambda m, a, s: (_who(m, a, s), "XRSTOR from its own memory, XSTATE_BV["
                            + ("PKRU" if a.arg == M.XRSTOR_PKRU_INIT else "FP/SSE") + "] clear")),
    Event(M.SIGRETURN, "user", USER_PCS, E.sigreturn_outcomes, E.sigreturn,
          lambda m, a, s: (_who(m, a, s), "rt_sigreturn() entry ("
                            + ("ia32 FXSR frame" if a.arg == PATH_SIGRETURN_IA32 else "64-bit frame") + ")")),
    Event(M.SIGFRAME_CORRUPT, "user", USER_PCS, E.sigframe_corrupt_outcomes, E.sigframe_corrupt, _text("overwrites its signal frame's xsave header")),
    Event(M.SYSCALL, "user", USER_PCS, E.once(M.SYSCALL), E.syscall, _text("syscall entry")),
    Event(M.IRQ_FROM_USER, "hardirq", USER_PCS, E.once(M.IRQ_FROM_USER), E.irq_from_user,
          lambda m, a, s: (_who(m, a, s), "IRQ from user mode, work pending -> exit_to_user_mode_loop"
                            + _snap(m, a.cpu, s[HEADER + a.cpu * CPU_W + C_CURR], s))),
    Event(M.HARDIRQ_KFPU_USER, "hardirq", USER_PCS, E.hardirq_kfpu_user_outcomes, E.hardirq_kfpu_user,
          lambda m, a, s: (_who(m, a, s), f"IRQ from user mode: {_begin(m)}() .. {_end(m)}() -> exit_to_user_mode_loop")),
    Event(M.SOFTIRQ_KFPU_USER, "softirq", USER_PCS, E.softirq_kfpu_user_outcomes, E.softirq_kfpu_user,
          lambda m, a, s: (_who(m, a, s), f"IRQ from user mode, softirq: {_begin(m)}()")),
    # Kernel, task context: interrupts first (HARDIRQ_KFPU above), then the task's own code.
    Event(M.SOFTIRQ_KFPU_BEGIN, "softirq", ANY_KERNEL, E.softirq_kfpu_begin_outcomes, E.softirq_kfpu_begin,
          lambda m, a, s: (_who(m, a, s), f"softirq: {_begin(m)}()")),
    Event(M.FPU_SYNC, "task", (PC_SYSCALL,), T.fpu_sync_outcomes, T.fpu_sync,
          lambda m, a, s: (_who(m, a, s), f"coredump/regset read of self: {_fn(m.design.fpu_sync_fpstate)}(), copy the image")),
    Event(M.KFPU_BEGIN, "task", (PC_SYSCALL, PC_KTHREAD), T.kfpu_begin_outcomes, T.kfpu_begin, lambda m, a, s: (_who(m, a, s), f"{_begin(m)}()")),
    Event(M.SLEEP, "task", (PC_SYSCALL, PC_KTHREAD), T.sleep_outcomes, T.sleep, switch_text("schedule() to sleep"),
          enabled=T.sleep_enabled),
    Event(M.FORK, "task", (PC_SYSCALL,), T.fork_outcomes, T.fork, _fork_text),
    Event(M.EXEC_STEP, "task", (PC_SYSCALL,), T.execve_outcomes, T.path_entry, _path_text),
    Event(M.EXIT_STEP, "task", (PC_SYSCALL,), T.do_exit_outcomes, T.path_entry, _path_text),
    Event(M.SYSCALL_EXIT, "task", (PC_SYSCALL,), E.once(M.SYSCALL_EXIT), T.syscall_exit,
          lambda m, a, s: (_who(m, a, s), f"syscall exit, no work pending: {_fn(m.design.exit_to_user)}() -> user mode")),
    Event(M.ENTER_EXIT_LOOP, "task", (PC_SYSCALL,), E.once(M.ENTER_EXIT_LOOP), T.enter_exit_loop,
          lambda m, a, s: (_who(m, a, s), "syscall exit, work pending -> exit_to_user_mode_loop"
                            + _snap(m, a.cpu, s[HEADER + a.cpu * CPU_W + C_CURR], s))),
    Event(M.KFPU_END, "task", KFPU_PCS, E.once(M.KFPU_END), T.kfpu_end, lambda m, a, s: (_who(m, a, s), f"{_end(m)}()")),
    Event(M.SIGNAL_STEP, "task", (PC_EXIT_LOOP,), T.signal_outcomes, T.path_entry, _path_text),
    Event(M.EXIT_TO_USER, "task", (PC_EXIT_LOOP,), E.once(M.EXIT_TO_USER), T.exit_to_user, _exit_to_user_text),
    Event("path_step", "task", PATH_PCS, T.path_step_outcomes, T.path_step, _path_text,
          M.PATH_ACTIONS + (M.TASK_DEAD,), T.path_step_enabled),
    Event(M.TASK_DEAD, "task", (), None, None, switch_text("do_task_dead()")),  # path_step's past exit's end
    Event(M.PREEMPT, "task", ANY_KERNEL, T.preempt_outcomes, T.preempt, switch_text("preempted"),
          enabled=T.preempt_enabled),
    # Not bound to a CPU.
    Event(M.WAKE, "-", (GLOBAL,), T.wake_outcomes, T.wake, lambda m, a, s: ("-", f"try_to_wake_up({m.name(a.arg)})"),
          enabled=T.wake_enabled),
    Event(M.PTRACE_SET, "tracer", (GLOBAL,), T.ptrace_outcomes, T.ptrace, _ptrace_text, (M.PTRACE_GET,)),
    Event(M.PTRACE_GET, "tracer", (), None, None, _ptrace_text),  # ptrace's, when the read is stale
)

# Path steps keep one code per path (index paths and tests name them); they print alike.
_PATH_EVENTS = tuple(Event(code, "task", (), None, None, _path_text) for code in M.PATH_ACTIONS
                     if code not in (M.EXEC_STEP, M.EXIT_STEP, M.SIGNAL_STEP))


# ---------------------------------------------------------------- a design's own events
SITUATIONS = {
    "user": USER_PCS,  # the current task runs in user mode
    "syscall": (PC_SYSCALL,),  # inside a syscall body, preemptible
    "kthread": (PC_KTHREAD,),  # a kernel thread's or the idle task's body
    "exit_loop": (PC_EXIT_LOOP,),  # in exit_to_user_mode_loop(), IRQs and preemption on
    "kernel": ANY_KERNEL,  # any task-context kernel code (as a hardirq would arrive)
    "global": (GLOBAL,),  # not bound to a CPU
}


def design_event(code: str, ctx: str, where: str, enabled: Callable, effect: Callable, text: str,
                 outcomes: tuple[str, ...] = ()) -> Event:
    """An event a design adds to the action table (`Design.extra_events`).

    `where` is one of SITUATIONS; `enabled(state, cpu, task)` says whether it may fire
    there (cpu and task are NULL for "global"); `effect(k, cpu, task)` edits the working
    copy, or `effect(k, cpu, task, outcome)` with `outcomes` naming a nondeterministic
    choice (one successor per outcome). `text` is the kernel function the trace prints."""
    at = SITUATIONS[where]
    all_outcomes = tuple((code, i) for i in range(len(outcomes) or 1))

    def when(m, s, c, t):
        return all_outcomes if enabled(s, c, t) else ()

    def apply(m, k, c, t, code, arg):
        if outcomes:
            effect(k, c, t, arg)
        else:
            effect(k, c, t)

    def describe(m, a, s):
        actor = "-" if a.cpu == NULL else m.name(s[HEADER + a.cpu * CPU_W + C_CURR])
        return actor, text + (f" -> {outcomes[a.arg]}" if outcomes else "")

    when.__name__ = apply.__name__ = describe.__name__ = code
    return Event(code, ctx, at, when, apply, describe)


from .actions_kvm import KVM_EVENTS  # noqa: E402  (they are Events: defined above)

EVENTS = EVENTS + KVM_EVENTS
KERNEL_CODES = frozenset(e.code for e in EVENTS + _PATH_EVENTS) | {M.SCHED_SWITCH}  # taken: no design may reuse one


class Table(NamedTuple):
    """The action table of one model: per situation the events to fire, in order."""

    at: dict  # situation (pc or SOFTIRQ) -> tuple of (outcomes, apply) of its events, in order
    global_at: tuple  # the same for the events not bound to a CPU
    by_code: dict  # code -> Event, for the trace printer
    owner: dict  # code -> situation -> (enabled test, apply) of the event whose outcomes carry that code there


SITUATIONS_ALL = (SOFTIRQ, PC_USER, PC_GUEST, PC_OFFLINE) + ANY_KERNEL


def _listed(outcomes: Callable) -> Callable:
    """An event's one-action test from its outcome list."""
    def enabled(m, s, c, t, code, arg):
        return (code, arg) in outcomes(m, s, c, t)
    return enabled


@functools.lru_cache(maxsize=32)
def build_table(extra: tuple = ()) -> Table:
    """The kernel's events followed by a design's own, dispatched by situation (built once per
    set of extra events: the owner map alone is ~100 KiB, and every replay of a design asks)."""
    events = tuple(e for e in EVENTS + tuple(extra) if e.outcomes is not None)
    at = {w: tuple((e.outcomes, e.apply) for e in events if w in e.at) for w in SITUATIONS_ALL}
    glob = tuple((e.outcomes, e.apply) for e in events if GLOBAL in e.at)
    by_code = {e.code: e for e in _PATH_EVENTS + EVENTS + tuple(extra)}
    owner: dict = {}
    for e in events:
        entry = (e.enabled or _listed(e.outcomes), e.apply)
        for code in (e.code,) + e.also:
            for w in e.at:
                owner.setdefault(code, {}).setdefault(w, entry)
    return Table(at, glob, by_code, owner)


KERNEL_TABLE = build_table()


def apply_action(m, k: bytearray, code: str, c: int, arg: int = 0) -> bool:
    """Apply one action in place to the working copy k if the table enables it there: the
    cost simulator's way into the machine (its k carries the tracepoint probe, so only the
    outcome its trace shows is counted). c is NULL for an event not bound to a CPU. Returns
    False, k untouched, when the action is not enabled in k."""
    owners = m.table.owner.get(code)
    if owners is None:
        return False
    if c == NULL:
        t = NULL
        entry = owners.get(GLOBAL)
    else:
        q = HEADER + c * CPU_W
        t = k[q + C_CURR]
        entry = owners.get(SOFTIRQ if k[q + C_CTX] == CTX_SOFTIRQ_KFPU else k[k[0] + t * TASK_W + T_PC])
    if entry is None:
        return False
    enabled, apply = entry
    if not enabled(m, k, c, t, code, arg):
        return False
    apply(m, k, c, t, code, arg)
    return True
