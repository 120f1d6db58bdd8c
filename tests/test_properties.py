"""Each property holds at boot and fails on a hand-made state that breaks it."""

from __future__ import annotations

from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel import properties as P
from fpustate.kernel.machine import initial_state, make_model
from fpustate.kernel.state import (
    C_FPREGS,
    C_OWNER,
    C_PKRU,
    H_CLOBBERED,
    KERNEL,
    PC_SYSCALL,
    T_FPSTATE,
    T_NEED_LOAD,
    T_PC,
    cpu,
    task,
    user_value,
)

M = make_model(get("linux"), Scenario())


def boot() -> bytearray:
    return bytearray(initial_state(M))


def test_all_hold_at_boot():
    """The boot state satisfies every property."""
    s = bytes(boot())
    assert [p.name for p in P.PROPERTIES if p.check(M, s)] == []


def test_foreign_registers_in_user_mode():
    """B's data in A's CPU while A runs in user mode breaks user_sees_own_registers and exposure."""
    k = boot()
    k[cpu(0) + C_FPREGS] = user_value(1, 0)
    assert P.user_sees_own_registers(M, bytes(k)) == "cpu0: A runs in user mode with registers B.0, expected A.0"
    assert P.no_foreign_data_exposed(M, bytes(k)) == "cpu0: A runs in user mode while the registers hold B.0"


def test_flag_clear_without_ownership():
    """TIF_NEED_FPU_LOAD clear while the CPU owns nothing breaks need_load_or_valid."""
    k = boot()
    k[cpu(0) + C_OWNER] = 255
    assert P.need_load_or_valid(M, bytes(k)).startswith("cpu0: A's TIF_NEED_FPU_LOAD says its registers are live, but owner=NULL")


def test_stale_valid_copy():
    """A valid-looking copy that holds kernel data breaks fpregs_state_valid_sound."""
    k = boot()
    k[task(k, 0) + T_NEED_LOAD] = 1
    k[task(k, 0) + T_PC] = PC_SYSCALL
    k[cpu(0) + C_FPREGS] = KERNEL
    assert "fpregs_state_valid(A, 0) holds" in P.fpregs_state_valid_sound(M, bytes(k))


def test_lost_state():
    """State found neither in memory nor in live registers breaks state_survives."""
    k = boot()
    k[task(k, 0) + T_NEED_LOAD] = 1
    k[task(k, 0) + T_FPSTATE] = user_value(0, 1)
    assert P.state_survives(M, bytes(k)) == "A's state A.0 is neither in its fpstate (A.1) nor in live registers"


def test_clobber_marker_and_pkru():
    """The save-from-foreign marker and a wrong PKRU break their properties."""
    k = boot()
    k[H_CLOBBERED] = 1
    assert P.fpstate_not_clobbered(M, bytes(k)) == "B's fpstate was saved from registers that did not hold its state"
    k = boot()
    k[cpu(1) + C_PKRU] = 0
    assert P.kernel_uaccess_uses_own_pkru(M, bytes(k)) == "cpu1: B runs with PKRU init, expected B-keys"


def test_every_property_says_what_is_lost():
    """Every property's docstring first sentence says what a user loses ("otherwise ...")."""
    for p in P.PROPERTIES:
        assert "otherwise" in p.doc, p.name
