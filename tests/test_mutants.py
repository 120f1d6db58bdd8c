"""Real kernel bugs re-created as mutants are found, with pinned shortest counterexamples."""

from __future__ import annotations

import pytest

from conftest import first_violation, run, run_reduced
from fpustate.config import Scenario

pytestmark = pytest.mark.heavy  # long fixpoints: scheduled first (conftest.py)


def test_exec_invalidation_bug_1f69383b203e():
    """linux with exec's pre-1f69383b203e invalidation hands the new program the old registers after two migrations."""
    v = first_violation("linux-exec-invalidation", Scenario(), "user_sees_own_registers")
    assert v.detail == "cpu0: A runs in user mode with registers A.0, expected init"
    steps = [(a.code, a.cpu, a.arg) for a, _ in v.path]
    assert steps == [
        ("syscall", 0, 0),
        ("preempt", 0, 2),  # A -> kworker0 on cpu0: A saved, last_cpu = 0, owner stays A
        ("syscall", 1, 0),
        ("preempt", 1, 0),  # B -> A on cpu1: A migrates
        ("exec_step", 1, 0),  # fpu_flush_thread: fpregs_lock, fpu__drop: owner[cpu1] = NULL only
        ("exec_step", 1, 1),  # copy init_fpstate to the image
        ("exec_step", 1, 2),  # set TIF_NEED_FPU_LOAD, fpregs_unlock
        ("exec_step", 1, 3),  # pkru_flush_thread
        ("preempt", 1, 1),  # A -> B: A migrates again
        ("sleep", 0, 0),  # kworker0 sleeps, A runs on cpu0, where its old copy is still "valid"
        ("syscall_exit", 0, 0),
    ]


BUG_SUITE = {
    # mutant: (steps, index path, canonical states explored (symmetry and fingerprints: the CLI's default),
    # the violation). Paths are real steps; the lengths equal those without symmetry (test_symmetry).
    'rfc2016-stale-flags': (5, '1/10/11/3/2', 2614, 'cpu0: B runs in user mode with registers A.0, expected B.0'),
    'lazy': (6, '1/1/0/8/3/4', 808, 'cpu0: A runs in user mode while the registers hold kernel-data'),
    'eager-xcomp-bv': (6, '1/3/10/8/3/4', 1608, 'cpu0: A runs in user mode with registers A.0, expected init'),
    'eager-sigreturn-bh': (14, '2/1/1/1/1/2/1/1/1/0/0/1/1/3', 15193,
        'cpu0: A runs in user mode with registers init, expected A.0'),
    'linux-sigframe-owner-cache': (12, '2/2/1/0/0/2/0/0/0/2/0/0', 5785,
        "A's signal frame 0 holds kernel-data, expected A.0"),
    'linux-sigreturn-no-deactivate': (18, '1/3/5/5/3/3/5/3/3/5/4/6/7/3/2/1/0/6', 24186,
        'cpu0: fpregs_state_valid(A, 0) holds but the registers contain garbage, not A.0'),
    'linux-irq-fpu-usable': (7, '1/4/1/0/1/2/4', 997, 'cpu0: A runs in user mode with registers A.0, expected init'),
    'linux-sigframe-pkru-xstate-bv': (7, '2/2/0/0/2/0/0', 759, "A's signal frame 0 restores PKRU 0, expected A-keys"),
    'linux-ptrace-pkru-init': (5, '4/3/6/3/3', 664, 'cpu0: A runs with PKRU A-keys, expected 0'),
    'linux-exec-invalidation': (11, '1/8/7/14/11/6/6/8/13/3/4', 45331,
        'cpu0: A runs in user mode with registers A.0, expected init'),
    'linux-kvm-save-ignores-need-load': (6, '1/6/0/3/6/2', 2303,
        "cpu0: A's guest runs with registers kernel-data, expected init"),
    'linux-xfd-cache-hotplug': (13, '6/11/9/10/7/7/6/8/9/5/9/8/9', 24446,
        "XRSTOR of B's AMX state with XFD armed: #NM in the kernel"),
}


@pytest.mark.xdist_group(name="bug_suite")
def test_bug_suite_group_reaches_one_worker(request):
    """pytest-xdist sends the bug suite's group to one worker, which runs the suite once (pytest 9.2 breaks it)."""
    if getattr(request.config.option, "loadgroup", False):
        assert request.node.nodeid.endswith("@bug_suite"), "this pytest breaks --dist loadgroup: pip install -e '.[test]'"


@pytest.mark.xdist_group(name="bug_suite")  # one worker runs the session fixture once
def test_bug_suite_counterexamples_are_pinned(bug_suite):
    """Every entry of `fpustate bugs` finds its bug with the pinned shortest counterexample, and its fixed design holds."""
    rows, _, _, p = bug_suite
    assert p.returncode == 0, p.stderr
    got = {r["mutant"]: (r["steps"], r["index_path"].split(":")[1], r["states"], r["detail"]) for r in rows}
    assert all(r["passed"] and r["fixed_holds"] for r in rows)
    assert got == BUG_SUITE


def test_sigframe_owner_cache_story():
    """59c4bd853abc: after the frame XSAVE faults, an interrupt's kernel-FPU use takes the registers and the retry trusts the stale owner."""
    from fpustate.check.bugs import BUGS
    from fpustate.check.trace import describe
    from fpustate.designs import get
    from fpustate.kernel.machine import initial_state, make_model

    bug = next(b for b in BUGS if b.commit == "59c4bd853abc")
    m = make_model(get(bug.mutant), Scenario(**bug.scenario))
    v = first_violation(bug.mutant, Scenario(**bug.scenario), bug.prop)  # its fixed design: the bug-suite test
    prev = initial_state(m)
    lines = []
    for a, s in v.path:
        lines.append(describe(m, a, prev)[2])
        prev = s
    assert lines == [
        "IRQ from user mode, work pending -> exit_to_user_mode_loop",
        "signal delivery: copy_fpstate_to_sigframe: owner load hoisted, fpregs_lock",
        # (the step names gained update_pkru_in_sigframe and pkru_write_default with PKRU in frames)
        "signal delivery: copy_fpregs_to_sigframe: XSAVE to the frame, update_pkru_in_sigframe -> page fault, retry",
        "signal delivery: fpregs_unlock; __clear_user() faults the frame in, retry",
        "IRQ: kernel_fpu_begin_mask() .. kernel_fpu_end()",
        "signal delivery: copy_fpstate_to_sigframe: owner load hoisted, fpregs_lock",
        "signal delivery: fpregs_restore_userregs: XRSTOR unless fpregs_state_valid (stale owner)",
        "signal delivery: copy_fpregs_to_sigframe: XSAVE to the frame, update_pkru_in_sigframe",
        "signal delivery: fpregs_unlock()",
        "signal delivery: fpu__clear_user_states: fpregs_lock",
        "signal delivery: fpu__clear_user_states: restore_fpregs_from_init_fpstate, pkru_write_default",
        "signal delivery: fpu__clear_user_states: fpregs_mark_activate, fpregs_unlock",
    ]


def test_sigframe_pkru_xstate_bv_bug_ae6012d72fa6():
    """ae6012d72fa6: without set_xfeature_in_sigframe(PKRU) the frame XSAVE taken under sig_prepare_pkru()'s
    PKRU 0 leaves XSTATE_BV[PKRU] clear, so the frame restores PKRU 0; linux holds on the same scenario."""
    _, res, _ = run("linux-sigframe-pkru-xstate-bv", Scenario(kthreads=0, execs=0, values=1, signals=1))
    v = res.violations[0]
    assert v.prop.name == "sigframe_holds_user_state"
    assert [(a.code, a.arg) for a, _ in v.path] == [
        ("irq_from_user", 0),
        ("signal_step", 0),  # sig_prepare_pkru(): PKRU = 0; fpregs_lock
        ("signal_step", 3),  # XSAVE: XSTATE_BV[PKRU] = XINUSE = 0; the slot gets A's keys, the bit stays clear
        ("signal_step", 4),
        ("signal_step", 6),
        ("signal_step", 7),  # restore_fpregs_from_init_fpstate, pkru_write_default
        ("signal_step", 8),  # the frame is on the stack: XRSTOR of it would load PKRU 0
    ]
    fixed = run_reduced("linux", Scenario(kthreads=0, execs=0, values=1, signals=1))
    assert fixed.ok and fixed.complete and (fixed.states, fixed.represented) == (52838, 211152)


def test_ptrace_pkru_init_bug_d7e5aceace51():
    """d7e5aceace51: a ptrace buffer with XSTATE_BV[PKRU] clear must give the tracee PKRU 0, as XRSTOR would;
    without the fix the tracee keeps its keys; linux holds on the same scenario."""
    sc = Scenario(cpus=1, kthreads=0, execs=0, values=1, ptrace_writes=1, user_xstate=True)
    _, res, _ = run("linux-ptrace-pkru-init", sc)
    v = res.violations[0]
    assert (v.prop.name, v.detail) == ("kernel_uaccess_uses_own_pkru", "cpu0: A runs with PKRU A-keys, expected 0")
    assert [(a.code, a.arg) for a, _ in v.path] == [
        ("syscall", 0), ("sleep", 1), ("ptrace_set", 3), ("wake", 0), ("preempt", 0)]
    fixed = run_reduced("linux", sc)
    assert fixed.ok and fixed.complete and (fixed.states, fixed.represented) == (7278, 14508)
