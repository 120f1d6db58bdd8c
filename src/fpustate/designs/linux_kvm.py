"""`linux`'s 5.16+ FPU code for KVM guests, AMX/XFD and CPU hotplug (v6.18).

Read in the tip tree (kernelorg-mirror/linux_kernel_git_tip_tip, v6.18 era):
arch/x86/kernel/fpu/core.c (fpu_swap_kvm_fpstate, fpu_alloc_guest_fpstate,
__fpstate_reset, fpu_copy_guest_fpstate_to_uabi, fpu_copy_uabi_to_guest_fpstate,
fpu_idle_fpregs, restore_fpregs_from_fpstate), arch/x86/kernel/fpu/xstate.c
(fpstate_realloc, __xfd_enable_feature, xstate_request_perm),
arch/x86/kernel/fpu/xstate.h (xfd_set_state, xfd_update_state),
arch/x86/kernel/traps.c (handle_xfd_event), arch/x86/kernel/fpu/init.c and
xstate.c (fpu__init_cpu, fpu__init_cpu_xstate), arch/x86/kernel/smpboot.c
(native_kick_ap: "the FPU context is blank, nobody can own it"),
arch/x86/kvm/x86.c (kvm_load_guest_fpu, kvm_put_guest_fpu, vcpu_enter_guest,
KVM_GET_XSAVE/KVM_SET_XSAVE).

KVM (5.16+, since "x86/fpu: Provide infrastructure for KVM FPU cleanup"): the
vCPU thread's `fpu->fpstate` *pointer* is swapped to the guest's fpstate for
the whole of KVM_RUN, so the context switch, kernel_fpu_begin() and the
deferred restore save and load the guest's state with no KVM code at all.
fpu_fpregs_owner_ctx is keyed by `struct fpu`, not by fpstate, so every swap
must XRSTOR the new fpstate, which it does. 5.2-5.15 (kvm_load_guest_fpu()
saving QEMU's registers into vcpu->arch.user_fpu, the guest's living in
current->thread.fpu while in KVM_RUN) is not modelled: the model has no 5.x
core design to carry it, and its story (e751732486eb, c9aef3b85f42) is told by
the one-line mutant of the 6.18 swap (`mutants.py`).
"""

from __future__ import annotations

from ..kernel.context import (
    __cpu_invalidate_fpregs_state,
    fpregs_lock,
    fpregs_unlock,
    restore_fpregs_from_fpstate,
    save_fpregs_to_fpstate,
    xfd_set_state,
    xfd_update_state,
)
from ..kernel import context
from ..kernel.design import FpuExt
from ..kernel.state import (
    C_FPREGS,
    C_PKRU,
    INIT,
    NULL,
    PKRU_INIT,
    T_FPSTATE,
    T_NEED_LOAD,
    T_SWAP_FPSTATE,
    T_SWAP_HDR,
    T_FPSTATE_HDR,
    PKRU_HW_INIT,
    xinuse,
    T_SWAP_XFD,
    T_SWAP_XSIZE,
    T_XFD,
    T_XPERM,
    T_XSIZE,
    cpu,
    task,
    value_owner,
)
from .linux import fpregs_restore_userregs
from .linux_paths import fpregs_mark_activate


def swap_fpstate_pointer(k: bytearray, t: int) -> None:
    """fpu->fpstate = guest_fps (fpu->__task_fpstate = the task's own), or back: the model swaps
    the (image, header, xfd, size) of the two fpstates (the generic kernel swaps the ghost's
    expectations with them once the hook is done: `kernel.paths.swap_expectations`)."""
    p = task(k, t)
    for a, b in ((T_FPSTATE, T_SWAP_FPSTATE), (T_FPSTATE_HDR, T_SWAP_HDR), (T_XFD, T_SWAP_XFD),
                 (T_XSIZE, T_SWAP_XSIZE)):
        k[p + a], k[p + b] = k[p + b], k[p + a]


def fpu_swap_kvm_fpstate(k: bytearray, c: int, t: int, enter_guest: bool) -> None:
    """fpu_swap_kvm_fpstate(guest_fpu, enter_guest), from kvm_load_guest_fpu() (KVM_RUN entry,
    trace_kvm_fpu(1)) and kvm_put_guest_fpu() (exit, trace_kvm_fpu(0)): fpregs_lock(); save the
    registers into the current fpstate unless TIF_NEED_FPU_LOAD; swap fpu->fpstate; XRSTOR the new
    one (restore_fpregs_from_fpstate(), which updates XFD first); fpregs_mark_activate();
    fpregs_unlock(). One step: inside fpregs_lock() no switch or softirq runs, and a hardirq's
    irq_fpu_usable() refuses the FPU (softirq_count())."""
    context.trace(k, "kvm_load" if enter_guest else "kvm_put", c, t)
    fpregs_lock(k, c)
    if not k[task(k, t) + T_NEED_LOAD]:  # !cur_fps->is_confidential && !test_thread_flag(TIF_NEED_FPU_LOAD)
        save_fpregs_to_fpstate(k, c, t)
    swap_fpstate_pointer(k, t)
    restore_fpregs_from_fpstate(k, c, t)
    fpregs_mark_activate(k, c, t)
    fpregs_unlock(k, c)


def vcpu_enter_guest(k: bytearray, c: int, t: int) -> None:
    """vcpu_enter_guest(), IRQs off: fpregs_assert_state_consistent(); if TIF_NEED_FPU_LOAD,
    switch_fpu_return() loads the (guest) fpstate fpu->fpstate points at; then VM entry."""
    context.trace(k, "vm_entry", c, t)
    if k[task(k, t) + T_NEED_LOAD]:
        fpregs_restore_userregs(k, c, t)


def fpu_copy_guest_fpstate_to_uabi(s, t: int) -> int:
    """KVM_GET_XSAVE(2): fpu_copy_guest_fpstate_to_uabi() copies guest_fpu.fpstate (the vCPU is
    not in KVM_RUN: vcpu->mutex), i.e. the fpstate fpu->fpstate does not point at."""
    return s[task(s, t) + T_SWAP_FPSTATE]


def fpu_copy_uabi_to_guest_fpstate(k: bytearray, t: int, value: int) -> None:
    """KVM_SET_XSAVE: fpu_copy_uabi_to_guest_fpstate() -> copy_uabi_from_kernel_to_xstate() into
    guest_fpu.fpstate (not in use: no register copy to invalidate, the next swap XRSTORs it). The
    buffer's header is validated and kept: its XSTATE_BV says whether the data is in use."""
    p = task(k, t)
    k[p + T_SWAP_FPSTATE] = value
    k[p + T_SWAP_HDR] = xinuse(value, PKRU_HW_INIT)


def xstate_request_perm(k: bytearray, t: int) -> None:
    """arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILE_DATA): __xstate_request_perm() records the
    permission and the larger sizes under siglock (validate_sigaltstack() checks the larger
    signal frame fits). No buffer is allocated yet."""
    k[task(k, t) + T_XPERM] = 1


def handle_xfd_event(k: bytearray, c: int, t: int) -> None:
    """The rest of handle_xfd_event() -> xfd_enable_feature() -> fpstate_realloc(), after the
    preemptible vzalloc() of the large buffer: fpregs_lock(); if the old fpstate is in use and
    TIF_NEED_FPU_LOAD, fpregs_restore_userregs() (the registers must hold the state: the new
    buffer is zeroed); fpu->fpstate = the new buffer with xfd = old xfd & ~XTILE_DATA;
    xfd_update_state(); fpregs_unlock(). (Without the permission the task gets SIGILL: not
    modelled, a program only uses AMX after asking.)"""
    p = task(k, t)
    fpregs_lock(k, c)
    if k[p + T_NEED_LOAD]:
        fpregs_restore_userregs(k, c, t)
    k[p + T_FPSTATE], k[p + T_XSIZE], k[p + T_XFD] = INIT, 1, 0  # vzalloc'ed, xstate_init_xcomp_bv()
    k[p + T_FPSTATE_HDR] = 0  # a zeroed buffer: every component in its init state
    xfd_update_state(k, c, t)
    fpregs_unlock(k, c)


def tiles_in_use(s, c: int) -> bool:
    """xfeatures_in_use() & XFEATURE_MASK_XTILE: the registers hold the state of a task whose
    fpstate has AMX tile data (the model keeps one value for all components)."""
    owner = value_owner(s[cpu(c) + C_FPREGS])
    return owner != NULL and owner < s[1] and bool(s[task(s, owner) + T_XSIZE])


def fpu_idle_fpregs(k: bytearray, c: int) -> None:
    """fpu_idle_fpregs() (intel_idle, IRQs off): if the tiles are in use, tile_release() and
    fpu_fpregs_owner_ctx = NULL. TILERELEASE inits the tiles; the model's one value becomes init."""
    if tiles_in_use(k, c):
        k[cpu(c) + C_FPREGS] = INIT
        __cpu_invalidate_fpregs_state(k, c)


def cpu_dead(k: bytearray, c: int) -> None:
    """takedown_cpu() -> the CPU's idle task runs play_dead(). No FPU code runs: per-CPU memory
    (fpu_fpregs_owner_ctx, xfd_state) keeps its values; the registers and MSRs are lost with the
    CPU's power, which the model shows at bring-up (nothing can run on the CPU in between)."""


def fpu__init_cpu(k: bytearray, c: int, init_xfd: int) -> None:
    """Bring-up: native_kick_ap() sets fpu_fpregs_owner_ctx = NULL; the CPU starts from reset
    (registers init); fpu__init_cpu() -> fpu__init_cpu_xstate() writes MSR_IA32_XFD =
    init_fpstate.xfd (`init_xfd`) with xfd_set_state(), the per-CPU xfd_state with it (10e4b5166df9)."""
    __cpu_invalidate_fpregs_state(k, c)
    k[cpu(c) + C_FPREGS], k[cpu(c) + C_PKRU] = INIT, PKRU_INIT
    xfd_set_state(k, c, init_xfd)


FPU_EXT = FpuExt(
    fpu_swap_kvm_fpstate=fpu_swap_kvm_fpstate,
    vcpu_enter_guest=vcpu_enter_guest,
    fpu_copy_guest_fpstate_to_uabi=fpu_copy_guest_fpstate_to_uabi,
    fpu_copy_uabi_to_guest_fpstate=fpu_copy_uabi_to_guest_fpstate,
    xstate_request_perm=xstate_request_perm,
    handle_xfd_event=handle_xfd_event,
    fpu_idle_fpregs=fpu_idle_fpregs,
    cpu_dead=cpu_dead,
    fpu__init_cpu=fpu__init_cpu,
)
