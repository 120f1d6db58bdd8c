"""Real KVM and XFD bugs as one-change mutants of `linux` (v6.18's fpu_swap_kvm_fpstate and
fpu__init_cpu_xstate, `linux_kvm`), each with the commit and what went wrong.
"""

from __future__ import annotations

from ..kernel import context

from ..kernel.context import (
    __cpu_invalidate_fpregs_state,
    fpregs_lock,
    fpregs_unlock,
    restore_fpregs_from_fpstate,
    save_fpregs_to_fpstate,
)
from ..kernel.state import C_FPREGS, C_PKRU, C_XFD, INIT, PKRU_INIT, cpu
from . import linux, linux_kvm
from .linux_paths import fpregs_mark_activate


# ---------------------------------------------------------------- e751732486eb / c9aef3b85f42
def fpu_swap_kvm_fpstate_before_c9aef3b85f42(k: bytearray, c: int, t: int, enter_guest: bool) -> None:
    """fpu_swap_kvm_fpstate() saving the registers whatever TIF_NEED_FPU_LOAD says, as 5.2's
    kvm_load_guest_fpu()/kvm_put_guest_fpu() did (copy_fpregs_to_fpstate() into user_fpu /
    guest_fpu under fpregs_lock()). After 5.2 deferred the restore, the vCPU thread may be
    preempted or a softirq may run kernel_fpu_begin() inside KVM_RUN: the guest's registers are
    saved into current's fpstate, TIF_NEED_FPU_LOAD is set and the registers hold another task's
    or the kernel's data, which the unconditional XSAVE then writes over the guest's fpstate.
    "KVM: X86: Fix fpu state crash in kvm guest" (e751732486eb, 5.3-rc) reloaded the registers at
    sched-in, closing the preemption window only; "KVM: x86: Handle TIF_NEED_FPU_LOAD in
    kvm_{load,put}_guest_fpu()" (c9aef3b85f42, 5.6) made the save honour the flag, the test
    6.18's fpu_swap_kvm_fpstate() keeps. This mutant drops that test."""
    context.trace(k, "kvm_load" if enter_guest else "kvm_put", c, t)
    fpregs_lock(k, c)
    save_fpregs_to_fpstate(k, c, t)
    linux_kvm.swap_fpstate_pointer(k, t)
    restore_fpregs_from_fpstate(k, c, t)
    fpregs_mark_activate(k, c, t)
    fpregs_unlock(k, c)


KVM_SAVE_IGNORES_NEED_LOAD = linux.DESIGN.variant(
    name="linux-kvm-save-ignores-need-load",
    summary="linux whose fpu_swap_kvm_fpstate() saves the registers even with TIF_NEED_FPU_LOAD set "
            "(5.2's kvm_put_guest_fpu, before c9aef3b85f42)",
    fpu_ext=linux.DESIGN.fpu_ext._replace(fpu_swap_kvm_fpstate=fpu_swap_kvm_fpstate_before_c9aef3b85f42),
)


# ---------------------------------------------------------------- 10e4b5166df9
def fpu__init_cpu_before_10e4b5166df9(k: bytearray, c: int, init_xfd: int) -> None:
    """CPU bring-up before "x86/fpu: Keep xfd_state in sync with MSR_IA32_XFD" (10e4b5166df9,
    6.9-rc1, CVE-2024-35801; 5.16 to 6.8): fpu__init_cpu_xstate() did wrmsrl(MSR_IA32_XFD,
    init_fpstate.xfd) and left the per-CPU xfd_state alone. If the last task to run on the CPU
    before it went offline had AMX enabled (xfd 0), the cache still says 0 while the MSR arms
    XTILE_DATA again; xfd_update_state() for such a task skips the write and its XRSTOR of tile
    data raises #NM in the kernel."""
    __cpu_invalidate_fpregs_state(k, c)
    k[cpu(c) + C_FPREGS], k[cpu(c) + C_PKRU] = INIT, PKRU_INIT
    k[cpu(c) + C_XFD] = init_xfd  # wrmsrl() only


XFD_CACHE_HOTPLUG = linux.DESIGN.variant(
    name="linux-xfd-cache-hotplug",
    summary="linux whose CPU bring-up writes MSR_IA32_XFD without the xfd_state cache (before 10e4b5166df9)",
    fpu_ext=linux.DESIGN.fpu_ext._replace(fpu__init_cpu=fpu__init_cpu_before_10e4b5166df9),
)

MUTANTS = {d.name: d for d in (KVM_SAVE_IGNORES_NEED_LOAD, XFD_CACHE_HOTPLUG)}
