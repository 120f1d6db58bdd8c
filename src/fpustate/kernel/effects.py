"""What each event of the action table does (`kernel.actions`): one function per event.

`fire(m, s, c, t, out)` runs with CPU c's current task t (both NULL for an event not bound to
a CPU), tests what the table's situation does not say, and appends `((code, c, arg),
successor)` for every outcome, each built in a private copy of `s`.
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
        k[ghost(k, t) + G_FRAME + depth - 1] = GARBAGE
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
        out.append(((M.FPU_SYNC, c, 0), paths.fpu_sync(m, s, c, t)))


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
    """fork() into the lowest dead user slot: copy_process(), the fork path's first step."""
    if s[H_FORKS]:
        child = paths.free_slot(m, s)
        if child != NULL:
            out.extend(paths.fork(m, s, c, t, child))


def execve(m, s, c, t, out):
    if s[H_EXECS] and m.design.exec_steps:
        out.extend(paths.path_successors(m, s, c, t, PATH_EXEC, 0, enter=True))


def do_exit(m, s, c, t, out):
    if s[H_EXITS]:
        out.extend(paths.path_successors(m, s, c, t, PATH_EXIT, 0, enter=True))


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
        out.extend(paths.path_successors(m, s, c, t, PATH_SIGNAL, 0, enter=True))


def exit_to_user(m, s, c, t, out):
    """The work loop is done: the IRQs-off tail to user mode, deciding from the snapshot it keeps."""
    k = bytearray(s)
    M.exit_to_user(m, k, c, t, s[s[0] + t * TASK_W + T_LOCAL])
    out.append(((M.EXIT_TO_USER, c, 0), bytes(k)))


def path_step(m, s, c, t, out):
    """The next step of the multi-step path the task is in; past exit's last step, do_task_dead()."""
    pc = s[s[0] + t * TASK_W + T_PC]
    path, step = pc_path(pc), pc_step(pc)
    if step < len(paths.path_steps(m.design, path)):
        out.extend(paths.path_successors(m, s, c, t, path, step))
    else:
        for n in M.runnable(m, s) + [m.idle_of(c)]:
            out.append(((M.TASK_DEAD, c, n), paths.task_dead(m, s, c, t, n)))


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
                out.append(((M.PTRACE_SET, NULL, M.PTRACE_KINDS * u + kind), paths.ptrace_set(m, s, u, kind)))
        if sc.ptrace_reads and s[H_STALE_READ] == NULL:
            value, pkru = d.xstateregs_get(s, u)
            g = ghost(s, u)
            want_pkru = s[g + G_PKRU]
            if value != s[g + G_VALUE] or (d.has_pkru and want_pkru != NULL and pkru != want_pkru):
                k = bytearray(s)
                k[H_STALE_READ] = u
                out.append(((M.PTRACE_GET, NULL, u), bytes(k)))


