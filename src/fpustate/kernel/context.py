"""Ownership helpers shared by every design.

Mirrors arch/x86/kernel/fpu/context.h (v6.18) and the save/restore helpers of
arch/x86/kernel/fpu/core.c, one function each. They edit the working copy `k`
of a transition in place (see `state.py`). The same helpers existed under
other names in older kernels (`names.py`); the 4.x designs call them under the
names they had then.
"""

from __future__ import annotations

from typing import Protocol

from .state import (
    C_BH,
    C_FPREGS,
    C_TS,
    C_OWNER,
    C_XFD,
    C_XFD_STATE,
    C_PKRU,
    CPU_W,
    G_VALUE,
    HEADER,
    H_CLOBBERED,
    H_XFD_NM,
    HDR_BAD,
    INIT,
    KERNEL,
    NULL,
    PKRU_INIT,
    T_CHILD,
    T_FPSTATE,
    T_FPSTATE_HDR,
    T_LAST_CPU,
    T_PC,
    T_PKRU,
    T_SIGDEPTH,
    T_SIGFRAME,
    T_XFD,
    T_XSIZE,
    T_SIGFRAME_HDR,
    T_SIGFRAME_PKRU,
    T_XPKRU,
    TASK_W,
    cpu,
    ghost,
    in_sigreturn,
    task,
    xinuse,
    xrstor_pkru,
    xrstor_value,
)


# ---------------------------------------------------------------- tracepoints
class Probe(Protocol):
    """What the FPU code executed, for the cost simulator (`fpustate.sim`): the model's
    counterpart of the kernel's x86_fpu tracepoints. `op` is one of OPS."""

    def __call__(self, op: str, c: int, t: int) -> None: ...


OPS = ("save", "restore", "restore_init", "skip", "sigframe_save", "sigframe_restore", "nm", "cr0_ts",
       "kvm_load", "kvm_put", "xfd_nm", "vm_entry", "vm_exit", "xfd_msr")


class Traced(bytearray):
    """A working copy that carries a tracepoint probe (`Model.probe`): the cost simulator's.
    The checker's working copies are plain bytearrays and trace nothing; the helpers below
    fire a copy's probe, so the probe travels with the state it describes (no global)."""

    __slots__ = ("probe",)


def trace(k, op: str, c: int, t: int) -> None:
    """Fire tracepoint `op` if the working copy `k` carries a probe."""
    if k.__class__ is Traced:
        k.probe(op, c, t)


def fork_child(k, t: int) -> int:
    """copy_process()'s p: the child task t's fork is building (its slot), on the fork path."""
    return k[k[0] + t * TASK_W + T_CHILD]


def fpregs_state_valid(k, t: int, c: int) -> bool:
    """fpregs_state_valid(): CPU c still holds task t's registers, so XRSTOR may be skipped.

    owner == &t->fpu && t->fpu.last_cpu == c, read fresh (this_cpu_read, not
    this_cpu_read_stable: bug 59c4bd853abc).
    """
    valid = k[HEADER + c * CPU_W + C_OWNER] == t and k[k[0] + t * TASK_W + T_LAST_CPU] == c
    if valid and k.__class__ is Traced:
        k.probe("skip", c, t)
    return valid


def fpregs_lock(k: bytearray, c: int) -> None:
    """fpregs_lock(): local_bh_disable() on !PREEMPT_RT, which also keeps the scheduler away.
    Interrupts stay enabled: a hardirq may still arrive (and asks irq_fpu_usable())."""
    k[HEADER + c * CPU_W + C_BH] += 1


def fpregs_unlock(k: bytearray, c: int) -> None:
    """fpregs_unlock(): local_bh_enable(); a pending softirq may run right here."""
    k[HEADER + c * CPU_W + C_BH] -= 1


def write_cr0_ts(k: bytearray, c: int, ts: int) -> None:
    """clts() (ts = 0) or stts() (ts = 1): a serializing CR0 write (lazy FPU only)."""
    k[HEADER + c * CPU_W + C_TS] = ts
    if k.__class__ is Traced:
        k.probe("cr0_ts", c, NULL)


def trace_device_not_available(k, c: int, t: int) -> None:
    """A #NM trap (CR0.TS set) taken for task t on CPU c."""
    if k.__class__ is Traced:
        k.probe("nm", c, t)


def restore_fpregs_from_init_fpstate(k: bytearray, c: int) -> None:
    """restore_fpregs_from_init_fpstate() / copy_init_fpstate_to_fpregs(): XRSTOR init_fpstate."""
    k[HEADER + c * CPU_W + C_FPREGS] = INIT
    if k.__class__ is Traced:
        k.probe("restore_init", c, NULL)


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

    XSAVE writes the data and a valid header (XSTATE_BV = XINUSE), erasing whatever header
    the image had, and the PKRU component: into the xsave slot T_XPKRU (5.14+, where it is a
    second home beside thread.pkru) or, with `pkru`, into T_PKRU (kernels where the xsave
    buffer is PKRU's only home). The ghost marker records a save from registers that do
    not hold t's state: the image is then overwritten with foreign data.
    """
    q = HEADER + c * CPU_W  # cpu(c), inlined: this runs on every switch
    regs = k[q + C_FPREGS]
    p = k[0] + t * TASK_W  # task(k, t)
    k[p + T_FPSTATE] = regs
    k[p + T_FPSTATE_HDR] = xinuse(regs, k[q + C_PKRU])
    k[p + (T_PKRU if pkru else T_XPKRU)] = k[q + C_PKRU]
    if regs != k[ghost(k, t) + G_VALUE] and k[H_CLOBBERED] == NULL and not in_sigreturn(k[p + T_PC]):
        k[H_CLOBBERED] = t  # (inside sigreturn the program's state is the frame's, not yet known)
    if k.__class__ is Traced:
        k.probe("save", c, t)


def xfd_set_state(k: bytearray, c: int, xfd: int) -> None:
    """xfd_set_state() (10e4b5166df9, 6.9): wrmsrq(MSR_IA32_XFD, xfd) and the per-CPU xfd_state with it."""
    q = HEADER + c * CPU_W
    k[q + C_XFD] = k[q + C_XFD_STATE] = xfd
    if k.__class__ is Traced:
        k.probe("xfd_msr", c, NULL)


def xfd_update_state(k: bytearray, c: int, t: int) -> None:
    """xfd_update_state(fpstate) (arch/x86/kernel/fpu/xstate.h, 5.16+): write MSR_IA32_XFD only
    when the per-CPU cache xfd_state differs from current's fpu->fpstate->xfd."""
    xfd = k[k[0] + t * TASK_W + T_XFD]
    if k[HEADER + c * CPU_W + C_XFD_STATE] != xfd:
        xfd_set_state(k, c, xfd)


def xrstor_checks_xfd(k: bytearray, c: int, t: int) -> None:
    """XRSTOR(S) of an image whose XSTATE_BV has AMX tile data, with MSR_IA32_XFD arming that
    component, raises #NM in the kernel: handle_xfd_event() refuses (!user_mode) and the
    machine dies ("unexpected #NM exception", CVE-2024-35801). The ghost marker records it."""
    if k[k[0] + t * TASK_W + T_XSIZE] and k[HEADER + c * CPU_W + C_XFD] and k[H_XFD_NM] == NULL:
        k[H_XFD_NM] = t


def restore_fpregs_from_fpstate(k: bytearray, c: int, t: int, pkru: bool = False,
                                fault_loads_init: bool = False, xpkru: bool = False) -> None:
    """restore_fpregs_from_fpstate(): xfd_update_state() (5.16+), then XRSTOR t's image into CPU c's registers.

    With `pkru`, PKRU is restored from the image as well (before 5.14 it was part of the
    restored xstate, slot T_PKRU; `xpkru`: the 5.14+ slot T_XPKRU, as os_xrstor_safe() with
    the full mask loads it). A component whose XSTATE_BV bit is clear gets its hardware
    init value (PKRU: 0). An image with a bad header (HDR_BAD) makes XRSTOR #GP before
    loading anything: since d5c8028b4788 (v4.14) the fixup loads init_fpstate
    (`fault_loads_init`, init_pkru_value for PKRU); before it the fault was only a WARN and
    the registers kept whatever they held.
    """
    p = k[0] + t * TASK_W  # task(k, t) and cpu(c), inlined: every restore runs this
    q = HEADER + c * CPU_W
    if k.__class__ is Traced:
        k.probe("restore", c, t)
    if k[p + T_XFD] != k[q + C_XFD_STATE] or k[q + C_XFD]:  # AMX machines only (5.16+): XFD before XRSTOR
        xfd_update_state(k, c, t)
        xrstor_checks_xfd(k, c, t)
    hdr = k[p + T_FPSTATE_HDR]
    if hdr & HDR_BAD:
        if fault_loads_init:
            k[q + C_FPREGS] = INIT
            if pkru or xpkru:
                k[q + C_PKRU] = PKRU_INIT
        return
    k[q + C_FPREGS] = xrstor_value(k[p + T_FPSTATE], hdr)
    if pkru or xpkru:
        k[q + C_PKRU] = xrstor_pkru(k[p + (T_XPKRU if xpkru else T_PKRU)], hdr)


def kernel_clobbers_fpregs(k: bytearray, c: int) -> None:
    """The in-kernel FPU user (crypto, RAID, memcpy) writes its own data into the registers."""
    k[HEADER + c * CPU_W + C_FPREGS] = KERNEL


def sigframe_write(k: bytearray, t: int, value: int, hdr: int, pkru: int) -> None:
    """Write the fpstate of the signal frame being set up for task t: data, header, PKRU slot
    (an XSAVE, or a copy_to_user() of the image)."""
    if k.__class__ is Traced:
        k.probe("sigframe_save", NULL, t)
    p = task(k, t)
    i = k[p + T_SIGDEPTH]
    k[p + T_SIGFRAME + i], k[p + T_SIGFRAME_HDR + i], k[p + T_SIGFRAME_PKRU + i] = value, hdr, pkru


def xsave_to_sigframe(k: bytearray, c: int, t: int) -> None:
    """XSAVE CPU c's registers (PKRU included) straight into the frame: a valid header."""
    q = cpu(c)
    sigframe_write(k, t, k[q + C_FPREGS], xinuse(k[q + C_FPREGS], k[q + C_PKRU]), k[q + C_PKRU])


def sigframe_read(k, t: int) -> tuple[int, int, int]:
    """The fpstate in task t's topmost signal frame as sigreturn reads it: (data, header, PKRU
    slot); the XRSTOR (or copy_from_user()) that reads it."""
    if k.__class__ is Traced:
        k.probe("sigframe_restore", NULL, t)
    p = task(k, t)
    i = k[p + T_SIGDEPTH] - 1
    return k[p + T_SIGFRAME + i], k[p + T_SIGFRAME_HDR + i], k[p + T_SIGFRAME_PKRU + i]


def xrstor_from_sigframe(k: bytearray, c: int, t: int) -> bool:
    """XRSTOR from task t's topmost frame into CPU c (FP/SSE and PKRU): a component whose
    XSTATE_BV bit is clear gets its hardware init value; a bad header #GPs and loads nothing
    (returns False)."""
    value, hdr, pkru = sigframe_read(k, t)
    if hdr & HDR_BAD:
        return False
    q = cpu(c)
    k[q + C_FPREGS], k[q + C_PKRU] = xrstor_value(value, hdr), xrstor_pkru(pkru, hdr)
    return True


def copy_sigframe_to_fpstate(k: bytearray, t: int, validate: bool = True, pkru_slot: int = T_XPKRU) -> bool:
    """Copy task t's topmost frame into its xsave image, header and PKRU slot included (the
    slow paths' __copy_from_user(); `pkru_slot` is T_PKRU where the xsave buffer is PKRU's
    only home). With `validate` a bad header fails (False) and the image stays as it was;
    without (v4.8), the bad header lands in the image."""
    value, hdr, pkru = sigframe_read(k, t)
    if validate and hdr & HDR_BAD:
        return False
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_FPSTATE_HDR], k[p + pkru_slot] = value, hdr, pkru
    return True


def copy_fpstate_to_sigframe_image(k: bytearray, t: int, value: int, pkru_slot: int = T_PKRU) -> None:
    """copy_to_user() of task t's xsave image (data `value`, its header and PKRU slot) into the
    frame being set up."""
    p = task(k, t)
    sigframe_write(k, t, value, k[p + T_FPSTATE_HDR], k[p + pkru_slot])
