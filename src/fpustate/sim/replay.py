"""Replay workload operations through one design's hooks, counting what its FPU code does.

One semantics, two engines: the checker explores every interleaving of the
kernel model (`fpustate.kernel.machine`); this engine follows one schedule,
the trace's, through the *same* state vector, the same machine helpers
(`context_switch`, `enter_exit_loop`, `exit_to_user`) and the same `Design`
hooks. What the hooks execute is counted through the model's tracepoints
(`Model.probe`, carried by the replay's state vector): every XSAVE, XRSTOR, lazy-restore skip, #NM trap
and CR0.TS write, each charged by the cost profile with the live state of
the task concerned.

Task slots are a pool (`sim.pool`); the probe that counts and charges is `sim.meter`.
"""

from __future__ import annotations

from typing import Optional

from ..config import Scenario
from ..errors import InternalError, UsageError
from ..kernel.design import K_SOFTIRQ, K_TASK, Design
from ..kernel.machine import context_switch, enter_exit_loop, exit_to_user, make_model, new_vector, set_running_user
from ..kernel.paths import copy_process, run_path
from ..kernel.state import (
    C_CTX,
    C_CURR,
    C_FPREGS,
    CPU_W,
    CTX_TASK,
    DEAD,
    G_VALUE,
    GHOST_OFF,
    HEADER,
    IDLE,
    MAX_SIGFRAMES,
    NULL,
    PATH_EXEC,
    PATH_EXIT,
    PATH_SIGNAL,
    PATH_SIGRETURN,
    PC_EXIT_LOOP,
    PC_GUEST,
    PC_KTHREAD,
    PC_KVM_RUN,
    PC_SYSCALL,
    PC_USER,
    PKRU_INIT,
    RUNNABLE,
    RUNNING,
    SLEEPING,
    T_CPU,
    T_KIND,
    T_LAST_CPU,
    T_LOCAL,
    T_NEED_LOAD,
    T_PC,
    T_RUN,
    T_SIGDEPTH,
    T_SIGFRAME,
    T_SIGFRAME_HDR,
    xinuse,
    TASK_W,
    USER,
    ghost,
    path_pc,
    task,
)
from . import ops as O
from .costs import Profile
from .meter import Meter
from .pool import USER_DATA, TaskPool
from .replay_kvm import KvmReplay
POOL = 96  # task slots besides the per-CPU idle tasks
DECISIONS = ("switch", "return", "signal", "vm_entry")  # conformance decision kinds


def _untraced(op: str, c: int, t: int) -> None:
    return None


class Replay(TaskPool, Meter, KvmReplay):
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
        self.m = make_model(design, Scenario.for_simulation(ncpus, pool), probe=self)
        self.ncpus = ncpus
        m = self.m
        nt = m.idle_base + ncpus
        if HEADER + ncpus * CPU_W > 255:
            raise UsageError(f"the simulator models at most 27 CPUs, not {ncpus}")
        k = self.k = new_vector(m, nt)
        k.probe = _untraced  # boot is not part of the trace: nothing is counted until it is done
        for t in range(nt):
            p = task(k, t)
            if t < m.idle_base:
                k[p + T_KIND], k[p + T_RUN], k[p + T_PC] = USER, DEAD, 0
            else:
                c = t - m.idle_base
                k[p + T_KIND], k[p + T_RUN], k[p + T_PC], k[p + T_CPU] = IDLE, RUNNING, PC_KTHREAD, c
            k[p + T_LAST_CPU], k[p + T_NEED_LOAD] = NULL, 1
            if t >= m.idle_base:
                design.boot_task(k, t, NULL)
        for c in range(ncpus):
            design.boot_cpu(k, c)
        self.amx = False
        if amx:
            self.boot_amx()
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
        self._no_snapshot = not design.stale_snapshot  # only stale-snapshot designs decide from one
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

    def _leave_user(self, c: int, t: int, preempted: bool) -> None:
        """Current t stops running user code: an interrupt (ending in the work loop) or a syscall."""
        p = task(self.k, t)
        pc = self.k[p + T_PC]
        if pc == PC_USER:
            if preempted:
                enter_exit_loop(self.m, self.k, c, t)
            else:
                self.k[p + T_PC] = PC_SYSCALL
        elif pc == PC_KVM_RUN or pc == PC_GUEST:  # a signal, exec or exit: KVM_RUN returns first
            self._kvm_put(c, t)

    def _to_user(self, c: int, t: int) -> None:
        """The return to user mode: the design's IRQs-off tail (after the work loop or a syscall)."""
        k = self.k
        p = task(k, t)
        pc = k[p + T_PC]
        if pc == PC_USER or k[p + T_KIND] != USER:
            return
        if pc == PC_KVM_RUN or pc == PC_GUEST:  # back to user mode: KVM_RUN returned (kvm_put_guest_fpu)
            self._kvm_put(c, t)
        if pc == PC_EXIT_LOOP:
            snapshot = k[p + T_LOCAL]
        else:  # the syscall's exit takes its flags snapshot and leaves at once
            snapshot = 0 if self._no_snapshot else self.design.exit_to_user_snapshot(k, c, t)
        exit_to_user(self.m, k, c, t, snapshot)

    def _switch_in(self, c: int, nxt: int, prev_state: int) -> bool:
        """context_switch() from CPU c's current to slot nxt; returns whether prev was saved."""
        k, m = self.k, self.m
        tb = k[0]
        prev = k[HEADER + c * CPU_W + C_CURR]
        pn = tb + nxt * TASK_W
        other = k[pn + T_CPU]
        if other != NULL and other != c:  # the trace missed nxt's switch-out elsewhere
            self.synthesized += 1
            idle = m.idle_of(other)
            if k[tb + idle * TASK_W + T_CPU] not in (NULL, other):  # so the call below cannot recurse
                raise InternalError(f"{self.name}: CPU {other}'s idle task runs on another CPU")
            self._switch_in(other, idle, O.PREV_RUNNABLE)
        if nxt == prev:
            return False
        pp = tb + prev * TASK_W
        kind = k[pp + T_KIND]
        if kind == USER:
            if k[pp + T_PC] == PC_USER:
                self._leave_user(c, prev, prev_state == O.PREV_RUNNABLE)
            elif k[pp + T_PC] == PC_GUEST:  # the interrupt that leads to the switch is a VM exit first
                self._vm_exit(c, prev)
            if prev_state == O.PREV_DEAD and k[pp + T_PC] < EXIT_PC:
                self._run_path(c, prev, PATH_EXIT)  # the trace showed the death, not the exit
        run = RUN_STATE[prev_state] if kind != IDLE else RUNNABLE
        counts = self.counts
        before = counts["saves"]
        if k[pn + T_RUN] >= SLEEPING:  # SLEEPING or DEAD: it is being run, so it was woken
            k[pn + T_RUN] = RUNNABLE
        context_switch(m, k, c, prev, nxt, run)
        if run == DEAD:
            self._release(prev)
        return counts["saves"] > before

    def _run_path(self, c: int, t: int, path: int) -> None:
        run_path(self.m, self.k, c, t, path)

    def op_switch(self, op: O.Op) -> None:
        c = op.cpu
        nxt = self.slot_of.get(op.pid) if op.pid else None
        if nxt is None:
            nxt = self.slot(op.pid, op.kind, c)
        k = self.k
        prev = k[HEADER + c * CPU_W + C_CURR]
        prev_pid = self.pid_of[prev]
        prev_user = k[k[0] + prev * TASK_W + T_KIND] == USER
        saved = self._switch_in(c, nxt, op.arg)
        if self.conformance and prev_user and prev_pid is not None and op.kernel != O.UNKNOWN:
            self._decided("switch", op, saved, prev_pid)

    def op_return(self, op: O.Op) -> None:
        c = op.cpu
        k = self.k
        t = k[HEADER + c * CPU_W + C_CURR]
        p = k[0] + t * TASK_W
        if k[p + T_KIND] != USER:
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
            if self.design.user_fpu_accessible(k, c):
                k[HEADER + c * CPU_W + C_FPREGS] = k[p + GHOST_OFF + G_VALUE] = USER_DATA
            else:
                self._use(c, t)

    def _use(self, c: int, t: int) -> None:
        k, d = self.k, self.design
        p = task(k, t)
        if k[p + T_KIND] != USER:
            return
        if k[p + T_PC] != PC_USER:
            self._to_user(c, t)
        if not d.user_fpu_accessible(k, c):
            d.do_device_not_available(k, c, t)
            enter_exit_loop(self.m, k, c, t)
            self._to_user(c, t)
        k[HEADER + c * CPU_W + C_FPREGS] = k[ghost(k, t) + G_VALUE] = USER_DATA

    def op_use(self, op: O.Op) -> None:
        self._use(op.cpu, self.current(op.cpu))

    def op_kfpu(self, op: O.Op) -> None:
        c, k, d = op.cpu, self.k, self.design
        t = self.current(c)
        p = task(k, t)
        from_user = k[p + T_PC] == PC_USER
        ctx = op.arg
        if k[p + T_PC] == PC_GUEST:  # an interrupt in guest mode is a VM exit first
            self._vm_exit(c, t)
        if ctx == K_TASK:
            if from_user:  # (in KVM_RUN it is KVM's own code: the vCPU thread stays in the ioctl)
                self._leave_user(c, t, False)
            from_user = False
        if not d.irq_fpu_usable(k, c, ctx, from_user):
            return
        self.in_kfpu = True
        try:
            if ctx == K_SOFTIRQ:
                k[HEADER + c * CPU_W + C_CTX] = 1
            d.kernel_fpu_begin(k, c, ctx)
            d.kernel_fpu_end(k, c, ctx)
            k[HEADER + c * CPU_W + C_CTX] = CTX_TASK
        finally:
            self.in_kfpu = False
        if from_user:  # the interrupt returns to user mode through the exit path
            enter_exit_loop(self.m, k, c, t)
            self._to_user(c, t)

    def op_fork(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        parent = self.current(c)
        if op.kind != USER or k[task(k, parent) + T_KIND] != USER:
            self.slot(op.pid, op.kind, c)  # a kernel thread: a fresh record, nothing to copy
            return
        if op.pid == 0:  # sim.infer rejects it: slot() maps pid 0 to the idle task
            raise InternalError("fork of pid 0: the idle task cannot be a fork child")
        self._leave_user(c, parent, False)
        child = self.slot(op.pid, USER, c)
        copy_process(self.m, k, c, parent, child)
        if parent in self.xfeatures:
            self.xfeatures[child] = self.xfeatures[parent]

    def op_exec(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        if k[task(k, t) + T_KIND] != USER:
            return
        self._leave_user(c, t, False)
        k[task(k, t) + T_SIGDEPTH] = 0
        self._run_path(c, t, PATH_EXEC)

    def op_exit(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if k[p + T_KIND] != USER or k[p + T_PC] >= path_pc(PATH_EXIT, 0):
            return
        self._leave_user(c, t, False)
        self._run_path(c, t, PATH_EXIT)

    def op_signal(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if k[p + T_KIND] != USER:
            return
        self._leave_user(c, t, True)
        if k[p + T_PC] == PC_SYSCALL:
            enter_exit_loop(self.m, k, c, t)
        if k[p + T_SIGDEPTH] >= MAX_SIGFRAMES:
            k[p + T_SIGDEPTH] = MAX_SIGFRAMES - 1  # the simulator keeps the newest frames only
        before = self.counts["restores"]
        self._run_path(c, t, PATH_SIGNAL)
        if self.conformance and op.kernel != O.UNKNOWN:
            self._decided("signal", op, self.counts["restores"] > before, self.pid_of[t])
        k[p + T_SIGDEPTH] += 1
        enter_exit_loop(self.m, k, c, t)
        self._to_user(c, t)

    def op_sigreturn(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if k[p + T_KIND] != USER:
            return
        self._leave_user(c, t, False)
        if k[p + T_SIGDEPTH] == 0:  # a frame set up before the trace began
            k[p + T_SIGDEPTH], k[p + T_SIGFRAME], k[p + T_SIGFRAME_HDR] = 1, USER_DATA, xinuse(USER_DATA, PKRU_INIT)
        self._run_path(c, t, PATH_SIGRETURN)
        k[p + T_SIGDEPTH] -= 1
        self._to_user(c, t)

    def op_ptrace_set(self, op: O.Op) -> None:
        t = self.slot_of.get(op.pid)
        if t is None or self.k[task(self.k, t) + T_CPU] != NULL:
            return  # PTRACE_SETREGSET needs a stopped tracee
        self.design.xstateregs_set(self.k, t, USER_DATA, xinuse(USER_DATA, PKRU_INIT), NULL)

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
RUN_STATE = {O.PREV_RUNNABLE: RUNNABLE, O.PREV_BLOCKED: SLEEPING, O.PREV_DEAD: DEAD}
EXIT_PC = path_pc(PATH_EXIT, 0)
