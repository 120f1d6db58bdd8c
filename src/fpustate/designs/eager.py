"""`eager`: eager FPU switching with the lazy-restore check, Linux v4.19 (the 4.14-5.1 shape).

Pinned to v4.19 (LTS, with its stable fix 68239654acaf for the ia32
sigreturn path). Files: arch/x86/include/asm/fpu/internal.h
(switch_fpu_prepare, switch_fpu_finish, fpregs_state_valid, fpregs_activate),
arch/x86/kernel/fpu/core.c (__kernel_fpu_begin/end, irq_fpu_usable,
fpu__copy, fpu__drop, fpu__clear, fpu__save), arch/x86/kernel/fpu/signal.c
(copy_fpstate_to_sigframe, __fpu__restore_sig), arch/x86/kernel/fpu/regset.c.

Every switch-out saves a user task's registers (last_cpu = cpu, owner kept)
and every switch-in restores them unless fpregs_state_valid(), so a running
user task's registers are always live; kernel threads (fpu->initialized == 0)
are skipped both ways. PKRU is an xstate component, restored with the rest at
switch-in. kernel_fpu_begin() saves and kernel_fpu_end() restores at once:
one XSAVE and one XRSTOR per in-kernel FPU section, which is what the 5.2
deferral removed. fpu->initialized is modelled by T_FPSTATE_ACTIVE.
"""

from __future__ import annotations

from ..kernel.context import (
    fork_child,
    fpregs_activate,
    fpregs_deactivate,
    fpregs_state_valid,
    kernel_clobbers_fpregs,
    restore_fpregs_from_fpstate,
    restore_fpregs_from_init_fpstate,
    save_fpregs_to_fpstate,
    copy_fpstate_to_sigframe_image,
    copy_sigframe_to_fpstate,
    xrstor_from_sigframe,
    xsave_to_sigframe,
)
from ..kernel.state import (
    C_BH,
    C_CURR,
    C_IN_KFPU,
    C_PKRU,
    C_PREEMPT,
    HDR_BAD,
    PKRU_HW_INIT,
    INIT,
    NULL,
    PKRU_INIT,
    T_FPSTATE,
    T_FPSTATE_ACTIVE,
    T_FPSTATE_HDR,
    T_LAST_CPU,
    T_NEED_LOAD,
    T_PKRU,
    cpu,
    task,
)
from . import v4_8
from ..kernel.design import DONE, Design, Step


def boot_task(k: bytearray, t: int, on_cpu: int) -> None:
    """v4.19 has no "needs load" flag; fpu->initialized is set for user tasks only."""
    k[task(k, t) + T_NEED_LOAD] = 0


def switch_fpu(k: bytearray, c: int, prev: int, nxt: int, fault_loads_init: bool = True) -> None:
    """switch_fpu_prepare(old, cpu) + switch_fpu_finish(new, cpu), IRQs off.

    prepare: if old->initialized, XSAVE (PKRU included), last_cpu = cpu, and
    "leave fpu_fpregs_owner_ctx"; else last_cpu = -1. finish: if
    new->initialized, XRSTOR unless fpregs_state_valid(), then fpregs_activate().
    A faulting XRSTOR loads init (d5c8028b4788, v4.14; `fault_loads_init`).
    """
    pp, pn = task(k, prev), task(k, nxt)
    if k[pp + T_FPSTATE_ACTIVE]:
        save_fpregs_to_fpstate(k, c, prev, pkru=True)
        k[pp + T_LAST_CPU] = c
    else:
        k[pp + T_LAST_CPU] = NULL
    if k[pn + T_FPSTATE_ACTIVE]:
        if not fpregs_state_valid(k, nxt, c):
            restore_fpregs_from_fpstate(k, c, nxt, pkru=True, fault_loads_init=fault_loads_init)
        fpregs_activate(k, c, nxt)


def prepare_exit_to_usermode(k: bytearray, c: int, t: int, snapshot: int) -> None:
    """prepare_exit_to_usermode(): no FPU work, the registers are already live."""


def irq_fpu_usable(s, c: int, ctx: int, from_user: bool) -> bool:
    """irq_fpu_usable(): !in_interrupt() || interrupted_user_mode() || !kernel_fpu_disabled()."""
    return not s[cpu(c) + C_IN_KFPU]


def kernel_fpu_begin(k: bytearray, c: int, ctx: int) -> None:
    """kernel_fpu_begin(): preempt_disable(); kernel_fpu_disable(); if current->initialized,
    copy_fpregs_to_fpstate() (the owner stays current), else __cpu_invalidate_fpregs_state()."""
    q = cpu(c)
    k[q + C_PREEMPT] += 1
    k[q + C_IN_KFPU] = 1
    t = k[q + C_CURR]
    if k[task(k, t) + T_FPSTATE_ACTIVE]:
        save_fpregs_to_fpstate(k, c, t, pkru=True)
    else:
        fpregs_deactivate(k, c)
    kernel_clobbers_fpregs(k, c)


def kernel_fpu_end(k: bytearray, c: int, ctx: int) -> None:
    """kernel_fpu_end(): if current->initialized, copy_kernel_to_fpregs() at once;
    kernel_fpu_enable(); preempt_enable()."""
    q = cpu(c)
    t = k[q + C_CURR]
    if k[task(k, t) + T_FPSTATE_ACTIVE]:
        restore_fpregs_from_fpstate(k, c, t, pkru=True, fault_loads_init=True)
    k[q + C_IN_KFPU] = 0
    k[q + C_PREEMPT] -= 1


def fpu__copy(k: bytearray, c: int, parent: int) -> None:
    """fork: fpu__copy(): child last_cpu = -1; XSAVE the parent's (live) registers into it. v4.19
    (since e10078eba698, v4.14) runs it with preemption on, but it is one instruction: an interrupt
    or a switch comes before or after it, and eager mode gives the parent its registers back
    (__kernel_fpu_end(), switch_fpu_finish()) before the XSAVE runs. One step: the child's writes
    are invisible until wake_up_new_task()."""
    child = fork_child(k, parent)
    k[task(k, child) + T_LAST_CPU] = NULL
    if k[task(k, parent) + T_FPSTATE_ACTIVE]:
        save_fpregs_to_fpstate(k, c, child, pkru=True)


def fpu__drop(k: bytearray, c: int, t: int) -> None:
    """fpu__drop(): fwait, fpregs_deactivate() (owner = NULL here), initialized = 0."""
    fpregs_deactivate(k, c)
    k[task(k, t) + T_FPSTATE_ACTIVE] = 0


def fpu__clear_drop(k: bytearray, c: int, t: int) -> None:
    """exec: fpu__clear() part 1, fpu__drop(); preemptible afterwards with initialized == 0."""
    fpu__drop(k, c, t)


def fpu__clear_init(k: bytearray, c: int, t: int) -> None:
    """exec: fpu__clear() part 2, under preempt_disable(): fpu__initialize() (init image,
    initialized = 1), user_fpu_begin() (fpregs_activate), copy_init_fpstate_to_fpregs()
    (init registers and init PKRU)."""
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_FPSTATE_ACTIVE] = INIT, 1
    fpregs_activate(k, c, t)
    q = cpu(c)
    restore_fpregs_from_init_fpstate(k, c)
    k[q + C_PKRU] = PKRU_INIT


def xstateregs_set(k: bytearray, t: int, value: int, hdr: int, pkru: int) -> None:
    """ptrace: xstateregs_set(): fpu__prepare_write() (last_cpu = -1), then
    copy_user_to_xstate(): data, header and the PKRU component (the xsave buffer is PKRU's only
    home; with XSTATE_BV[PKRU] clear the next XRSTOR loads 0); since 814fb7bb7db5 (v4.14) a
    header with a nonzero xcomp_bv is rejected."""
    k[task(k, t) + T_LAST_CPU] = NULL
    if hdr & HDR_BAD:
        return
    k[task(k, t) + T_FPSTATE], k[task(k, t) + T_FPSTATE_HDR] = value, hdr
    if pkru != NULL:
        k[task(k, t) + T_PKRU] = pkru


def copy_fpstate_to_sigframe(k: bytearray, c: int, t: int, fault: bool):
    """copy_fpstate_to_sigframe(), preemptible: if fpu->initialized, copy_fpregs_to_sigframe()
    XSAVEs the registers straight to the frame, else the image is copied out. A page fault
    on the frame may sleep; the XSAVE then restarts (the switch back reloaded the registers)."""
    if k[task(k, t) + T_FPSTATE_ACTIVE]:
        if fault:
            return 1
        xsave_to_sigframe(k, c, t)
    else:
        copy_fpstate_to_sigframe_image(k, t, v4_8.fpstate_image(k, t))
    return 2


def copy_fpregs_to_sigframe(k: bytearray, c: int, t: int):
    """The XSAVE to the frame, restarted after its page fault was handled."""
    xsave_to_sigframe(k, c, t)


def user_fpu_begin(k: bytearray, c: int, t: int):
    """sigreturn, 64-bit frame: fpu__initialize(), user_fpu_begin(): fpregs_activate() with
    preemption off; the frame's XRSTOR that follows fills the registers."""
    fpregs_activate(k, c, t)


def copy_user_to_fpregs_zeroing(k: bytearray, c: int, t: int):
    """sigreturn, 64-bit frame: XRSTOR from the frame with the frame's xfeatures, PKRU included
    (XSTATE_BV[PKRU] clear loads 0), preemptible (a page fault restarts it; the switch back
    reloaded the registers). A bad header #GPs: fpu__clear()."""
    return DONE if xrstor_from_sigframe(k, c, t) else 2


def sigreturn_fpu__drop(k: bytearray, c: int, t: int):
    """sigreturn, ia32 frame: fpu__drop() clears fpu->initialized so that "any context-switch
    during the copy of the new state avoids the intermediate state from getting restored/saved"."""
    fpu__drop(k, c, t)


def copy_from_user_validate(k: bytearray, c: int, t: int):
    """sigreturn, ia32 frame: __copy_from_user() of the frame into the image (header and PKRU
    component included) and validate_xstate_header(); a bad header gets fpstate_init() (init
    data, XSTATE_BV = 0: the restore then loads PKRU 0) and -1, SIGSEGV."""
    if not copy_sigframe_to_fpstate(k, t, pkru_slot=T_PKRU):
        p = task(k, t)
        k[p + T_FPSTATE], k[p + T_FPSTATE_HDR], k[p + T_PKRU] = INIT, 0, PKRU_HW_INIT


def local_bh_disable_initialized(k: bytearray, c: int, t: int):
    """sigreturn, ia32 frame, after 68239654acaf: local_bh_disable(); fpu->initialized = 1."""
    k[cpu(c) + C_BH] += 1
    k[task(k, t) + T_FPSTATE_ACTIVE] = 1


def fpu__restore_local_bh_enable(k: bytearray, c: int, t: int):
    """sigreturn, ia32 frame: fpu__restore() (kernel_fpu_disable(), fpregs_activate(),
    copy_kernel_to_fpregs(), kernel_fpu_enable()); local_bh_enable()."""
    restore_fpregs_from_fpstate(k, c, t, pkru=True, fault_loads_init=True)
    fpregs_activate(k, c, t)
    k[cpu(c) + C_BH] -= 1
    return DONE


def fpu__save(k: bytearray, c: int, t: int) -> None:
    """fpu__save() for a reader of current (coredump, regset of self): with preemption off, if
    fpu->initialized, XSAVE into the image (copy_fpregs_to_fpstate() keeps the registers)."""
    if k[task(k, t) + T_FPSTATE_ACTIVE]:
        save_fpregs_to_fpstate(k, c, t, pkru=True)


DESIGN = Design(
    name="eager",
    summary="Linux v4.19 eager FPU: save at switch-out, restore at switch-in unless fpregs_state_valid",
    kernel="v4.19",
    files="arch/x86/include/asm/fpu/internal.h, arch/x86/kernel/fpu/core.c",
    flag_name="fpu->initialized",
    has_pkru=True,
    valid_while_live=False,
    boot_task=boot_task,
    switch_fpu=switch_fpu,
    exit_to_user=prepare_exit_to_usermode,
    irq_fpu_usable=irq_fpu_usable,
    kernel_fpu_begin=kernel_fpu_begin,
    kernel_fpu_end=kernel_fpu_end,
    fork_steps=(Step("fpu__copy", fpu__copy),),
    exec_steps=(Step("fpu__clear: fpu__drop", fpu__clear_drop, fresh_state=True),
                Step("fpu__clear: copy_init_fpstate_to_fpregs", fpu__clear_init)),
    exit_steps=(Step("fpu__drop", fpu__drop),),
    regs_live=lambda s, t, c: bool(s[task(s, t) + T_FPSTATE_ACTIVE]),
    xstateregs_set=xstateregs_set,
    signal_steps=(Step("copy_fpstate_to_sigframe", copy_fpstate_to_sigframe, may_fault=True),
                  Step("copy_fpregs_to_sigframe (restarted)", copy_fpregs_to_sigframe),
                  Step("handle_signal: fpu__clear: fpu__drop", fpu__clear_drop, fresh_state=True),
                  Step("handle_signal: fpu__clear: copy_init_fpstate_to_fpregs", fpu__clear_init)),
    sigreturn_steps=(Step("user_fpu_begin", user_fpu_begin),
                     Step("copy_user_to_fpregs_zeroing", copy_user_to_fpregs_zeroing),
                     Step("fpu__clear: fpu__drop", fpu__clear_drop, fresh_state=True),
                     Step("fpu__clear: copy_init_fpstate_to_fpregs", fpu__clear_init)),
    sigreturn_ia32_steps=(Step("__fpu__restore_sig: fpu__drop", sigreturn_fpu__drop),
                          Step("__copy_from_user, validate_xstate_header", copy_from_user_validate),
                          Step("local_bh_disable, fpu->initialized = 1", local_bh_disable_initialized),
                          Step("fpu__restore, local_bh_enable", fpu__restore_local_bh_enable)),
    fpu_sync_fpstate=fpu__save,
    no_fpu_ext="v4.19's kvm_load_guest_fpu() saved QEMU's registers into vcpu->arch.user_fpu and the eager "
               "switch kept the guest's in current->thread.fpu while in KVM_RUN: no fpstate pointer to swap, not "
               "modelled; AMX/XFD and the xfd_state cache came with 5.16; CPU bring-up is not modelled for v4.19",
    fpstate_image=v4_8.fpstate_image,
    fpstate_active=v4_8.fpstate_active,
)
