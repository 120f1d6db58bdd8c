"""The v6.18 kernel's own FPU bookkeeping, as far as its `x86_fpu` events show it.

`sim.infer` keeps this view of the traced kernel (not of any design) to find kernel events
that have no tracepoint: when an event shows a decision the bookkeeping so far cannot
explain, something changed it silently. Per task `TIF_NEED_FPU_LOAD` and `fpu->last_cpu`, per
CPU `fpu_fpregs_owner_ctx`, each unknown until an event shows it (a task that existed before
the trace began). The transitions follow the v6.18 sources:

- arch/x86/include/asm/fpu/sched.h `switch_fpu()`: a user task whose flag is clear is saved,
  gets the flag and `last_cpu = cpu` (event `x86_fpu_regs_deactivated`); the owner stays. With
  the flag already set nothing is saved and nothing is traced. Either way the flag is set after
  the switch.
- arch/x86/kernel/fpu/context.h `fpregs_restore_userregs()`: only with the flag set, and
  XRSTOR (event `x86_fpu_regs_activated`, `load: 1`) only if `!fpregs_state_valid()`; then
  owner = the task, `last_cpu = cpu`, flag clear. `fpregs_mark_activate()` (core.c; the signal
  paths) does the same without a restore.
- arch/x86/kernel/fpu/core.c `fpu_clone()`: the parent's registers are made current (restored
  if its flag was set) and saved into the child (`x86_fpu_copy_dst`, whose `load` field is the
  parent's flag afterwards: 0); the child gets the flag and `last_cpu = -1`.
  `fpu_reset_fpregs()` (exec): flag set, `last_cpu = -1`, no event. `fpu__drop()` (exit): with
  the flag clear, `fpregs_deactivate()` (owner NULL, `x86_fpu_regs_deactivated`, `load: 0`).
- arch/x86/kernel/fpu/core.c `kernel_fpu_begin_mask()`: if current is a user task with the flag
  clear, set the flag and save its registers; always `__cpu_invalidate_fpregs_state()` (owner
  NULL). It has no tracepoint, and it is the only such path for a running task outside exec,
  the ia32 sigreturn slow path and KVM: the cause `sim.infer` replays when a restore or a
  switch contradicts the view.
"""

from __future__ import annotations

from typing import Optional

NO_CPU = -1  # last_cpu = -1 / fpu_fpregs_owner_ctx = NULL

# Why a kernel_fpu_begin_mask() with no event of its own must have run (sim.infer counts them).
KFPU_FLAG_CLEAR = "kernel_fpu_begin before a restore: the flag was clear"
KFPU_STILL_VALID = "kernel_fpu_begin before a restore: fpregs_state_valid() held"
KFPU_NO_SAVE = "kernel_fpu_begin before a switch-out that saved nothing: the flag was clear"
EXEC_UNRECORDED = "exec the trace lacks: a restore of the init image (XSTATE_BV 0)"
BOOT_LIVE = "trace-start task with live registers"
# fpregs_restore_userregs() clears TIF_NEED_FPU_LOAD without a tracepoint when fpregs_state_valid():
RETURN_BEFORE_EXIT = "return to user mode before exit, restore skipped: fpu__drop() saw the flag clear"
INFERRED_KINDS = (BOOT_LIVE, KFPU_FLAG_CLEAR, KFPU_STILL_VALID, KFPU_NO_SAVE, EXEC_UNRECORDED,
                  RETURN_BEFORE_EXIT)  # report order


class KernelView:
    """TIF_NEED_FPU_LOAD, last_cpu and fpu_fpregs_owner_ctx of the traced kernel, by pid and CPU."""

    __slots__ = ("need", "last", "owner")

    def __init__(self) -> None:
        self.need: dict[int, int] = {}  # pid -> TIF_NEED_FPU_LOAD; absent: unknown
        self.last: dict[int, int] = {}  # pid -> fpu->last_cpu; absent: unknown
        self.owner: dict[int, int] = {}  # cpu -> pid of fpu_fpregs_owner_ctx (NO_CPU: NULL); absent: unknown

    def restore_unexplained(self, pid: int, c: int) -> Optional[str]:
        """An XRSTOR of pid's image on c was traced: fpregs_restore_userregs() does one only with
        the flag set and fpregs_state_valid() false. Why the view cannot explain it, or None."""
        need = self.need.get(pid)
        if need == 0:
            return KFPU_FLAG_CLEAR
        if need == 1 and self.owner.get(c) == pid and self.last.get(pid) == c:
            return KFPU_STILL_VALID
        return None

    def activated(self, pid: int, c: int) -> None:
        """fpregs_restore_userregs() / fpregs_mark_activate(): pid's registers are live on c."""
        self.need[pid] = 0
        self.last[pid] = c
        self.owner[c] = pid

    def saved_at_switch(self, pid: int, c: int) -> None:
        """switch_fpu() saved pid: flag set, last_cpu = c, the owner left as it is."""
        self.need[pid] = 1
        self.last[pid] = c

    def switched_unsaved(self, pid: int) -> bool:
        """switch_fpu() saved nothing, so the flag was set; True if the view had it clear."""
        was_clear = self.need.get(pid) == 0
        self.need[pid] = 1
        return was_clear

    def switched_unseen(self, pid: int) -> None:
        """A switch-out whose save the trace cannot show: the flag is set after it, last_cpu unknown."""
        self.need[pid] = 1
        self.last.pop(pid, None)

    def kernel_fpu_begin(self, pid: int, c: int) -> None:
        """kernel_fpu_begin_mask() with user task pid current on c."""
        self.need[pid] = 1
        self.owner[c] = NO_CPU

    def reset(self, pid: int) -> None:
        """fpu_clone() for the child, fpu_reset_fpregs() at exec: flag set, last_cpu = -1."""
        self.need[pid] = 1
        self.last[pid] = NO_CPU

    def dropped(self, c: int) -> None:
        """fpu__drop() of current with its flag clear: fpregs_deactivate()."""
        self.owner[c] = NO_CPU

    def forget(self, pid: int) -> None:
        """pid is dead (its last switch-out is done)."""
        self.need.pop(pid, None)
        self.last.pop(pid, None)
