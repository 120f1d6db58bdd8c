"""Scenario knobs: one frozen record, one field per CLI flag.

Every field maps one-to-one to a `fpustate check` option of the same name
(underscores become dashes) and to an `FPUSTATE_<FIELD>` environment variable
that sets its default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields

from .errors import UsageError
from .kernel.state import VALUES_PER_TASK


@dataclass(frozen=True)
class Scenario:
    """What the checker explores: machine size, task mix, value domain, budgets."""

    cpus: int = 2  # CPUs
    users: int = 2  # user tasks alive at boot
    spare: int = 0  # extra user task slots, free at boot (fork targets)
    kthreads: int = 1  # kernel threads besides the per-CPU idle tasks
    workers: int = 0  # kernel threads that borrow a user mm and touch user memory (io_uring, vhost)
    values: int = 2  # register versions a user task can write (the value domain)
    forks: int = 0  # fork() budget over the whole run
    execs: int = 1  # exec() budget
    exits: int = 0  # exit() budget
    kfpu_task: bool = True  # kernel_fpu_begin() in syscalls
    kfpu_softirq: bool = True  # kernel_fpu_begin() in softirqs
    kfpu_hardirq: bool = True  # kernel_fpu_begin() in hardirqs
    kfpu_kthread: bool = True  # kernel_fpu_begin() in kernel threads and idle
    pkru_writes: bool = False  # user mode may WRPKRU (designs with protection keys)
    ptrace_writes: int = 0  # PTRACE_SETREGSET budget (a tracer writing a stopped task's xstate)
    ptrace_reads: bool = False  # a tracer may read a stopped task's xstate and PKRU (PTRACE_GETREGSET)
    readers: bool = False  # syscalls may read the current task's own state (coredump, fsave header)
    signals: int = 0  # signal-delivery budget; each delivered frame may be returned from
    corrupt_frames: bool = False  # the program may overwrite a signal frame's xsave header
    # The program may put XSAVE components in their init state: XRSTOR from its own memory with
    # XSTATE_BV[FP/SSE] or XSTATE_BV[PKRU] clear, WRPKRU(0); a tracer may write a buffer with
    # XSTATE_BV[PKRU] clear. Off by default: each is one more branch at every user-mode state.
    user_xstate: bool = False

    def __post_init__(self) -> None:
        limits = {
            "cpus": (1, 4),
            "users": (1, 6),
            "spare": (0, 4),
            "kthreads": (0, 3),
            "workers": (0, 2),
            "values": (1, VALUES_PER_TASK),
            "forks": (0, 4),
            "execs": (0, 4),
            "exits": (0, 4),
            "ptrace_writes": (0, 3),
            "signals": (0, 3),
        }
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise UsageError(f"scenario: --{name} must be a whole number from {lo} to {hi}, got {v!r}")
        if self.users + self.spare > 6:
            raise UsageError(f"scenario: --users plus --spare must be at most 6, got {self.users + self.spare}")

    @property
    def slots(self) -> int:
        """User task slots: alive at boot plus spare."""
        return self.users + self.spare

    def describe(self) -> str:
        """One line: every numeric knob, then the switches changed from their defaults."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if not isinstance(getattr(self, f.name), bool)]
        switches = [f for f in fields(self) if isinstance(getattr(self, f.name), bool)]
        off = [f.name for f in switches if getattr(self, f.name) is False and f.default is True]
        on = [f.name for f in switches if getattr(self, f.name) is True and f.default is False]
        return " ".join(parts) + (" off=" + ",".join(off) if off else "") + (" on=" + ",".join(on) if on else "")

    def replace(self, **changes) -> "Scenario":
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_simulation(cls, cpus: int, slots: int) -> "Scenario":
        """A machine sized to a trace for the cost simulator: `slots` task slots, no budgets.
        The checker's limits (which keep exhaustive search tractable) do not apply."""
        sc = object.__new__(cls)
        for f in fields(cls):
            object.__setattr__(sc, f.name, f.default)
        for name, value in dict(cpus=cpus, users=slots, kthreads=0, execs=0).items():
            object.__setattr__(sc, name, value)
        return sc


def scenario_from_env(base: Scenario | None = None) -> Scenario:
    """Apply FPUSTATE_<FIELD> environment variables over `base`."""
    base = base or Scenario()
    changes = {}
    for f in fields(Scenario):
        raw = os.environ.get("FPUSTATE_" + f.name.upper())
        if raw is None:
            continue
        if f.type in ("bool", bool):
            if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise UsageError(f"FPUSTATE_{f.name.upper()}: expected 0 or 1, got {raw!r}")
            changes[f.name] = raw.lower() in ("1", "true", "yes")
        else:
            try:
                changes[f.name] = int(raw)
            except ValueError:
                raise UsageError(f"FPUSTATE_{f.name.upper()}: expected a whole number, got {raw!r}") from None
    return dataclasses.replace(base, **changes)
