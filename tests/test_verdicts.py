"""The acceptance verdicts of every built-in design on the default scenario."""

from __future__ import annotations

import pytest

from conftest import LIFECYCLE_1CPU, SMALL, first_violation, run, run_reduced
from fpustate.config import Scenario

pytestmark = pytest.mark.heavy  # long fixpoints: scheduled first (conftest.py)

DEFAULT = Scenario()


def names(res):
    return [v.prop.name for v in res.violations]


# linux on the default scenario: tests/test_state_counts.py (its verdict and pinned counts).


def test_eager_holds_every_property():
    """eager (v4.19) holds every property on the default scenario, explored to the fixpoint (with
    symmetry, as the command line checks it: 205,454 orbits of 821,520 states, which include
    permutations of the asymmetric boot; its raw 803,120 states: bench/bench_check.py)."""
    from fpustate.check.explore import check
    from fpustate.designs import get
    from fpustate.kernel.machine import make_model

    res, _ = check(make_model(get("eager"), DEFAULT), symmetry=True, store="fingerprint")
    assert res.complete and res.violations == [] and (res.states, res.represented) == (205454, 821520)


def test_correct_designs_hold_with_fork_exec_exit():
    """linux and eager also hold with fork, exec, exit and slot reuse (one CPU)."""
    for d in ("linux", "eager"):
        _, res, _ = run(d, LIFECYCLE_1CPU)
        assert res.complete and res.violations == [], d


def test_lazy_is_architecturally_sound_but_exposes_data():
    """lazy holds every architectural property and fails only the LazyFP exposure property."""
    _, res, _ = run("lazy", DEFAULT)
    assert names(res) == ["no_foreign_data_exposed"]
    assert res.violations[0].prop.kind == "exposure"


def test_stale_flags_fails_user_sees_own_registers():
    """rfc2016-stale-flags returns to user mode with another task's registers."""
    v = first_violation("rfc2016-stale-flags", DEFAULT, "user_sees_own_registers")
    assert (len(v.path), v.detail) == (5, "cpu0: B runs in user mode with registers A.0, expected B.0")


def test_rfc2016_fails_through_unchanged_48_code():
    """rfc2016 leaks PKRU at once and, with exec, returns the old program's registers to the new one."""
    _, res, _ = run("rfc2016", SMALL)
    assert names(res) == ["kernel_uaccess_uses_own_pkru"]
    last = first_violation("rfc2016", DEFAULT, "user_sees_own_registers").path
    assert any(a.code == "exec_step" for a, _ in last)


def test_stale_flags_differs_from_rfc2016_only_by_the_snapshot():
    """Without exec, rfc2016 violates only the PKRU property; its stale-flags variant also loses registers."""
    _, res, _ = run("rfc2016-stale-flags", SMALL)
    assert "user_sees_own_registers" in names(res)
    _, res, _ = run("rfc2016", SMALL)
    assert "user_sees_own_registers" not in names(res)


def test_strawman_keeps_registers_straight_but_defers_pkru():
    """Andy's straw-man API holds every register property; its only failure is PKRU left in the deferred xstate."""
    from fpustate.kernel.properties import PROPERTIES

    _, res, _ = run("strawman", SMALL)
    assert names(res) == ["kernel_uaccess_uses_own_pkru"]
    register_props = tuple(p for p in PROPERTIES if p.name != "kernel_uaccess_uses_own_pkru")
    from fpustate.check.explore import check
    from fpustate.designs import get
    from fpustate.kernel.machine import make_model

    res, _ = check(make_model(get("strawman"), SMALL), register_props)  # default scenario: bench/bench_check.py
    assert res.complete and res.violations == [] and res.states == 88232


def test_pkru_writes_keep_correct_designs_correct():
    """With user WRPKRU, linux (thread.pkru, x86_pkru_load) and eager (PKRU in xstate) still hold every property."""
    small_pkru = SMALL.replace(pkru_writes=True)
    # linux 166,368 raw before the image header: WRPKRU toggles XSTATE_BV[PKRU] and the xsave PKRU slot saves
    # follow it. Orbits and the states they stand for (eager's boot is not symmetric: more than its 297,984 raw).
    for d, counts in (("linux", (58630, 233952)), ("eager", (78704, 314368))):
        res = run_reduced(d, small_pkru)
        assert res.complete and res.violations == [] and (res.states, res.represented) == counts, d


def test_ptrace_writes_keep_correct_designs_correct():
    """A tracer's regset writes, valid or with a bogus header, never break linux or eager (they invalidate and validate)."""
    small_ptrace = SMALL.replace(ptrace_writes=1)
    for d, states in (("linux", 82640), ("eager", 81344)):
        _, res, _ = run(d, small_ptrace)
        assert res.complete and res.violations == [] and res.states == states, d


def test_cve_2017_15537_on_the_v48_designs():
    """v4.8 accepts a bogus xcomp_bv from ptrace; the faulting XRSTOR leaves the old registers (CVE-2017-15537)."""
    small_ptrace = SMALL.replace(ptrace_writes=1)
    for d, steps in (("rfc2016", 6), ("lazy", 8)):
        _, res, _ = run(d, small_ptrace)
        v = res.violations[0]
        assert v.prop.name == "user_sees_own_registers" and len(v.path) == steps, d
        assert ("ptrace_set", 255, 1) in [tuple(a) for a, _ in v.path]  # tracee A, bogus header
