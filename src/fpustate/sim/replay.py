"""Replay workload operations through one design, counting what its FPU code does.

One semantics, two engines: the checker explores every interleaving of the kernel model;
this engine follows one schedule, the trace's, through the *same* action table
(`kernel.actions`): each operation is the sequence of table events the kernel runs for it
(a syscall entry, the steps of exec, a preemption, the exit-to-user tail), each applied
with `actions.apply_action` to the replay's own state vector, on the outcome the trace
shows (no page faults, no interleaving inside a path). What the hooks execute is counted
through the model's tracepoints (`Model.probe`, carried by the replay's state vector):
every XSAVE, XRSTOR, lazy-restore skip, #NM trap and CR0.TS write, each charged by the cost
profile with the live state of the task concerned.

What is not a kernel event is the trace's bookkeeping, done here: task slots (`sim.pool`),
a trace's first record of a running task (`op_boot`, machine.set_running_user), a signal
frame set up before the trace began, the budgets the checker's scenarios ration (a trace
has none). Switches are `sim.sched`; the probe that counts and charges is `sim.meter`.
"""

from __future__ import annotations

from typing import Optional

from ..config import Scenario
from ..errors import InternalError, UsageError
from ..kernel import machine as M
from ..kernel.actions import apply_action
from ..kernel.design import K_SOFTIRQ, K_TASK, Design
from ..kernel.machine import initial_state, make_model, new_vector, set_running_user
from ..kernel.state import (
    C_CURR,
    CPU_W,
    H_EXECS,
    H_EXITS,
    H_FORKS,
    H_PTRACE,
    H_SIGNALS,
    HEADER,
    MAX_SIGFRAMES,
    NULL,
    PATH_BASE,
    PATH_SIGRETURN,
    PC_EXIT_LOOP,
    PC_GUEST,
    PC_KTHREAD,
    PC_KVM_RUN,
    PC_SYSCALL,
    PC_USER,
    PKRU_INIT,
    RUNNABLE,
    SLEEPING,
    T_CPU,
    T_KIND,
    T_PC,
    T_RUN,
    T_SIGDEPTH,
    T_SIGFRAME,
    T_SIGFRAME_HDR,
    xinuse,
    TASK_W,
    USER,
    pc_path,
    pc_step,
    task,
)
from ..kernel.paths import free_slot, path_steps
from . import ops as O
from .costs import Profile
from .meter import Meter
from .pool import USER_DATA, TaskPool
from .replay_kvm import KvmReplay
from .sched import EXIT_PC, SIM_EVENTS, Scheduler

POOL = 96  # task slots besides the per-CPU idle tasks
DECISIONS = ("switch", "return", "signal", "vm_entry")  # conformance decision kinds
ENTRY = {M.EXEC_STEP: H_EXECS, M.EXIT_STEP: H_EXITS, M.SIGNAL_STEP: H_SIGNALS}  # path entry -> its budget


class Replay(TaskPool, Meter, Scheduler, KvmReplay):
    """One design on one machine, fed operation by operation; also the tracepoint probe.
    With `amx`, MSR_IA32_XFD is armed on every CPU and in every user task's fpstate (an AMX
    machine, 5.16+); the KVM and AMX operations are in `sim.replay_kvm`."""

    def __init__(self, design: Design, ncpus: int, profile: Profile, conformance: bool = False,
                 pool: int = POOL, amx: bool = False) -> None:
        self.name = design.name
        self.origin = design  # the design as given (fpustate.usercode blames a failing user design)
        design = design.simulation or design
        self.design = design
        self.profile = profile
        sc = Scenario.for_simulation(ncpus, pool, kvm=design.fpu_ext is not None, amx=amx)
        self.m = make_model(design, sc, probe=self, extra_events=SIM_EVENTS)
        self.ncpus = ncpus
        m = self.m
        nt = m.idle_base + ncpus
        if HEADER + ncpus * CPU_W > 255:
            raise UsageError(f"the simulator models at most 27 CPUs, not {ncpus}")
        # Boot is machine.initial_state with every task slot free, run without the probe (boot
        # is not part of the trace: nothing is counted until it is done). With `amx`, the
        # scenario arms MSR_IA32_XFD on every CPU (fpu__init_cpu_xstate()).
        k = self.k = new_vector(m, nt)
        k[:] = initial_state(m._replace(probe=None))
        self.amx = amx
        k.probe = self
        self.slot_of: dict[int, int] = {}
        self.pid_of: list[Optional[int]] = [None] * nt
        self.parked: dict[int, bytes] = {}
        self.free = list(range(m.idle_base - 1, -1, -1))
        self.xfeatures: dict[int, int] = {}  # slot -> XSTATE_BV of its live state
        self.init_meter(profile)
        self.in_kfpu = False
        self.conformance = conformance
        self.tally = {kind: [0, 0] for kind in DECISIONS}  # kind -> [agreed, decided]
        self.disagreements: list[tuple] = []
        self.synthesized = 0  # operations the trace implied but did not show (missed switches)
        self.traced_switches = 0  # switches the model's scheduler never makes (sim.sched)
        self._handlers = [getattr(self, name) for name in HANDLER_NAMES]

    # ------------------------------------------------------------ operations
    def apply(self, op: O.Op) -> None:
        """Run one operation; the model's tracepoints fire this replay (its state carries it)."""
        self._handlers[op[0]](op)

    def _decided(self, kind: str, op: O.Op, model: bool, pid: int) -> None:
        """Compare the model's decision with the kernel's (conformance)."""
        tally = self.tally[kind]
        tally[1] += 1
        if model == op.kernel:  # kernel is 0 or 1
            tally[0] += 1
        elif len(self.disagreements) < 1000:
            self.disagreements.append((op.line, kind, pid, op.kernel, int(model)))

    def user_program(self, t: int) -> bool:
        """t runs a user program that has not exited: what a trace's user-level operation needs
        (an exiting task, still switched in and out until do_task_dead(), never returns)."""
        p = task(self.k, t)
        return self.k[p + T_KIND] == USER and self.k[p + T_PC] < EXIT_PC

    def leave_user(self, c: int, t: int, preempted: bool) -> None:
        """Current t stops running user code: an interrupt (ending in the work loop) or a syscall."""
        pc = self.k[task(self.k, t) + T_PC]
        if pc == PC_USER:
            self._act(M.IRQ_FROM_USER if preempted else M.SYSCALL, c)
        elif pc == PC_KVM_RUN or pc == PC_GUEST:  # a signal, exec or exit: KVM_RUN returns first
            self._kvm_put(c, t)

    def enter_syscall(self, c: int, t: int) -> None:
        """Current t makes a syscall. From the work loop that is after a return to user mode the
        trace did not show (it restored nothing, so no x86_fpu event marks it): that return first."""
        pc = self.k[task(self.k, t) + T_PC]
        if pc == PC_EXIT_LOOP:
            self._to_user(c, t)
        self.leave_user(c, t, False)

    def _to_user(self, c: int, t: int) -> None:
        """The return to user mode: the design's IRQs-off tail (after the work loop or a syscall)."""
        k = self.k
        p = task(k, t)
        pc = k[p + T_PC]
        if pc == PC_USER or not self.user_program(t):
            return
        if pc == PC_KVM_RUN or pc == PC_GUEST:  # back to user mode: KVM_RUN returned (kvm_put_guest_fpu)
            self._kvm_put(c, t)
        self._act(M.EXIT_TO_USER if k[p + T_PC] == PC_EXIT_LOOP else M.SYSCALL_EXIT, c)

    def _run_path(self, c: int, t: int, entry: Optional[str]) -> None:
        """A multi-step path from its entry event to its end, every step fault-free, nothing
        in between (the trace shows no interleaving inside it); exit stops before do_task_dead()."""
        k = self.k
        if entry is not None:  # (fork and sigreturn enter by their own events)
            k[ENTRY[entry]] = 1  # a trace is not budgeted: every path it shows may run
            self._act(entry, c)
        p = task(k, t)
        while k[p + T_PC] >= PATH_BASE:
            pc = k[p + T_PC]
            path, step = pc_path(pc), pc_step(pc)
            if step >= len(path_steps(self.design, path)):  # exit's end: do_task_dead() comes at the switch
                return
            self._act(M.PATH_ACTIONS[path], c, step)

    def op_return(self, op: O.Op) -> None:
        c = op.cpu
        k = self.k
        t = k[HEADER + c * CPU_W + C_CURR]
        p = k[0] + t * TASK_W
        if not self.user_program(t):
            return
        if k[p + T_PC] != PC_USER:
            counts = self.counts
            before = counts["restores"]
            self._to_user(c, t)
            if self.conformance and op.kernel != O.UNKNOWN:
                self._decided("return", op, counts["restores"] > before, self.pid_of[t])
        elif self.conformance and op.kernel != O.UNKNOWN:
            self._decided("return", op, False, self.pid_of[t])
        if op.arg:
            self._use(c, t)

    def _use(self, c: int, t: int) -> None:
        """The program executes FPU instructions: user_write, after the #NM a CR0.TS design takes."""
        k = self.k
        if not self.user_program(t):
            return
        self._to_user(c, t)
        if not apply_action(self.m, k, M.USER_WRITE, c):
            self._act(M.NM_TRAP, c)
            self._to_user(c, t)
            self._act(M.USER_WRITE, c)

    def op_use(self, op: O.Op) -> None:
        self._use(op.cpu, self.current(op.cpu))

    def op_kfpu(self, op: O.Op) -> None:
        """kernel_fpu_begin() .. kernel_fpu_end() in the context the trace shows, if the design's
        irq_fpu_usable() lets it (the table's kfpu events ask it)."""
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if k[p + T_PC] == PC_GUEST:  # an interrupt in guest mode is a VM exit first
            self._vm_exit(c, t)
        ctx = op.arg
        from_user = k[p + T_PC] == PC_USER
        self.in_kfpu = True
        try:
            if ctx == K_TASK:
                if from_user:
                    self.enter_syscall(c, t)
                if k[p + T_PC] in (PC_SYSCALL, PC_KTHREAD):
                    if apply_action(self.m, k, M.KFPU_BEGIN, c):
                        self._act(M.KFPU_END, c)
                    return
                # Elsewhere (KVM's run loop, the work loop, do_exit() after fpu__drop()) the table
                # has no task-context section: the model lets only interrupts use the FPU there.
                # Replayed as a softirq's, the same kernel_fpu_begin_mask() / kernel_fpu_end() (once
                # on the shipped traces: pipe_pingpong_threads line 7200, an exiting task's).
                ctx = K_SOFTIRQ
            if ctx == K_SOFTIRQ:
                if not apply_action(self.m, k, M.SOFTIRQ_KFPU_USER if from_user else M.SOFTIRQ_KFPU_BEGIN, c):
                    return
                self._act(M.SOFTIRQ_KFPU_END, c)
            elif not apply_action(self.m, k, M.HARDIRQ_KFPU_USER if from_user else M.HARDIRQ_KFPU, c):
                return
        finally:
            self.in_kfpu = False
        if from_user:  # the interrupt returns to user mode through the exit path
            self._to_user(c, t)

    def op_fork(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        parent = self.current(c)
        if op.kind != USER or k[task(k, parent) + T_KIND] != USER:
            self.slot(op.pid, op.kind, c)  # a kernel thread: a fresh record, nothing to copy
            return
        if not self.user_program(parent):
            return  # (a crafted trace: a task inside exit cannot fork)
        if op.pid == 0:  # sim.infer rejects it: slot() maps pid 0 to the idle task
            raise InternalError("fork of pid 0: the idle task cannot be a fork child")
        self.enter_syscall(c, parent)
        if free_slot(self.m, k) == NULL:
            self._park_one()
        child = free_slot(self.m, k)  # the lowest dead slot, as the table's fork picks it
        self.claim(op.pid, child)
        k[H_FORKS] = 1  # a trace is not budgeted
        self._act(M.FORK, c, child)
        self._run_path(c, parent, None)
        if parent in self.xfeatures:
            self.xfeatures[child] = self.xfeatures[parent]

    def op_exec(self, op: O.Op) -> None:
        c = op.cpu
        t = self.current(c)
        if not self.user_program(t) or not self.design.exec_steps:
            return  # (a design may have no exec code of its own: the checker never runs its exec either)
        self.enter_syscall(c, t)
        self._run_path(c, t, M.EXEC_STEP)

    def op_exit(self, op: O.Op) -> None:
        c = op.cpu
        t = self.current(c)
        if not self.user_program(t):
            return
        self.enter_syscall(c, t)
        self._run_path(c, t, M.EXIT_STEP)

    def op_signal(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if not self.user_program(t):
            return
        self.leave_user(c, t, True)
        if k[p + T_PC] == PC_SYSCALL:
            self._act(M.ENTER_EXIT_LOOP, c)
        if k[p + T_SIGDEPTH] >= MAX_SIGFRAMES:
            k[p + T_SIGDEPTH] = MAX_SIGFRAMES - 1  # the simulator keeps the newest frames only
        before = self.counts["restores"]
        self._run_path(c, t, M.SIGNAL_STEP)
        if self.conformance and op.kernel != O.UNKNOWN:
            self._decided("signal", op, self.counts["restores"] > before, self.pid_of[t])
        self._to_user(c, t)

    def op_sigreturn(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if not self.user_program(t):
            return
        self._to_user(c, t)  # rt_sigreturn() is a syscall from user mode
        if k[p + T_SIGDEPTH] == 0:  # a frame set up before the trace began
            k[p + T_SIGDEPTH], k[p + T_SIGFRAME], k[p + T_SIGFRAME_HDR] = 1, USER_DATA, xinuse(USER_DATA, PKRU_INIT)
        self._act(M.SIGRETURN, c, PATH_SIGRETURN)
        self._run_path(c, t, None)
        self._to_user(c, t)

    def op_ptrace_set(self, op: O.Op) -> None:
        """PTRACE_SETREGSET of new register values, if the tracee is stopped (blocked)."""
        t = self.slot_of.get(op.pid)
        if t is None or self.k[task(self.k, t) + T_RUN] != SLEEPING:
            return  # PTRACE_SETREGSET needs a stopped tracee
        self.k[H_PTRACE] = 1  # a trace is not budgeted
        self._act(M.PTRACE_SET, NULL, M.PTRACE_KINDS * t + M.PTRACE_VALUES)

    def op_migrate(self, op: O.Op) -> None:
        """sched_migrate_task has no FPU effect of its own: where the task runs next shows at
        its switch (sim.infer synthesizes the slice a trace did not record)."""

    def op_xfeatures(self, op: O.Op) -> None:
        """The XSTATE_BV a trace showed for pid's state (charged on its later saves and restores)."""
        t = self.slot_of.get(op.pid)
        if t is not None:
            self.xfeatures[t] = op.arg

    def op_boot(self, op: O.Op) -> None:
        """The trace starts with pid running on this CPU in user mode, its registers live here:
        the boot machine.initial_state gives a running user task (owner, registers, PKRU, then
        the design's boot_task and boot_cpu hooks); the idle task leaves the CPU."""
        c, k = op.cpu, self.k
        t = self.slot(op.pid, USER, c)
        idle = self.current(c)
        k[task(k, idle) + T_RUN], k[task(k, idle) + T_CPU] = RUNNABLE, NULL
        set_running_user(k, c, t)
        self.design.boot_task(k, t, c)
        self.design.boot_cpu(k, c)



HANDLER_NAMES = tuple("op_" + name for name in O.NAMES)  # indexed by operation code

