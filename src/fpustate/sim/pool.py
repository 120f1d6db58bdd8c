"""The simulator's task pool: trace pids mapped onto the state vector's task slots.

A pid gets a slot the first time it is seen and gives it back when it dies; when the pool is
full, a task that is neither running nor named by any CPU's fpu_fpregs_owner_ctx is parked
(its record copied out), which is exact: nothing in the kernel model refers to it. Memory
therefore depends on the number of live tasks, not on trace length.
"""

from __future__ import annotations

from ..errors import UsageError
from ..kernel.machine import UNTRACKED
from ..kernel.state import (
    C_CURR,
    C_OWNER,
    CPU_W,
    DEAD,
    G_PKRU,
    G_VALUE,
    HEADER,
    INIT,
    NULL,
    PC_EXIT_LOOP,
    PC_KTHREAD,
    PC_SYSCALL,
    PKRU_INIT,
    RUNNABLE,
    T_CPU,
    T_FPSTATE,
    T_FPSTATE_ACTIVE,
    T_KIND,
    T_LAST_CPU,
    T_NEED_LOAD,
    T_PC,
    T_PKRU,
    T_RUN,
    T_XFD,
    T_XPKRU,
    T_FPSTATE_HDR,
    T_SIG_PKRU,
    TASK_W,
    USER,
    XFD_ARMED,
    cpu,
    ghost,
    task,
    xinuse,
)

USER_DATA = UNTRACKED  # register contents are not tracked by the simulator: one token for all


class TaskPool:
    """Slot management of a `Replay` (its m, k, design, ncpus, amx and the maps below)."""

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
            if user and self.amx:  # fpstate_reset(): xfd = init_fpstate.xfd
                k[p + T_XFD] = XFD_ARMED
            g = ghost(k, t)
            k[g + G_VALUE] = k[p + T_FPSTATE]
            k[g + G_PKRU] = k[p + T_PKRU] = k[p + T_XPKRU] = PKRU_INIT
            k[p + T_FPSTATE_HDR], k[p + T_SIG_PKRU] = xinuse(k[p + T_FPSTATE], PKRU_INIT), NULL
            self.design.boot_task(k, t, NULL)
        self.slot_of[pid] = t
        self.pid_of[t] = pid
        return t

    def claim(self, pid: int, t: int) -> None:
        """pid is the task the model built in free slot t (a fork child)."""
        self.free.remove(t)
        self.slot_of[pid] = t
        self.pid_of[t] = pid

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

