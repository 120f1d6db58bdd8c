"""The clairvoyant lower bound on saves and loads for a fixed schedule (cost-model.md 5).

Each CPU's registers hold one FPU context, so there is no eviction choice:
whenever another context needs the registers the occupant leaves, and the
only decisions are whether to save it (only if it is dirty and used again
before it exits) and when to load (at the last moment: when the task
actually executes FPU instructions, a `USE`). The classic formulation needs
the future ("used again?"); here the pass is online and the answer deferred:
an evicted dirty state becomes a *pending* save, charged when the task needs
its state again and dropped if it exits or its state is replaced first
(exec, ptrace write). Memory is per live task, not per event.

A KVM vCPU thread has two FPU contexts (cost-model.md 4: "a task with two contexts"): its
own (QEMU's, key `pid`) and its guest's (key `~pid`), and inside KVM_RUN the guest's is the
one its CPU works for. Entering or leaving KVM_RUN moves nothing by itself: the bound loads
the guest's state only at a VM entry after which the guest uses the FPU, and the host's only
when the host uses it again; an evicted dirty context is a pending save like any other. The
kernel swaps both eagerly (fpu_swap_kvm_fpstate() saves the live one and XRSTORs the other),
so every design pays at least that much. VM entries and exits, XFD #NM traps and XFD MSR
writes are not counted: the first two cost every design the same and are not FPU work, and
a design could avoid the last two by allocating the tile buffer when permission is granted;
the first AMX use is a use (a load if the task's state is not in the registers), after which
the task's saves and loads are priced with its tile data. The guest's state is priced with
its vCPU thread's XSTATE_BV, as the designs' replay prices it.

Loads are restores plus init loads, so designs that load init directly (the
4.x exec and signal paths) and designs that restore an init image compare
fairly. Signal frames cost what every design pays (one XSAVE to the frame at
delivery, one XRSTOR from it at sigreturn).

The bound reads the trace's operations, not the action table: it is the optimum of *any*
kernel on the schedule, so it cannot follow one model's events (a design may add its own,
and the 4.x and 6.x tables run different steps for the same exec). What every design's
table does at an operation it charges as fixed (the frames above).
"""

from __future__ import annotations

from collections import Counter

from ..kernel.design import K_TASK
from . import ops as O
from .costs import Profile
from .replay_kvm import AMX_XFEATURES


class Bound:
    def __init__(self, ncpus: int, profile: Profile) -> None:
        self.slot: list = [None] * ncpus  # pid whose state CPU c's registers hold
        self.dirty = [False] * ncpus  # ... and that state is newer than its memory image
        self.where: dict[int, int] = {}  # pid -> CPU holding its state
        self.stale: set[int] = set()  # pids whose registers copy was replaced (exec, ptrace, signal)
        self.pending: set[int] = set()  # dirty states evicted without a save, charged on next need
        self.init_state: set[int] = set()  # pids whose next load is of the init state
        self.current: list = [None] * ncpus  # the context CPU c works for (a guest's is ~pid)
        self.kvm: set[int] = set()  # vCPU threads inside KVM_RUN
        self.counts = Counter(saves=0, restores=0, sigframe_saves=0, sigframe_restores=0)
        self.profile = profile
        self.cycles = 0.0
        self.xfeatures: dict[int, int] = {}
        self._costs: dict[tuple, float] = {}
        self._handlers = [getattr(self, "op_" + name) for name in O.NAMES]

    def _cost(self, kind: str, pid) -> float:
        key = (kind, self.xfeatures.get(pid, self.profile.default_xfeatures))
        cost = self._costs.get(key)
        if cost is None:
            cost = self._costs[key] = self.profile.cost(*key)
        return cost

    def _save(self, pid) -> None:
        self.counts["saves"] += 1
        self.cycles += self._cost("save", pid)

    def _evict(self, c: int) -> None:
        """CPU c's registers are about to hold something else."""
        s = self.slot[c]
        if s is not None:
            if self.dirty[c]:
                self.pending.add(s)
            del self.where[s]
        self.slot[c], self.dirty[c] = None, False

    def _need_in_memory(self, pid) -> None:
        """pid's latest state must exist in memory from here on (it is about to be copied or
        loaded elsewhere): charge a pending save, or save a dirty copy held by a CPU."""
        if pid in self.pending:
            self.pending.discard(pid)
            self._save(pid)
        d = self.where.get(pid)
        if d is not None and self.dirty[d]:
            self._save(pid)
            self.dirty[d] = False

    def _drop(self, pid) -> None:
        """pid's state is dead or replaced: nothing of it needs saving any more."""
        self.pending.discard(pid)
        d = self.where.pop(pid, None)
        if d is not None:
            self.slot[d], self.dirty[d] = None, False

    def _load(self, c: int, pid) -> None:
        """U(pid) on CPU c: its state must be in c's registers."""
        if self.slot[c] == pid and pid not in self.stale:
            return
        d = self.where.get(pid)
        if d is not None and d != c:
            self._need_in_memory(pid)
            self.slot[d], self.dirty[d] = None, False
            del self.where[pid]
        self._need_in_memory(pid)
        self._evict(c)
        self.counts["restores"] += 1
        if pid in self.init_state:  # exec and the signal handler start from init: an init load
            self.cycles += self._cost("restore_init", pid)
        else:
            self.cycles += self._cost("restore", pid)
        self.slot[c], self.where[pid] = pid, c
        self.stale.discard(pid)
        self.init_state.discard(pid)

    def apply(self, op: O.Op) -> None:
        self._handlers[op[0]](op)

    def op_switch(self, op: O.Op) -> None:
        c = op.cpu
        prev = self.current[c]
        if op.arg == O.PREV_DEAD and prev is not None:
            self._drop(prev)
            self.stale.discard(prev)
        self.current[c] = op.pid if op.kind == O.USER else None
        if self.kvm and op.pid in self.kvm:
            self.current[c] = ~op.pid

    def _host(self, c: int) -> None:
        """Current leaves KVM_RUN before it returns to user mode, takes a signal, execs or exits
        (as the replay does: the ioctl returns first)."""
        t = self.current[c]
        if t is not None and t < 0:
            self.kvm.discard(~t)
            self.current[c] = ~t

    def op_return(self, op: O.Op) -> None:
        if self.kvm:
            self._host(op.cpu)
        if op.arg:  # and uses the FPU
            self.op_use(op)

    def op_use(self, op: O.Op) -> None:
        c = op.cpu
        t = self.current[c]
        if t is not None:
            if self.slot[c] != t or t in self.stale:
                self._load(c, t)
            self.dirty[c] = True

    def op_kfpu(self, op: O.Op) -> None:
        """An in-kernel FPU user claims the registers. In task context every design lets it;
        in a softirq irq_fpu_usable() may refuse (the v4.8 lazy rules), and the user then takes
        its integer fallback, so the bound assumes the cheaper outcome: no claim."""
        if op.arg == K_TASK:
            self._evict(op.cpu)

    def op_fork(self, op: O.Op) -> None:
        self._host(op.cpu)
        t = self.current[op.cpu]
        if t is not None and op.kind == O.USER:
            self._need_in_memory(t)  # the child gets a copy of the parent's state
            if t in self.xfeatures:
                self.xfeatures[op.pid] = self.xfeatures[~op.pid] = self.xfeatures[t]

    def op_exec(self, op: O.Op) -> None:
        self._host(op.cpu)
        t = self.current[op.cpu]
        if t is not None:
            self._drop(t)
            self.stale.add(t)
            self.init_state.add(t)

    def op_ptrace_set(self, op: O.Op) -> None:
        self._drop(op.pid)
        self.stale.add(op.pid)

    def op_exit(self, op: O.Op) -> None:
        self._host(op.cpu)
        t = self.current[op.cpu]
        if t is not None:
            self._drop(t)
            self._drop(~t)  # its guest's state dies with the vCPU fd (or with the process)

    def op_signal(self, op: O.Op) -> None:
        c = op.cpu
        self._host(c)
        t = self.current[c]
        if t is not None:
            if self.where.get(t) != c:
                self._need_in_memory(t)  # copied to the frame from memory (or saved first)
            # (held by this CPU's registers, it is XSAVEd straight into the frame)
            self.counts["sigframe_saves"] += 1
            self.cycles += self._cost("sigframe_save", t)
            self._drop(t)
            self.stale.add(t)  # the handler's init state is loaded when it uses the FPU
            self.init_state.add(t)

    def op_sigreturn(self, op: O.Op) -> None:
        c = op.cpu
        self._host(c)
        t = self.current[c]
        if t is not None:
            self._drop(t)
            self._evict(c)
            self.counts["sigframe_restores"] += 1
            self.cycles += self._cost("sigframe_restore", t)
            self.slot[c], self.where[t], self.dirty[c] = t, c, True
            self.stale.discard(t)
            self.init_state.discard(t)

    def op_migrate(self, op: O.Op) -> None:
        pass  # where a task runs next shows at its switch

    def op_boot(self, op: O.Op) -> None:
        """pid runs on this CPU when the trace starts, its state (possibly newer than its memory
        image) in the registers."""
        c = op.cpu
        self.current[c] = self.slot[c] = op.pid
        self.where[op.pid], self.dirty[c] = c, True

    def op_xfeatures(self, op: O.Op) -> None:
        self.xfeatures[op.pid] = self.xfeatures[~op.pid] = op.arg

    # ------------------------------------------------------------ KVM and AMX
    def op_kvm_load(self, op: O.Op) -> None:
        c = op.cpu
        t = self.current[c]
        if t is not None and t >= 0:
            self.kvm.add(t)
            self.current[c] = ~t

    def op_kvm_put(self, op: O.Op) -> None:
        self._host(op.cpu)

    def op_vm_entry(self, op: O.Op) -> None:
        t = self.current[op.cpu]
        if op.arg and t is not None and t < 0:  # the guest uses the FPU
            self.op_use(op)

    def op_vm_exit(self, op: O.Op) -> None:
        pass

    def op_xfd_nm(self, op: O.Op) -> None:
        """The first tile instruction: a use; from then on its state carries the tile data."""
        c = op.cpu
        self._host(c)
        t = self.current[c]
        if t is not None:
            self.op_use(op)
            xf = self.xfeatures.get(t, self.profile.default_xfeatures) | AMX_XFEATURES
            self.xfeatures[t] = self.xfeatures[~t] = xf

    def summary(self) -> dict:
        out = dict(self.counts)
        out["cycles"] = round(self.cycles)
        out["ns"] = round(self.cycles / self.profile.ghz)
        return out
