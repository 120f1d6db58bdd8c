"""From trace records to workload operations: which slices run in user mode, which tasks are
kernel threads, and (when the trace shows it) what the real kernel decided.

Two inferences, chosen per trace and named in the output:

- **x86_fpu tracepoints** (Linux 5.2+ with `x86_fpu:*` enabled; cost-model.md 1.5). A user
  slice reached user mode iff it has an `x86_fpu_regs_activated` with `load: 1` (a return
  that restored) or ends in an `x86_fpu_regs_deactivated` (its registers were live at the
  switch, so it returned without a restore: a skipped restore). Every such slice uses and
  modifies the FPU (the conservative assumption; glibc makes nearly every task an FPU user).
  An activation under `fpregs_lock` (flags column `b`) is the signal-delivery restore;
  `load: 0` activations come in pairs, the handler's fresh state and the sigreturn. Tasks that
  appear in `x86_fpu` events are user tasks.

  The kernel's own bookkeeping is followed alongside (`sim.kernel_view`), and what the events
  imply but do not show is replayed as operations every engine (and the bound) sees, each
  counted in `inferred`: a restore the bookkeeping cannot explain (the flag was clear, or
  `fpregs_state_valid()` held) and a switch-out that saved nothing while the flag was clear
  both mean a `kernel_fpu_begin_mask()` ran, which has no tracepoint (replayed just before the
  restore or the switch); such a restore of the init image (XSTATE_BV 0) after a non-init one
  is an exec the trace lacks; and the task a CPU runs when the trace starts is booted from its
  first FPU event: with its registers live on that CPU (a save at its switch-out, a fork, a
  `load: 0` activation or `fpu__drop()`) or with its state in memory (anything else). A switch
  "did not save" only if the next record on its CPU is from the task switched to; otherwise
  (lost records, perf's per-task events, the end of the trace) the kernel's decision is unknown.
- **Heuristics** (any other trace). Kernel threads are recognised by name (`KTHREAD_RE`),
  by being pid 2 or forked by a kernel thread; every other task is a user task whose every
  slice returns to user mode once, right after it is switched in, and uses the FPU with
  probability `fpu_use` (seeded, so runs are reproducible).

The `x86_fpu` records themselves are read by `sim.infer_fpu`; KVM's `kvm_fpu`, `kvm_entry`
and `kvm_exit` records by `sim.infer_kvm`.

A record whose pid is not the task the model has on that CPU (a switch the tracer lost, as
on CPUs whose switches out of idle were never recorded) gets a synthesized switch.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Iterable, Iterator

from ..kernel.design import K_TASK
from . import ops as O
from .events import Record
from .infer_fpu import FpuInference
from .infer_kvm import KVM_EVENTS, KvmInference
from .kernel_view import BOOT_LIVE, KFPU_NO_SAVE, KernelView
from .payload import FPU_EVENTS, KNOWN, KTHREAD_RE, QUIET, MalformedRecord, field, parse_switch, prev_state

from .ops import new_op as _new


NOTHING: tuple = ()


class Inference(FpuInference, KvmInference):
    """Turns records into operations for one trace; `fpu_events` picks the inference; `kvm`:
    the trace has KVM events (an x86_fpu_regs_activated may be a KVM fpstate swap's)."""

    def __init__(self, fpu_events: bool, fpu_use: float = 1.0, seed: int = 0, kvm: bool = False) -> None:
        self.fpu_events = fpu_events
        self.fpu_use = fpu_use
        self.rng = random.Random(seed)
        self.cur: dict[int, int] = {}  # noqa: E501  # cpu -> pid the model runs there
        self.kind: dict[int, int] = {0: O.IDLE, 2: O.KTHREAD}
        self.in_user: dict[int, bool] = {}  # pid returned to user in its current slice
        self.sig_restore: dict[int, int] = {}  # pid -> a signal-delivery restore was seen
        self.in_signal: set[int] = set()  # delivered, handler running (next load:0 is the sigreturn)
        self.pending: dict[int, tuple] = {}  # cpu -> (record, prev_pid, state, next_pid, next_kind)
        self.skipped = Counter()  # unknown event types, counted and skipped
        self.xf: dict[int, str] = {}  # pid -> last XSTATE_BV shown
        self.moved: dict[int, tuple] = {}  # pid -> (CPU the trace does not show, line): moved there
        self.cpus = 0
        self.records = 0
        self.synthesized = 0  # switches the records implied but the tracer did not record
        self.view = KernelView()  # the traced kernel's TIF_NEED_FPU_LOAD, last_cpu and owners
        self.start: dict[int, tuple] = {}  # cpu -> (pid, kind, line): current at the trace's start, not booted yet
        self.exiting: dict = {}  # pid -> its EXIT op, held from sched_process_exit to its fpu__drop() or death
        self.inferred = Counter()  # why -> events the trace implied but has no tracepoint for (kernel_view)
        self.kvm = kvm  # activations are held one record (sim.infer_kvm); set by the first kvm_fpu too
        self.held: dict[int, Record] = {}  # cpu -> an activation waiting for the next record there
        self.in_kvm: set[int] = set()  # vCPU threads inside KVM_RUN (between kvm_fpu load and unload)
        self.in_guest: set[int] = set()  # ... and in guest mode

    def kind_of(self, pid: int, comm: str) -> int:
        k = self.kind.get(pid)
        if k is None:
            k = O.KTHREAD if KTHREAD_RE.match(comm) else O.USER
            self.kind[pid] = k
        return k

    # ------------------------------------------------------------ driving
    def run(self, records: Iterable[Record]) -> Iterator[O.Op]:
        for rec in records:
            yield from self.feed(rec)
        yield from self.finish()

    def feed(self, rec: Record) -> list[O.Op]:
        """The operations one record implies (a switch is held back one record on its CPU, to
        see whether the kernel saved the outgoing task's registers)."""
        if self.held:
            held = self.held.pop(rec.cpu, None)
            if held is not None:
                return self._held_then(held, rec)
        self.records += 1
        event = rec.event
        pend = self.pending.pop(rec.cpu, None) if self.pending else None
        if pend is None:
            if event == "x86_fpu_regs_activated":
                out: list[O.Op] = []
                self._activated(out, rec)
                return out
            if event in QUIET:
                return NOTHING  # wake-ups have no FPU consequence (the common case, kept cheap)
            out = []
        else:
            out = []
            if event == "x86_fpu_regs_deactivated" and rec.pid == pend[1]:
                self.kind[rec.pid] = O.USER  # only user tasks have registers to save
                self._switch(out, pend, True if self.fpu_events else O.UNKNOWN)
                self._xfeatures(out, rec)
                return out
            # No save: the next record on this CPU is from the task switched to. A record from any
            # other task means the tracer lost what ran in between, the save's event perhaps with it
            # (perf's per-task events are scheduled out in prepare_task_switch(), before switch_fpu()).
            self._switch(out, pend, False if self.fpu_events and rec.pid == pend[3] else O.UNKNOWN)
            if event == "x86_fpu_regs_activated":
                self._activated(out, rec)
                return out
            if event in QUIET:
                return out
        c = rec.cpu
        if event == "sched_switch":
            try:
                prev_pid, state, next_pid, next_comm = parse_switch(rec.payload)
            except MalformedRecord as e:
                raise MalformedRecord(f"line {rec.line}: sched_switch: {e}") from None
            if self.cur.get(c) != prev_pid:
                self._sync(out, rec, prev_pid)
            kind = self.kind.get(next_pid)
            if kind is None:
                kind = self.kind_of(next_pid, next_comm)
            self.pending[c] = (rec, prev_pid, prev_state(state), next_pid, kind)
            return out
        if event.startswith(FPU_EVENTS):
            self._fpu(out, rec)
            return out
        if event in KVM_EVENTS:
            self._kvm_event(out, rec)
            return out
        if event not in KNOWN:
            self.skipped[event] += 1
            return out
        self._sync(out, rec, rec.pid)
        try:
            if event == "sched_process_exec":
                if self.kind.get(rec.pid) == O.USER or rec.pid not in self.kind:
                    self.kind[rec.pid] = O.USER
                    self.in_user[rec.pid] = False
                    if c in self.start:
                        self._boot(out, c, False)
                    out.append(O.Op(O.EXEC, c, rec.pid, line=rec.line))
                    self.view.reset(rec.pid)  # fpu_flush_thread() -> fpu_reset_fpregs()
            elif event == "sched_process_fork":
                child = int(field(rec.payload, "child_pid="))
                if child <= 0:  # pid 0 is the idle task (kernel/fork.c never hands it out)
                    raise MalformedRecord(f"child_pid={child} is not a pid a fork can create")
                running = {**self.cur, **{cpu: pend[3] for cpu, pend in self.pending.items()}}
                on = [cpu for cpu, pid in running.items() if pid == child]
                if on:
                    raise MalformedRecord(f"child_pid={child} is running (on CPU {min(on)}); a fork creates a new task")
                parent_kind = self.kind_of(rec.pid, rec.comm)
                kind = O.KTHREAD if parent_kind != O.USER else O.USER
                self.kind[child] = kind
                if c in self.start:
                    self._boot(out, c, False)
                out.append(O.Op(O.FORK, c, child, kind=kind, line=rec.line))
                self.view.reset(child)  # fpu_clone(): the child's flag set, last_cpu = -1
            elif event == "sched_process_exit":
                pid = int(field(rec.payload, " pid="))
                if pid == self.cur.get(c):
                    if c in self.start:
                        self._boot(out, c, False)
                    exit_op = O.Op(O.EXIT, c, pid, line=rec.line)
                    if self.fpu_events and self.kind.get(pid) == O.USER and not self.in_user.get(pid):
                        self.exiting[pid] = exit_op  # held: its fpu__drop() may show it returned first
                    else:
                        out.append(exit_op)
                    self.in_kvm.discard(pid)  # (KVM_RUN returned first: the replay leaves it)
                    self.in_guest.discard(pid)
            elif event == "sched_migrate_task":
                pid = int(field(rec.payload, " pid="))
                dest = int(field(rec.payload, "dest_cpu="))
                if dest < 0:
                    raise MalformedRecord(f"dest_cpu={dest} is not a CPU")
                out.append(O.Op(O.MIGRATE, c, pid, dest, line=rec.line))
                if dest not in self.cur and pid != self.cur.get(c):
                    self.moved[pid] = (dest, rec.line)  # to a CPU the trace does not show
        except (MalformedRecord, ValueError) as e:
            raise MalformedRecord(f"line {rec.line}: {event}: {e}") from None
        return out

    def finish(self) -> list[O.Op]:
        out: list[O.Op] = []
        for c in sorted(self.held):  # the trace ends right after an activation
            self._activated(out, self.held.pop(c), False)
        for c in sorted(self.pending):  # the trace ends before the record that shows the save
            self._switch(out, self.pending[c], O.UNKNOWN)
        self.pending.clear()
        out.extend(sorted(self.exiting.values(), key=lambda op: op.line))  # exits with nothing after them
        self.exiting.clear()
        return out

    # ------------------------------------------------------------ pieces
    def _sync(self, out: list, rec: Record, pid: int) -> None:
        """The record says pid runs on this CPU: synthesize the switch the tracer lost."""
        c = rec.cpu
        if self.pending:
            for d, pend in list(self.pending.items()):
                if pend[1] == pid and d != c:  # its switch-out there is done; the record after it is lost
                    del self.pending[d]
                    self._switch(out, pend, O.UNKNOWN)
        cur = self.cur.get(c)
        if cur is None:
            self.cur[c] = pid
            if self.fpu_events:  # booted at its first FPU event, which shows where its registers are
                self.start[c] = (pid, self.kind_of(pid, rec.comm), rec.line)
                return
            out.append(O.Op(O.SWITCH, c, pid, O.PREV_RUNNABLE, self.kind_of(pid, rec.comm), line=rec.line))
            self._slice_start(out, c, pid)
        elif cur != pid:
            self.synthesized += 1
            if c in self.start:
                self._boot(out, c, False)
            if (self.fpu_events and self.kind.get(cur) == O.USER and not self.in_user.get(cur)
                    and cur not in self.exiting):
                # The tracer lost this switch, and with it the user task's own events: assume it
                # ran in user mode, as a user task switched out while runnable usually has.
                out.append(self._resume(c, cur, O.UNKNOWN, rec.line))
                self.in_user[cur] = True
            self._switch(out, (rec, cur, O.PREV_RUNNABLE, pid, self.kind_of(pid, rec.comm)), O.UNKNOWN)

    def _switch(self, out: list, pend: tuple, saved) -> None:
        rec, prev, state, nxt, kind = pend
        c = rec.cpu
        if self.exiting and prev in self.exiting:  # it exited with the flag set (fpu__drop() did nothing)
            out.append(self.exiting.pop(prev))
        if self.start and c in self.start:
            self._boot(out, c, saved is True)  # saved at its switch-out: its registers were live
        if self.moved:
            self._unseen_slice(out, nxt, c)
        if self.fpu_events and self.kind.get(prev) == O.USER:
            view = self.view
            if saved is True:
                view.saved_at_switch(prev, c)
            elif saved is False:
                if view.switched_unsaved(prev):
                    self._kernel_fpu_begin(out, c, prev, KFPU_NO_SAVE, rec.line)
            else:
                view.switched_unseen(prev)
                view.owner.pop(c, None)  # the records after the switch are lost: who loaded what is unknown
            if state == O.PREV_DEAD:
                view.forget(prev)
        if (self.fpu_events and saved is True and self.kind.get(prev) == O.USER and not self.in_user.get(prev)
                and state != O.PREV_DEAD):
            # Its registers were live at the switch, yet no restore was seen: it returned to
            # user mode with the restore skipped (inside KVM_RUN: it entered the guest). Not at
            # do_task_dead(): fpu__drop() leaves TIF_NEED_FPU_LOAD clear, so the final switch
            # saves registers that are still live, and the task never returned anywhere.
            out.append(self._resume(c, prev, 0, rec.line))  # returns and uses the FPU
        kernel = O.UNKNOWN if saved is O.UNKNOWN else int(bool(saved))
        if self.kind.get(prev) != O.USER:
            kernel = O.UNKNOWN
        self.in_user[prev] = False
        if self.in_guest:
            self.in_guest.discard(prev)  # an interrupt in guest mode was a VM exit first (the replay's too)
        out.append(_new(O.Op, (O.SWITCH, c, nxt, state, kind, kernel, rec.line)))
        self.cur[c] = nxt
        self._slice_start(out, c, nxt)

    def _boot(self, out: list, c: int, live: bool) -> None:
        """The task CPU c ran when the trace started: in user mode with its registers live on c
        (as machine.initial_state boots a running user task), or, when its first FPU event says
        otherwise or shows nothing, with its state in memory like any task older than the trace."""
        pid, kind, line = self.start.pop(c)
        kind = self.kind.get(pid, kind)  # its FPU events may have shown it is a user task
        if live and kind == O.USER:
            self.inferred[BOOT_LIVE] += 1
            out.append(O.Op(O.BOOT, c, pid, line=line))
            self.view.activated(pid, c)
            self.in_user[pid] = True
            return
        out.append(O.Op(O.SWITCH, c, pid, O.PREV_RUNNABLE, kind, line=line))
        self._slice_start(out, c, pid)

    def _kernel_fpu_begin(self, out: list, c: int, pid: int, why: str, line: int) -> None:
        """An in-kernel FPU user on c with user task pid current, which the trace implies but
        cannot show (kernel_fpu_begin_mask() has no tracepoint; see sim.kernel_view)."""
        self.inferred[why] += 1
        out.append(O.Op(O.KFPU, c, pid, K_TASK, line=line))
        self.view.kernel_fpu_begin(pid, c)

    def _unseen_slice(self, out: list, pid: int, c: int) -> None:
        """pid was moved to a CPU the trace does not record (tracing_cpumask) and comes back
        here: it ran there in between, in user mode, so replay that slice on that CPU."""
        moved = self.moved.pop(pid, None)
        if moved is None or moved[0] == c or self.kind.get(pid) != O.USER:
            return
        dest, line = moved
        self.synthesized += 1
        self.view.switched_unseen(pid)
        out.append(_new(O.Op, (O.SWITCH, dest, pid, O.PREV_RUNNABLE, O.USER, O.UNKNOWN, line)))
        out.append(self._resume(dest, pid, O.UNKNOWN, line))
        out.append(_new(O.Op, (O.SWITCH, dest, 0, O.PREV_BLOCKED, O.IDLE, O.UNKNOWN, line)))

    def _slice_start(self, out: list, c: int, pid: int) -> None:
        self.in_user[pid] = False
        if not self.fpu_events and self.kind.get(pid) == O.USER:
            use = self.fpu_use >= 1.0 or self.rng.random() < self.fpu_use
            out.append(self._resume(c, pid, O.UNKNOWN, 0, int(use)))
            self.in_user[pid] = True
