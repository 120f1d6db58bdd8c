"""Ownership helpers shared by every design.

Mirrors arch/x86/kernel/fpu/context.h (v6.18) and the save/restore helpers of
arch/x86/kernel/fpu/core.c, one function each. They edit the working copy `k`
of a transition in place (see `state.py`). The same helpers existed under
other names in older kernels (`names.py`); the 4.x designs call them under the
names they had then.
"""

from __future__ import annotations

from .state import (
    C_FPREGS,
    C_OWNER,
    C_PKRU,
    CPU_W,
    G_VALUE,
    HEADER,
    H_CLOBBERED,
    GARBAGE,
    INIT,
    KERNEL,
    NULL,
    PKRU_INIT,
    T_FPSTATE,
    T_LAST_CPU,
    T_PC,
    T_PKRU,
    T_SIGDEPTH,
    T_SIGFRAME,
    TASK_W,
    cpu,
    ghost,
    in_sigreturn,
    task,
)


def fpregs_state_valid(k, t: int, c: int) -> bool:
    """fpregs_state_valid(): CPU c still holds task t's registers, so XRSTOR may be skipped.

    owner == &t->fpu && t->fpu.last_cpu == c, read fresh (this_cpu_read, not
    this_cpu_read_stable: bug 59c4bd853abc).
    """
    return k[HEADER + c * CPU_W + C_OWNER] == t and k[k[0] + t * TASK_W + T_LAST_CPU] == c


def __cpu_invalidate_fpregs_state(k: bytearray, c: int) -> None:
    """__cpu_invalidate_fpregs_state(): CPU c's registers are about to be clobbered."""
    k[HEADER + c * CPU_W + C_OWNER] = NULL


def __fpu_invalidate_fpregs_state(k: bytearray, t: int) -> None:
    """__fpu_invalidate_fpregs_state(): t's memory image changed; no CPU copy is valid."""
    k[task(k, t) + T_LAST_CPU] = NULL


def fpregs_activate(k: bytearray, c: int, t: int) -> None:
    """fpregs_activate(): fpu_fpregs_owner_ctx = &t->fpu (trace x86_fpu_regs_activated)."""
    k[cpu(c) + C_OWNER] = t


def fpregs_deactivate(k: bytearray, c: int) -> None:
    """fpregs_deactivate(): fpu_fpregs_owner_ctx = NULL (trace x86_fpu_regs_deactivated)."""
    k[cpu(c) + C_OWNER] = NULL


def save_fpregs_to_fpstate(k: bytearray, c: int, t: int, pkru: bool = False) -> None:
    """save_fpregs_to_fpstate(): XSAVE CPU c's registers into t's image; registers are kept.

    With `pkru`, the PKRU component is saved too (kernels where PKRU lives in
    the xsave buffer). The ghost marker records a save from registers that do
    not hold t's state: the image is then overwritten with foreign data.
    """
    q = HEADER + c * CPU_W  # cpu(c), inlined: this runs on every switch
    regs = k[q + C_FPREGS]
    p = k[0] + t * TASK_W  # task(k, t)
    k[p + T_FPSTATE] = regs
    if pkru:
        k[p + T_PKRU] = k[q + C_PKRU]
    if regs != k[ghost(k, t) + G_VALUE] and k[H_CLOBBERED] == NULL and not in_sigreturn(k[p + T_PC]):
        k[H_CLOBBERED] = t  # (inside sigreturn the program's state is the frame's, not yet known)


def restore_fpregs_from_fpstate(k: bytearray, c: int, t: int, pkru: bool = False,
                                fault_loads_init: bool = False) -> None:
    """restore_fpregs_from_fpstate(): XRSTOR t's image into CPU c's registers.

    With `pkru`, PKRU is restored from the image as well (before 5.14 it was
    part of the restored xstate). An invalid image (GARBAGE) makes XRSTOR
    fault: since d5c8028b4788 (v4.14) the fixup loads init_fpstate
    (`fault_loads_init`); before it the fault was only a WARN and the
    registers kept whatever they held.
    """
    p = task(k, t)
    q = cpu(c)
    if k[p + T_FPSTATE] == GARBAGE:
        if fault_loads_init:
            k[q + C_FPREGS] = INIT
            if pkru:
                k[q + C_PKRU] = PKRU_INIT
        return
    k[q + C_FPREGS] = k[p + T_FPSTATE]
    if pkru:
        k[q + C_PKRU] = k[p + T_PKRU]


def kernel_clobbers_fpregs(k: bytearray, c: int) -> None:
    """The in-kernel FPU user (crypto, RAID, memcpy) writes its own data into the registers."""
    k[HEADER + c * CPU_W + C_FPREGS] = KERNEL


def sigframe_write(k: bytearray, t: int, value: int) -> None:
    """XSAVE (or copy_to_user()) into the signal frame being set up for task t."""
    p = task(k, t)
    k[p + T_SIGFRAME + k[p + T_SIGDEPTH]] = value


def sigframe_read(k, t: int) -> int:
    """The fpstate in task t's topmost signal frame, as sigreturn finds it (GARBAGE: bad header)."""
    p = task(k, t)
    return k[p + T_SIGFRAME + k[p + T_SIGDEPTH] - 1]
