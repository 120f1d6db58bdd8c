"""`linux`: the deferred FPU restore of Linux v6.18.

Pinned to v6.18, the kernel the shipped traces were recorded on. Files:
arch/x86/include/asm/fpu/sched.h (switch_fpu), arch/x86/kernel/fpu/context.h
(fpregs_state_valid, fpregs_restore_userregs), arch/x86/kernel/fpu/core.c
(kernel_fpu_begin_mask, kernel_fpu_end, irq_fpu_usable, fpu__drop, fpu_flush_thread;
fpu_clone, from copy_thread() in arch/x86/kernel/process.c, is a path in `linux_paths`), arch/x86/include/asm/entry-common.h
(arch_exit_to_user_mode_prepare), kernel/entry/common.c (the work loop),
arch/x86/kernel/process_64.c (x86_pkru_load), arch/x86/kernel/process.c
(flush_thread, pkru_flush_thread), arch/x86/kernel/fpu/signal.c
(copy_fpstate_to_sigframe, restore_fpregs_from_user, __fpu_restore_sig,
fpu__restore_sig: the paths are in `linux_paths`), arch/x86/kernel/fpu/regset.c
(xstateregs_get/set); KVM, AMX/XFD and CPU hotplug: `linux_kvm`.

- TIF_NEED_FPU_LOAD is set on the *outgoing* task when switch_fpu() saves it
  (≈6.15+), and cleared by fpregs_restore_userregs() on the way to user mode,
  after the work loop, with IRQs off and the flags re-read.
- The restore is skipped when fpregs_state_valid(): owner and last_cpu match.
- PKRU lives in thread.pkru and is switched eagerly by x86_pkru_load().
- kernel_fpu_begin_mask() takes fpregs_lock() (BH off) unless IRQs are off,
  saves only when the registers are live, and always invalidates the CPU.
  irq_fpu_usable() refuses nesting (kernel_fpu_allowed) and hardirqs that hit
  a BH-disabled region.
"""

from __future__ import annotations

from ..kernel.context import (
    __cpu_invalidate_fpregs_state,
    __fpu_invalidate_fpregs_state,
    fpregs_activate,
    fpregs_deactivate,
    fpregs_state_valid,
    kernel_clobbers_fpregs,
    restore_fpregs_from_fpstate,
    save_fpregs_to_fpstate,
)
from ..kernel.state import (
    C_BH,
    C_CTX,
    C_CURR,
    C_IN_KFPU,
    C_PKRU,
    CPU_W,
    CTX_SOFTIRQ_KFPU,
    HDR_BAD,
    HEADER,
    NULL,
    PKRU_HW_INIT,
    PKRU_INIT,
    T_FPSTATE,
    T_FPSTATE_HDR,
    T_KIND,
    T_LAST_CPU,
    T_NEED_LOAD,
    T_PKRU,
    T_XPKRU,
    TASK_W,
    USER,
    XFEATURE_MASK_PKRU,
    cpu,
    task,
)
from ..kernel.design import K_HARDIRQ, Design, Step
from . import linux_paths


def boot_task(k: bytearray, t: int, on_cpu: int) -> None:
    """A user task in user mode has TIF_NEED_FPU_LOAD clear and last_cpu = its CPU;
    every other task has the flag set (kernel threads from fork, never cleared)."""
    p = task(k, t)
    if k[p + T_KIND] == USER and on_cpu != NULL:
        k[p + T_NEED_LOAD], k[p + T_LAST_CPU] = 0, on_cpu


def switch_fpu(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """__switch_to(): switch_fpu(prev, cpu), then x86_pkru_load(prev, next).

    switch_fpu() saves prev's live registers, sets its TIF_NEED_FPU_LOAD and
    records last_cpu = cpu, but leaves fpu_fpregs_owner_ctx pointing at prev,
    so that prev can skip the restore if it comes back here first.
    """
    p = k[0] + prev * TASK_W  # task(k, prev), inlined: every switch of both engines runs this
    if not k[p + T_NEED_LOAD] and k[p + T_KIND] == USER:
        k[p + T_NEED_LOAD] = 1
        save_fpregs_to_fpstate(k, c, prev)
        k[p + T_LAST_CPU] = c
    x86_pkru_load(k, c, prev, nxt)


def x86_pkru_load(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """x86_pkru_load(): stash rdpkru() in prev->thread.pkru, WRPKRU next's value if it differs."""
    q = HEADER + c * CPU_W  # cpu(c) and task(), inlined on the switch path
    tb = k[0]
    k[tb + prev * TASK_W + T_PKRU] = k[q + C_PKRU]
    k[q + C_PKRU] = k[tb + nxt * TASK_W + T_PKRU]


def fpregs_restore_userregs(k: bytearray, c: int, t: int) -> None:
    """fpregs_restore_userregs(): XRSTOR unless fpregs_state_valid(); clear TIF_NEED_FPU_LOAD.

    PKRU is excluded from the restore: switch_to() or flush_thread() already set it.
    """
    p = task(k, t)
    if k[p + T_KIND] != USER:
        return  # WARN_ON_ONCE(current->flags & (PF_KTHREAD | PF_USER_WORKER))
    if not fpregs_state_valid(k, t, c):
        restore_fpregs_from_fpstate(k, c, t, fault_loads_init=True)
        fpregs_activate(k, c, t)
        k[p + T_LAST_CPU] = c
    k[p + T_NEED_LOAD] = 0


def arch_exit_to_user_mode_prepare(k: bytearray, c: int, t: int, snapshot: int) -> None:
    """arch_exit_to_user_mode_prepare(): with ti_work re-read after the loop and IRQs off,
    switch_fpu_return() if TIF_NEED_FPU_LOAD is set."""
    if k[k[0] + t * TASK_W + T_NEED_LOAD]:  # task(k, t), inlined on the return path
        fpregs_restore_userregs(k, c, t)


def irq_fpu_usable(s, c: int, ctx: int, from_user: bool) -> bool:
    """irq_fpu_usable(): never nested; in hardirq only if softirq_count() == 0."""
    q = cpu(c)
    if s[q + C_IN_KFPU]:
        return False  # !kernel_fpu_allowed
    if ctx != K_HARDIRQ:
        return True
    return s[q + C_BH] == 0 and s[q + C_CTX] != CTX_SOFTIRQ_KFPU


def kernel_fpu_begin_mask(k: bytearray, c: int, ctx: int) -> None:
    """kernel_fpu_begin_mask(): fpregs_lock() unless IRQs are off; if current's registers
    are live, set TIF_NEED_FPU_LOAD and save them; __cpu_invalidate_fpregs_state()."""
    q = cpu(c)
    if ctx != K_HARDIRQ:
        k[q + C_BH] += 1  # fpregs_lock() -> local_bh_disable()
    k[q + C_IN_KFPU] = 1
    t = k[q + C_CURR]
    p = task(k, t)
    if k[p + T_KIND] == USER and not k[p + T_NEED_LOAD]:
        k[p + T_NEED_LOAD] = 1
        save_fpregs_to_fpstate(k, c, t)
    __cpu_invalidate_fpregs_state(k, c)
    kernel_clobbers_fpregs(k, c)


def kernel_fpu_end(k: bytearray, c: int, ctx: int) -> None:
    """kernel_fpu_end(): allow kernel FPU use again and fpregs_unlock(); no restore."""
    q = cpu(c)
    k[q + C_IN_KFPU] = 0
    if ctx != K_HARDIRQ:
        k[q + C_BH] -= 1


def pkru_flush_thread(k: bytearray, c: int, t: int) -> None:
    """exec: pkru_flush_thread(): write the default PKRU into the register."""
    k[cpu(c) + C_PKRU] = PKRU_INIT


def fpu__drop(k: bytearray, c: int, t: int) -> None:
    """exit_thread() -> fpu__drop(): nothing if TIF_NEED_FPU_LOAD is set; otherwise fwait
    and fpregs_deactivate() (owner = NULL on this CPU)."""
    if not k[task(k, t) + T_NEED_LOAD]:
        fpregs_deactivate(k, c)


def xstateregs_set(k: bytearray, t: int, value: int, hdr: int, pkru: int,
                   pkru_init_is_zero: bool = True) -> None:
    """ptrace: xstateregs_set(): fpu_force_restore() (__fpu_invalidate_fpregs_state(), so the
    tracee's stale register copy on its former CPU is not reused), then
    copy_uabi_from_kernel_to_xstate() -> copy_uabi_to_xstate(fpstate, kbuf, NULL,
    &target->thread.pkru) (arch/x86/kernel/fpu/{regset,xstate}.c, tip v6.18), which validates
    the header and rejects a bogus one, copies data and header into the image, and writes
    PKRU's *first* home, thread.pkru: the buffer's PKRU if XSTATE_BV[PKRU] is set (4a804c4f8356,
    v6.2), else 0 as XRSTOR would (d7e5aceace51, v6.2; `pkru_init_is_zero`)."""
    __fpu_invalidate_fpregs_state(k, t)
    if hdr & HDR_BAD:
        return  # validate_user_xstate_header(): -EINVAL, image unchanged
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_FPSTATE_HDR] = value, hdr
    if hdr & XFEATURE_MASK_PKRU:
        if pkru != NULL:
            k[p + T_PKRU] = k[p + T_XPKRU] = pkru
    elif pkru_init_is_zero:
        k[p + T_PKRU] = PKRU_HW_INIT


def fpu_sync_fpstate(k: bytearray, c: int, t: int) -> None:
    """fpu_sync_fpstate(): under fpregs_lock(), XSAVE the registers into the image unless
    TIF_NEED_FPU_LOAD says the image is already current."""
    if not k[task(k, t) + T_NEED_LOAD]:
        save_fpregs_to_fpstate(k, c, t)


def regs_live(s, t: int, c: int) -> bool:
    """TIF_NEED_FPU_LOAD clear: the registers hold the task's live state."""
    return not s[task(s, t) + T_NEED_LOAD]


from . import linux_kvm  # noqa: E402  (it uses fpregs_restore_userregs() above)

DESIGN = Design(
    name="linux",
    summary="Linux v6.18: TIF_NEED_FPU_LOAD, restore deferred to exit-to-user, skipped when fpregs_state_valid",
    kernel="v6.18",
    files="arch/x86/include/asm/fpu/sched.h, arch/x86/kernel/fpu/{core.c,context.h}, "
          "arch/x86/include/asm/entry-common.h, arch/x86/kernel/process{,_64}.c",
    flag_name="TIF_NEED_FPU_LOAD",
    has_pkru=True,
    valid_while_live=True,
    boot_task=boot_task,
    switch_fpu=switch_fpu,
    exit_to_user=arch_exit_to_user_mode_prepare,
    irq_fpu_usable=irq_fpu_usable,
    kernel_fpu_begin=kernel_fpu_begin_mask,
    kernel_fpu_end=kernel_fpu_end,
    fork_steps=linux_paths.FORK_STEPS,
    pf_user_worker=True,
    exec_steps=linux_paths.exec_steps(pkru_flush_thread),
    exit_steps=(Step("fpu__drop", fpu__drop),),
    regs_live=regs_live,
    xstateregs_set=xstateregs_set,
    signal_steps=linux_paths.SIGNAL_STEPS,
    sigreturn_steps=linux_paths.sigreturn_steps(),
    sigreturn_ia32_steps=linux_paths.SIGRETURN_IA32_STEPS,
    fpu_sync_fpstate=fpu_sync_fpstate,
    fpu_ext=linux_kvm.FPU_EXT,
)
