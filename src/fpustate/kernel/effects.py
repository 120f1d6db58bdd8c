"""What each event of the action table does (`kernel.actions`): two functions per event.

`X_outcomes(m, s, c, t)` is the enabling test: the `(code, arg)` of every outcome the event
has in state `s` with CPU c's current task t (both NULL for an event not bound to a CPU), in
a fixed order, () when it is disabled. `X(m, k, c, t, code, arg)` is the effect of one
outcome on a working copy `k` that still equals `s`, in place. The checker builds every
outcome in a private copy (`actions.build_table`); the cost simulator applies the one its
trace shows to its own vector, whose tracepoint probe counts what the hooks execute
(`machine.apply_action`).
"""

from __future__ import annotations


from .design import K_HARDIRQ, K_SOFTIRQ, K_TASK
from .state import (
    C_BH,
    C_CTX,
    C_PREEMPT,
    CPU_W,
    CTX_SOFTIRQ_KFPU,
    CTX_TASK,
    G_FRAME,
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
    PATH_EXEC,
    PATH_EXIT,
    PATH_SIGNAL,
    PATH_SIGRETURN,
    PATH_SIGRETURN_IA32,
    PC_EXIT_LOOP,
    PC_IRQ_FROM_USER,
    PC_KTHREAD,
    PC_KTHREAD_KFPU,
    PC_SYSCALL,
    PC_SYSCALL_KFPU,
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
from . import paths


def once(code: str):
    """The outcomes of an event that is always enabled in its situations and has one outcome."""
    one = ((code, 0),)
    return lambda m, s, c, t: one


# ---------------------------------------------------------------- interrupts
def hardirq_kfpu_outcomes(m, s, c, t):
    if m.scenario.kfpu_hardirq and m.design.irq_fpu_usable(s, c, K_HARDIRQ, False):
        return ((M.HARDIRQ_KFPU, 0),)
    return ()


def hardirq_kfpu(m, k, c, t, code, arg):
    """A hardirq handler's kernel_fpu_begin() .. kernel_fpu_end(), IRQs off (one step)."""
    M.hardirq_kfpu(m.design, k, c)


def softirq_kfpu_end(m, k, c, t, code, arg):
    """The softirq's kernel_fpu_end(); back to task context (or, from user mode, the exit path)."""
    from_user = k[k[0] + t * TASK_W + T_PC] == PC_IRQ_FROM_USER
    m.design.kernel_fpu_end(k, c, K_SOFTIRQ)
    k[HEADER + c * CPU_W + C_CTX] = CTX_TASK
    if from_user:
        M.enter_exit_loop(m, k, c, t)


def softirq_kfpu_begin_outcomes(m, s, c, t):
    if (m.scenario.kfpu_softirq and s[HEADER + c * CPU_W + C_BH] == 0
            and m.design.irq_fpu_usable(s, c, K_SOFTIRQ, False)):
        return ((M.SOFTIRQ_KFPU_BEGIN, 0),)
    return ()


def softirq_kfpu_begin(m, k, c, t, code, arg):
    """A softirq at IRQ exit or local_bh_enable() (BH enabled) enters kernel_fpu_begin()."""
    k[HEADER + c * CPU_W + C_CTX] = CTX_SOFTIRQ_KFPU
    m.design.kernel_fpu_begin(k, c, K_SOFTIRQ)


# ---------------------------------------------------------------- user mode
def user_write_outcomes(m, s, c, t):
    d = m.design
    if d.user_fpu_accessible(s, c):
        return ((M.USER_WRITE, 0),)
    if d.do_device_not_available is not None:
        return ((M.NM_TRAP, 0),)
    return ()


def user_write(m, k, c, t, code, arg):
    """The program writes its FPU registers; with CR0.TS set the first access traps (#NM)."""
    if code == M.NM_TRAP:
        m.design.do_device_not_available(k, c, t)
        M.enter_exit_loop(m, k, c, t)
        return
    g = ghost(k, t)
    k[HEADER + c * CPU_W] = k[g + G_VALUE] = M.next_user_value(m, t, k[g + G_VALUE])  # C_FPREGS


def wrpkru_outcomes(m, s, c, t):
    if not m.design.has_pkru:
        return ()
    out = []
    if m.scenario.pkru_writes:
        out.append((M.WRPKRU, 0))
    if m.scenario.user_xstate and s[ghost(s, t) + G_PKRU] != PKRU_HW_INIT:
        out.append((M.WRPKRU, 1))
    return out


def wrpkru(m, k, c, t, code, arg):
    """User WRPKRU: the program changes its protection keys (no kernel involvement): to its own
    keys (arg 0; --pkru-writes) or to 0, PKRU's init state (arg 1; --user-xstate)."""
    g = ghost(k, t)
    old = k[g + G_PKRU]
    if arg:
        new = PKRU_HW_INIT
    else:
        new = pkru_of(t, 1 - pkru_version(old)) if pkru_owner(old) == t else pkru_of(t)
    k[HEADER + c * CPU_W + 2] = k[g + G_PKRU] = new  # C_PKRU


def xrstor_user_outcomes(m, s, c, t):
    d = m.design
    if not (m.scenario.user_xstate and d.user_fpu_accessible(s, c)):
        return ()
    if d.has_pkru:
        return ((M.XRSTOR_USER, M.XRSTOR_FPSSE_INIT), (M.XRSTOR_USER, M.XRSTOR_PKRU_INIT))
    return ((M.XRSTOR_USER, M.XRSTOR_FPSSE_INIT),)


def xrstor_user(m, k, c, t, code, arg):
    """The program XRSTORs from its own memory with one XSTATE_BV bit clear (--user-xstate):
    FP/SSE clear loads their init values (PKRU from the buffer: its current keys), or PKRU
    clear loads PKRU's hardware init value 0 (FP/SSE from the buffer: new data). A header
    XRSTOR rejects raises #GP in user mode and loads nothing (SIGSEGV; not modelled)."""
    q = HEADER + c * CPU_W
    g = ghost(k, t)
    if arg == M.XRSTOR_FPSSE_INIT:
        k[q] = k[g + G_VALUE] = M.INIT  # C_FPREGS
    else:
        k[q] = k[g + G_VALUE] = M.next_user_value(m, t, k[g + G_VALUE])
        k[q + 2] = k[g + G_PKRU] = PKRU_HW_INIT  # C_PKRU


def sigreturn_outcomes(m, s, c, t):
    if s[s[0] + t * TASK_W + T_SIGDEPTH]:
        return ((M.SIGRETURN, PATH_SIGRETURN), (M.SIGRETURN, PATH_SIGRETURN_IA32))
    return ()


def sigreturn(m, k, c, t, code, arg):
    """rt_sigreturn() entry by the 64-bit or the ia32 frame path: preemptible until the lock."""
    k[k[0] + t * TASK_W + T_PC] = path_pc(arg, 0)


def sigframe_corrupt_outcomes(m, s, c, t):
    p = s[0] + t * TASK_W
    depth = s[p + T_SIGDEPTH]
    if depth and m.scenario.corrupt_frames and not s[p + T_SIGFRAME_HDR + depth - 1] & HDR_BAD:
        return ((M.SIGFRAME_CORRUPT, 0),)
    return ()


def sigframe_corrupt(m, k, c, t, code, arg):
    """The program scribbles over its top signal frame's xsave header (a nonzero XCOMP_BV or
    reserved bytes): the data stay, the header is one XRSTOR rejects. The ghost marks the frame."""
    p = k[0] + t * TASK_W
    depth = k[p + T_SIGDEPTH]
    k[p + T_SIGFRAME_HDR + depth - 1] |= HDR_BAD
    k[ghost(k, t) + G_FRAME + depth - 1] = GARBAGE


def syscall(m, k, c, t, code, arg):
    k[k[0] + t * TASK_W + T_PC] = PC_SYSCALL


def irq_from_user(m, k, c, t, code, arg):
    """An interrupt from user mode with work pending: the exit path takes its flags snapshot."""
    p = k[0] + t * TASK_W
    k[p + T_LOCAL], k[p + T_PC] = m.design.exit_to_user_snapshot(k, c, t), PC_EXIT_LOOP


def _usable_from_user(code: str, knob: str, ctx: int):
    """The outcomes of an interrupt from user mode that uses the FPU if `knob` and the
    design's irq_fpu_usable() allow it."""
    one = ((code, 0),)

    def outcomes(m, s, c, t):
        return one if getattr(m.scenario, knob) and m.design.irq_fpu_usable(s, c, ctx, True) else ()

    return outcomes


hardirq_kfpu_user_outcomes = _usable_from_user(M.HARDIRQ_KFPU_USER, "kfpu_hardirq", K_HARDIRQ)
softirq_kfpu_user_outcomes = _usable_from_user(M.SOFTIRQ_KFPU_USER, "kfpu_softirq", K_SOFTIRQ)


def hardirq_kfpu_user(m, k, c, t, code, arg):
    """A hardirq from user mode uses the FPU, then the task leaves through the exit path."""
    M.hardirq_kfpu(m.design, k, c)
    irq_from_user(m, k, c, t, code, arg)


def softirq_kfpu_user(m, k, c, t, code, arg):
    """The softirq run at exit from an IRQ taken in user mode enters kernel_fpu_begin()."""
    k[k[0] + t * TASK_W + T_PC] = PC_IRQ_FROM_USER
    k[HEADER + c * CPU_W + C_CTX] = CTX_SOFTIRQ_KFPU
    m.design.kernel_fpu_begin(k, c, K_SOFTIRQ)


# ---------------------------------------------------------------- task context
def fpu_sync_outcomes(m, s, c, t):
    return ((M.FPU_SYNC, 0),) if m.scenario.readers else ()


def fpu_sync(m, k, c, t, code, arg):
    paths.fpu_sync(m, k, c, t)


def kfpu_begin_outcomes(m, s, c, t):
    sc = m.scenario
    if ((sc.kfpu_task if s[s[0] + t * TASK_W + T_PC] == PC_SYSCALL else sc.kfpu_kthread)
            and m.design.irq_fpu_usable(s, c, K_TASK, False)):
        return ((M.KFPU_BEGIN, 0),)
    return ()


def kfpu_begin(m, k, c, t, code, arg):
    """kernel_fpu_begin() in a syscall or a kernel thread."""
    p = k[0] + t * TASK_W
    k[p + T_PC] = PC_SYSCALL_KFPU if k[p + T_PC] == PC_SYSCALL else PC_KTHREAD_KFPU
    m.design.kernel_fpu_begin(k, c, K_TASK)


def kfpu_end(m, k, c, t, code, arg):
    p = k[0] + t * TASK_W
    k[p + T_PC] = PC_SYSCALL if k[p + T_PC] == PC_SYSCALL_KFPU else PC_KTHREAD
    m.design.kernel_fpu_end(k, c, K_TASK)


def sleep_outcomes(m, s, c, t):
    """schedule() to sleep: to any runnable task or this CPU's idle task (idle never sleeps)."""
    if s[s[0] + t * TASK_W + T_KIND] == IDLE:
        return ()
    return [(M.SLEEP, n) for n in M.runnable(m, s)] + [(M.SLEEP, m.idle_of(c))]


def _runnable(m, s, n: int) -> bool:
    """n is on the runqueue (machine.runnable's test for one task)."""
    return 0 <= n < m.idle_base and s[s[0] + n * TASK_W + T_RUN] == RUNNABLE


def sleep_enabled(m, s, c, t, code, arg):
    return (code == M.SLEEP and s[s[0] + t * TASK_W + T_KIND] != IDLE
            and (arg == m.idle_of(c) or _runnable(m, s, arg)))


def sleep(m, k, c, t, code, arg):
    M.context_switch(m, k, c, t, arg, SLEEPING)


def fork_outcomes(m, s, c, t):
    """fork() into the lowest dead user slot: copy_process(), the fork path's first step."""
    if s[H_FORKS]:
        child = paths.free_slot(m, s)
        if child != NULL:
            return [(M.FORK, child + M.FAULTED * n) for n in paths.step_outcomes(m, paths.PATH_FORK, 0)]
    return ()


def fork(m, k, c, t, code, arg):
    paths.fork(m, k, c, t, arg % M.FAULTED, arg // M.FAULTED)


def _entry_outcomes(code, path):
    def outcomes(m, s, c, t):
        return [(code, M.FAULTED * n) for n in paths.step_outcomes(m, path, 0)]
    return outcomes


_exec_outcomes = _entry_outcomes(M.EXEC_STEP, PATH_EXEC)
_exit_outcomes = _entry_outcomes(M.EXIT_STEP, PATH_EXIT)
_signal_outcomes = _entry_outcomes(M.SIGNAL_STEP, PATH_SIGNAL)


def execve_outcomes(m, s, c, t):
    return _exec_outcomes(m, s, c, t) if s[H_EXECS] and m.design.exec_steps else ()


def do_exit_outcomes(m, s, c, t):
    return _exit_outcomes(m, s, c, t) if s[H_EXITS] else ()


def signal_outcomes(m, s, c, t):
    """arch_do_signal_or_restart() from the work loop: signal delivery's first step."""
    p = s[0] + t * TASK_W
    if s[M.H_SIGNALS] and s[p + T_SIGDEPTH] < MAX_SIGFRAMES and s[p + T_KIND] == USER:
        return _signal_outcomes(m, s, c, t)
    return ()


def path_entry(m, k, c, t, code, arg):
    """A multi-step path's entry bookkeeping and first step (exec, exit, signal delivery)."""
    paths.run_step(m, k, c, t, M.PATH_ACTIONS.index(code), 0, arg // M.FAULTED, enter=True)


def syscall_exit(m, k, c, t, code, arg):
    """Syscall exit with no work pending: IRQs off from the flags read to user mode, one step."""
    M.exit_to_user(m, k, c, t, m.design.exit_to_user_snapshot(k, c, t))


def enter_exit_loop(m, k, c, t, code, arg):
    M.enter_exit_loop(m, k, c, t)


def exit_to_user(m, k, c, t, code, arg):
    """The work loop is done: the IRQs-off tail to user mode, deciding from the snapshot it keeps."""
    M.exit_to_user(m, k, c, t, k[k[0] + t * TASK_W + T_LOCAL])


def path_step_outcomes(m, s, c, t):
    """The next step of the multi-step path the task is in; past exit's last step, do_task_dead()."""
    pc = s[s[0] + t * TASK_W + T_PC]
    path, step = pc_path(pc), pc_step(pc)
    if step < len(paths.path_steps(m.design, path)):
        code = M.PATH_ACTIONS[path]
        return [(code, step + M.FAULTED * n) for n in paths.step_outcomes(m, path, step)]
    return [(M.TASK_DEAD, n) for n in M.runnable(m, s)] + [(M.TASK_DEAD, m.idle_of(c))]


def path_step_enabled(m, s, c, t, code, arg):
    pc = s[s[0] + t * TASK_W + T_PC]
    path, step = pc_path(pc), pc_step(pc)
    steps = paths.path_steps(m.design, path)
    if step >= len(steps):
        return code == M.TASK_DEAD and (arg == m.idle_of(c) or _runnable(m, s, arg))
    return (code == M.PATH_ACTIONS[path] and arg % M.FAULTED == step
            and arg // M.FAULTED < (len(steps[step].choices()) or 1))


def path_step(m, k, c, t, code, arg):
    if code == M.TASK_DEAD:
        paths.task_dead(m, k, c, t, arg)
    else:
        paths.run_step(m, k, c, t, M.PATH_ACTIONS.index(code), arg % M.FAULTED, arg // M.FAULTED)


def preempt_outcomes(m, s, c, t):
    """The scheduler preempts wherever preempt_count and the BH count are 0."""
    q = HEADER + c * CPU_W
    if s[q + C_PREEMPT] == 0 and s[q + C_BH] == 0:
        return [(M.PREEMPT, n) for n in M.runnable(m, s)]
    return ()


def preempt_enabled(m, s, c, t, code, arg):
    q = HEADER + c * CPU_W
    return code == M.PREEMPT and s[q + C_PREEMPT] == 0 and s[q + C_BH] == 0 and _runnable(m, s, arg)


def preempt(m, k, c, t, code, arg):
    M.context_switch(m, k, c, t, arg, RUNNABLE)


# ---------------------------------------------------------------- not bound to a CPU
def wake_outcomes(m, s, c, t):
    tb = s[0]
    return [(M.WAKE, u) for u in range(m.idle_base) if s[tb + u * TASK_W + T_RUN] == SLEEPING]


def wake_enabled(m, s, c, t, code, arg):
    return code == M.WAKE and 0 <= arg < m.idle_base and s[s[0] + arg * TASK_W + T_RUN] == SLEEPING


def wake(m, k, c, t, code, arg):
    k[k[0] + arg * TASK_W + T_RUN] = RUNNABLE


def ptrace_outcomes(m, s, c, t):
    """A tracer on another CPU writes (PTRACE_SETREGSET) or reads (PTRACE_GETREGSET) a stopped
    (sleeping) tracee's xstate. A read is emitted only when it is stale: a correct one changes nothing."""
    sc, d = m.scenario, m.design
    if not (s[H_PTRACE] or sc.ptrace_reads):
        return ()
    kinds = ((M.PTRACE_VALUES, M.PTRACE_BOGUS) + ((M.PTRACE_PKRU,) if sc.pkru_writes and d.has_pkru else ())
             + ((M.PTRACE_PKRU_INIT,) if sc.user_xstate and d.has_pkru else ()))
    tb = s[0]
    out = []
    for u in range(sc.slots):
        if s[tb + u * TASK_W + T_RUN] != SLEEPING:
            continue
        if s[H_PTRACE]:
            out.extend((M.PTRACE_SET, M.PTRACE_KINDS * u + kind) for kind in kinds)
        if sc.ptrace_reads and s[H_STALE_READ] == NULL:
            value, pkru = d.xstateregs_get(s, u)
            g = ghost(s, u)
            want_pkru = s[g + G_PKRU]
            if value != s[g + G_VALUE] or (d.has_pkru and want_pkru != NULL and pkru != want_pkru):
                out.append((M.PTRACE_GET, u))
    return out


def ptrace(m, k, c, t, code, arg):
    if code == M.PTRACE_GET:
        k[H_STALE_READ] = arg
    else:
        u, kind = divmod(arg, M.PTRACE_KINDS)
        paths.ptrace_set(m, k, u, kind)
