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
from .kernel.state import GUEST_VERSION, VALUES_PER_TASK


OPTIONAL_KNOBS = ("vcpus",)


LIMITS = {  # field -> (lowest, highest): what keeps exhaustive search tractable
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
    "vcpus": (0, 2),
}

KNOB_HELP = {  # field -> what it models, for --help
    "cpus": "CPUs of the modelled machine",
    "users": "user tasks alive at boot",
    "spare": "free user task slots at boot, for fork() to fill (reusing a dead task's struct fpu); "
             "users + spare <= 6",
    "kthreads": "kernel threads besides the per-CPU idle tasks",
    "workers": "user workers (io_uring, vhost) that touch their owner's user memory; v6.18 gives them its PKRU",
    "values": "register versions each user task can write (the value domain)",
    "forks": "fork() calls over the whole run",
    "execs": "exec() calls over the whole run",
    "exits": "exit() calls over the whole run",
    "kfpu_task": "kernel_fpu_begin() in syscalls",
    "kfpu_softirq": "kernel_fpu_begin() in softirqs",
    "kfpu_hardirq": "kernel_fpu_begin() in hardirqs",
    "kfpu_kthread": "kernel_fpu_begin() in kernel threads and idle",
    "pkru_writes": "user-mode WRPKRU (protection keys)",
    "ptrace_writes": "PTRACE_SETREGSET writes by a tracer on a stopped task (valid data, a bogus header, or new "
                     "data and PKRU)",
    "ptrace_reads": "PTRACE_GETREGSET reads of a stopped task's xstate and PKRU",
    "readers": "syscalls reading current's own state (coredump, regset read of self)",
    "signals": "signal deliveries over the whole run; each frame may be returned from (64-bit or ia32 sigreturn)",
    "corrupt_frames": "the program may overwrite a signal frame's xsave header",
    "vcpus": "the first N user tasks are KVM vCPU threads (KVM_RUN, guest mode, VM exits, KVM_GET/SET_XSAVE); "
             "5.16+ designs only",
    "amx": "AMX tile data behind XFD: ARCH_REQ_XCOMP_PERM, the first-use #NM, fpstate_realloc(), the per-CPU "
           "xfd_state cache, idle TILERELEASE; 5.16+ designs only",
    "user_xstate": "the program may put XSAVE components in their init state (XRSTOR from its own memory with "
                   "XSTATE_BV[FP/SSE] or [PKRU] clear, WRPKRU(0)) and a tracer may write a buffer with "
                   "XSTATE_BV[PKRU] clear",
    "hotplug": "CPUs other than CPU 0 may go offline and come back online (per-CPU FPU state and MSRs reset); "
               "5.16+ designs only",
}


def knob_help(name: str, default) -> str:
    """One knob's --help: what it models, its range, its default and its FPUSTATE_* variable."""
    var = "FPUSTATE_" + name.upper()
    if isinstance(default, bool):
        return f"{KNOB_HELP[name]}; default {'on' if default else 'off'}; env {var}=0|1"
    lo, hi = LIMITS[name]
    return f"{KNOB_HELP[name]}; {lo} to {hi}, default {default}; env {var}"


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
    vcpus: int = 0  # the first N user tasks are KVM vCPU threads (KVM_RUN, guest mode, KVM_GET/SET_XSAVE)
    amx: bool = False  # AMX tile data behind XFD: ARCH_REQ_XCOMP_PERM, first-use #NM, fpstate_realloc()
    hotplug: bool = False  # CPUs other than CPU 0 may go offline and come back (fpu__init_cpu())
    # The program may put XSAVE components in their init state: XRSTOR from its own memory with
    # XSTATE_BV[FP/SSE] or XSTATE_BV[PKRU] clear, WRPKRU(0); a tracer may write a buffer with
    # XSTATE_BV[PKRU] clear. Off by default: each is one more branch at every user-mode state.
    user_xstate: bool = False

    def __post_init__(self) -> None:
        for name, (lo, hi) in LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise UsageError(f"scenario: --{name} must be a whole number from {lo} to {hi}, got {v!r}")
        if self.users + self.spare > 6:
            raise UsageError(f"scenario: --users plus --spare must be at most 6, got {self.users + self.spare}")
        if self.vcpus > self.users:
            raise UsageError(f"scenario: --vcpus must be at most --users ({self.users}), got {self.vcpus}")
        if self.vcpus and self.values > GUEST_VERSION:
            raise UsageError(f"scenario: with --vcpus, --values must be at most {GUEST_VERSION} "
                             f"(the other register versions are the guests'), got {self.values}")

    @property
    def slots(self) -> int:
        """User task slots: alive at boot plus spare."""
        return self.users + self.spare

    def describe(self) -> str:
        """One line: every numeric knob, then the switches changed from their defaults. The 5.16+
        knobs (OPTIONAL_KNOBS) show only when set, so older scenarios print as they always did."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if not isinstance(getattr(self, f.name), bool)
                 and (f.name not in OPTIONAL_KNOBS or getattr(self, f.name))]
        switches = [f for f in fields(self) if isinstance(getattr(self, f.name), bool)]
        off = [f.name for f in switches if getattr(self, f.name) is False and f.default is True]
        on = [f.name for f in switches if getattr(self, f.name) is True and f.default is False]
        return " ".join(parts) + (" off=" + ",".join(off) if off else "") + (" on=" + ",".join(on) if on else "")

    def replace(self, **changes) -> "Scenario":
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_simulation(cls, cpus: int, slots: int, kvm: bool = False, amx: bool = False) -> "Scenario":
        """A machine sized to a trace for the cost simulator: `slots` task slots, all free at boot
        (the replay's pool fills them as the trace names tasks), no budgets
        (the replay grants each path the trace shows), every user task a possible vCPU thread
        with `kvm`. The checker's limits (which keep exhaustive search tractable) do not apply."""
        sc = object.__new__(cls)
        for f in fields(cls):
            object.__setattr__(sc, f.name, f.default)
        for name, value in dict(cpus=cpus, users=0, spare=slots, kthreads=0, execs=0, vcpus=slots if kvm else 0,
                                amx=amx, values=0).items():  # values 0: contents not tracked
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


# The presets of `--scenario NAME` (and of `fpustate.check(design, "NAME")`); flags override them.
PRESETS = {
    "default": {},
    "small": dict(kthreads=0, execs=0),
    "lifecycle": dict(forks=1, execs=1, exits=1),
    "pkru": dict(kthreads=0, execs=0, pkru_writes=True),
    "signals": dict(kthreads=0, execs=0, values=1, signals=1, corrupt_frames=True),
    "ptrace": dict(kthreads=0, execs=0, ptrace_writes=1, ptrace_reads=True, readers=True, pkru_writes=True),
    "kvm": dict(kthreads=0, execs=0, values=1, vcpus=1),
    "amx": dict(kthreads=0, execs=0, values=1, amx=True, hotplug=True),
}
