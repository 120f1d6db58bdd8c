"""Signals, ptrace, readers of current and user workers: verdicts and state counts per design."""

from __future__ import annotations

from conftest import run, run_reduced
from fpustate.cli import PRESETS
from fpustate.config import Scenario
import pytest

pytestmark = pytest.mark.heavy  # long fixpoints: scheduled first (conftest.py)

SIGNALS = Scenario(**PRESETS["signals"])
PTRACE = Scenario(**dict(PRESETS["ptrace"], values=1))


def test_linux_holds_with_signals():
    """v6.18 holds every property with signal delivery, both sigreturn paths and corrupt frames."""
    res = run_reduced("linux", SIGNALS)
    assert res.ok and res.complete
    # 197,888 raw states before the lock sections were split at their FPU instructions; 295,968 before PKRU
    # rode in the frame (sig_prepare_pkru()'s local and PKRU 0 during delivery, the handler's pkru_write_default())
    assert (res.states, res.represented) == (129_614, 518_256)


def test_eager_hardirq_window_in_ia32_sigreturn():
    """v4.19's fixed ia32 sigreturn still loses the frame's state to a hardirq kernel-FPU user
    between fpu->initialized = 1 and fpu__restore()."""
    _, res, _ = run("eager", SIGNALS)
    v = res.violations[0]
    assert (v.prop.name, len(v.path)) == ("user_sees_own_registers", 12)
    assert [a.code for a, _ in v.path][-4:] == ["sigreturn_ia32_step", "hardirq_kfpu", "sigreturn_ia32_step",
                                                "syscall_exit"]


def test_eager_holds_signals_without_hardirq_fpu():
    """Without hardirq kernel-FPU users v4.19 holds every property with signals (with symmetry)."""
    res = run_reduced("eager", SIGNALS.replace(kfpu_hardirq=False))
    assert res.ok and res.complete and (res.states, res.represented) == (82_956, 331_708)


def test_rfc2016_handler_starts_with_old_registers():
    """rfc2016: the handler's fresh init state is overwritten by the pending TIF_LOAD_FPU reload."""
    _, res, _ = run("rfc2016", SIGNALS.replace(corrupt_frames=False))
    v = res.violations[0]
    assert v.prop.name == "user_sees_own_registers"
    assert v.detail == "cpu0: A runs in user mode with registers A.0, expected init"


def test_strawman_registers_hold_with_signals():
    """The straw-man API keeps every register property with signals; only PKRU (deferred with xstate) fails."""
    _, res, _ = run("strawman", SIGNALS.replace(corrupt_frames=False))
    assert {v.prop.name for v in res.violations} == {"kernel_uaccess_uses_own_pkru"}


def test_ptrace_reads_writes_and_readers_hold_on_linux_and_eager():
    """With ptrace reads, writes (bogus headers and PKRU) and readers of current, linux and eager hold."""
    # linux 70,320 raw before the image header (a ptrace write sets thread.pkru and the xsave PKRU slot).
    # Orbits, and the states they stand for (eager's raw count is 123,200: its boot is not symmetric).
    for design, counts in (("linux", (21_346, 84_912)), ("eager", (31_756, 126_720))):
        res = run_reduced(design, PTRACE)
        assert res.ok and res.complete and (res.states, res.represented) == counts, design


def test_user_worker_pkru():
    """A user worker runs with its owner's PKRU in v6.18 (copy_thread()'s read_pkru()); a kernel thread on a borrowed mm
    should have the init PKRU in v4.19 but runs with the last user task's."""
    sc = Scenario(kthreads=0, execs=0, workers=1)
    _, res, _ = run("linux", sc)
    assert res.ok and res.states == 80_800
    _, res, _ = run("eager", sc)
    v = res.violations[0]
    assert (v.prop.name, len(v.path)) == ("kernel_uaccess_uses_own_pkru", 2)
    assert v.detail == "cpu0: iou-wrk0 runs with PKRU A-keys, expected init"
