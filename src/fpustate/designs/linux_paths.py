"""`linux`'s multi-step paths at the kernel's own granularity: exec, signal delivery, sigreturn, fork.

Read from the tip tree (kernelorg-mirror/linux_kernel_git_tip_tip, v6.18 era):
arch/x86/kernel/fpu/signal.c (copy_fpstate_to_sigframe, restore_fpregs_from_user,
__fpu_restore_sig, fpu__restore_sig), arch/x86/kernel/fpu/core.c (fpu_reset_fpregs,
fpu__clear_user_states), arch/x86/kernel/fpu/context.h (fpregs_restore_userregs).

Each `Step` is one FPU instruction (with the reads that guard it), the plain writes
that follow it up to the next instruction, or an fpregs_lock()/fpregs_unlock(). The
lock disables bottom halves (and so preemption), not interrupts: a hardirq may arrive
between any two steps, and only the design's irq_fpu_usable() (`!softirq_count()`)
keeps it from using the FPU there. Step functions return the index of the next step.

PKRU (6.12+, 70044df250d0 and its fixes 6a1853bdf178 and ae6012d72fa6, simplified by
d1e420772cd1): get_sigframe() (arch/x86/kernel/signal.c) calls sig_prepare_pkru(), which
keeps the user's PKRU in a local and writes 0 (all keys enabled, so the XSAVE can reach
an alternate signal stack under any key); the XSAVE to the frame then sees PKRU in its
init state and writes XSTATE_BV[PKRU] = 0, and xsave_to_user_sigframe() ->
update_pkru_in_sigframe() sets XSTATE_BV[PKRU] again and writes the local into the
frame's PKRU slot; fpu__clear_user_states() -> restore_fpregs_from_init_fpstate() ends in
pkru_write_default(). sigreturn's XRSTOR from the frame loads PKRU with the rest.
"""

from __future__ import annotations

from ..kernel.context import (
    copy_sigframe_to_fpstate,
    fork_child,
    xrstor_from_sigframe,
    xsave_to_sigframe,
    __cpu_invalidate_fpregs_state,
    __fpu_invalidate_fpregs_state,
    fpregs_activate,
    fpregs_lock,
    fpregs_state_valid,
    fpregs_unlock,
    restore_fpregs_from_fpstate,
    restore_fpregs_from_init_fpstate,
    save_fpregs_to_fpstate,
)
from ..kernel.design import DONE, Step
from ..kernel.state import (
    C_FPREGS,
    C_PKRU,
    GARBAGE,
    INIT,
    NULL,
    PKRU_HW_INIT,
    PKRU_INIT,
    T_FPSTATE,
    T_FPSTATE_HDR,
    T_LAST_CPU,
    T_NEED_LOAD,
    T_PKRU,
    T_SIG_PKRU,
    T_SIGDEPTH,
    T_SIGFRAME_HDR,
    T_SIGFRAME_PKRU,
    T_XFD,
    T_XPKRU,
    T_XSIZE,
    XFD_ARMED,
    XFEATURE_MASK_PKRU,
    cpu,
    task,
    xrstor_pkru,
)


def fpregs_mark_activate(k: bytearray, c: int, t: int) -> None:
    """fpregs_mark_activate(): owner = &t->fpu, last_cpu = cpu, clear TIF_NEED_FPU_LOAD."""
    fpregs_activate(k, c, t)
    p = task(k, t)
    k[p + T_LAST_CPU], k[p + T_NEED_LOAD] = c, 0


def lock(then: int):
    """fpregs_lock(), then step `then`."""
    def fpregs_lock_step(k, c, t):
        fpregs_lock(k, c)
        return then
    fpregs_lock_step.__name__ = "fpregs_lock"
    return fpregs_lock_step


def unlock(then: int):
    """fpregs_unlock(), then step `then`."""
    def fpregs_unlock_step(k, c, t):
        fpregs_unlock(k, c)
        return then
    fpregs_unlock_step.__name__ = "fpregs_unlock"
    return fpregs_unlock_step


# ---------------------------------------------------------------- exec: fpu_flush_thread()
def fpu_reset_fpregs_invalidate(k: bytearray, c: int, t: int):
    """fpu_reset_fpregs(): fpregs_lock(); __fpu_invalidate_fpregs_state(). The new program
    starts from the init state."""
    fpregs_lock(k, c)
    __fpu_invalidate_fpregs_state(k, t)


def fpu_reset_fpregs_copy_init(k: bytearray, c: int, t: int):
    """fpu_reset_fpregs(): memcpy() init_fpstate into the memory image (registers untouched):
    init data, header XSTATE_BV = 0, PKRU slot 0."""
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_FPSTATE_HDR], k[p + T_XPKRU] = INIT, 0, PKRU_HW_INIT


def fpu_reset_fpregs_set_flag(k: bytearray, c: int, t: int):
    """fpu_reset_fpregs(): set TIF_NEED_FPU_LOAD (the return to user reloads); fpregs_unlock()."""
    k[task(k, t) + T_NEED_LOAD] = 1
    fpregs_unlock(k, c)


def exec_steps(pkru_flush_thread) -> tuple[Step, ...]:
    return (Step("fpu_flush_thread: fpregs_lock, __fpu_invalidate_fpregs_state", fpu_reset_fpregs_invalidate,
                 fresh_state=True),
            Step("fpu_flush_thread: copy init_fpstate to the image", fpu_reset_fpregs_copy_init),
            Step("fpu_flush_thread: set TIF_NEED_FPU_LOAD, fpregs_unlock", fpu_reset_fpregs_set_flag),
            Step("pkru_flush_thread", pkru_flush_thread))


# ---------------------------------------------------------------- fpu__clear_user_states()
def clear_user_states_steps(base: int) -> tuple[Step, ...]:
    """fpu__clear_user_states() as steps base..base+2: lock, XRSTOR init, mark active and unlock."""
    def restore_init(k, c, t):
        restore_fpregs_from_init_fpstate(k, c)
        k[cpu(c) + C_PKRU] = PKRU_INIT  # pkru_write_default()

    def mark_activate_unlock(k, c, t):
        fpregs_mark_activate(k, c, t)
        fpregs_unlock(k, c)
        k[task(k, t) + T_SIG_PKRU] = NULL  # handle_signal()'s pkru local is gone
        return DONE

    return (Step("fpu__clear_user_states: fpregs_lock", lock(base + 1)),
            Step("fpu__clear_user_states: restore_fpregs_from_init_fpstate, pkru_write_default", restore_init),
            Step("fpu__clear_user_states: fpregs_mark_activate, fpregs_unlock", mark_activate_unlock))


# ---------------------------------------------------------------- signal delivery
def sig_prepare_pkru(k: bytearray, c: int, t: int) -> None:
    """get_sigframe(): pkru = sig_prepare_pkru() (switch_to_permissive_pkey_reg() in later
    trees): keep the user's PKRU in handle_signal()'s local, write_pkru(0)."""
    q = cpu(c)
    k[task(k, t) + T_SIG_PKRU] = k[q + C_PKRU]
    k[q + C_PKRU] = PKRU_HW_INIT


def sigframe_lock(k: bytearray, c: int, t: int):
    """get_sigframe(): sig_prepare_pkru() once, before the retry loop (merged into this step:
    a preemption between the two only stashes and reloads the PKRU it wrote);
    copy_fpstate_to_sigframe(), retry: fpregs_lock(); restore first if TIF_NEED_FPU_LOAD."""
    if k[task(k, t) + T_SIG_PKRU] == NULL:
        sig_prepare_pkru(k, c, t)
    fpregs_lock(k, c)
    return 1 if k[task(k, t) + T_NEED_LOAD] else 3


def restore_userregs_steps(then: int) -> tuple[Step, Step]:
    """fpregs_restore_userregs() (context.h) as two steps, the XRSTOR and the bookkeeping
    writes after it; both go on to step `then`, the first at once if fpregs_state_valid()."""
    def fpregs_restore_userregs_xrstor(k: bytearray, c: int, t: int):
        if fpregs_state_valid(k, t, c):
            k[task(k, t) + T_NEED_LOAD] = 0
            return then
        restore_fpregs_from_fpstate(k, c, t, fault_loads_init=True)
        return None

    def fpregs_restore_userregs_activate(k: bytearray, c: int, t: int):
        fpregs_mark_activate(k, c, t)
        return then

    return (Step("fpregs_restore_userregs: XRSTOR unless fpregs_state_valid", fpregs_restore_userregs_xrstor),
            Step("fpregs_restore_userregs: fpregs_activate, last_cpu, clear TIF_NEED_FPU_LOAD",
                 fpregs_restore_userregs_activate))


def update_pkru_in_sigframe(k: bytearray, t: int, set_xfeature: bool = True) -> None:
    """update_pkru_in_sigframe() (arch/x86/kernel/fpu/xstate.h): set_xfeature_in_sigframe(buf,
    XFEATURE_MASK_PKRU) (ae6012d72fa6, v6.13; `set_xfeature`), then __put_user() the user's
    PKRU, handle_signal()'s local, into the frame's PKRU slot."""
    p = task(k, t)
    i = k[p + T_SIGDEPTH]
    if set_xfeature:
        k[p + T_SIGFRAME_HDR + i] |= XFEATURE_MASK_PKRU
    k[p + T_SIGFRAME_PKRU + i] = k[p + T_SIG_PKRU]


def xsave_to_user_sigframe(set_xfeature: bool = True):
    """copy_fpregs_to_sigframe() -> xsave_to_user_sigframe(buf, pkru): pagefault_disable(); XSAVE
    straight into the user frame, then update_pkru_in_sigframe(). A fault writes nothing."""
    def copy_fpregs_to_sigframe(k: bytearray, c: int, t: int, fault: bool):
        if fault:
            return 5
        xsave_to_sigframe(k, c, t)
        update_pkru_in_sigframe(k, t, set_xfeature)
        return 4
    return copy_fpregs_to_sigframe


def signal_steps(set_xfeature: bool = True) -> tuple[Step, ...]:
    return (
        Step("copy_fpstate_to_sigframe: fpregs_lock", sigframe_lock),
        *restore_userregs_steps(3),
        Step("copy_fpregs_to_sigframe: XSAVE to the frame, update_pkru_in_sigframe",
             xsave_to_user_sigframe(set_xfeature), may_fault=True),
        Step("fpregs_unlock", unlock(6)),
        Step("fpregs_unlock; __clear_user() faults the frame in, retry", unlock(0)),
    ) + clear_user_states_steps(6)


SIGNAL_STEPS = signal_steps()


# ---------------------------------------------------------------- sigreturn, 64-bit frame
def xrstor_from_user_sigframe(k: bytearray, c: int, t: int, fault: bool):
    """restore_fpregs_from_user(): pagefault_disable(); XRSTOR straight from the frame, PKRU
    included (XSTATE_BV[PKRU] clear loads 0). A #PF midway may leave the registers partly
    written; a header XRSTOR rejects raises #GP before anything is loaded."""
    if fault:
        k[cpu(c) + C_FPREGS] = GARBAGE
        return 3
    return 2 if xrstor_from_sigframe(k, c, t) else 4


def mark_activate_unlock(k: bytearray, c: int, t: int):
    """fpregs_mark_activate(); fpregs_unlock(): success."""
    fpregs_mark_activate(k, c, t)
    fpregs_unlock(k, c)
    return DONE


def failed_xrstor_invalidate(then: int, invalidate: bool = True):
    """On failure: if the registers did not belong to current (TIF_NEED_FPU_LOAD),
    __cpu_invalidate_fpregs_state() (bbc55341b9c6); fpregs_unlock(). Then a #PF faults the
    frame in and retries (`then` = 0); a bad header fails and fpu__restore_sig() resets."""
    def invalidate_unlock(k, c, t):
        if invalidate and k[task(k, t) + T_NEED_LOAD]:
            __cpu_invalidate_fpregs_state(k, c)
        fpregs_unlock(k, c)
        return then
    invalidate_unlock.__name__ = "__cpu_invalidate_fpregs_state"
    return invalidate_unlock


def sigreturn_steps(invalidate_on_failure: bool = True) -> tuple[Step, ...]:
    return (
        Step("restore_fpregs_from_user: fpregs_lock", lock(1)),
        Step("restore_fpregs_from_user: XRSTOR from the frame", xrstor_from_user_sigframe, may_fault=True),
        Step("fpregs_mark_activate, fpregs_unlock", mark_activate_unlock),
        Step("XRSTOR #PF: invalidate if TIF_NEED_FPU_LOAD, fpregs_unlock; fault_in_readable(), retry",
             failed_xrstor_invalidate(0, invalidate_on_failure)),
        Step("XRSTOR failed: invalidate if TIF_NEED_FPU_LOAD, fpregs_unlock; fpu__restore_sig() resets",
             failed_xrstor_invalidate(5, invalidate_on_failure)),
    ) + clear_user_states_steps(5)


# ---------------------------------------------------------------- sigreturn, ia32 FXSR frame
def restore_sig_save_live(k: bytearray, c: int, t: int):
    """__fpu_restore_sig(), under fpregs_lock(): if the registers are live, os_xsave() them
    (supervisor states) and set TIF_NEED_FPU_LOAD, so no switch or kernel_fpu_begin() touches
    the image."""
    p = task(k, t)
    if not k[p + T_NEED_LOAD]:
        save_fpregs_to_fpstate(k, c, t)
        k[p + T_NEED_LOAD] = 1


def restore_sig_invalidate_unlock(k: bytearray, c: int, t: int):
    """__fpu_invalidate_fpregs_state(); __cpu_invalidate_fpregs_state(); fpregs_unlock()."""
    __fpu_invalidate_fpregs_state(k, t)
    __cpu_invalidate_fpregs_state(k, c)
    fpregs_unlock(k, c)


def copy_sigframe_from_user_to_xstate(k: bytearray, c: int, t: int):
    """copy_sigframe_from_user_to_xstate() -> copy_uabi_to_xstate(fpstate, NULL, buf,
    &tsk->thread.pkru) (preemptible): validate the header (a bad one fails and
    fpu__restore_sig() resets the state), copy data, header and PKRU slot into the image, and
    set thread.pkru to the frame's PKRU, or 0 if XSTATE_BV[PKRU] is clear (d7e5aceace51)."""
    if not copy_sigframe_to_fpstate(k, t):
        return 7
    p = task(k, t)
    k[p + T_PKRU] = xrstor_pkru(k[p + T_XPKRU], k[p + T_FPSTATE_HDR])
    return None


def os_xrstor_safe(k: bytearray, c: int, t: int):
    """os_xrstor_safe(fpu->fpstate, fpu_kernel_cfg.max_features): the image, PKRU included."""
    restore_fpregs_from_fpstate(k, c, t, fault_loads_init=True, xpkru=True)


SIGRETURN_IA32_STEPS = (
    Step("__fpu_restore_sig: fpregs_lock", lock(1)),
    Step("__fpu_restore_sig: os_xsave if live, set TIF_NEED_FPU_LOAD", restore_sig_save_live),
    Step("__fpu_restore_sig: invalidate fpu and cpu, fpregs_unlock", restore_sig_invalidate_unlock),
    Step("copy_sigframe_from_user_to_xstate", copy_sigframe_from_user_to_xstate),
    Step("__fpu_restore_sig: fpregs_lock", lock(5)),
    Step("__fpu_restore_sig: os_xrstor_safe", os_xrstor_safe),
    Step("fpregs_mark_activate, fpregs_unlock", mark_activate_unlock),
) + clear_user_states_steps(7)


# ---------------------------------------------------------------- fork: copy_thread() -> fpu_clone()
def fpu_clone_reset(k: bytearray, c: int, t: int):
    """fpu_clone(): dst_fpu->last_cpu = -1 ("the new task's FPU state cannot be valid in the
    hardware"), fpstate_reset() (the default-size fpstate, xfd = init_fpstate.xfd), set the
    child's TIF_NEED_FPU_LOAD. Writes to the child only, which nothing can see before
    wake_up_new_task(): one step."""
    p = task(k, fork_child(k, t))
    k[p + T_LAST_CPU], k[p + T_NEED_LOAD] = NULL, 1
    if k[p + T_XSIZE]:
        k[p + T_XSIZE], k[p + T_XFD] = 0, XFD_ARMED


def fpu_clone_lock(locked: bool = True):
    """fpregs_lock(); if (test_thread_flag(TIF_NEED_FPU_LOAD)) fpregs_restore_userregs() (the
    flag cannot change once BH is off). Without `locked`, the flag is tested unlocked."""
    def fpregs_lock_step(k: bytearray, c: int, t: int):
        if locked:
            fpregs_lock(k, c)
        return 2 if k[task(k, t) + T_NEED_LOAD] else 4
    return fpregs_lock_step


def save_fpregs_to_dst_fpstate(k: bytearray, c: int, t: int):
    """save_fpregs_to_fpstate(dst_fpu): XSAVE current's registers into the child's image."""
    save_fpregs_to_fpstate(k, c, fork_child(k, t))


def fpu_clone_unlock(locked: bool = True):
    """fpregs_unlock(); back in copy_thread(): p->thread.pkru = read_pkru(), "clone current's
    PKRU value from hardware" (a user child). The RDPKRU is merged into this step: nothing
    between the two writes PKRU (a switch out and back stashes and reloads the same value)."""
    def fpregs_unlock_step(k: bytearray, c: int, t: int):
        if locked:
            fpregs_unlock(k, c)
        k[task(k, fork_child(k, t)) + T_PKRU] = k[cpu(c) + C_PKRU]
        return DONE
    return fpregs_unlock_step


def fork_steps(locked: bool = True) -> tuple[Step, ...]:
    """v6.18 fpu_clone() for a user child (arch/x86/kernel/fpu/core.c, read from the tip tree
    kernelorg-mirror/linux_kernel_git_tip_tip at 67639ee98521, v6.18 era), called from
    copy_thread() (arch/x86/kernel/process.c): the child's bookkeeping, then fpregs_lock();
    if (TIF_NEED_FPU_LOAD) fpregs_restore_userregs(); save_fpregs_to_fpstate(dst_fpu);
    fpregs_unlock(), each FPU instruction and each write of the parent's flag, owner or
    last_cpu its own step. The lock keeps softirqs and the scheduler out; a hardirq may
    arrive between any two steps and asks irq_fpu_usable()."""
    lock, unlock = ("fpregs_lock", "fpregs_unlock") if locked else ("no fpregs_lock", "no fpregs_unlock")
    return (Step("fpu_clone: last_cpu = -1, fpstate_reset, set TIF_NEED_FPU_LOAD", fpu_clone_reset),
            Step(f"fpu_clone: {lock}, test TIF_NEED_FPU_LOAD", fpu_clone_lock(locked)),
            *restore_userregs_steps(4),
            Step("fpu_clone: save_fpregs_to_fpstate(dst_fpu)", save_fpregs_to_dst_fpstate),
            Step(f"fpu_clone: {unlock}; copy_thread: p->thread.pkru = read_pkru()", fpu_clone_unlock(locked)))


FORK_STEPS = fork_steps()
