"""`strawman`: Andy Lutomirski's straw-man FPU API from the Oct 2016 thread, on Linux v4.8.

Reconstructed from the thread (seed-thread-2016-10.txt): no code was posted.
The four helpers operate on the current task, each atomically (preemption
and softirqs off, as fpregs_lock() later did), and make the state classes
explicit:

- user_fpregs_move_to_cpu(): the CPU copy becomes valid and writable, the
  memory copy invalid (class 1). Skips the XRSTOR when the CPU copy is still
  valid, as Rik pointed out it can.
- user_fpregs_copy_to_memory(): the memory copy becomes valid, the CPU copy
  stays valid (2a, or 2b if it was not).
- user_fpregs_move_to_memory(): the memory copy becomes valid and writable,
  the CPU copy is invalidated everywhere (2b).
- TIF_REFRESH_FPU (the renamed TIF_LOAD_FPU) is set unconditionally on
  schedule-in and by the *_to_memory() helpers; its handler on the way to user
  mode, after the work loop with IRQs off, calls user_fpregs_move_to_cpu().

Used as Andy proposed: scheduling out calls copy_to_memory(),
kernel_fpu_begin() calls move_to_memory(); fork copies memory after
copy_to_memory(); exec and exit use move_to_memory(). fpu->fpregs_active
(T_FPREGS_ACTIVE) marks class 1, "the CPU copy is writable". PKRU stays an
xstate component restored with the rest, as in v4.8: the proposal predates
the 2018 finding that PKRU must be switched eagerly.
"""

from __future__ import annotations

from ..kernel.context import (
    fork_child,
    __cpu_invalidate_fpregs_state,
    __fpu_invalidate_fpregs_state,
    fpregs_activate,
    fpregs_deactivate,
    fpregs_state_valid,
    kernel_clobbers_fpregs,
    restore_fpregs_from_fpstate,
    save_fpregs_to_fpstate,
    copy_fpstate_to_sigframe_image,
    copy_sigframe_to_fpstate,
)
from ..kernel.state import (
    C_CURR,
    C_IN_KFPU,
    C_PREEMPT,
    INIT,
    NULL,
    PKRU_INIT,
    T_FPREGS_ACTIVE,
    T_FPSTATE,
    T_KIND,
    T_LAST_CPU,
    T_NEED_LOAD,
    T_PKRU,
    T_FPSTATE_HDR,
    USER,
    cpu,
    task,
    xinuse,
)
from ..kernel.design import DONE, Design, Step


def boot_task(k: bytearray, t: int, on_cpu: int) -> None:
    """A user task in user mode is in class 1; nobody has TIF_REFRESH_FPU pending."""
    p = task(k, t)
    k[p + T_NEED_LOAD] = 0
    if k[p + T_KIND] == USER and on_cpu != NULL:
        k[p + T_FPREGS_ACTIVE], k[p + T_LAST_CPU] = 1, on_cpu


def user_fpregs_move_to_cpu(k: bytearray, c: int, t: int) -> None:
    """user_fpregs_move_to_cpu(): XRSTOR unless the CPU copy is still valid; class 1."""
    p = task(k, t)
    if not fpregs_state_valid(k, t, c):
        restore_fpregs_from_fpstate(k, c, t, pkru=True)
    fpregs_activate(k, c, t)
    k[p + T_LAST_CPU], k[p + T_FPREGS_ACTIVE], k[p + T_NEED_LOAD] = c, 1, 0


def user_fpregs_copy_to_memory(k: bytearray, c: int, t: int) -> None:
    """user_fpregs_copy_to_memory(): XSAVE if the CPU copy is the writable one; class 2a or 2b."""
    p = task(k, t)
    if k[p + T_FPREGS_ACTIVE]:
        save_fpregs_to_fpstate(k, c, t, pkru=True)
        k[p + T_FPREGS_ACTIVE], k[p + T_LAST_CPU] = 0, c
    k[p + T_NEED_LOAD] = 1


def user_fpregs_move_to_memory(k: bytearray, c: int, t: int) -> None:
    """user_fpregs_move_to_memory(): copy_to_memory(), then invalidate every CPU copy; class 2b."""
    user_fpregs_copy_to_memory(k, c, t)
    __fpu_invalidate_fpregs_state(k, t)


def switch_fpu(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """Scheduling out calls user_fpregs_copy_to_memory(); schedule-in sets TIF_REFRESH_FPU."""
    if k[task(k, prev) + T_KIND] == USER:
        user_fpregs_copy_to_memory(k, c, prev)
    if k[task(k, nxt) + T_KIND] == USER:
        k[task(k, nxt) + T_NEED_LOAD] = 1


def exit_to_usermode(k: bytearray, c: int, t: int, snapshot: int) -> None:
    """The TIF_REFRESH_FPU handler, after the loop with IRQs off: user_fpregs_move_to_cpu()."""
    if k[task(k, t) + T_NEED_LOAD]:
        user_fpregs_move_to_cpu(k, c, t)


def irq_fpu_usable(s, c: int, ctx: int, from_user: bool) -> bool:
    """No nesting; otherwise usable in any context (the helpers are atomic)."""
    return not s[cpu(c) + C_IN_KFPU]


def kernel_fpu_begin(k: bytearray, c: int, ctx: int) -> None:
    """kernel_fpu_begin(): preempt_disable(); user_fpregs_move_to_memory() for a user current;
    the CPU's registers then belong to the kernel."""
    q = cpu(c)
    k[q + C_PREEMPT] += 1
    k[q + C_IN_KFPU] = 1
    t = k[q + C_CURR]
    if k[task(k, t) + T_KIND] == USER:
        user_fpregs_move_to_memory(k, c, t)
    __cpu_invalidate_fpregs_state(k, c)
    kernel_clobbers_fpregs(k, c)


def kernel_fpu_end(k: bytearray, c: int, ctx: int) -> None:
    """kernel_fpu_end(): nothing to restore, TIF_REFRESH_FPU does it on the way out."""
    q = cpu(c)
    k[q + C_IN_KFPU] = 0
    k[q + C_PREEMPT] -= 1


def fpu__copy(k: bytearray, c: int, parent: int) -> None:
    """fork: user_fpregs_copy_to_memory(parent), copy the image; the child starts in 2b. One
    step with preemption off (the straw man has no finer kernel code to split)."""
    child = fork_child(k, parent)
    user_fpregs_copy_to_memory(k, c, parent)
    pp, cp = task(k, parent), task(k, child)
    k[cp + T_FPSTATE], k[cp + T_PKRU], k[cp + T_FPSTATE_HDR] = k[pp + T_FPSTATE], k[pp + T_PKRU], k[pp + T_FPSTATE_HDR]
    k[cp + T_LAST_CPU], k[cp + T_FPREGS_ACTIVE], k[cp + T_NEED_LOAD] = NULL, 0, 1


def fpu__clear(k: bytearray, c: int, t: int) -> None:
    """exec: user_fpregs_move_to_memory(), then write the init state into the writable memory copy."""
    user_fpregs_move_to_memory(k, c, t)
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_PKRU], k[p + T_FPSTATE_HDR] = INIT, PKRU_INIT, xinuse(INIT, PKRU_INIT)


def fpu__drop(k: bytearray, c: int, t: int) -> None:
    """exit: drop the CPU copy if it is the writable one."""
    p = task(k, t)
    if k[p + T_FPREGS_ACTIVE]:
        fpregs_deactivate(k, c)
        k[p + T_FPREGS_ACTIVE] = 0


def xstateregs_set(k: bytearray, t: int, value: int, hdr: int, pkru: int) -> None:
    """ptrace write of a stopped task: its memory copy is made the writable one (CPU copies
    invalidated, last_cpu = -1), then the buffer is copied in (header and PKRU component
    included) without v4.8 validating the header."""
    __fpu_invalidate_fpregs_state(k, t)
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_FPSTATE_HDR] = value, hdr
    if pkru != NULL:
        k[p + T_PKRU] = pkru
    k[p + T_NEED_LOAD] = 1


def signal_copy_to_memory(k: bytearray, c: int, t: int):
    """Signal delivery: user_fpregs_copy_to_memory(), so the memory copy is valid."""
    user_fpregs_copy_to_memory(k, c, t)


def copy_fpstate_to_user(k: bytearray, c: int, t: int):
    """Signal delivery: copy_to_user() of the memory copy into the frame (preemptible; the
    memory copy stays valid because only its owner writes it)."""
    copy_fpstate_to_sigframe_image(k, t, k[task(k, t) + T_FPSTATE])


def handler_fpu__clear(k: bytearray, c: int, t: int):
    """The handler's fresh state: fpu__clear() through move_to_memory()."""
    fpu__clear(k, c, t)
    return DONE


def sigreturn_move_to_memory(k: bytearray, c: int, t: int):
    """sigreturn: user_fpregs_move_to_memory(): the memory copy becomes the writable one."""
    user_fpregs_move_to_memory(k, c, t)


def copy_frame_to_memory(k: bytearray, c: int, t: int):
    """sigreturn: copy_from_user() of the frame into the writable memory copy (v4.8 does not
    validate the header); TIF_REFRESH_FPU loads it on the way out."""
    copy_sigframe_to_fpstate(k, t, validate=False, pkru_slot=T_PKRU)
    return DONE


def fpu_sync_fpstate(k: bytearray, c: int, t: int) -> None:
    """A reader of current: user_fpregs_copy_to_memory()."""
    user_fpregs_copy_to_memory(k, c, t)


def regs_live(s, t: int, c: int) -> bool:
    """Class 1: the CPU copy is the writable one."""
    return bool(s[task(s, t) + T_FPREGS_ACTIVE])


DESIGN = Design(
    name="strawman",
    summary="Andy Lutomirski's 2016 straw-man API on v4.8: copy/move_to_cpu/memory + TIF_REFRESH_FPU",
    kernel="v4.8 + straw-man API (thread, 2016-10-03)",
    files="reconstructed from the seed thread; base: arch/x86/kernel/fpu/core.c, arch/x86/entry/common.c",
    flag_name="TIF_REFRESH_FPU",
    has_pkru=True,
    valid_while_live=True,
    boot_task=boot_task,
    switch_fpu=switch_fpu,
    exit_to_user=exit_to_usermode,
    irq_fpu_usable=irq_fpu_usable,
    kernel_fpu_begin=kernel_fpu_begin,
    kernel_fpu_end=kernel_fpu_end,
    fork_steps=(Step("fpu__copy", fpu__copy),),
    exec_steps=(Step("fpu__clear", fpu__clear),),
    exit_steps=(Step("fpu__drop", fpu__drop),),
    regs_live=regs_live,
    xstateregs_set=xstateregs_set,
    signal_steps=(Step("user_fpregs_copy_to_memory", signal_copy_to_memory),
                  Step("copy_to_user(frame, fpstate)", copy_fpstate_to_user),
                  Step("fpu__clear", handler_fpu__clear)),
    sigreturn_steps=(Step("user_fpregs_move_to_memory", sigreturn_move_to_memory),
                     Step("copy_from_user(fpstate, frame)", copy_frame_to_memory)),
    sigreturn_ia32_steps=(Step("user_fpregs_move_to_memory", sigreturn_move_to_memory),
                          Step("copy_from_user(fpstate, frame)", copy_frame_to_memory)),
    fpu_sync_fpstate=fpu_sync_fpstate,
    no_fpu_ext="v4.8's KVM loaded the guest FPU in kvm_load_guest_fpu() (kernel_fpu_begin-style, CR0.TS traps in the guest) with no fpstate to swap; AMX/XFD and the xfd_state cache came with 5.16; CPU bring-up (fpu__init_cpu) is not modelled for v4.8",
)
