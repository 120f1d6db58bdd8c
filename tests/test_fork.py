"""Fork at the kernel's granularity (v6.18 fpu_clone() split at its steps), the PKRU copy_thread() gives, and
ghost bookkeeping kept out of the designs."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run
from fpustate.check.explore import check
from fpustate.config import Scenario
from fpustate.designs import get, linux, linux_paths
from fpustate.kernel.design import Step
from fpustate.kernel.machine import initial_state, make_model
from fpustate.kernel.state import G_PKRU, T_PKRU, ghost, pkru_of, task

FORK_1CPU = Scenario(cpus=1, users=1, spare=1, kthreads=0, forks=1, execs=0)


def atomic(steps: tuple, name: str):
    """A design whose fork runs `steps` as one model step, as the model did before the split."""
    def fpu_clone(k, c, t):
        i = 0
        while i < len(steps):
            n = steps[i].fn(k, c, t)
            i = i + 1 if n is None else n
    return linux.DESIGN.variant(name=name, fork_steps=(Step("fpu_clone", fpu_clone),))


def test_fork_without_fpregs_lock_is_caught_only_when_split():
    """fpu_clone() without fpregs_lock(): a hardirq's kernel_fpu_begin() between the flag test and the XSAVE
    puts kernel data into the child; linux holds, and the same mutant with an atomic fork is not caught."""
    _, res, _ = run("linux-fork-no-lock", FORK_1CPU)
    v = next(v for v in res.violations if v.prop.name == "fpstate_not_clobbered")
    assert v.detail == "B's fpstate was saved from registers that did not hold its state"
    assert [(a.code, a.arg) for a, _ in v.path] == [
        ("syscall", 0),
        ("fork", 1),  # copy_process(B): last_cpu = -1, fpstate_reset, set B's TIF_NEED_FPU_LOAD
        ("fork_step", 1),  # no fpregs_lock; A's flag is clear: no restore
        ("hardirq_kfpu", 0),  # BH enabled, so irq_fpu_usable(): A saved, registers = kernel data
        ("fork_step", 4),  # save_fpregs_to_fpstate(dst_fpu): the kernel data land in B's image
    ]
    _, fixed, _ = run("linux", FORK_1CPU)
    assert fixed.ok and fixed.complete and fixed.states == LINUX_FORK_1CPU
    for design in (atomic(linux_paths.fork_steps(locked=False), "no-lock-atomic"), atomic(linux_paths.FORK_STEPS, "atomic")):
        res, _ = check(make_model(design, FORK_1CPU))
        assert res.ok and res.states == ATOMIC_FORK_1CPU, design.name


def test_user_worker_runs_with_its_owners_pkru():
    """copy_thread() gives a PF_USER_WORKER read_pkru(), its owner's keys: linux's worker expects and has them,
    and keeps them when its owner changes its own keys (WRPKRU); v4.x workers keep the init PKRU."""
    sc = Scenario(cpus=2, users=1, kthreads=0, execs=0, values=1, workers=1, pkru_writes=True)
    m = make_model(get("linux"), sc)
    s = initial_state(m)
    w = m.idle_base - 1
    assert (s[task(s, w) + T_PKRU], s[ghost(s, w) + G_PKRU]) == (pkru_of(0), pkru_of(0))
    res, _ = check(m)
    assert res.ok and res.complete and res.states == LINUX_WORKER_PKRU
    s = initial_state(make_model(get("eager"), sc))
    assert (s[task(s, w) + T_PKRU], s[ghost(s, w) + G_PKRU]) == (0, 0)  # PKRU_INIT: a kthread_use_mm() thread


def test_design_hooks_write_kernel_fields_only():
    """No built-in design touches the ghost (what the program expects): the generic kernel sets it."""
    designs = Path(linux.__file__).parent
    hits = [f"{p.name}:{i}" for p in sorted(designs.glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bghost\(|\bG_[A-Z_]+\b", line)]
    assert hits == []


LINUX_FORK_1CPU = 1_582  # canonical states (symmetry, fingerprints) with fpu_clone() in its six steps
ATOMIC_FORK_1CPU = 1_548  # the same with fork as one step: the lock can make no difference there
LINUX_WORKER_PKRU = 2_652
