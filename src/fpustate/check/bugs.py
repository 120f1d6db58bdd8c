"""The regression suite of real kernel FPU bugs (`fpustate bugs`).

Each entry pairs a mutant (a real design with exactly the change its fix
undid, see `designs/mutants.py`) with the property the bug breaks, the
design that carries the fix, and the scenario on which both are checked.
An entry passes when the checker finds the violation in the mutant *and*
the fixed design holds every property on the same scenario, so the suite
catches both a model that stops seeing a bug and one that raises false
alarms.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple, Optional

from ..config import Scenario
from ..designs import get
from ..kernel.machine import make_model
from ..kernel.properties import BY_NAME, PROPERTIES
from .explore import Explorer, Result, Violation

# Scenarios the entries name. Signals need only one frame and one register
# version per task: each bug shows another task's, the kernel's or a stale
# state where the program's own should be.
SMALL = dict(kthreads=0, execs=0)
SIGNALS = dict(kthreads=0, execs=0, values=1, signals=1)
PTRACE = dict(kthreads=0, execs=0, ptrace_writes=1)
KVM = dict(kthreads=0, execs=0, values=1, vcpus=1)  # the `kvm` preset
AMX = dict(kthreads=0, execs=0, values=1, amx=True, hotplug=True)  # the `amx` preset
PTRACE_XSTATE = dict(PTRACE, cpus=1, values=1, user_xstate=True)  # a buffer may have XSTATE_BV[PKRU] clear


class Bug(NamedTuple):
    name: str
    commit: str  # the fix, as the kernel's history names it
    mutant: str  # design that has the bug
    prop: str  # property its shortest counterexample violates
    fixed: str  # design with the fix; must hold every property
    scenario: dict  # Scenario fields
    why: str  # one line: what went wrong


BUGS: tuple[Bug, ...] = (
    Bug("stale cached_flags (2016 RFC thread)", "- (5.2 re-reads the flags)", "rfc2016-stale-flags",
        "user_sees_own_registers", "linux", dict(execs=0),
        "a switch inside the exit loop sets the load flag after the snapshot; user mode runs with another task's registers"),
    Bug("LazyFP, CVE-2018-3665", "eager FPU (4.6 default, lazy removed 4.9)", "lazy",
        "no_foreign_data_exposed", "eager", SMALL,
        "with CR0.TS set a task runs in user mode over another task's registers, one speculative read away"),
    Bug("bogus xcomp_bv via ptrace, CVE-2017-15537", "814fb7bb7db5 + d5c8028b4788", "eager-xcomp-bv",
        "user_sees_own_registers", "eager", PTRACE,
        "ptrace stores an invalid header; the XRSTOR at switch-in faults and the task keeps the previous task's registers"),
    Bug("Disable bottom halves while loading FPU registers", "68239654acaf", "eager-sigreturn-bh",
        "user_sees_own_registers", "eager", dict(SIGNALS, kfpu_hardirq=False),
        "a softirq's kernel_fpu_begin() saves stale registers over the state sigreturn just copied in"),
    Bug("Don't cache access to fpu_fpregs_owner_ctx", "59c4bd853abc", "linux-sigframe-owner-cache",
        "sigframe_holds_user_state", "linux", SIGNALS,
        "the retry after a faulting signal-frame XSAVE trusts a stale owner and saves foreign registers into the frame"),
    Bug("Deactivate FPU state after failure during state load", "bbc55341b9c6", "linux-sigreturn-no-deactivate",
        "fpregs_state_valid_sound", "linux", SIGNALS,
        "a failed sigreturn XRSTOR half-writes registers another task still counts as valid"),
    Bug("Prevent FPU state corruption", "59f5ede3bc0f", "linux-irq-fpu-usable",
        "user_sees_own_registers", "linux", dict(kthreads=0, values=1),
        "a hardirq uses the FPU inside exec's fpregs_lock() section and saves the old program's registers over init"),
    Bug("Ensure updated PKRU value is XRSTOR'd", "ae6012d72fa6", "linux-sigframe-pkru-xstate-bv",
        "sigframe_holds_user_state", "linux", SIGNALS,
        "sig_prepare_pkru()'s PKRU 0 makes the frame XSAVE write XSTATE_BV[PKRU] = 0; sigreturn loads PKRU 0"),
    Bug("Emulate XRSTOR's behavior if the xfeatures PKRU bit is not set", "d7e5aceace51", "linux-ptrace-pkru-init",
        "kernel_uaccess_uses_own_pkru", "linux", PTRACE_XSTATE,
        "a ptrace buffer with XSTATE_BV[PKRU] clear leaves thread.pkru alone; the tracee keeps its old keys"),
    Bug("Invalidate FPU state correctly on exec()", "1f69383b203e", "linux-exec-invalidation",
        "user_sees_own_registers", "linux", {},
        "exec invalidates only the current CPU; migrating back revives the old program's registers"),
    Bug("KVM: X86: Fix fpu state crash in kvm guest", "e751732486eb + c9aef3b85f42", "linux-kvm-save-ignores-need-load",
        "guest_sees_own_registers", "linux", KVM,
        "leaving KVM_RUN after an interrupt's kernel_fpu_begin() XSAVEs the kernel's data over the guest's fpstate"),
    Bug("Keep xfd_state in sync with MSR_IA32_XFD, CVE-2024-35801", "10e4b5166df9", "linux-xfd-cache-hotplug",
        "xrstor_respects_xfd", "linux", AMX,
        "CPU online resets MSR_IA32_XFD but not its cache; an AMX task's XRSTOR runs with XFD armed: #NM in the kernel"),
)
"""The eager entry for 68239654acaf turns hardirq kernel-FPU users off: with one,
v4.19's fixed code still has a window (between fpu->initialized = 1 and
fpu__restore()'s kernel_fpu_disable()) that `fpustate check eager --scenario
signals` shows."""


class BugResult(NamedTuple):
    bug: Bug
    found: Optional[Violation]
    mutant: Result
    fixed: Result
    explorer: Explorer

    @property
    def passed(self) -> bool:
        return self.found is not None and self.fixed.ok and self.fixed.complete


def run_bug(bug: Bug, fixed_cache: dict, progress: Optional[Callable] = None,
            explorer: Callable = Explorer, checkpoint: Optional[Callable] = None) -> BugResult:
    """Find the bug in its mutant (shortest counterexample of its property), and check the
    fixed design on the same scenario (cached: several entries share one). `explorer(model,
    properties)` makes the search (`parallel.make_explorer` for --jobs, --engine, --symmetry and
    --store); `checkpoint(explorer, tag)` gives each run's `Checkpoint`, or None."""
    scenario = Scenario(**bug.scenario)
    m = make_model(get(bug.mutant), scenario)
    ex = explorer(m, (BY_NAME[bug.prop],))
    ck = {"checkpoint": checkpoint(ex, f"mutant-{bug.mutant}")} if checkpoint else {}
    r = ex.run(progress=progress and progress(bug.mutant), look_past=0, **ck)
    found = r.violations[0] if r.violations else None
    if found:
        ex.trace(found)
    key = (bug.fixed, scenario)
    if key not in fixed_cache:
        t0 = time.perf_counter()
        fx = explorer(make_model(get(bug.fixed), scenario), PROPERTIES)
        tag = f"fixed-{bug.fixed}-{'-'.join(f'{k}{v}' for k, v in sorted(bug.scenario.items())) or 'default'}"
        ck = {"checkpoint": checkpoint(fx, tag)} if checkpoint else {}
        fr = fx.run(progress=progress and progress(bug.fixed), look_past=0, **ck)
        fr.seconds = time.perf_counter() - t0
        fixed_cache[key] = fr
    return BugResult(bug, found, r, fixed_cache[key], ex)
