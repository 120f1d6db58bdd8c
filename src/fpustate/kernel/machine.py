"""The generic kernel: which actions are enabled in a state, and where paths interleave.

This module owns the *interleaving points*; designs own the FPU code that runs
at them. The rules, derived from the CPU's preempt/BH state rather than
hard-coded per path:

- User mode: the program may write its FPU registers (trapping first, #NM, if
  the design keeps CR0.TS set), enter a syscall, or be interrupted. The
  interrupt may use the FPU in its hardirq handler or in the softirq run at
  IRQ exit; either way the task then leaves through the exit-to-user path.
- In a syscall a user task may sleep, run a kernel-FPU section, fork, exec,
  exit, or return. Returning either goes straight to user mode (no work
  pending: IRQs stay off from the flags read to user mode, one step) or enters
  the work loop, where IRQs and preemption are enabled, and leaves it through
  the IRQs-off tail (`Design.exit_to_user`).
- Preemption: wherever the code on a CPU is in task context with
  preempt_count == 0 and BH enabled, the scheduler may switch to any runnable
  task. That includes the points between the steps of exec and exit.
- Softirq: wherever BH is enabled in task context (at IRQ exit, or at
  local_bh_enable()). Its kernel-FPU section is two steps, so a hardirq can
  arrive inside it. Hardirq: between any two steps, because IRQ-disabled
  regions never span steps. Both ask `Design.irq_fpu_usable`.
- Context switches, the exit-to-user tail and hardirq handlers run with IRQs
  off and are single steps.
- A runnable task may be picked by any CPU (migration); a sleeping task may be
  woken at any time; a CPU whose task sleeps or dies may go idle.

Every successor is built in a private bytearray copy of the state and frozen
to bytes, so `successors()` is a pure function of its input.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..config import Scenario
from ..errors import InternalError, UsageError
from .context import Probe, Traced
from .design import K_HARDIRQ, Design
from .state import (
    C_XFD,
    C_XFD_STATE,
    C_CTX,
    C_CURR,
    C_FPREGS,
    C_OWNER,
    C_PKRU,
    CPU_W,
    CTX_SOFTIRQ_KFPU,
    CTX_TASK,
    DEAD,
    G_PKRU,
    G_VALUE,
    GARBAGE,
    H_EXECS,
    H_EXITS,
    H_CLOBBERED,
    H_FORKS,
    H_PTRACE,
    H_SIGNALS,
    H_STALE_READ,
    H_XFD_NM,
    HEADER,
    IDLE,
    INIT,
    KERNEL,
    KTHREAD,
    NULL,
    UWORKER,
    PC_DEAD,
    PC_EXIT_LOOP,
    PC_KTHREAD,
    PC_USER,
    PKRU_HW_INIT,
    PKRU_INIT,
    RUNNABLE,
    RUNNING,
    T_CHILD,
    T_CPU,
    T_FPSTATE,
    T_LOCAL,
    T_PC,
    T_PKRU,
    T_RUN,
    T_SIGDEPTH,
    T_FPSTATE_HDR,
    T_SIG_PKRU,
    T_XFD,
    T_XPKRU,
    TASK_W,
    USER,
    GUEST_VERSION,
    XFD_ARMED,
    cpu,
    is_guest_value,
    ghost,
    pkru_of,
    pkru_owner,
    pkru_version,
    task,
    user_value,
    value_owner,
    value_version,
    xinuse,
)

# ---------------------------------------------------------------- actions
USER_WRITE = "user_write"
WRPKRU = "wrpkru"  # arg 0: the program's own keys (toggled); arg 1: WRPKRU(0), PKRU's init state
XRSTOR_USER = "xrstor_user"  # arg: XRSTOR_FPSSE_INIT or XRSTOR_PKRU_INIT, the XSTATE_BV bit left clear
NM_TRAP = "nm_trap"
SYSCALL = "syscall"
IRQ_FROM_USER = "irq_from_user"
HARDIRQ_KFPU_USER = "hardirq_kfpu_user"
SOFTIRQ_KFPU_USER = "softirq_kfpu_user"
HARDIRQ_KFPU = "hardirq_kfpu"
SOFTIRQ_KFPU_BEGIN = "softirq_kfpu_begin"
SOFTIRQ_KFPU_END = "softirq_kfpu_end"
KFPU_BEGIN = "kfpu_begin"
KFPU_END = "kfpu_end"
SYSCALL_EXIT = "syscall_exit"
ENTER_EXIT_LOOP = "enter_exit_loop"
EXIT_TO_USER = "exit_to_user"
PREEMPT = "preempt"
SLEEP = "sleep"
WAKE = "wake"
FORK = "fork"  # arg: child slot + FORK_OUTCOME * outcome of fpu_clone()'s first step; copy_process() and that step
FORK_STEP = "fork_step"  # arg: step of the fork path (copy_thread() -> fpu_clone())
EXEC_STEP = "exec_step"
EXIT_STEP = "exit_step"
TASK_DEAD = "task_dead"
PTRACE_SET = "ptrace_set"  # arg: tracee * PTRACE_KINDS + PTRACE_VALUES / _BOGUS / _PKRU / _PKRU_INIT
PTRACE_GET = "ptrace_get"  # arg: tracee (emitted only when the tracer reads stale state)
FPU_SYNC = "fpu_sync_fpstate"  # a syscall reads current's own state (coredump, fsave header)
SIGNAL_STEP = "signal_step"  # arg: step (+ FAULTED)
SIGRETURN = "sigreturn"  # arg: the path, PATH_SIGRETURN (64-bit frame) or PATH_SIGRETURN_IA32
SIGRETURN_STEP = "sigreturn_step"  # arg: step (+ FAULTED)
SIGRETURN_IA32_STEP = "sigreturn_ia32_step"  # arg: step (+ FAULTED)
SIGFRAME_CORRUPT = "sigframe_corrupt"  # the program scribbles over its top frame's xsave header
FAULTED = 64  # a path step's arg is step + FAULTED * outcome (1: its user-memory access faulted)
FORK_OUTCOME = 256  # above every slot number (the simulator has ~100)
PTRACE_VALUES, PTRACE_BOGUS, PTRACE_PKRU, PTRACE_PKRU_INIT = 0, 1, 2, 3
PTRACE_KINDS = 4
XRSTOR_FPSSE_INIT, XRSTOR_PKRU_INIT = 0, 1
PATH_ACTIONS = (EXEC_STEP, SIGNAL_STEP, SIGRETURN_STEP, SIGRETURN_IA32_STEP, FORK_STEP, EXIT_STEP)
SCHED_SWITCH = "sched_switch"  # the cost simulator's own switch event (sim.sched); no design may take it
SOFTIRQ_SITUATION = -1  # kernel.actions.SOFTIRQ: a softirq in its kernel-FPU section on top of current


class Action(NamedTuple):
    """One step: what happened, on which CPU, with which argument.

    `successors()` emits plain (code, cpu, arg) tuples for speed; traces wrap
    them in this record."""

    code: str
    cpu: int  # NULL for actions not bound to a CPU (wake-ups)
    arg: int  # next task for switches, child slot for fork, step for paths, woken task


class Model(NamedTuple):
    """A design on a scenario: everything the explorer needs."""

    design: Design
    scenario: Scenario
    idle_base: int  # slot of CPU 0's idle task
    runqueue_slots: tuple[int, ...]  # every slot but the idle tasks
    table: object  # the action table (`kernel.actions.Table`): the kernel's events and the design's
    probe: Optional[Probe] = None  # the cost simulator's tracepoint probe; the checker has none

    def idle_of(self, c: int) -> int:
        return self.idle_base + c

    # Display names, as traces print them.
    def name(self, t: int) -> str:
        slots = self.scenario.slots
        if t == NULL:
            return "-"
        if t < slots:
            return "ABCDEFGH"[t]
        if t < slots + self.scenario.kthreads:
            return f"kworker{t - slots}"
        if t < self.idle_base:
            return f"iou-wrk{t - slots - self.scenario.kthreads}"
        return f"swapper/{t - self.idle_base}"

    def value(self, v: int) -> str:
        if v == INIT:
            return "init"
        if v == KERNEL:
            return "kernel-data"
        if v == GARBAGE:
            return "garbage"
        if is_guest_value(v):
            return f"{self.name(value_owner(v))}-guest.{value_version(v) - GUEST_VERSION}"
        return f"{self.name(value_owner(v))}.{value_version(v)}"

    def owner(self, o: int) -> str:
        return "NULL" if o == NULL else f"&{self.name(o)}.fpu"

    def pkru(self, p: int) -> str:
        if p == PKRU_INIT:
            return "init"
        if p == PKRU_HW_INIT:
            return "0"
        if p == NULL:
            return "any"
        return f"{self.name(pkru_owner(p))}-keys" + ("'" if pkru_version(p) else "")


def unsupported(design: Design, scenario: Scenario) -> Optional[str]:
    """Why `design` cannot run `scenario` (its kernel lacks the 5.16+ code a knob models), or None."""
    knobs = [f"--{n}" for n in ("vcpus", "amx", "hotplug") if getattr(scenario, n)]
    if knobs and design.fpu_ext is None:
        return f"design {design.name!r} ({design.kernel}) cannot run {', '.join(knobs)}: {design.no_fpu_ext}"
    return None


def make_model(design: Design, scenario: Scenario, probe: Optional[Probe] = None, extra_events: tuple = ()) -> Model:
    """The model of `design` on `scenario`; `extra_events` are a user's own table entries
    besides the design's (the cost simulator's trace-only scheduler event)."""
    from .actions import KERNEL_TABLE, build_table  # the table's events call back into this module

    why = unsupported(design, scenario)
    if why:
        raise UsageError(why)
    idle_base = scenario.slots + scenario.kthreads + scenario.workers
    extra = tuple(design.extra_events) + tuple(extra_events)
    table = build_table(extra) if extra else KERNEL_TABLE
    return Model(design, scenario, idle_base, tuple(range(idle_base)), table, probe)


# ---------------------------------------------------------------- boot
def initial_state(m: Model) -> bytes:
    """Boot: CPU c runs user task c in user mode with its registers live; the
    other user tasks wait in the exit-to-user loop and the kernel threads are
    runnable, all with their state in memory; spare slots are free; CPUs
    without a user task run their idle task. User worker w belongs to user task
    w % users; its PKRU is the one its kernel's copy_thread() gave it
    (`Design.pf_user_worker`: its owner's, else the init PKRU)."""
    sc, d = m.scenario, m.design
    nt = m.idle_base + sc.cpus
    k = new_vector(m, nt)
    k[H_FORKS], k[H_EXECS], k[H_EXITS] = sc.forks, sc.execs, sc.exits
    k[H_CLOBBERED], k[H_PTRACE] = NULL, sc.ptrace_writes
    k[H_SIGNALS], k[H_STALE_READ], k[H_XFD_NM] = sc.signals, NULL, NULL
    xfd = XFD_ARMED if sc.amx else 0  # init_fpstate.xfd: fpu__init_cpu_xstate() wrote it, xfd_state caches it
    for c in range(sc.cpus):
        k[cpu(c) + C_XFD] = k[cpu(c) + C_XFD_STATE] = xfd
    for t in range(nt):
        p, g = task(k, t), ghost(k, t)
        if t < sc.slots:
            kind = USER
            alive = t < sc.users
        else:
            kind = KTHREAD if t < sc.slots + sc.kthreads else UWORKER if t < m.idle_base else IDLE
            alive = True
        on = NULL
        if kind == USER and alive and t < sc.cpus:
            on = t
        elif kind == IDLE and k[cpu(t - m.idle_base) + C_CURR] == t:
            on = t - m.idle_base
        val = user_value(t, 0) if kind == USER and alive else INIT
        pkru = pkru_of(t) if (kind == USER and alive and d.has_pkru) else PKRU_INIT
        thread_pkru = want_pkru = pkru
        if kind == UWORKER and d.has_pkru and d.pf_user_worker:
            # Made by its owner (a user task) before boot's snapshot: copy_thread() gives it
            # read_pkru(), the owner's live PKRU then, and its uaccess must use exactly those keys.
            owner = (t - sc.slots - sc.kthreads) % sc.users
            thread_pkru, want_pkru = k[task(k, owner) + T_PKRU], k[ghost(k, owner) + G_PKRU]
        if not alive:
            run, pc = DEAD, PC_DEAD
        elif on != NULL:
            run, pc = RUNNING, (PC_USER if kind == USER else PC_KTHREAD)
        else:
            run, pc = RUNNABLE, (PC_EXIT_LOOP if kind == USER else PC_KTHREAD)
        # kind run pc local cpu fpstate last_cpu need fpregs_active fpstate_active counter pkru
        k[p: p + T_SIGDEPTH] = bytes((kind, run, pc, 0, on, val, NULL, 1, 0, 1 if kind == USER else 0, 0, thread_pkru))
        k[g + G_VALUE], k[g + G_PKRU] = val, want_pkru  # no signal frames: the rest stays 0
        k[p + T_FPSTATE_HDR], k[p + T_XPKRU], k[p + T_SIG_PKRU], k[p + T_CHILD] = xinuse(val, pkru), pkru, NULL, NULL
        if kind == USER:  # fpstate_reset(): xfd = init_fpstate.xfd; a guest fpstate's xfd is 0 (its RESET value)
            k[p + T_XFD] = xfd
        if kind == USER and on != NULL:
            set_running_user(k, on, t)
        if alive:
            d.boot_task(k, t, on if kind == USER else NULL)
    for c in range(sc.cpus):
        d.boot_cpu(k, c)
    return bytes(k)


def new_vector(m: Model, nt: int) -> bytearray:
    """A zeroed state vector for m's CPUs and `nt` task slots, every CPU running its idle
    task with init registers, no owner and the init PKRU (the task records are the caller's)."""
    ncpus = m.scenario.cpus
    tb = HEADER + ncpus * CPU_W
    if tb > 255 or nt > 254:
        raise InternalError(f"a state vector holds at most 27 CPUs and 254 task slots, not {ncpus} and {nt}")
    if m.probe is None:
        k = bytearray(tb + nt * TASK_W)
    else:  # a working copy that fires the model's probe (context.Traced)
        k = Traced(tb + nt * TASK_W)
        k.probe = m.probe
    k[0], k[1] = tb, nt
    for c in range(ncpus):
        k[cpu(c): cpu(c) + 5] = bytes((INIT, NULL, PKRU_INIT, m.idle_of(c), CTX_TASK))  # the rest stays 0
    return k


def set_running_user(k: bytearray, c: int, t: int) -> None:
    """Task t runs in user mode on CPU c with its memory image live in the registers (boot,
    and a trace's first record of a task already running): owner, registers and PKRU are its."""
    p, q = task(k, t), cpu(c)
    k[p + T_RUN], k[p + T_CPU], k[p + T_PC] = RUNNING, c, PC_USER
    k[q + C_CURR], k[q + C_FPREGS], k[q + C_OWNER], k[q + C_PKRU] = t, k[p + T_FPSTATE], t, k[p + T_PKRU]


# ---------------------------------------------------------------- helpers
UNTRACKED = user_value(0, 0)  # every program's data when contents are not tracked (Scenario.values 0)


def next_user_value(m: Model, t: int, current: int) -> int:
    """What a user FPU write produces: the next version of t's own data (with `values` 0, the
    cost simulator's machine, which counts instructions and tracks no contents: one token)."""
    values = m.scenario.values
    if not values:
        return UNTRACKED
    if value_owner(current) == t:
        return user_value(t, (value_version(current) + 1) % values)
    return user_value(t, 0)


def context_switch(m: Model, k: bytearray, c: int, prev: int, nxt: int, prev_run: int) -> None:
    """__schedule() -> context_switch() -> __switch_to(): IRQs off, one step."""
    m.design.switch_fpu(k, c, prev, nxt)
    tb = k[0]
    p, n = tb + prev * TASK_W, tb + nxt * TASK_W
    k[p + T_RUN], k[p + T_CPU] = prev_run, NULL
    k[n + T_RUN], k[n + T_CPU] = RUNNING, c
    k[HEADER + c * CPU_W + C_CURR] = nxt


def enter_exit_loop(m: Model, k: bytearray, c: int, t: int) -> None:
    """IRQs off, read the work flags (the snapshot a stale design keeps), enter the loop."""
    p = task(k, t)
    k[p + T_LOCAL] = m.design.exit_to_user_snapshot(k, c, t)
    k[p + T_PC] = PC_EXIT_LOOP


def exit_to_user(m: Model, k: bytearray, c: int, t: int, snapshot: int) -> None:
    """The IRQs-off tail of the return path; ends in user mode."""
    m.design.exit_to_user(k, c, t, snapshot)
    p = task(k, t)
    k[p + T_PC], k[p + T_LOCAL] = PC_USER, 0


# ---------------------------------------------------------------- successors
def successors(m: Model, s: bytes) -> list[tuple[tuple, bytes]]:
    """Every enabled action and its successor, in a fixed deterministic order: per CPU the
    action table's events for the situation of its current task (`kernel.actions`), then
    the events not bound to a CPU."""
    out: list[tuple[tuple, bytes]] = []
    append = out.append
    at = m.table.at
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        where = SOFTIRQ_SITUATION if s[q + C_CTX] == CTX_SOFTIRQ_KFPU else s[tb + t * TASK_W + T_PC]
        for outcomes, apply in at[where]:
            for code, arg in outcomes(m, s, c, t):  # each outcome in a private copy
                k = bytearray(s)
                apply(m, k, c, t, code, arg)
                append(((code, c, arg), bytes(k)))
    for outcomes, apply in m.table.global_at:
        for code, arg in outcomes(m, s, NULL, NULL):
            k = bytearray(s)
            apply(m, k, NULL, NULL, code, arg)
            append(((code, NULL, arg), bytes(k)))
    return out


def runnable(m: Model, s: bytes) -> list[int]:
    """The runqueue: tasks a switch may pick (the running ones are never in it)."""
    tb = s[0]
    return [t for t in m.runqueue_slots if s[tb + t * TASK_W + T_RUN] == RUNNABLE]



def hardirq_kfpu(d: Design, k: bytearray, c: int) -> None:
    """A hardirq handler's kernel_fpu_begin() ... kernel_fpu_end(): IRQs off, one step."""
    d.kernel_fpu_begin(k, c, K_HARDIRQ)
    d.kernel_fpu_end(k, c, K_HARDIRQ)
