"""The replay's context switches, through the action table's scheduler events.

A trace's sched_switch is replayed as the table event the checker explores whenever the
model enables it: PREEMPT (prev stays runnable), SLEEP (prev blocks, in a syscall or a
kernel thread), do_task_dead() (TASK_DEAD, at the end of exit). A trace can show a switch
the model's scheduler never makes, and the replay must still run it: a runnable task
switched to idle (CFS bandwidth throttling, or a switch-out the tracer lost), a task that
stops inside exit_to_user_mode_loop() (SIGSTOP, a ptrace stop in get_signal()). For those
the simulator adds one entry of its own to its model's table, as a design adds events:
`sched_switch`, the same __switch_to() (the design's switch_fpu) with prev left as the
trace says. The checker never has it; the replay counts how often it needed it.
"""

from __future__ import annotations

from ..errors import InternalError
from ..kernel import machine as M
from ..kernel.actions import ANY_KERNEL, Event, switch_text, apply_action
from ..kernel.effects_task import is_switch_target, switch_targets
from ..kernel.state import (C_CURR, CPU_W, DEAD, HEADER, IDLE, NULL, PATH_EXIT, PC_GUEST, PC_KVM_RUN, PC_SYSCALL, PC_USER, RUNNABLE,
                            SLEEPING, T_CPU, T_KIND, T_PC, T_RUN, TASK_W, USER, cpu, path_pc, pc_name, task)
from . import ops as O

SCHED_SWITCH = M.SCHED_SWITCH  # arg: next * 4 + how prev leaves (RUNS)
RUNS = (RUNNABLE, SLEEPING, DEAD)


def _outcomes(m, s, c, t):
    return [(SCHED_SWITCH, 4 * n + how) for n in switch_targets(m, s, c) for how in range(len(RUNS))]


def _enabled(m, s, c, t, code, arg):
    """Any runnable task or this CPU's idle task next, prev left as RUNS[arg % 4] says."""
    return code == SCHED_SWITCH and (arg & 3) < len(RUNS) and is_switch_target(m, s, c, arg >> 2)


def _apply(m, k, c, t, code, arg):
    M.context_switch(m, k, c, t, arg >> 2, RUNS[arg & 3])


TRACE_SWITCH = Event(SCHED_SWITCH, "task", ANY_KERNEL, _outcomes, _apply,
                     lambda m, a, s: switch_text("sched_switch as traced")(m, a._replace(arg=a.arg >> 2), s),
                     enabled=_enabled)
SIM_EVENTS = (TRACE_SWITCH,)
RUN_STATE = {O.PREV_RUNNABLE: RUNNABLE, O.PREV_BLOCKED: SLEEPING, O.PREV_DEAD: DEAD}
TABLE_SWITCH = {RUNNABLE: M.PREEMPT, SLEEPING: M.SLEEP, DEAD: M.TASK_DEAD}  # prev's run state -> the table's event
EXIT_PC = path_pc(PATH_EXIT, 0)  # a pc at or past this: the task is in exit


class Scheduler:
    """The switch half of a `Replay` (its m, k, counters and user-mode helpers)."""

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

    def _switch_in(self, c: int, nxt: int, prev_state: int) -> bool:
        """context_switch() from CPU c's current to slot nxt; returns whether prev was saved."""
        k = self.k
        self.running_elsewhere(c, nxt)
        prev = k[HEADER + c * CPU_W + C_CURR]
        if nxt == prev:
            return False
        pp = k[0] + prev * TASK_W
        kind = k[pp + T_KIND]
        if kind == USER:
            self._into_kernel(c, prev, prev_state == O.PREV_RUNNABLE)
            if prev_state == O.PREV_DEAD and k[pp + T_PC] < EXIT_PC:  # the trace showed the death, not the exit
                if k[pp + T_PC] in (PC_KVM_RUN, PC_GUEST):
                    self._kvm_put(c, prev)  # (KVM_RUN returns first)
                if k[pp + T_PC] == PC_SYSCALL:
                    self._run_path(c, prev, M.EXIT_STEP)
                # else it dies in the work loop (a fatal signal): the model's exit starts from a
                # syscall, so no exit path; the switch below is the traced one, prev dead
        run = RUN_STATE[prev_state] if kind != IDLE else RUNNABLE
        counts = self.counts
        before = counts["saves"]
        self.schedule(c, prev, nxt, run)
        if run == DEAD:
            self._release(prev)
        return counts["saves"] > before

    def _act(self, code: str, c: int, arg: int = 0) -> None:
        """Apply one table action the replay has made sure is enabled."""
        if not apply_action(self.m, self.k, code, c, arg):
            where = "" if c == NULL else f" on CPU {c}, its task in {pc_name(self.k[task(self.k, self.k[cpu(c) + C_CURR]) + T_PC])}"
            raise InternalError(f"{self.name}: the replay drove the model to a state where {code}({arg}) is not enabled{where}")

    def schedule(self, c: int, prev: int, nxt: int, run: int) -> None:
        """__schedule() on CPU c from prev (in kernel code) to nxt, prev left `run`."""
        k, m = self.k, self.m
        n = k[0] + nxt * TASK_W
        if k[n + T_RUN] == SLEEPING:  # it is being run, so it was woken
            self._act(M.WAKE, NULL, nxt)
        if not apply_action(m, k, TABLE_SWITCH[run], c, nxt):
            self._act(SCHED_SWITCH, c, 4 * nxt + RUNS.index(run))
            self.traced_switches += 1

    def running_elsewhere(self, c: int, nxt: int) -> None:
        """nxt is to run on CPU c but the model still runs it on another CPU: the trace missed
        its switch-out there; that CPU goes idle (a synthesized switch), nxt stays runnable."""
        k, m = self.k, self.m
        other = k[k[0] + nxt * TASK_W + T_CPU]
        if other == NULL or other == c:
            return
        self.synthesized += 1
        idle = m.idle_of(other)
        if k[k[0] + idle * TASK_W + T_CPU] not in (NULL, other):
            raise InternalError(f"{self.name}: CPU {other}'s idle task runs on another CPU")
        self._into_kernel(other, nxt, True)
        self.schedule(other, nxt, idle, RUNNABLE)

    def _into_kernel(self, c: int, t: int, preempted: bool) -> None:
        """Current t is about to be switched out: from user mode it enters the kernel (an
        interrupt if preempted, else a syscall); in guest mode the interrupt is a VM exit first
        and it stays in KVM_RUN."""
        pc = self.k[self.k[0] + t * TASK_W + T_PC]
        if pc == PC_USER:
            self.leave_user(c, t, preempted)
        elif pc == PC_GUEST:
            self._vm_exit(c, t)
