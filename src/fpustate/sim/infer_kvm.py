"""The inference's KVM part: `kvm:kvm_fpu`, `kvm:kvm_entry` and `kvm:kvm_exit` records as operations.

The tracepoints (v6.18; include/trace/events/kvm.h and arch/x86/kvm/trace.h in the tip tree):
- `kvm_fpu`, `TP_printk("%s", ...)` of `{0, "unload"}, {1, "load"}`: fired by
  kvm_load_guest_fpu() right after fpu_swap_kvm_fpstate(guest, true) (KVM_RUN entry) and by
  kvm_put_guest_fpu() right after the swap back (KVM_RUN returns to userspace), in
  arch/x86/kvm/x86.c. The swap itself ends in fpregs_mark_activate(), whose
  fpregs_activate() fires `x86_fpu_regs_activated` (with `load:` the flag before the swap)
  just before the `kvm_fpu` record of the same task on the same CPU.
- `kvm_entry` ("vcpu %u, rip 0x%lx...") in vmx_vcpu_run()/svm_vcpu_run(), called by
  vcpu_enter_guest() after its `switch_fpu_return()` (which fires `x86_fpu_regs_activated`
  with `load: 1` when it restores); `kvm_exit` ("vcpu %u reason %s ...") after the VM exit.

So, with `x86_fpu` events present, an activation might be the swap's: in a trace with KVM
events every activation is held until the next record on its CPU, and is the swap's if that
record is the same task's `kvm_fpu`. Inside KVM_RUN, an activation that restores (any other)
is the VM entry's reload, and a slice that ends in a save without one entered the guest with
the restore skipped (the `x86_fpu_regs_deactivated` of the switch shows the live registers),
as user slices return to user mode with it skipped; without `x86_fpu` events a vCPU thread
switched in inside KVM_RUN enters the guest once, using the FPU with probability `fpu_use`,
as a user task returns to user mode. The guest uses the FPU at every entry the trace shows
(the conservative assumption, as for user slices). A vCPU thread that was inside KVM_RUN when
the trace began is a plain user task until its first `kvm_fpu`; its `kvm_entry`/`kvm_exit`
before that are ignored. No tracepoint shows an XFD #NM or an XFD MSR write, so traces give
no `XFD_NM` operations.
"""

from __future__ import annotations

from . import ops as O
from .events import Record
from .payload import MalformedRecord

from .ops import new_op as _new
KVM_EVENTS = frozenset(("kvm_fpu", "kvm_entry", "kvm_exit"))


class KvmInference:
    """The KVM handlers of `sim.infer.Inference` (a mixin: they use its state)."""

    def _resume(self, c: int, pid: int, kernel: int, line: int, use: int = 1) -> O.Op:
        """A slice that ran with live registers: a return to user mode (using the FPU), or for a
        vCPU thread inside KVM_RUN a VM entry (the guest using it)."""
        if self.in_kvm and pid in self.in_kvm:
            self.in_guest.add(pid)
            return _new(O.Op, (O.VM_ENTRY, c, pid, use, O.USER, kernel, line))
        return _new(O.Op, (O.RETURN, c, pid, use, O.USER, kernel, line))

    def _held_then(self, held: Record, rec: Record) -> list:
        """A held x86_fpu_regs_activated and the next record on its CPU."""
        out: list = []
        if rec.event == "kvm_fpu" and rec.pid == held.pid:
            self.records += 1
            self._kvm_fpu(out, rec, held)
            return out
        self._activated(out, held, False)
        out += self.feed(rec)
        return out

    def _kvm_event(self, out: list, rec: Record) -> None:
        if rec.event == "kvm_fpu":
            self._kvm_fpu(out, rec, None)
            return
        pid, c = rec.pid, rec.cpu
        if pid not in self.in_kvm:
            return  # inside KVM_RUN since before the trace: a plain user task until its first kvm_fpu
        if self.cur.get(c) != pid:
            self._sync(out, rec, pid)
        if rec.event == "kvm_entry":
            if pid not in self.in_guest:  # (no reload shown before it: the registers were valid)
                self.in_guest.add(pid)
                self.in_user[pid] = True
                out.append(O.Op(O.VM_ENTRY, c, pid, 1, O.USER, 0 if self.fpu_events else O.UNKNOWN, rec.line))
        elif pid in self.in_guest:
            self.in_guest.discard(pid)
            out.append(O.Op(O.VM_EXIT, c, pid, line=rec.line))

    def _kvm_fpu(self, out: list, rec: Record, held) -> None:
        """trace_kvm_fpu(1) after kvm_load_guest_fpu()'s swap, trace_kvm_fpu(0) after kvm_put_guest_fpu()'s;
        `held` is the swap's own activation, if the trace has x86_fpu events."""
        what = rec.payload.strip()
        if what not in ("load", "unload"):
            raise MalformedRecord(f"line {rec.line}: kvm_fpu: expected 'load' or 'unload', got {what[:40]!r}")
        self.kvm = True
        pid, c = rec.pid, rec.cpu
        if self.cur.get(c) != pid:
            self._sync(out, rec, pid)
        self.kind[pid] = O.USER
        if self.start and c in self.start:  # load: 0 before the swap: its own registers were live
            fields = held.payload.split() if held is not None else ()
            self._boot(out, c, len(fields) > 3 and fields[3] == "0")
        if what == "load":
            if pid not in self.in_kvm:
                self.in_kvm.add(pid)
                out.append(O.Op(O.KVM_LOAD, c, pid, line=rec.line))
            self.in_user[pid] = True  # its (guest) registers are live in this slice
        else:
            if pid in self.in_kvm:
                self.in_kvm.discard(pid)
                self.in_guest.discard(pid)
                out.append(O.Op(O.KVM_PUT, c, pid, line=rec.line))
            self.in_user[pid] = False  # back in the ioctl; its return to user mode skips the restore
        if held is not None:
            self.view.activated(pid, c)  # fpregs_mark_activate()
