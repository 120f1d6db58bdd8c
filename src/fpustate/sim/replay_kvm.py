"""The replay's KVM and AMX operations: a vCPU thread's KVM_RUN, VM entries and exits, and
the first-use #NM of AMX tile data, through the design's 5.16+ hooks (`Design.fpu_ext`).

The table events the checker explores (`kernel/actions_kvm.py`), applied on one schedule:
- `KVM_LOAD` is ioctl(KVM_RUN) -> kvm_load_guest_fpu() -> fpu_swap_kvm_fpstate(guest, true)
  (the kernel's `kvm_fpu: load`); the task is then in the run loop (PC_KVM_RUN) with its
  fpu->fpstate pointing at the guest's, so a context switch, kernel_fpu_begin() and the
  deferred restore handle the guest's state with no KVM code (v6.18 arch/x86/kvm/x86.c).
- `VM_ENTRY` is vcpu_enter_guest() (reload if TIF_NEED_FPU_LOAD, then VMLAUNCH/VMRESUME);
  with arg 1 the guest writes its FPU registers. `VM_EXIT` returns to the run loop.
- `KVM_PUT` is kvm_put_guest_fpu() -> fpu_swap_kvm_fpstate(guest, false) (`kvm_fpu: unload`).
- `XFD_NM` is the first AMX tile instruction of a task with XFD armed: #NM with XFD_ERR,
  handle_xfd_event() -> fpstate_realloc() (arch/x86/kernel/traps.c, fpu/xstate.c), the exit
  to user mode, then the instruction runs and the tiles are live.

What the schedule leaves implicit is made explicit as the kernel does it: an interrupt or a
switch in guest mode is a VM exit first; a vCPU thread that returns to user mode, takes a
signal, execs or exits has left KVM_RUN first (the ioctl returns: kvm_put_guest_fpu()).
A design without the hooks cannot replay these operations (`sim.run` skips or refuses it).
"""

from __future__ import annotations

from ..errors import UsageError
from ..kernel.actions import apply_action
from ..kernel.actions_kvm import AMX_NM, FPSTATE_REALLOC, GUEST_WRITE, KVM_RUN, KVM_RUN_EXIT, VM_ENTRY, VM_EXIT, XCOMP_PERM
from ..kernel.state import (
    PC_GUEST,
    PC_KVM_RUN,
    T_PC,
    T_XFD,
    T_XPERM,
    XFD_ARMED,
    task,
)
from . import ops as O

AMX_XFEATURES = 1 << 17 | 1 << 18  # XTILECFG and XTILEDATA (cost-model.md 3.1): live after the first use
KVM_COUNTERS = ("kvm_loads", "kvm_puts", "vm_entries", "vm_exits", "xfd_traps", "xfd_msr_writes")


class KvmUnsupported(UsageError):
    """A KVM or AMX operation reached a design without the 5.16+ hooks; `line` is the trace line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def kvm_unsupported(design) -> str:
    """The one line saying why `design` cannot replay KVM or AMX operations."""
    return f"design {design.name!r} ({design.kernel}) cannot replay KVM or AMX events: {design.no_fpu_ext}"


class KvmReplay:
    """The KVM and AMX operation handlers of `sim.replay.Replay` (a mixin: they use its state)."""

    def _fpu_ext(self, op: O.Op):
        ext = self.design.fpu_ext
        if ext is None:  # sim.run skips or refuses such designs first (unless the events come late in a trace)
            raise KvmUnsupported(kvm_unsupported(self.origin), op.line if op is not None else 0)
        return ext

    def _vm_exit(self, c: int, t: int) -> None:
        """The guest leaves: a VM exit back to the vcpu_run() loop."""
        self._act(VM_EXIT, c)

    def _kvm_put(self, c: int, t: int) -> None:
        """KVM_RUN returns to userspace: a VM exit first if in guest mode, kvm_put_guest_fpu()."""
        self._fpu_ext(None)
        if self.k[task(self.k, t) + T_PC] == PC_GUEST:
            self._vm_exit(c, t)
        self._act(KVM_RUN_EXIT, c)

    def op_kvm_load(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if not self.user_program(t) or k[p + T_PC] in (PC_KVM_RUN, PC_GUEST):
            return
        self._fpu_ext(op)
        self.enter_syscall(c, t)  # the ioctl
        self._act(KVM_RUN, c)

    def op_kvm_put(self, op: O.Op) -> None:
        t = self.current(op.cpu)
        if self.k[task(self.k, t) + T_PC] in (PC_KVM_RUN, PC_GUEST):
            self._kvm_put(op.cpu, t)

    def op_vm_entry(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        pc = k[p + T_PC]
        if pc == PC_KVM_RUN:
            counts = self.counts
            before = counts["restores"]
            self._fpu_ext(op)
            self._act(VM_ENTRY, c)
            if self.conformance and op.kernel != O.UNKNOWN:
                self._decided("vm_entry", op, counts["restores"] > before, self.pid_of[t])
        elif pc != PC_GUEST:
            return  # not in KVM_RUN (a trace that began inside it): nothing to enter
        if op.arg:  # the guest computes: its registers change (no trap: KVM passes the FPU through)
            self._act(GUEST_WRITE, c)

    def op_vm_exit(self, op: O.Op) -> None:
        t = self.current(op.cpu)
        if self.k[task(self.k, t) + T_PC] == PC_GUEST:
            self._vm_exit(op.cpu, t)

    def op_xfd_nm(self, op: O.Op) -> None:
        c, k = op.cpu, self.k
        t = self.current(c)
        p = task(k, t)
        if not self.user_program(t):
            return
        self._fpu_ext(op)
        self._to_user(c, t)  # the tile instruction runs in user mode
        if not k[p + T_XPERM]:  # the program asked first: arch_prctl(ARCH_REQ_XCOMP_PERM), no register state
            self.enter_syscall(c, t)
            self._act(XCOMP_PERM, c)
            self._to_user(c, t)
        if k[p + T_XFD] == XFD_ARMED and apply_action(self.m, k, AMX_NM, c):  # exc_device_not_available()
            self._act(FPSTATE_REALLOC, c)  # handle_xfd_event() -> fpstate_realloc(), then the exit path
            self._to_user(c, t)
        self.xfeatures[t] = self.xfeatures.get(t, self.default_xf) | AMX_XFEATURES
        self._use(c, t)

