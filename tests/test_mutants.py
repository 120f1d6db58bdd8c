"""Real kernel bugs re-created as mutants are found, with pinned shortest counterexamples."""

from __future__ import annotations

from conftest import run
from fpustate.config import Scenario


def test_exec_invalidation_bug_1f69383b203e():
    """linux with exec's pre-1f69383b203e invalidation hands the new program the old registers after two migrations."""
    _, res, _ = run("linux-exec-invalidation", Scenario())
    v = res.violations[0]
    assert v.prop.name == "user_sees_own_registers"
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
    # mutant: (steps, index path, states explored, the violation)
    "rfc2016-stale-flags": (5, "1/10/11/3/2", 5194, "cpu0: B runs in user mode with registers A.0, expected B.0"),
    "lazy": (6, "1/1/0/8/3/4", 1595, "cpu0: A runs in user mode while the registers hold kernel-data"),
    "eager-xcomp-bv": (6, "1/3/10/8/3/4", 3077, "cpu0: A runs in user mode with registers A.0, expected init"),
    "eager-sigreturn-bh": (14, "2/1/1/1/1/2/1/1/1/0/0/1/1/3", 40327,
                           "cpu0: A runs in user mode with registers init, expected A.0"),
    # The linux entries' paths are longer since v6.18's lock sections are split at their FPU
    # instructions and lock/unlock (granularity issue); each tells the same story.
    "linux-sigframe-owner-cache": (12, "2/2/1/0/0/2/0/0/0/2/0/0", 11724, "A's signal frame 0 holds kernel-data, expected A.0"),
    "linux-sigreturn-no-deactivate": (18, "1/3/5/5/3/3/5/3/3/5/4/6/7/3/2/1/0/6", 41771,
                                      "cpu0: fpregs_state_valid(A, 0) holds but the registers contain garbage, not A.0"),
    "linux-irq-fpu-usable": (7, "1/4/1/0/1/2/4", 1970, "cpu0: A runs in user mode with registers A.0, expected init"),
    "linux-exec-invalidation": (11, "1/8/7/14/11/6/6/8/13/3/4", 96708,
                                "cpu0: A runs in user mode with registers A.0, expected init"),
    "linux-kvm-save-ignores-need-load": (6, "1/6/0/3/6/2", 1843, "cpu0: A's guest runs with registers kernel-data, expected init"),
    "linux-xfd-cache-hotplug": (13, "6/11/9/10/7/7/6/8/9/5/9/8/9", 30311,
                                "XRSTOR of B's AMX state with XFD armed: #NM in the kernel"),
}


def test_bug_suite_counterexamples_are_pinned(bug_suite):
    """Every entry of `fpustate bugs` finds its bug with the pinned shortest counterexample, and its fixed design holds."""
    rows, _, _, p = bug_suite
    assert p.returncode == 0, p.stderr
    got = {r["mutant"]: (r["steps"], r["index_path"].split(":")[1], r["states"], r["detail"]) for r in rows}
    assert all(r["passed"] and r["fixed_holds"] for r in rows)
    assert got == BUG_SUITE


def test_sigframe_owner_cache_story():
    """59c4bd853abc: after the frame XSAVE faults, an interrupt's kernel-FPU use takes the registers and the retry trusts the stale owner."""
    from fpustate.check.bugs import BUGS, run_bug
    from fpustate.check.trace import describe
    from fpustate.kernel.machine import initial_state

    bug = next(b for b in BUGS if b.commit == "59c4bd853abc")
    r = run_bug(bug, {})
    m = r.explorer.model
    prev = initial_state(m)
    lines = []
    for a, s in r.found.path:
        lines.append(describe(m, a, prev)[2])
        prev = s
    assert lines == [
        "IRQ from user mode, work pending -> exit_to_user_mode_loop",
        "signal delivery: copy_fpstate_to_sigframe: owner load hoisted, fpregs_lock",
        "signal delivery: copy_fpregs_to_sigframe: XSAVE to the frame -> page fault, retry",
        "signal delivery: fpregs_unlock; __clear_user() faults the frame in, retry",
        "IRQ: kernel_fpu_begin_mask() .. kernel_fpu_end()",
        "signal delivery: copy_fpstate_to_sigframe: owner load hoisted, fpregs_lock",
        "signal delivery: fpregs_restore_userregs: XRSTOR unless fpregs_state_valid (stale owner)",
        "signal delivery: copy_fpregs_to_sigframe: XSAVE to the frame",
        "signal delivery: fpregs_unlock()",
        "signal delivery: fpu__clear_user_states: fpregs_lock",
        "signal delivery: fpu__clear_user_states: restore_fpregs_from_init_fpstate",
        "signal delivery: fpu__clear_user_states: fpregs_mark_activate, fpregs_unlock",
    ]
