"""Real kernel bugs as mutants: a real design with exactly the one change its fix undid.

Each mutant's docstring names the commit and what went wrong. The regression
suite of the signals/ptrace feature adds the bugs that need those paths.
"""

from __future__ import annotations

from ..kernel.context import (
    fpregs_activate,
    fpregs_deactivate,
    fpregs_lock,
    restore_fpregs_from_fpstate,
)
from ..kernel.state import (
    C_IN_KFPU,
    C_OWNER,
    C_PREEMPT,
    NULL,
    T_FPSTATE,
    T_FPSTATE_ACTIVE,
    T_FPSTATE_HDR,
    T_LAST_CPU,
    T_LOCAL,
    T_NEED_LOAD,
    T_PKRU,
    cpu,
    task,
)
from ..kernel.fields import FIELD_TASK_PLUS1
from . import eager, linux, linux_paths
from ..kernel.design import DONE, Step


def fpu_reset_fpregs_before_1f69383b203e(k: bytearray, c: int, t: int) -> None:
    """exec: fpu_reset_fpregs() before "x86/fpu: Invalidate FPU state correctly on exec()"
    (1f69383b203e, v6.5-rc8): fpu__drop() clears fpu_fpregs_owner_ctx on *this* CPU
    instead of __fpu_invalidate_fpregs_state(). A copy of the old program's registers
    that is still valid on another CPU survives: if the task migrated since it was
    last saved there and migrates back before returning to user, the restore is
    skipped and the new program starts with the old program's registers."""
    fpregs_lock(k, c)
    fpregs_deactivate(k, c)  # fpu__drop(): owner = NULL, this CPU only


EXEC_INVALIDATION = linux.DESIGN.variant(
    name="linux-exec-invalidation",
    summary="linux with exec's invalidation before 1f69383b203e (fpu__drop on the current CPU only)",
    exec_steps=(Step("fpu_flush_thread: fpregs_lock, fpu__drop", fpu_reset_fpregs_before_1f69383b203e,
                     fresh_state=True),)
    + linux.DESIGN.exec_steps[1:],
)



# ---------------------------------------------------------------- 59c4bd853abc
def sigframe_lock_before_59c4bd853abc(k: bytearray, c: int, t: int):
    """copy_fpstate_to_sigframe() before "x86/fpu: Don't cache access to fpu_fpregs_owner_ctx"
    (59c4bd853abc, v5.4, found through Go runtime corruption): fpregs_state_valid() read the
    owner with this_cpu_read_stable(), and gcc 9 hoisted that load above the retry loop. When
    the XSAVE to the frame faults, the task may be preempted and another task loaded here
    before the retry; the retry then trusts the stale owner, skips the XRSTOR, and XSAVEs the
    other task's registers into this task's signal frame. The hoisted load (kept in the
    path's local, once, before the first pass), then fpregs_lock()."""
    p = task(k, t)
    if k[p + T_LOCAL] == 0:
        owner = k[cpu(c) + C_OWNER]
        k[p + T_LOCAL] = 0xFF if owner == NULL else owner + 1
    return linux_paths.sigframe_lock(k, c, t)


def fpregs_restore_userregs_xrstor_before_59c4bd853abc(k: bytearray, c: int, t: int):
    """fpregs_state_valid() with the hoisted, possibly stale, owner."""
    p = task(k, t)
    owner = NULL if k[p + T_LOCAL] == 0xFF else k[p + T_LOCAL] - 1
    if owner == t and k[p + T_LAST_CPU] == c:
        k[p + T_NEED_LOAD] = 0
        return 3
    restore_fpregs_from_fpstate(k, c, t, fault_loads_init=True)
    return 2


SIGFRAME_OWNER_CACHE = linux.DESIGN.variant(
    name="linux-sigframe-owner-cache",
    summary="linux with the fpu_fpregs_owner_ctx load hoisted above the sigframe retry loop (before 59c4bd853abc)",
    local_kind=FIELD_TASK_PLUS1,  # T_LOCAL caches the owner pointer
    signal_steps=(Step("copy_fpstate_to_sigframe: owner load hoisted, fpregs_lock", sigframe_lock_before_59c4bd853abc),
                  Step("fpregs_restore_userregs: XRSTOR unless fpregs_state_valid (stale owner)",
                       fpregs_restore_userregs_xrstor_before_59c4bd853abc))
    + linux.DESIGN.signal_steps[2:],
)


# ---------------------------------------------------------------- bbc55341b9c6
# restore_fpregs_from_user() before "x86/fpu: Deactivate FPU state after failure during state
# load" (bbc55341b9c6, v5.6): a failed XRSTOR from the frame may have written part of the
# registers, but the owner is left alone. If they belonged to another task whose state is
# still valid here (this task's TIF_NEED_FPU_LOAD is set), that task's next return to user
# skips its restore and runs with this task's half-loaded registers.
SIGRETURN_NO_DEACTIVATE = linux.DESIGN.variant(
    name="linux-sigreturn-no-deactivate",
    summary="linux whose failed sigreturn XRSTOR leaves fpu_fpregs_owner_ctx alone (before bbc55341b9c6)",
    sigreturn_steps=linux_paths.sigreturn_steps(invalidate_on_failure=False),
)


# ---------------------------------------------------------------- 68239654acaf
def fpu_initialized_before_68239654acaf(k: bytearray, c: int, t: int):
    """sigreturn, ia32 frame, before "x86/fpu: Disable bottom halves while loading FPU
    registers" (68239654acaf, v4.20, stable 4.4+): fpu->initialized = 1 is published with
    preemption and bottom halves enabled, before preempt_disable(); fpu__restore(). A context
    switch, or a softirq's kernel_fpu_begin(), in that window saves the stale pre-sigreturn
    registers over the state just copied from the frame, and fpu__restore() loads them."""
    k[task(k, t) + T_FPSTATE_ACTIVE] = 1


def preempt_disable(k: bytearray, c: int, t: int):
    """preempt_disable(): softirqs can still run at IRQ exit."""
    k[cpu(c) + C_PREEMPT] += 1


def fpu__restore_preempt_enable(k: bytearray, c: int, t: int):
    """fpu__restore(); preempt_enable()."""
    restore_fpregs_from_fpstate(k, c, t, pkru=True, fault_loads_init=True)
    fpregs_activate(k, c, t)
    k[cpu(c) + C_PREEMPT] -= 1
    return DONE


SIGRETURN_BH = eager.DESIGN.variant(
    name="eager-sigreturn-bh",
    summary="eager with the ia32 sigreturn publishing fpu->initialized before disabling BH (before 68239654acaf)",
    sigreturn_ia32_steps=eager.DESIGN.sigreturn_ia32_steps[:2] + (
        Step("fpu->initialized = 1", fpu_initialized_before_68239654acaf),
        Step("preempt_disable", preempt_disable),
        Step("fpu__restore, preempt_enable", fpu__restore_preempt_enable)),
)


# ---------------------------------------------------------------- CVE-2017-15537
def xstateregs_set_before_814fb7bb7db5(k: bytearray, t: int, value: int, hdr: int, pkru: int) -> None:
    """ptrace: xstateregs_set() before "x86/fpu: Don't let userspace set bogus xcomp_bv"
    (814fb7bb7db5, v4.14, CVE-2017-15537): the buffer is copied in without checking the
    header, so a nonzero xcomp_bv lands in the image and the next XRSTOR of it faults."""
    k[task(k, t) + T_LAST_CPU] = NULL
    k[task(k, t) + T_FPSTATE], k[task(k, t) + T_FPSTATE_HDR] = value, hdr
    if pkru != NULL:
        k[task(k, t) + T_PKRU] = pkru


def switch_fpu_before_d5c8028b4788(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """switch_fpu_prepare() + switch_fpu_finish() before "x86/fpu: Reinitialize FPU registers if
    restoring FPU state fails" (d5c8028b4788, v4.14): a faulting XRSTOR was only a WARN, so the
    registers kept the previous task's values and the next task ran with them."""
    eager.switch_fpu(k, c, prev, nxt, fault_loads_init=False)


XCOMP_BV = eager.DESIGN.variant(
    name="eager-xcomp-bv",
    summary="eager as of v4.13: ptrace accepts a bogus xcomp_bv and a failed XRSTOR keeps the registers (CVE-2017-15537)",
    xstateregs_set=xstateregs_set_before_814fb7bb7db5,
    switch_fpu=switch_fpu_before_d5c8028b4788,
)

# ---------------------------------------------------------------- 59f5ede3bc0f
def irq_fpu_usable_before_59f5ede3bc0f(s, c: int, ctx: int, from_user: bool) -> bool:
    """irq_fpu_usable() before "x86/fpu: Prevent FPU state corruption" (59f5ede3bc0f, v5.18,
    stable 5.4+): `!in_interrupt() || interrupted_user_mode() || interrupted_kernel_fpu_idle()`.
    A hardirq may use the FPU whenever no kernel-FPU section is active, even when it
    interrupted an fpregs_lock()ed section (BH disabled) of the task: its kernel_fpu_begin()
    then saves or clobbers registers the section is in the middle of loading or saving."""
    return not s[cpu(c) + C_IN_KFPU]


IRQ_FPU_USABLE = linux.DESIGN.variant(
    name="linux-irq-fpu-usable",
    summary="linux whose irq_fpu_usable() lets a hardirq into an fpregs_lock()ed section (before 59f5ede3bc0f)",
    irq_fpu_usable=irq_fpu_usable_before_59f5ede3bc0f,
)

# ---------------------------------------------------------------- ae6012d72fa6
# update_pkru_in_sigframe() before "x86/pkeys: Ensure updated PKRU value is XRSTOR'd"
# (ae6012d72fa6, v6.13-rc, stable 6.12; Fixes: 70044df250d0): it writes the user's PKRU into the
# frame's PKRU slot but leaves XSTATE_BV[PKRU] as the XSAVE wrote it. sig_prepare_pkru() had just
# written PKRU = 0, its init state (AMD's init tracker clears XINUSE[PKRU] on WRPKRU(0)), so the
# XSAVE wrote XSTATE_BV[PKRU] = 0 and sigreturn's XRSTOR ignores the slot and loads 0: the program
# resumes with every protection key enabled.
SIGFRAME_PKRU_XSTATE_BV = linux.DESIGN.variant(
    name="linux-sigframe-pkru-xstate-bv",
    summary="linux whose update_pkru_in_sigframe() leaves XSTATE_BV[PKRU] clear (before ae6012d72fa6)",
    signal_steps=linux_paths.signal_steps(set_xfeature=False),
)


# ---------------------------------------------------------------- d7e5aceace51
def xstateregs_set_before_d7e5aceace51(k: bytearray, t: int, value: int, hdr: int, pkru: int) -> None:
    """ptrace: xstateregs_set() -> copy_uabi_to_xstate() before "x86/fpu: Emulate XRSTOR's behavior
    if the xfeatures PKRU bit is not set" (d7e5aceace51, v6.2, stable 5.15+/6.1): a buffer whose
    XSTATE_BV[PKRU] is clear leaves thread.pkru alone, where XRSTOR (and every kernel before 5.14,
    and sigreturn) would load PKRU's init value 0: the tracee keeps its old keys."""
    linux.xstateregs_set(k, t, value, hdr, pkru, pkru_init_is_zero=False)


PTRACE_PKRU_INIT = linux.DESIGN.variant(
    name="linux-ptrace-pkru-init",
    summary="linux whose ptrace write ignores a clear XSTATE_BV[PKRU] (before d7e5aceace51)",
    xstateregs_set=xstateregs_set_before_d7e5aceace51,
)

# ---------------------------------------------------------------- fpu_clone() without fpregs_lock()
# fpu_clone() (v6.18) with its fpregs_lock()/fpregs_unlock() pair dropped (a one-change mutant, not a
# bug the kernel shipped: 5.2's fpu__copy() added the lock with the deferred restore, 5f409e20b794).
# The parent's flag test, its restore and the XSAVE into the child then run with BH and preemption
# enabled: a softirq's or a hardirq's kernel_fpu_begin(), or a switch away and back, between them
# leaves the registers holding kernel data or another task's, and the XSAVE copies that into the
# child. The atomic fork of the old model could not express it.
FORK_NO_LOCK = linux.DESIGN.variant(
    name="linux-fork-no-lock",
    summary="linux whose fpu_clone() saves the parent's registers into the child without fpregs_lock()",
    fork_steps=linux_paths.fork_steps(locked=False),
)

MUTANTS = {d.name: d for d in (SIGFRAME_PKRU_XSTATE_BV, PTRACE_PKRU_INIT, IRQ_FPU_USABLE, EXEC_INVALIDATION,
                                SIGFRAME_OWNER_CACHE, SIGRETURN_NO_DEACTIVATE, SIGRETURN_BH, XCOMP_BV, FORK_NO_LOCK)}
