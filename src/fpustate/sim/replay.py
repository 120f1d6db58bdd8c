"""Replay workload operations through one design's hooks, counting what its FPU code does.

One semantics, two engines: the checker explores every interleaving of the
kernel model (`fpustate.kernel.machine`); this engine follows one schedule,
the trace's, through the *same* state vector, the same machine helpers
(`context_switch`, `enter_exit_loop`, `exit_to_user`) and the same `Design`
hooks. What the hooks execute is counted through the model's tracepoints
(`kernel.context.PROBE`): every XSAVE, XRSTOR, lazy-restore skip, #NM trap
and CR0.TS write, each charged by the cost profile with the live state of
the task concerned.

Task slots are a pool. A pid gets a slot the first time it is seen and
gives it back when it dies; when the pool is full, a task that is neither
running nor named by any CPU's fpu_fpregs_owner_ctx is parked (its record
copied out), which is exact: nothing in the kernel model refers to it.
Memory therefore depends on the number of live tasks, not on trace length.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from ..config import Scenario
from ..errors import UsageError
from ..kernel.design import K_SOFTIRQ, K_TASK, Design
from ..kernel import context
from ..kernel.machine import (
    context_switch,
    copy_process,
    enter_exit_loop,
    exit_to_user,
    make_model,
    path_step,
    path_steps,
)
from ..kernel.state import (
    C_CTX,
    C_CURR,
    C_FPREGS,
    C_OWNER,
    CPU_W,
    CTX_TASK,
    DEAD,
    G_PKRU,
    G_VALUE,
    GHOST_OFF,
    HEADER,
    IDLE,
    INIT,
    MAX_SIGFRAMES,
    NULL,
    PATH_EXEC,
    PATH_EXIT,
    PATH_SIGNAL,
    PATH_SIGRETURN,
    PC_EXIT_LOOP,
    PC_KTHREAD,
    PC_SYSCALL,
    PC_USER,
    PKRU_INIT,
    RUNNABLE,
    RUNNING,
    SLEEPING,
    T_CPU,
    T_FPSTATE,
    T_FPSTATE_ACTIVE,
    T_KIND,
    T_LAST_CPU,
    T_LOCAL,
    T_NEED_LOAD,
    T_PC,
    T_PKRU,
    T_RUN,
    T_SIGDEPTH,
    T_SIGFRAME,
    T_SIGFRAME_HDR,
    T_FPSTATE_HDR,
    T_SIG_PKRU,
    T_XPKRU,
    xinuse,
    TASK_W,
    USER,
    cpu,
    ghost,
    path_pc,
    task,
    user_value,
)
from . import ops as O
from .costs import Profile

USER_DATA = user_value(0, 0)  # register contents are not tracked by the simulator: one token for all
POOL = 96  # task slots besides the per-CPU idle tasks
COUNTERS = ("saves", "kfpu_saves", "restores", "restores_skipped", "init_loads", "sigframe_saves",
            "sigframe_restores", "nm_traps", "cr0_writes")
DECISIONS = ("switch", "return", "signal")  # conformance decision kinds


class Replay:
    """One design on one machine, fed operation by operation; also the tracepoint probe."""

    def __init__(self, design: Design, ncpus: int, profile: Profile, conformance: bool = False,
                 pool: int = POOL) -> None:
        self.name = design.name
        design = design.simulation or design
        self.design = design
        self.profile = profile
        self.m = make_model(design, Scenario.for_simulation(ncpus, pool))
        self.ncpus = ncpus
        m = self.m
        nt = m.idle_base + ncpus
        tb = HEADER + ncpus * CPU_W
        if tb > 255:
            raise UsageError(f"the simulator models at most 27 CPUs, not {ncpus}")
        k = self.k = bytearray(tb + nt * TASK_W)
        k[0], k[1] = tb, nt
        for c in range(ncpus):
            k[cpu(c): cpu(c) + CPU_W] = bytes((INIT, NULL, PKRU_INIT, m.idle_of(c), CTX_TASK, 0, 0, 0, 0))
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
        self.slot_of: dict[int, int] = {}
        self.pid_of: list[Optional[int]] = [None] * nt
        self.parked: dict[int, bytes] = {}
        self.free = list(range(m.idle_base - 1, -1, -1))
        self.xfeatures: dict[int, int] = {}  # slot -> XSTATE_BV of its live state
        self.counts = Counter({name: 0 for name in COUNTERS})
        self.cycles = 0.0
        self.in_kfpu = False
        self.conformance = conformance
        self.tally = {kind: [0, 0] for kind in DECISIONS}  # kind -> [agreed, decided]
        self.disagreements: list[tuple] = []
        self.synthesized = 0  # operations the trace implied but did not show (missed switches)
        self.default_xf = profile.default_xfeatures
        self._no_snapshot = not design.stale_snapshot  # only stale-snapshot designs decide from one
        # tracepoint -> (counter, cycles: None, a fixed float, or a cache XSTATE_BV -> cycles)
        self._probe = {op: (counter, None if kind is None else {}) for op, (counter, kind) in PROBE_OPS.items()}
        self._probe["nm"] = ("nm_traps", float(profile.nm))
        self._probe["cr0_ts"] = ("cr0_writes", float(profile.cr0_write))
        if not profile.linear["restore_init"][1]:
            self._probe["restore_init"] = ("init_loads", float(profile.linear["restore_init"][0]))
        self._handlers = [getattr(self, name) for name in HANDLER_NAMES]

    # ------------------------------------------------------------ tracepoint probe
    def __call__(self, op: str, c: int, t: int) -> None:
        """context.PROBE: count one FPU operation and charge its cycles."""
        counter, costs = self._probe[op]
        counts = self.counts
        counts[counter] += 1
        if costs is None:
            return
        if costs.__class__ is float:  # a fixed cost (#NM, CR0 write, init load)
            self.cycles += costs
            return
        xf = self.xfeatures.get(t, self.default_xf)
        cost = costs.get(xf)
        if cost is None:
            cost = costs[xf] = self.profile.cost(PROBE_OPS[op][1], xf)
        self.cycles += cost
        if self.in_kfpu and op == "save":
            counts["kfpu_saves"] += 1

    # ------------------------------------------------------------ task slots
    def slot(self, pid: int, kind: int, c: int) -> int:
        """The slot of pid, creating (or unparking) its record; pid 0 is CPU c's idle task."""
        if pid == 0:
            return self.m.idle_of(c)
        t = self.slot_of.get(pid)
        if t is not None:
            return t
        if not self.free:
            self._park_one()
        t = self.free.pop()
        k = self.k
        p = task(k, t)
        record = self.parked.pop(pid, None)
        if record is not None:
            k[p: p + TASK_W] = record
        else:
            k[p: p + TASK_W] = bytes(TASK_W)
            user = kind == USER
            # A task that existed before the trace began: in the kernel, its state in memory.
            k[p + T_KIND], k[p + T_RUN] = kind, RUNNABLE
            k[p + T_PC] = PC_SYSCALL if user else PC_KTHREAD
            k[p + T_CPU], k[p + T_LAST_CPU], k[p + T_NEED_LOAD] = NULL, NULL, 1
            k[p + T_FPSTATE] = USER_DATA if user else INIT
            k[p + T_FPSTATE_ACTIVE] = 1 if user else 0
            g = ghost(k, t)
            k[g + G_VALUE] = k[p + T_FPSTATE]
            k[g + G_PKRU] = k[p + T_PKRU] = k[p + T_XPKRU] = PKRU_INIT
            k[p + T_FPSTATE_HDR], k[p + T_SIG_PKRU] = xinuse(k[p + T_FPSTATE], PKRU_INIT), NULL
            self.design.boot_task(k, t, NULL)
        self.slot_of[pid] = t
        self.pid_of[t] = pid
        return t

    def _park_one(self) -> None:
        k, m = self.k, self.m
        owners = {k[cpu(c) + C_OWNER] for c in range(self.ncpus)}
        for t in range(m.idle_base):
            p = task(k, t)
            if (self.pid_of[t] is not None and k[p + T_CPU] == NULL and t not in owners
                    and k[p + T_PC] in (PC_SYSCALL, PC_EXIT_LOOP, PC_KTHREAD)):
                self.parked[self.pid_of[t]] = bytes(k[p: p + TASK_W])
                self._release(t)
                return
        raise UsageError(f"more than {m.idle_base} tasks are running or hold a CPU's registers at once; "
                         "the simulator's task pool is full")

    def _release(self, t: int) -> None:
        pid = self.pid_of[t]
        if pid is not None:
            del self.slot_of[pid]
        self.pid_of[t] = None
        self.xfeatures.pop(t, None)
        k = self.k
        p = task(k, t)
        k[p + T_RUN], k[p + T_CPU] = DEAD, NULL
        self.free.append(t)

    def current(self, c: int) -> int:
        return self.k[HEADER + c * CPU_W + C_CURR]

    # ------------------------------------------------------------ operations
    def apply(self, op: O.Op) -> None:
        """Run one operation with this replay attached to the model's tracepoints."""
        context.PROBE = self
        try:
            self._handlers[op[0]](op)
        finally:
            context.PROBE = None

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
        if self.k[p + T_PC] == PC_USER:
            if preempted:
                enter_exit_loop(self.m, self.k, c, t)
            else:
                self.k[p + T_PC] = PC_SYSCALL

    def _to_user(self, c: int, t: int) -> None:
        """The return to user mode: the design's IRQs-off tail (after the work loop or a syscall)."""
        k = self.k
        p = task(k, t)
        pc = k[p + T_PC]
        if pc == PC_USER or k[p + T_KIND] != USER:
            return
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
            self._switch_in(other, m.idle_of(other), O.PREV_RUNNABLE)
        if nxt == prev:
            return False
        pp = tb + prev * TASK_W
        kind = k[pp + T_KIND]
        if kind == USER:
            if k[pp + T_PC] == PC_USER:
                self._leave_user(c, prev, prev_state == O.PREV_RUNNABLE)
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
        """A multi-step kernel path (exec, exit, signal delivery, sigreturn) run to its end,
        taking the no-fault outcome of every step."""
        k = self.k
        n = len(path_steps(self.design, path))
        i = 0
        while i < n:
            i = path_step(self.m, k, c, t, path, i)
        k[task(k, t) + T_PC] = path_pc(PATH_EXIT, n) if path == PATH_EXIT else PC_SYSCALL

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
        if ctx == K_TASK:
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

    def summary(self) -> dict:
        out = dict(self.counts)
        out["cycles"] = round(self.cycles)
        out["ns"] = round(self.cycles / self.profile.ghz)
        return out


HANDLER_NAMES = tuple("op_" + name for name in O.NAMES)  # indexed by operation code
RUN_STATE = {O.PREV_RUNNABLE: RUNNABLE, O.PREV_BLOCKED: SLEEPING, O.PREV_DEAD: DEAD}
EXIT_PC = path_pc(PATH_EXIT, 0)
PROBE_OPS = {  # tracepoint -> (counter, cost-profile entry or None)
    "save": ("saves", "save"),
    "restore": ("restores", "restore"),
    "skip": ("restores_skipped", None),
    "restore_init": ("init_loads", "restore_init"),
    "sigframe_save": ("sigframe_saves", "sigframe_save"),
    "sigframe_restore": ("sigframe_restores", "sigframe_restore"),
    "nm": ("nm_traps", None),
    "cr0_ts": ("cr0_writes", None),
}
