"""The ownership helpers of context.h, each against its kernel comment."""

from __future__ import annotations

from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel import context as ctx
from fpustate.kernel.machine import initial_state, make_model
from fpustate.kernel.state import (
    C_FPREGS,
    C_OWNER,
    H_CLOBBERED,
    KERNEL,
    NULL,
    T_FPSTATE,
    T_LAST_CPU,
    cpu,
    decode,
    encode,
    task,
    user_value,
)


def boot():
    return bytearray(initial_state(make_model(get("linux"), Scenario())))


def test_boot_state_is_valid_for_running_tasks():
    """At boot, each CPU's user task owns the registers there and fpregs_state_valid() holds."""
    k = boot()
    assert ctx.fpregs_state_valid(k, 0, 0) and ctx.fpregs_state_valid(k, 1, 1)
    assert not ctx.fpregs_state_valid(k, 0, 1)


def test_cpu_invalidate_clears_only_the_owner():
    """__cpu_invalidate_fpregs_state() makes this CPU own nothing; last_cpu is untouched."""
    k = boot()
    ctx.__cpu_invalidate_fpregs_state(k, 0)
    assert k[cpu(0) + C_OWNER] == NULL and k[task(k, 0) + T_LAST_CPU] == 0
    assert not ctx.fpregs_state_valid(k, 0, 0)


def test_fpu_invalidate_covers_every_cpu():
    """__fpu_invalidate_fpregs_state() sets last_cpu = -1, so no CPU's copy counts as valid."""
    k = boot()
    ctx.__fpu_invalidate_fpregs_state(k, 0)
    assert k[task(k, 0) + T_LAST_CPU] == NULL and k[cpu(0) + C_OWNER] == 0
    assert not ctx.fpregs_state_valid(k, 0, 0)


def test_save_keeps_registers_and_flags_foreign_saves():
    """save_fpregs_to_fpstate() copies the registers and keeps them; saving foreign data sets the ghost marker."""
    k = boot()
    ctx.save_fpregs_to_fpstate(k, 0, 0)
    assert k[task(k, 0) + T_FPSTATE] == k[cpu(0) + C_FPREGS] == user_value(0, 0)
    assert k[H_CLOBBERED] == NULL
    k[cpu(0) + C_FPREGS] = KERNEL
    ctx.save_fpregs_to_fpstate(k, 0, 0)
    assert k[H_CLOBBERED] == 0


def test_encode_decode_roundtrip():
    """A state vector decodes to readable records and encodes back to the same bytes."""
    s = bytes(boot())
    assert encode(decode(s)) == s
