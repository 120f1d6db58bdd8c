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
        ("exec_step", 1, 0),  # fpu_flush_thread: owner[cpu1] = NULL only
        ("exec_step", 1, 1),
        ("preempt", 1, 1),  # A -> B: A migrates again
        ("sleep", 0, 0),  # kworker0 sleeps, A runs on cpu0, where its old copy is still "valid"
        ("syscall_exit", 0, 0),
    ]
