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
from ..kernel.state import C_CURR, DEAD, NULL, RUNNABLE, SLEEPING, T_CPU, T_PC, T_RUN, TASK_W, cpu, pc_name, task

SCHED_SWITCH = "sched_switch"  # arg: next * 4 + how prev leaves (RUNS)
RUNS = (RUNNABLE, SLEEPING, DEAD)


def _outcomes(m, s, c, t):
    return [(SCHED_SWITCH, 4 * n + how) for n in M.runnable(m, s) + [m.idle_of(c)] for how in range(len(RUNS))]


def _enabled(m, s, c, t, code, arg):
    """Any runnable task or this CPU's idle task next, prev left as RUNS[arg % 4] says."""
    n = arg >> 2
    return (code == SCHED_SWITCH and (arg & 3) < len(RUNS)
            and (n == m.idle_of(c) or (n < m.idle_base and s[s[0] + n * TASK_W + T_RUN] == RUNNABLE)))


def _apply(m, k, c, t, code, arg):
    M.context_switch(m, k, c, t, arg >> 2, RUNS[arg & 3])


TRACE_SWITCH = Event(SCHED_SWITCH, "task", ANY_KERNEL, _outcomes, _apply,
                     lambda m, a, s: switch_text("sched_switch as traced")(m, a._replace(arg=a.arg >> 2), s),
                     enabled=_enabled)
SIM_EVENTS = (TRACE_SWITCH,)


class Scheduler:
    """The switch half of a `Replay` (its m, k and counters)."""

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
        if not apply_action(m, k, {RUNNABLE: M.PREEMPT, SLEEPING: M.SLEEP, DEAD: M.TASK_DEAD}[run], c, nxt):
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
        self.leave_user(other, nxt, True)
        self.schedule(other, nxt, idle, RUNNABLE)
