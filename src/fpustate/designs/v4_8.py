"""The Linux v4.8 FPU core, shared by the `lazy` and `rfc2016` designs.

v4.8 still had both modes in one code base, switched by use_eager_fpu():
arch/x86/kernel/fpu/core.c (kernel_fpu_begin/end, irq_fpu_usable, fpu__copy,
fpu__drop, fpu__clear, fpu__restore) and arch/x86/include/asm/fpu/internal.h
(fpregs_activate/deactivate, fpu_want_lazy_restore, switch_fpu_prepare).
Each function takes `eager` where v4.8 tested use_eager_fpu(); in eager mode
the CR0.TS helpers (__fpregs_activate_hw/__fpregs_deactivate_hw) do nothing.

State used besides the generic fields: fpu->fpregs_active (T_FPREGS_ACTIVE),
fpu->fpstate_active (T_FPSTATE_ACTIVE), fpu->counter (T_COUNTER) and CR0.TS
(C_TS). PKRU (4.6+) is an xstate component, saved and restored with the rest;
the kernel refuses protection keys in lazy mode (XFEATURE_MASK_EAGER).
"""

from __future__ import annotations

import functools

from ..kernel import context
from ..kernel.context import (
    fork_child,
    kernel_clobbers_fpregs,
    restore_fpregs_from_init_fpstate,
    trace_device_not_available,
    write_cr0_ts,
    restore_fpregs_from_fpstate,
    save_fpregs_to_fpstate,
    copy_fpstate_to_sigframe_image,
    copy_sigframe_to_fpstate,
    xrstor_from_sigframe,
    xsave_to_sigframe,
)
from ..kernel.state import (
    C_CURR,
    C_IN_KFPU,
    C_OWNER,
    C_PKRU,
    C_PREEMPT,
    C_TS,
    INIT,
    NULL,
    PKRU_INIT,
    T_COUNTER,
    T_FPREGS_ACTIVE,
    T_FPSTATE,
    T_FPSTATE_ACTIVE,
    T_FPSTATE_HDR,
    T_LAST_CPU,
    T_PKRU,
    cpu,
    task,
)
from ..kernel.design import DONE, Step

# fpu->counter: v4.8 preloads a task that used the FPU in more than 5
# consecutive time slices (PRELOAD_AFTER = 5). The model preloads after more
# than 1 and saturates the counter at 2: every path through the preload logic
# is the same, only the number of slices needed to reach it is smaller, and
# the state space shrinks fivefold. (The kernel's u8 counter wraps at 256,
# which only sends a task back to the trapping path counter 0 explores.)
PRELOAD_AFTER = 1
COUNTER_MAX = PRELOAD_AFTER + 1
KERNEL_PRELOAD_AFTER = 5  # the kernel's own threshold, which the cost simulator uses


def fpu_want_lazy_restore(k, t: int, c: int) -> bool:
    """fpu_want_lazy_restore(): this_cpu_read_stable(fpu_fpregs_owner_ctx) == fpu && fpu->last_cpu == cpu."""
    valid = k[cpu(c) + C_OWNER] == t and k[task(k, t) + T_LAST_CPU] == c
    if valid:
        context.trace(k, "skip", c, t)
    return valid


def fpregs_activate(k: bytearray, c: int, t: int, eager: bool) -> None:
    """fpregs_activate(): __fpregs_activate_hw() (clts in lazy mode), fpregs_active = 1, owner = fpu."""
    if not eager:
        write_cr0_ts(k, c, 0)
    k[task(k, t) + T_FPREGS_ACTIVE] = 1
    k[cpu(c) + C_OWNER] = t


def fpregs_deactivate(k: bytearray, c: int, t: int, eager: bool) -> None:
    """fpregs_deactivate(): fpregs_active = 0, owner = NULL, __fpregs_deactivate_hw() (stts in lazy mode)."""
    k[task(k, t) + T_FPREGS_ACTIVE] = 0
    k[cpu(c) + C_OWNER] = NULL
    if not eager:
        write_cr0_ts(k, c, 1)


def _counter_inc(k: bytearray, t: int, limit: int = COUNTER_MAX) -> None:
    p = task(k, t)
    if k[p + T_COUNTER] < limit:
        k[p + T_COUNTER] += 1


def fpu__activate_curr(k: bytearray, t: int) -> None:
    """fpu__activate_curr(): first use of the FPU: fpstate_init() and fpstate_active = 1."""
    p = task(k, t)
    if not k[p + T_FPSTATE_ACTIVE]:
        k[p + T_FPSTATE], k[p + T_FPSTATE_ACTIVE] = INIT, 1


def fpu__restore(k: bytearray, c: int, t: int, eager: bool, preload_after: int = PRELOAD_AFTER) -> None:
    """fpu__restore() (the #NM handler's work, IRQs off): activate the fpstate, kernel_fpu_disable(),
    fpregs_activate(), copy_kernel_to_fpregs(), fpu->counter++, kernel_fpu_enable()."""
    fpu__activate_curr(k, t)
    fpregs_activate(k, c, t, eager)
    restore_fpregs_from_fpstate(k, c, t, pkru=eager)
    _counter_inc(k, t, preload_after + 1)


def switch_fpu(k: bytearray, c: int, prev: int, nxt: int, eager: bool, preload_after: int = PRELOAD_AFTER) -> None:
    """switch_fpu_prepare(old, new, cpu) + switch_fpu_finish(new, preload), IRQs off.

    preload = new->fpstate_active && (use_eager_fpu() || new->counter > 5), with 5
    scaled to PRELOAD_AFTER.
    If old's registers are active they are saved, last_cpu = cpu and the owner is
    left pointing at old ("But leave fpu_fpregs_owner_ctx!"); then new is
    activated without a TS flip, or TS is set. Otherwise old's counter and
    last_cpu are reset and new is activated, skipping the restore if
    fpu_want_lazy_restore(). finish restores if still preloading.
    """
    pp, pn = task(k, prev), task(k, nxt)
    preload = k[pn + T_FPSTATE_ACTIVE] and (eager or k[pn + T_COUNTER] > preload_after)
    if k[pp + T_FPREGS_ACTIVE]:
        save_fpregs_to_fpstate(k, c, prev, pkru=eager)
        k[pp + T_LAST_CPU] = c
        k[pp + T_FPREGS_ACTIVE] = 0
        if preload:
            _counter_inc(k, nxt, preload_after + 1)
            k[pn + T_FPREGS_ACTIVE] = 1  # __fpregs_activate(): no TS flip
            k[cpu(c) + C_OWNER] = nxt
        elif not eager:
            write_cr0_ts(k, c, 1)  # __fpregs_deactivate_hw(): stts()
    else:
        k[pp + T_COUNTER] = 0
        k[pp + T_LAST_CPU] = NULL
        if preload:
            _counter_inc(k, nxt, preload_after + 1)
            if fpu_want_lazy_restore(k, nxt, c):
                preload = 0
            fpregs_activate(k, c, nxt, eager)
    if preload:
        restore_fpregs_from_fpstate(k, c, nxt, pkru=eager)  # switch_fpu_finish()


def irq_fpu_usable(s, c: int, ctx: int, from_user: bool, eager: bool) -> bool:
    """irq_fpu_usable(): !in_interrupt() || interrupted_user_mode() || interrupted_kernel_fpu_idle().

    interrupted_kernel_fpu_idle() is !kernel_fpu_disabled() in eager mode; in
    lazy mode it also needs current's registers inactive and CR0.TS set.
    """
    q = cpu(c)
    if s[q + C_IN_KFPU]:
        return False  # task context would WARN on nesting; interrupts see kernel_fpu_disabled()
    if ctx == 0 or from_user or eager:
        return True
    return not s[task(s, s[q + C_CURR]) + T_FPREGS_ACTIVE] and bool(s[q + C_TS])


def kernel_fpu_begin(k: bytearray, c: int, ctx: int, eager: bool) -> None:
    """kernel_fpu_begin(): preempt_disable(); kernel_fpu_disable(); save current's registers if
    active (the owner stays current), else owner = NULL and __fpregs_activate_hw() (clts)."""
    q = cpu(c)
    k[q + C_PREEMPT] += 1
    k[q + C_IN_KFPU] = 1
    t = k[q + C_CURR]
    if k[task(k, t) + T_FPREGS_ACTIVE]:
        save_fpregs_to_fpstate(k, c, t, pkru=eager)
    else:
        k[q + C_OWNER] = NULL
        if not eager:
            write_cr0_ts(k, c, 0)
    kernel_clobbers_fpregs(k, c)


def kernel_fpu_end(k: bytearray, c: int, ctx: int, eager: bool) -> None:
    """kernel_fpu_end(): restore current's registers if active, else __fpregs_deactivate_hw()
    (stts); kernel_fpu_enable(); preempt_enable()."""
    q = cpu(c)
    t = k[q + C_CURR]
    if k[task(k, t) + T_FPREGS_ACTIVE]:
        restore_fpregs_from_fpstate(k, c, t, pkru=eager)
    elif not eager:
        write_cr0_ts(k, c, 1)
    k[q + C_IN_KFPU] = 0
    k[q + C_PREEMPT] -= 1


def fpu__copy(k: bytearray, c: int, parent: int, eager: bool) -> None:
    """fork: arch_dup_task_struct() -> fpu__copy(): counter = 0, fpregs_active = 0, last_cpu = -1
    for the child; if the parent's fpstate is active, XSAVE the registers straight into the
    child with preemption off. In lazy mode an unloaded parent makes that XSAVE trap (#NM),
    which first loads the parent's state. One step: the child's writes are invisible until
    wake_up_new_task(), and the preempt_disable()d region holds the one XSAVE (with the #NM
    before it, whose fpu__restore() is a section of its own: left atomic here)."""
    child = fork_child(k, parent)
    p = task(k, child)
    k[p + T_COUNTER], k[p + T_FPREGS_ACTIVE], k[p + T_LAST_CPU] = 0, 0, NULL
    if not k[task(k, parent) + T_FPSTATE_ACTIVE]:
        return
    if not eager and k[cpu(c) + C_TS]:
        fpu__restore(k, c, parent, eager)  # do_device_not_available() in kernel mode
    save_fpregs_to_fpstate(k, c, child, pkru=eager)


def fpu__drop(k: bytearray, c: int, t: int, eager: bool) -> None:
    """fpu__drop(): counter = 0; if the registers are active, fwait and fpregs_deactivate();
    fpstate_active = 0."""
    p = task(k, t)
    k[p + T_COUNTER] = 0
    if k[p + T_FPREGS_ACTIVE]:
        fpregs_deactivate(k, c, t, eager)
    k[p + T_FPSTATE_ACTIVE] = 0


def fpu__clear(k: bytearray, c: int, t: int, eager: bool) -> None:
    """exec: fpu__clear(): lazy mode drops the state (re-initialised at the next #NM); eager mode
    XRSTORs init_fpstate into the registers (PKRU included) and touches no bookkeeping."""
    if not eager:
        fpu__drop(k, c, t, eager)
        return
    fpu__activate_curr(k, t)
    restore_fpregs_from_init_fpstate(k, c)  # copy_init_fpstate_to_fpregs()
    k[cpu(c) + C_PKRU] = PKRU_INIT  # init_fpstate's PKRU component


def xstateregs_set(k: bytearray, t: int, value: int, hdr: int, pkru: int) -> None:
    """ptrace: xstateregs_set(): fpu__activate_fpstate_write() (last_cpu = -1, or initialise a
    never-used fpstate), then copy the buffer in, header and PKRU component included. v4.8 does
    not check xcomp_bv, so a bogus header lands in the image (CVE-2017-15537, fixed by
    814fb7bb7db5 in v4.14)."""
    p = task(k, t)
    if k[p + T_FPSTATE_ACTIVE]:
        k[p + T_LAST_CPU] = NULL
    else:
        k[p + T_FPSTATE], k[p + T_FPSTATE_ACTIVE] = INIT, 1
    k[p + T_FPSTATE], k[p + T_FPSTATE_HDR] = value, hdr
    if pkru != NULL:
        k[p + T_PKRU] = pkru


def _nm_in_kernel(k: bytearray, c: int, t: int, eager: bool) -> None:
    """An FPU instruction the kernel runs for current with CR0.TS set traps (#NM in kernel
    mode) and do_device_not_available() -> fpu__restore() loads current's state first."""
    if not eager and k[cpu(c) + C_TS]:
        trace_device_not_available(k, c, t)
        fpu__restore(k, c, t, eager)


def copy_fpstate_to_sigframe(k: bytearray, c: int, t: int, fault: bool, eager: bool):
    """copy_fpstate_to_sigframe(), preemptible: if fpregs_active(), copy_fpregs_to_sigframe()
    XSAVEs the registers straight to the frame, else the image is copied out. A fault on the
    frame is handled by the page-fault handler, which may sleep, and the XSAVE restarts
    without testing fpregs_active() again."""
    if k[task(k, t) + T_FPREGS_ACTIVE]:
        if fault:
            return 1
        _nm_in_kernel(k, c, t, eager)
        xsave_to_sigframe(k, c, t)
    else:
        copy_fpstate_to_sigframe_image(k, t, fpstate_image(k, t))
    return 2


def copy_fpregs_to_sigframe_restarted(k: bytearray, c: int, t: int, eager: bool):
    """The XSAVE to the frame, restarted after its page fault was handled."""
    _nm_in_kernel(k, c, t, eager)
    xsave_to_sigframe(k, c, t)


def handle_signal_fpu__clear(k: bytearray, c: int, t: int, eager: bool):
    """handle_signal(): "Ensure the signal handler starts with the new fpu state":
    if fpstate_active, fpu__clear()."""
    if k[task(k, t) + T_FPSTATE_ACTIVE]:
        fpu__clear(k, c, t, eager)
    return DONE


def user_fpu_begin(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, 64-bit frame: fpu__activate_curr(), then user_fpu_begin(): with preemption off,
    fpregs_activate() unless already active. The registers are not loaded: the frame's XRSTOR
    that follows overwrites them."""
    fpu__activate_curr(k, t)
    if not k[task(k, t) + T_FPREGS_ACTIVE]:
        fpregs_activate(k, c, t, eager)


def copy_user_to_fpregs_zeroing(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, 64-bit frame: XRSTOR from the frame (PKRU included), preemptible (a page fault
    restarts it). A bad header makes it #GP: fpu__clear()."""
    _nm_in_kernel(k, c, t, eager)
    if not xrstor_from_sigframe(k, c, t):
        fpu__clear(k, c, t, eager)
    return DONE


def sigreturn_fpu__drop(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, ia32 frame: fpu__drop(), so that "any context-switch during the copy of the new
    state avoids the intermediate state from getting restored/saved"."""
    fpu__drop(k, c, t, eager)


def copy_from_user_sanitize(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, ia32 frame: __copy_from_user() of the frame into the image and
    sanitize_restored_xstate(); v4.8 does not validate the xsave header, which lands in the image."""
    copy_sigframe_to_fpstate(k, t, validate=False, pkru_slot=T_PKRU)


def fpstate_activate(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, ia32 frame: fpu->fpstate_active = 1 (lazy mode is done: #NM loads it later)."""
    k[task(k, t) + T_FPSTATE_ACTIVE] = 1
    return None if eager else DONE


def sigreturn_preempt_disable(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, ia32 frame, eager mode: preempt_disable() (bottom halves stay enabled)."""
    k[cpu(c) + C_PREEMPT] += 1


def sigreturn_fpu__restore(k: bytearray, c: int, t: int, eager: bool):
    """sigreturn, ia32 frame, eager mode: fpu__restore(); preempt_enable()."""
    fpu__restore(k, c, t, eager)
    k[cpu(c) + C_PREEMPT] -= 1


def fpu__save(k: bytearray, c: int, t: int, eager: bool) -> None:
    """fpu__save() for a reader of current (coredump, regset of self): with preemption off, if
    fpregs_active, XSAVE into the image (keeping the registers)."""
    if k[task(k, t) + T_FPREGS_ACTIVE]:
        save_fpregs_to_fpstate(k, c, t, pkru=eager)


def regs_live(s, t: int, c: int) -> bool:
    """fpu->fpregs_active: the registers hold the task's live state."""
    return bool(s[task(s, t) + T_FPREGS_ACTIVE])


def fpstate_image(s, t: int) -> int:
    """An fpstate that is not active is re-initialised on first use: it restores as init."""
    p = task(s, t)
    return s[p + T_FPSTATE] if s[p + T_FPSTATE_ACTIVE] else INIT



def fpstate_active(s, t: int) -> bool:
    """fpu->fpstate_active: without it the kernel never consults fpu_want_lazy_restore()."""
    return bool(s[task(s, t) + T_FPSTATE_ACTIVE])


def _named(fn, name: str, **bound):
    """fn with `bound` keyword arguments fixed, printed in traces as `name`."""
    p = functools.partial(fn, **bound)
    p.__name__ = name
    return p


def bind(eager: bool) -> dict:
    """The v4.8 hooks for one use_eager_fpu() setting, under their kernel names.

    Both v4.8-based designs take these as they are; each defines only what it
    changes (the switch, the exit path, the #NM trap).
    """
    return dict(
        irq_fpu_usable=_named(irq_fpu_usable, "irq_fpu_usable", eager=eager),
        kernel_fpu_begin=_named(kernel_fpu_begin, "kernel_fpu_begin", eager=eager),
        kernel_fpu_end=_named(kernel_fpu_end, "kernel_fpu_end", eager=eager),
        fork_steps=(Step("fpu__copy", _named(fpu__copy, "fpu__copy", eager=eager)),),
        exec_steps=(Step("fpu__clear", _named(fpu__clear, "fpu__clear", eager=eager)),),
        exit_steps=(Step("fpu__drop", _named(fpu__drop, "fpu__drop", eager=eager)),),
        regs_live=regs_live,
        xstateregs_set=xstateregs_set,
        signal_steps=(
            Step("copy_fpstate_to_sigframe", _named(copy_fpstate_to_sigframe, "copy_fpstate_to_sigframe", eager=eager),
                 may_fault=True),
            Step("copy_fpregs_to_sigframe (restarted)",
                 _named(copy_fpregs_to_sigframe_restarted, "copy_fpregs_to_sigframe", eager=eager)),
            Step("handle_signal: fpu__clear", _named(handle_signal_fpu__clear, "fpu__clear", eager=eager)),
        ),
        sigreturn_steps=(
            Step("user_fpu_begin", _named(user_fpu_begin, "user_fpu_begin", eager=eager)),
            Step("copy_user_to_fpregs_zeroing",
                 _named(copy_user_to_fpregs_zeroing, "copy_user_to_fpregs_zeroing", eager=eager)),
        ),
        sigreturn_ia32_steps=(
            Step("__fpu__restore_sig: fpu__drop", _named(sigreturn_fpu__drop, "fpu__drop", eager=eager)),
            Step("__copy_from_user, sanitize_restored_xstate",
                 _named(copy_from_user_sanitize, "sanitize_restored_xstate", eager=eager)),
            Step("fpu->fpstate_active = 1", _named(fpstate_activate, "fpstate_activate", eager=eager)),
            Step("preempt_disable", _named(sigreturn_preempt_disable, "preempt_disable", eager=eager)),
            Step("fpu__restore, preempt_enable", _named(sigreturn_fpu__restore, "fpu__restore", eager=eager)),
        ),
        fpu_sync_fpstate=_named(fpu__save, "fpu__save", eager=eager),
        fpstate_image=fpstate_image,
        fpstate_active=fpstate_active,
    )
