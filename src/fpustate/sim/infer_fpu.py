"""The `x86_fpu` records of a trace (`sim.infer`'s first inference): what each one says the
kernel did, and what it implies that no tracepoint shows (counted in `inferred`).

- `x86_fpu_regs_activated`: a restore at the return to user mode (`load: 1`), a signal
  frame's restore under fpregs_lock (flags `b`), or a signal path's fpregs_mark_activate()
  (`load: 0`, in handler/sigreturn pairs); a restore the traced kernel's bookkeeping cannot
  explain is a kernel_fpu_begin_mask() with no tracepoint, or, of the init image, an exec
  the trace lacks.
- `x86_fpu_regs_deactivated` not at a switch: fpu__drop() at exit with the flag clear. A task
  last seen with the flag set must then have returned to user mode with the restore skipped,
  which clears the flag silently (fpregs_restore_userregs(), v6.18): that return is put
  before its exit.
- `x86_fpu_copy_dst`: fpu_clone(); the parent's registers are current.
"""

from __future__ import annotations

from typing import Optional

from . import ops as O
from .events import Record
from .kernel_view import EXEC_UNRECORDED, RETURN_BEFORE_EXIT
from .payload import FPU_KNOWN, MalformedRecord

from .ops import new_op as _new


class FpuInference:
    """The x86_fpu handlers of `sim.infer.Inference` (a mixin: they use its state)."""

    def _xfeatures(self, out: list, rec: Record, text: Optional[str] = None) -> None:
        """Pass on the XSTATE_BV of pid's state when it changes."""
        if self.in_kvm and rec.pid in self.in_kvm:
            return  # the guest's XSTATE_BV: both fpstates are priced with the vCPU thread's own
        if text is None:
            payload = rec.payload
            i = payload.find(" xfeatures: ")
            if i < 0:
                return
            j = payload.find(" ", i + 12)
            text = payload[i + 12: j] if j >= 0 else payload[i + 12:]
        if self.xf.get(rec.pid) != text:
            self.xf[rec.pid] = text
            try:
                out.append(O.Op(O.XFEATURES, rec.cpu, rec.pid, int(text, 16)))
            except ValueError:
                pass

    def _fpu(self, out: list, rec: Record) -> None:
        """x86_fpu events other than a switch's save and a return's restore."""
        event = rec.event
        if event not in FPU_KNOWN:
            self.skipped[event] += 1
        elif event == "x86_fpu_copy_dst":  # fpu_clone(): the parent's registers are current
            self.sig_restore.pop(rec.pid, None)  # that locked restore was fpu_clone()'s, not a signal's
            self._current_fpu_event(out, rec)
        elif event == "x86_fpu_regs_deactivated":  # not at a switch: fpu__drop() at exit, flag clear
            self._current_fpu_event(out, rec)
            exit_op = self.exiting.pop(rec.pid, None)
            if exit_op is not None:  # the flag was set when it last left user mode: it went back, silently
                self.inferred[RETURN_BEFORE_EXIT] += 1
                out.append(self._resume(rec.cpu, rec.pid, O.UNKNOWN, exit_op.line, 0))
                out.append(exit_op)
            self.view.dropped(rec.cpu)
        elif event == "x86_fpu_regs_activated":
            self._activated(out, rec)

    def _current_fpu_event(self, out: list, rec: Record) -> None:
        """fpu_clone() or fpu__drop() of current with its flag clear: its registers are live here."""
        c = rec.cpu
        if rec.pid == 0:
            raise MalformedRecord(f"line {rec.line}: {rec.event} of pid 0: the idle task has no user FPU state")
        if self.cur.get(c) != rec.pid:
            self._sync(out, rec, rec.pid)
        if c in self.start:
            self._boot(out, c, True)
        if self.kind.get(rec.pid) == O.USER:
            self.view.activated(rec.pid, c)

    def _activated(self, out: list, rec: Record, hold: bool = True) -> None:
        """x86_fpu_regs_activated: a restore at the return to user mode, a signal frame's restore
        (under fpregs_lock), or a signal path's fpregs_mark_activate() (load: 0); in a trace with
        KVM events it waits for the next record on its CPU (a KVM swap's: sim.infer_kvm), and
        inside KVM_RUN a restore is the VM entry's."""
        pid, c = rec.pid, rec.cpu
        if pid == 0:  # (a crafted trace: the idle task has no user state, sched_switch's pid 0)
            raise MalformedRecord(f"line {rec.line}: {rec.event} of pid 0: the idle task never runs in user mode")
        if hold and self.kvm:
            self.held[c] = rec
            return
        if self.cur.get(c) != pid:
            self._sync(out, rec, pid)
        self.kind[pid] = O.USER
        # "x86/fpu: PTR load: L xfeatures: X xcomp_bv: Y" (before 5.2: "initialized: L")
        fields = rec.payload.split()
        if len(fields) < 6 or fields[2] not in ("load:", "initialized:"):
            raise MalformedRecord(f"line {rec.line}: {rec.event}: expected 'x86/fpu: PTR load: N xfeatures: X'")
        load = fields[3]
        if self.start and c in self.start:
            self._boot(out, c, load == "0")  # load: 1 is a restore, so its state was in memory
        view = self.view
        if load == "1":
            why = view.restore_unexplained(pid, c)
            if why is not None and fields[5] == "0" and self.xf.get(pid, "0") != "0" and pid not in self.in_kvm:
                # The image it restores is init_fpstate's (XSTATE_BV 0), its own was not: an exec
                # the trace lacks (fpu_reset_fpregs() copies init_fpstate and sets the flag, silently).
                self.inferred[EXEC_UNRECORDED] += 1
                self.in_user[pid] = False
                out.append(O.Op(O.EXEC, c, pid, line=rec.line))
                view.reset(pid)
            elif why is not None:
                self._kernel_fpu_begin(out, c, pid, why, rec.line)
        view.activated(pid, c)
        self._xfeatures(out, rec, fields[5])
        locked = rec.flags[:1] == "b"
        if self.in_kvm and pid in self.in_kvm:  # vcpu_enter_guest()'s (or kvm_fpu_get()'s) reload
            if load == "1":
                out.append(self._resume(c, pid, 1, rec.line))
                self.in_user[pid] = True
        elif load == "1" and locked:
            self.sig_restore[pid] = 1  # fpregs_restore_userregs() under fpregs_lock: a signal frame follows
        elif load == "1":
            out.append(_new(O.Op, (O.RETURN, c, pid, 1, O.USER, 1, rec.line)))  # returns and uses the FPU
            self.in_user[pid] = True
        elif pid in self.in_signal:
            self.in_signal.discard(pid)
            out.append(O.Op(O.SIGRETURN, c, pid, line=rec.line))
            out.append(O.Op(O.USE, c, pid, line=rec.line))
            self.in_user[pid] = True
        else:
            self.in_signal.add(pid)
            out.append(O.Op(O.SIGNAL, c, pid, kernel=self.sig_restore.pop(pid, 0), line=rec.line))
            out.append(O.Op(O.USE, c, pid, line=rec.line))
            self.in_user[pid] = True
