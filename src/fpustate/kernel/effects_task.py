"""The action table's task-context events and those not bound to a CPU (`kernel.actions`):
kernel_fpu_begin() in a syscall or a kernel thread, the scheduler (sleep, preemption, wake-up),
fork, the multi-step paths (exec, exit, signal delivery and their steps), the exit to user
mode, ptrace. Same protocol as `kernel.effects`: `X_outcomes(m, s, c, t)` lists the outcomes,
`X(m, k, c, t, code, arg)` applies one in place, `X_enabled` tests one without listing.
"""

from __future__ import annotations


from .design import K_TASK
from .state import (
    C_BH,
    C_PREEMPT,
    CPU_W,
    G_PKRU,
    G_VALUE,
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
    PC_KTHREAD,
    PC_KTHREAD_KFPU,
    PC_SYSCALL,
    PC_SYSCALL_KFPU,
    RUNNABLE,
    SLEEPING,
    T_KIND,
    T_LOCAL,
    T_PC,
    T_RUN,
    T_SIGDEPTH,
    TASK_W,
    USER,
    ghost,
    pc_path,
    pc_step,
)
from . import machine as M
from . import paths


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


def on_runqueue(m, s, n: int) -> bool:
    """machine.runnable()'s test for one task n (runqueue_slots are the slots below idle_base)."""
    return 0 <= n < m.idle_base and s[s[0] + n * TASK_W + T_RUN] == RUNNABLE


def switch_targets(m, s, c: int) -> list[int]:
    """Who CPU c may run when its task gives it up (sleep, death): a runnable task or its idle task."""
    return M.runnable(m, s) + [m.idle_of(c)]


def is_switch_target(m, s, c: int, n: int) -> bool:
    """switch_targets()'s test for one task n."""
    return n == m.idle_of(c) or on_runqueue(m, s, n)


def sleep_outcomes(m, s, c, t):
    """schedule() to sleep: to any runnable task or this CPU's idle task (idle never sleeps)."""
    if s[s[0] + t * TASK_W + T_KIND] == IDLE:
        return ()
    return [(M.SLEEP, n) for n in switch_targets(m, s, c)]


def sleep_enabled(m, s, c, t, code, arg):
    return (code == M.SLEEP and s[s[0] + t * TASK_W + T_KIND] != IDLE
            and is_switch_target(m, s, c, arg))


def sleep(m, k, c, t, code, arg):
    M.context_switch(m, k, c, t, arg, SLEEPING)


def fork_outcomes(m, s, c, t):
    """fork() into the lowest dead user slot: copy_process(), the fork path's first step."""
    if s[H_FORKS]:
        child = paths.free_slot(m, s)
        if child != NULL:
            return [(M.FORK, child + M.FORK_OUTCOME * n) for n in paths.step_outcomes(m, paths.PATH_FORK, 0)]
    return ()


def fork(m, k, c, t, code, arg):
    paths.fork(m, k, c, t, arg % M.FORK_OUTCOME, arg // M.FORK_OUTCOME)


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
    return [(M.TASK_DEAD, n) for n in switch_targets(m, s, c)]


def path_step_enabled(m, s, c, t, code, arg):
    pc = s[s[0] + t * TASK_W + T_PC]
    path, step = pc_path(pc), pc_step(pc)
    steps = paths.path_steps(m.design, path)
    if step >= len(steps):
        return code == M.TASK_DEAD and is_switch_target(m, s, c, arg)
    return code == M.PATH_ACTIONS[path] and arg % M.FAULTED == step and arg // M.FAULTED in paths.step_outcomes(m, path, step)


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
    return code == M.PREEMPT and s[q + C_PREEMPT] == 0 and s[q + C_BH] == 0 and on_runqueue(m, s, arg)


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
