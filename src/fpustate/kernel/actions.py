"""The action table: every kernel or user event the model knows, in one place.

One `Event` per event: its code (what traces and index paths name), the
context it runs in, where it is enabled (the situations of a CPU: the pc of
its current task, or a softirq on top of it; or GLOBAL for events not bound
to a CPU), its effect (`fire`, which checks the rest of the enabling test and
appends one successor per outcome) and the text the trace printer shows.

`machine.successors()` is a loop over this table; `check.trace` prints from
it; a design adds events of its own (`Design.extra_events`) with the same
shape. Adding an event = one entry here (or in the design) + its hooks.

Where interrupts arrive is not a property of an entry but of the CPU state
the entries leave behind: a hardirq may act wherever a CPU runs kernel code
(IRQ-off regions never span two steps), a softirq wherever BH is enabled in
task context, the scheduler wherever preempt_count and the BH count are 0.
The IRQ-off events (context switch, the exit-to-user tail, hardirq
handlers) are single steps.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .design import K_HARDIRQ, K_SOFTIRQ, K_TASK
from .state import (
    C_BH,
    C_CTX,
    C_CURR,
    C_PREEMPT,
    CPU_W,
    CTX_SOFTIRQ_KFPU,
    CTX_TASK,
    G_PKRU,
    G_VALUE,
    GARBAGE,
    HDR_BAD,
    H_EXECS,
    H_EXITS,
    H_FORKS,
    H_PTRACE,
    H_STALE_READ,
    HEADER,
    IDLE,
    MAX_SIGFRAMES,
    NULL,
    PATH_BASE,
    PATH_EXEC,
    PATH_EXIT,
    PATH_NAMES,
    PATH_SIGNAL,
    PATH_SIGRETURN,
    PATH_SIGRETURN_IA32,
    PATH_STRIDE,
    PC_EXIT_LOOP,
    PC_GUEST,
    PC_IRQ_FROM_USER,
    PC_KVM_RUN,
    PC_OFFLINE,
    PC_XFD_NM,
    PC_KTHREAD,
    PC_KTHREAD_KFPU,
    PC_SYSCALL,
    PC_SYSCALL_KFPU,
    PC_USER,
    PKRU_HW_INIT,
    RUNNABLE,
    SLEEPING,
    T_KIND,
    T_LOCAL,
    T_PC,
    T_RUN,
    T_SIGDEPTH,
    T_SIGFRAME_HDR,
    TASK_W,
    USER,
    ghost,
    path_pc,
    pc_path,
    pc_step,
    pkru_of,
    pkru_owner,
    pkru_version,
)
from . import machine as M

GLOBAL = "global"  # an event not bound to a CPU (wake-ups, a tracer on another CPU)
SOFTIRQ = -1  # the situation of a CPU whose softirq is inside its kernel-FPU section
KERNEL_PCS = (PC_SYSCALL, PC_SYSCALL_KFPU, PC_EXIT_LOOP, PC_KTHREAD, PC_KTHREAD_KFPU, PC_KVM_RUN, PC_XFD_NM)
PATH_PCS = tuple(range(PATH_BASE, PATH_BASE + len(PATH_NAMES) * PATH_STRIDE))
ANY_KERNEL = KERNEL_PCS + PATH_PCS  # every pc of task context in the kernel


class Event(NamedTuple):
    """One kernel or user event of the action table.

    `fire(m, s, c, t, out)` runs with CPU c's current task t (both NULL for a
    GLOBAL event); it tests what `at` does not say and appends
    `((code, c, arg), successor_bytes)` for every outcome. `text(m, a, s)`
    returns (actor, kernel function) for the trace printer, given the action
    and the state before it."""

    code: str
    ctx: str  # "user", "task", "softirq", "hardirq", "tracer" or "-", as traces print it
    at: tuple  # situations where it may be enabled: pcs, SOFTIRQ, or GLOBAL alone
    fire: Callable
    text: Callable


def _fn(f) -> str:
    return getattr(f, "__name__", str(f))


def _snap(m, c: int, t: int, s) -> str:
    d = m.design
    if not d.stale_snapshot:
        return ""
    return f" (cached_flags: {d.flag_name}={d.exit_to_user_snapshot(s, c, t)})"


# ---------------------------------------------------------------- interrupts
def hardirq_kfpu(m, s, c, t, out):
    """A hardirq handler's kernel_fpu_begin() .. kernel_fpu_end(), IRQs off (one step)."""
    if m.scenario.kfpu_hardirq and m.design.irq_fpu_usable(s, c, K_HARDIRQ, False):
        k = bytearray(s)
        M.hardirq_kfpu(m.design, k, c)
        out.append(((M.HARDIRQ_KFPU, c, 0), bytes(k)))


def softirq_kfpu_end(m, s, c, t, out):
    """The softirq's kernel_fpu_end(); back to task context (or, from user mode, the exit path)."""
    k = bytearray(s)
    m.design.kernel_fpu_end(k, c, K_SOFTIRQ)
    k[HEADER + c * CPU_W + C_CTX] = CTX_TASK
    if s[s[0] + t * TASK_W + T_PC] == PC_IRQ_FROM_USER:
        M.enter_exit_loop(m, k, c, t)
    out.append(((M.SOFTIRQ_KFPU_END, c, 0), bytes(k)))


def softirq_kfpu_begin(m, s, c, t, out):
    """A softirq at IRQ exit or local_bh_enable() (BH enabled) enters kernel_fpu_begin()."""
    q = HEADER + c * CPU_W
    if m.scenario.kfpu_softirq and s[q + C_BH] == 0 and m.design.irq_fpu_usable(s, c, K_SOFTIRQ, False):
        k = bytearray(s)
        k[q + C_CTX] = CTX_SOFTIRQ_KFPU
        m.design.kernel_fpu_begin(k, c, K_SOFTIRQ)
        out.append(((M.SOFTIRQ_KFPU_BEGIN, c, 0), bytes(k)))


# ---------------------------------------------------------------- user mode
def user_write(m, s, c, t, out):
    """The program writes its FPU registers; with CR0.TS set the first access traps (#NM)."""
    d = m.design
    q = HEADER + c * CPU_W
    if d.user_fpu_accessible(s, c):
        k = bytearray(s)
        g = ghost(k, t)
        v = M.next_user_value(m, t, k[g + G_VALUE])
        k[q] = k[g + G_VALUE] = v  # C_FPREGS is field 0 of the CPU record
        out.append(((M.USER_WRITE, c, 0), bytes(k)))
    elif d.do_device_not_available is not None:
        k = bytearray(s)
        d.do_device_not_available(k, c, t)
        M.enter_exit_loop(m, k, c, t)
        out.append(((M.NM_TRAP, c, 0), bytes(k)))


def wrpkru(m, s, c, t, out):
    """User WRPKRU: the program changes its protection keys (no kernel involvement): to its own
    keys (arg 0; --pkru-writes) or to 0, PKRU's init state (arg 1; --user-xstate)."""
    if not m.design.has_pkru:
        return
    g = ghost(s, t)
    old = s[g + G_PKRU]
    news = []
    if m.scenario.pkru_writes:
        news.append((0, pkru_of(t, 1 - pkru_version(old)) if pkru_owner(old) == t else pkru_of(t)))
    if m.scenario.user_xstate and old != PKRU_HW_INIT:
        news.append((1, PKRU_HW_INIT))
    for arg, new in news:
        k = bytearray(s)
        k[HEADER + c * CPU_W + 2] = k[g + G_PKRU] = new  # C_PKRU
        out.append(((M.WRPKRU, c, arg), bytes(k)))


def xrstor_user(m, s, c, t, out):
    """The program XRSTORs from its own memory with one XSTATE_BV bit clear (--user-xstate):
    FP/SSE clear loads their init values (PKRU from the buffer: its current keys), or PKRU
    clear loads PKRU's hardware init value 0 (FP/SSE from the buffer: new data). A header
    XRSTOR rejects raises #GP in user mode and loads nothing (SIGSEGV; not modelled)."""
    d = m.design
    if not (m.scenario.user_xstate and d.user_fpu_accessible(s, c)):
        return
    q = HEADER + c * CPU_W
    g = ghost(s, t)
    for arg in (M.XRSTOR_FPSSE_INIT, M.XRSTOR_PKRU_INIT)[:2 if d.has_pkru else 1]:
        k = bytearray(s)
        if arg == M.XRSTOR_FPSSE_INIT:
            k[q] = k[g + G_VALUE] = M.INIT  # C_FPREGS
        else:
            k[q] = k[g + G_VALUE] = M.next_user_value(m, t, s[g + G_VALUE])
            k[q + 2] = k[g + G_PKRU] = PKRU_HW_INIT  # C_PKRU
        out.append(((M.XRSTOR_USER, c, arg), bytes(k)))


def sigreturn(m, s, c, t, out):
    """rt_sigreturn() entry by the 64-bit or the ia32 frame path: preemptible until the lock."""
    p = s[0] + t * TASK_W
    if s[p + T_SIGDEPTH]:
        for path in (PATH_SIGRETURN, PATH_SIGRETURN_IA32):
            k = bytearray(s)
            k[p + T_PC] = path_pc(path, 0)
            out.append(((M.SIGRETURN, c, path), bytes(k)))


def sigframe_corrupt(m, s, c, t, out):
    """The program scribbles over its top signal frame's xsave header (a nonzero XCOMP_BV or
    reserved bytes): the data stay, the header is one XRSTOR rejects. The ghost marks the frame."""
    p = s[0] + t * TASK_W
    depth = s[p + T_SIGDEPTH]
    if depth and m.scenario.corrupt_frames and not s[p + T_SIGFRAME_HDR + depth - 1] & HDR_BAD:
        k = bytearray(s)
        k[p + T_SIGFRAME_HDR + depth - 1] |= HDR_BAD
        k[ghost(k, t) + M.G_FRAME + depth - 1] = GARBAGE
        out.append(((M.SIGFRAME_CORRUPT, c, 0), bytes(k)))


def syscall(m, s, c, t, out):
    k = bytearray(s)
    k[k[0] + t * TASK_W + T_PC] = PC_SYSCALL
    out.append(((M.SYSCALL, c, 0), bytes(k)))


def irq_from_user(m, s, c, t, out):
    """An interrupt from user mode with work pending: the exit path takes its flags snapshot."""
    k = bytearray(s)
    p = k[0] + t * TASK_W
    k[p + T_LOCAL], k[p + T_PC] = m.design.exit_to_user_snapshot(s, c, t), PC_EXIT_LOOP
    out.append(((M.IRQ_FROM_USER, c, 0), bytes(k)))


def hardirq_kfpu_user(m, s, c, t, out):
    """A hardirq from user mode uses the FPU, then the task leaves through the exit path."""
    d = m.design
    if m.scenario.kfpu_hardirq and d.irq_fpu_usable(s, c, K_HARDIRQ, True):
        k = bytearray(s)
        M.hardirq_kfpu(d, k, c)
        p = k[0] + t * TASK_W
        k[p + T_LOCAL], k[p + T_PC] = d.exit_to_user_snapshot(k, c, t), PC_EXIT_LOOP
        out.append(((M.HARDIRQ_KFPU_USER, c, 0), bytes(k)))


def softirq_kfpu_user(m, s, c, t, out):
    """The softirq run at exit from an IRQ taken in user mode enters kernel_fpu_begin()."""
    d = m.design
    if m.scenario.kfpu_softirq and d.irq_fpu_usable(s, c, K_SOFTIRQ, True):
        k = bytearray(s)
        k[k[0] + t * TASK_W + T_PC] = PC_IRQ_FROM_USER
        k[HEADER + c * CPU_W + C_CTX] = CTX_SOFTIRQ_KFPU
        d.kernel_fpu_begin(k, c, K_SOFTIRQ)
        out.append(((M.SOFTIRQ_KFPU_USER, c, 0), bytes(k)))


# ---------------------------------------------------------------- task context
def fpu_sync(m, s, c, t, out):
    if m.scenario.readers:
        out.append(((M.FPU_SYNC, c, 0), M.fpu_sync(m, s, c, t)))


def kfpu_begin(m, s, c, t, out):
    """kernel_fpu_begin() in a syscall or a kernel thread."""
    sc = m.scenario
    pc = s[s[0] + t * TASK_W + T_PC]
    if (sc.kfpu_task if pc == PC_SYSCALL else sc.kfpu_kthread) and m.design.irq_fpu_usable(s, c, K_TASK, False):
        k = bytearray(s)
        k[k[0] + t * TASK_W + T_PC] = PC_SYSCALL_KFPU if pc == PC_SYSCALL else PC_KTHREAD_KFPU
        m.design.kernel_fpu_begin(k, c, K_TASK)
        out.append(((M.KFPU_BEGIN, c, 0), bytes(k)))


def kfpu_end(m, s, c, t, out):
    k = bytearray(s)
    p = k[0] + t * TASK_W
    k[p + T_PC] = PC_SYSCALL if k[p + T_PC] == PC_SYSCALL_KFPU else PC_KTHREAD
    m.design.kernel_fpu_end(k, c, K_TASK)
    out.append(((M.KFPU_END, c, 0), bytes(k)))


def sleep(m, s, c, t, out):
    """schedule() to sleep: to any runnable task or this CPU's idle task (idle never sleeps)."""
    if s[s[0] + t * TASK_W + T_KIND] == IDLE:
        return
    for n in M.runnable(m, s) + [m.idle_of(c)]:
        k = bytearray(s)
        M.context_switch(m, k, c, t, n, SLEEPING)
        out.append(((M.SLEEP, c, n), bytes(k)))


def fork(m, s, c, t, out):
    if s[H_FORKS]:
        child = M.free_slot(m, s)
        if child != NULL:
            out.append(((M.FORK, c, child), M.fork(m, s, c, t, child)))


def execve(m, s, c, t, out):
    if s[H_EXECS] and m.design.exec_steps:
        out.extend(M.path_successors(m, s, c, t, PATH_EXEC, 0, enter=True))


def do_exit(m, s, c, t, out):
    if s[H_EXITS]:
        out.extend(M.path_successors(m, s, c, t, PATH_EXIT, 0, enter=True))


def syscall_exit(m, s, c, t, out):
    """Syscall exit with no work pending: IRQs off from the flags read to user mode, one step."""
    k = bytearray(s)
    M.exit_to_user(m, k, c, t, m.design.exit_to_user_snapshot(s, c, t))
    out.append(((M.SYSCALL_EXIT, c, 0), bytes(k)))


def enter_exit_loop(m, s, c, t, out):
    k = bytearray(s)
    M.enter_exit_loop(m, k, c, t)
    out.append(((M.ENTER_EXIT_LOOP, c, 0), bytes(k)))


def signal(m, s, c, t, out):
    """arch_do_signal_or_restart() from the work loop: signal delivery's first step."""
    p = s[0] + t * TASK_W
    if s[M.H_SIGNALS] and s[p + T_SIGDEPTH] < MAX_SIGFRAMES and s[p + T_KIND] == USER:
        out.extend(M.path_successors(m, s, c, t, PATH_SIGNAL, 0, enter=True))


def exit_to_user(m, s, c, t, out):
    """The work loop is done: the IRQs-off tail to user mode, deciding from the snapshot it keeps."""
    k = bytearray(s)
    M.exit_to_user(m, k, c, t, s[s[0] + t * TASK_W + T_LOCAL])
    out.append(((M.EXIT_TO_USER, c, 0), bytes(k)))


def path_step(m, s, c, t, out):
    """The next step of the multi-step path the task is in; past exit's last step, do_task_dead()."""
    pc = s[s[0] + t * TASK_W + T_PC]
    path, step = pc_path(pc), pc_step(pc)
    if step < len(M.path_steps(m.design, path)):
        out.extend(M.path_successors(m, s, c, t, path, step))
    else:
        for n in M.runnable(m, s) + [m.idle_of(c)]:
            out.append(((M.TASK_DEAD, c, n), M.task_dead(m, s, c, t, n)))


def preempt(m, s, c, t, out):
    """The scheduler preempts wherever preempt_count and the BH count are 0."""
    q = HEADER + c * CPU_W
    if s[q + C_PREEMPT] == 0 and s[q + C_BH] == 0:
        for n in M.runnable(m, s):
            k = bytearray(s)
            M.context_switch(m, k, c, t, n, RUNNABLE)
            out.append(((M.PREEMPT, c, n), bytes(k)))


# ---------------------------------------------------------------- not bound to a CPU
def wake(m, s, c, t, out):
    tb = s[0]
    for u in range(m.idle_base):
        if s[tb + u * TASK_W + T_RUN] == SLEEPING:
            k = bytearray(s)
            k[tb + u * TASK_W + T_RUN] = RUNNABLE
            out.append(((M.WAKE, NULL, u), bytes(k)))


def ptrace(m, s, c, t, out):
    """A tracer on another CPU writes (PTRACE_SETREGSET) or reads (PTRACE_GETREGSET) a stopped
    (sleeping) tracee's xstate. A read is emitted only when it is stale: a correct one changes nothing."""
    sc, d = m.scenario, m.design
    if not (s[H_PTRACE] or sc.ptrace_reads):
        return
    kinds = ((M.PTRACE_VALUES, M.PTRACE_BOGUS) + ((M.PTRACE_PKRU,) if sc.pkru_writes and d.has_pkru else ())
             + ((M.PTRACE_PKRU_INIT,) if sc.user_xstate and d.has_pkru else ()))
    tb = s[0]
    for u in range(sc.slots):
        if s[tb + u * TASK_W + T_RUN] != SLEEPING:
            continue
        if s[H_PTRACE]:
            for kind in kinds:
                out.append(((M.PTRACE_SET, NULL, M.PTRACE_KINDS * u + kind), M.ptrace_set(m, s, u, kind)))
        if sc.ptrace_reads and s[H_STALE_READ] == NULL:
            value, pkru = d.xstateregs_get(s, u)
            g = ghost(s, u)
            want_pkru = s[g + G_PKRU]
            if value != s[g + G_VALUE] or (d.has_pkru and want_pkru != NULL and pkru != want_pkru):
                k = bytearray(s)
                k[H_STALE_READ] = u
                out.append(((M.PTRACE_GET, NULL, u), bytes(k)))


# ---------------------------------------------------------------- trace texts
def _who(m, a, s) -> str:
    return m.name(s[HEADER + a.cpu * CPU_W + C_CURR])


def _text(fixed: str):
    return lambda m, a, s: (_who(m, a, s), fixed)


def _switch_text(why: str):
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
    st = M.path_steps(m.design, path)[step]
    label = ("exec", "signal delivery", "sigreturn", "sigreturn (ia32)", "exit")[path]
    paren = "()" if st.name.isidentifier() else ""
    return _who(m, a, s), f"{label}: {st.name}{paren}{st.outcome_text(st.choices()[choice] if st.choices() else 0)}"


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
P = M  # action codes live in machine (tests and index paths use them)

EVENTS: tuple[Event, ...] = (
    # A softirq inside its kernel-FPU section: a hardirq may still arrive, then it ends.
    Event(P.HARDIRQ_KFPU, "hardirq", (SOFTIRQ,) + ANY_KERNEL, hardirq_kfpu,
          lambda m, a, s: (_who(m, a, s), f"IRQ: {_begin(m)}() .. {_end(m)}()")),
    Event(P.SOFTIRQ_KFPU_END, "softirq", (SOFTIRQ,), softirq_kfpu_end,
          lambda m, a, s: (_who(m, a, s), f"softirq: {_end(m)}()")),
    # User mode.
    Event(P.USER_WRITE, "user", USER_PCS, user_write, _text("writes its FPU registers")),
    Event(P.NM_TRAP, "user", (), None,  # fired by user_write when CR0.TS is set
          lambda m, a, s: (_who(m, a, s), f"#NM: {_fn(m.design.do_device_not_available)}() -> exit_to_user_mode_loop")),
    Event(P.WRPKRU, "user", USER_PCS, wrpkru,
          lambda m, a, s: (_who(m, a, s), "WRPKRU(0): all keys enabled, PKRU in its init state" if a.arg
                            else "WRPKRU: changes its protection keys")),
    Event(P.XRSTOR_USER, "user", USER_PCS, xrstor_user,
          lambda m, a, s: (_who(m, a, s), "XRSTOR from its own memory, XSTATE_BV["
                            + ("PKRU" if a.arg == M.XRSTOR_PKRU_INIT else "FP/SSE") + "] clear")),
    Event(P.SIGRETURN, "user", USER_PCS, sigreturn,
          lambda m, a, s: (_who(m, a, s), "rt_sigreturn() entry ("
                            + ("ia32 FXSR frame" if a.arg == PATH_SIGRETURN_IA32 else "64-bit frame") + ")")),
    Event(P.SIGFRAME_CORRUPT, "user", USER_PCS, sigframe_corrupt, _text("overwrites its signal frame's xsave header")),
    Event(P.SYSCALL, "user", USER_PCS, syscall, _text("syscall entry")),
    Event(P.IRQ_FROM_USER, "hardirq", USER_PCS, irq_from_user,
          lambda m, a, s: (_who(m, a, s), "IRQ from user mode, work pending -> exit_to_user_mode_loop"
                            + _snap(m, a.cpu, s[HEADER + a.cpu * CPU_W + C_CURR], s))),
    Event(P.HARDIRQ_KFPU_USER, "hardirq", USER_PCS, hardirq_kfpu_user,
          lambda m, a, s: (_who(m, a, s), f"IRQ from user mode: {_begin(m)}() .. {_end(m)}() -> exit_to_user_mode_loop")),
    Event(P.SOFTIRQ_KFPU_USER, "softirq", USER_PCS, softirq_kfpu_user,
          lambda m, a, s: (_who(m, a, s), f"IRQ from user mode, softirq: {_begin(m)}()")),
    # Kernel, task context: interrupts first (HARDIRQ_KFPU above), then the task's own code.
    Event(P.SOFTIRQ_KFPU_BEGIN, "softirq", ANY_KERNEL, softirq_kfpu_begin,
          lambda m, a, s: (_who(m, a, s), f"softirq: {_begin(m)}()")),
    Event(P.FPU_SYNC, "task", (PC_SYSCALL,), fpu_sync,
          lambda m, a, s: (_who(m, a, s), f"coredump/regset read of self: {_fn(m.design.fpu_sync_fpstate)}(), copy the image")),
    Event(P.KFPU_BEGIN, "task", (PC_SYSCALL, PC_KTHREAD), kfpu_begin, lambda m, a, s: (_who(m, a, s), f"{_begin(m)}()")),
    Event(P.SLEEP, "task", (PC_SYSCALL, PC_KTHREAD), sleep, _switch_text("schedule() to sleep")),
    Event(P.FORK, "task", (PC_SYSCALL,), fork,
          lambda m, a, s: (_who(m, a, s), f"fork: copy_process -> {_fn(m.design.fpu_clone)}() for child {m.name(a.arg)}")),
    Event(P.EXEC_STEP, "task", (PC_SYSCALL,), execve, _path_text),
    Event(P.EXIT_STEP, "task", (PC_SYSCALL,), do_exit, _path_text),
    Event(P.SYSCALL_EXIT, "task", (PC_SYSCALL,), syscall_exit,
          lambda m, a, s: (_who(m, a, s), f"syscall exit, no work pending: {_fn(m.design.exit_to_user)}() -> user mode")),
    Event(P.ENTER_EXIT_LOOP, "task", (PC_SYSCALL,), enter_exit_loop,
          lambda m, a, s: (_who(m, a, s), "syscall exit, work pending -> exit_to_user_mode_loop"
                            + _snap(m, a.cpu, s[HEADER + a.cpu * CPU_W + C_CURR], s))),
    Event(P.KFPU_END, "task", KFPU_PCS, kfpu_end, lambda m, a, s: (_who(m, a, s), f"{_end(m)}()")),
    Event(P.SIGNAL_STEP, "task", (PC_EXIT_LOOP,), signal, _path_text),
    Event(P.EXIT_TO_USER, "task", (PC_EXIT_LOOP,), exit_to_user, _exit_to_user_text),
    Event("path_step", "task", PATH_PCS, path_step, _path_text),
    Event(P.TASK_DEAD, "task", (), None, _switch_text("do_task_dead()")),  # fired by path_step past exit's end
    Event(P.PREEMPT, "task", ANY_KERNEL, preempt, _switch_text("preempted")),
    # Not bound to a CPU.
    Event(P.WAKE, "-", (GLOBAL,), wake, lambda m, a, s: ("-", f"try_to_wake_up({m.name(a.arg)})")),
    Event(P.PTRACE_SET, "tracer", (GLOBAL,), ptrace, _ptrace_text),
    Event(P.PTRACE_GET, "tracer", (), None, _ptrace_text),  # fired by ptrace
)

# Path steps keep one code per path (index paths and tests name them); they print alike.
_PATH_EVENTS = tuple(Event(code, "task", (), None, _path_text) for code in M.PATH_ACTIONS
                     if code not in (P.EXEC_STEP, P.EXIT_STEP, P.SIGNAL_STEP))


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

    def fire(m, s, c, t, out):
        if not enabled(s, c, t):
            return
        for i in range(len(outcomes) or 1):
            k = bytearray(s)
            if outcomes:
                effect(k, c, t, i)
            else:
                effect(k, c, t)
            out.append(((code, c, i), bytes(k)))

    def describe(m, a, s):
        actor = "-" if a.cpu == NULL else m.name(s[HEADER + a.cpu * CPU_W + C_CURR])
        return actor, text + (f" -> {outcomes[a.arg]}" if outcomes else "")

    fire.__name__ = describe.__name__ = code
    return Event(code, ctx, at, fire, describe)


from .actions_kvm import KVM_EVENTS  # noqa: E402  (they are Events: defined above)

EVENTS = EVENTS + KVM_EVENTS
KERNEL_CODES = frozenset(e.code for e in EVENTS + _PATH_EVENTS)


class Table(NamedTuple):
    """The action table of one model: per situation the events to fire, in order."""

    at: dict  # situation (pc or SOFTIRQ) -> tuple of fire functions
    global_fire: tuple
    by_code: dict  # code -> Event, for the trace printer


def build_table(extra: tuple = ()) -> Table:
    """The kernel's events followed by a design's own, dispatched by situation."""
    events = EVENTS + tuple(extra)
    situations = (SOFTIRQ, PC_USER, PC_GUEST, PC_OFFLINE) + ANY_KERNEL
    at = {w: tuple(e.fire for e in events if w in e.at and e.fire is not None) for w in situations}
    glob = tuple(e.fire for e in events if GLOBAL in e.at and e.fire is not None)
    by_code = {e.code: e for e in _PATH_EVENTS + events}
    return Table(at, glob, by_code)


KERNEL_TABLE = build_table()
