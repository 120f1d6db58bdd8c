"""A design that adds an event: the idle driver's fpu_idle_fpregs() (AMX TILERELEASE).

The kernel model has this path under --amx (`kernel/actions_kvm.py`); this file shows how a
design adds such an event of its own, always enabled, as intel_idle's call into it.

Linux v6.18, arch/x86/kernel/fpu/core.c (read in the tip tree mirror):

    noinstr void fpu_idle_fpregs(void)
    {
            if (cpu_feature_enabled(X86_FEATURE_AMX_TILE) &&
                (xfeatures_in_use() & XFEATURE_MASK_XTILE)) {
                    tile_release();
                    __this_cpu_write(fpu_fpregs_owner_ctx, NULL);
            }
    }

intel_idle calls it with IRQs off before entering a deep C-state. TILERELEASE
puts the tile registers in their init state, so whatever task's registers the
CPU still held are no longer that task's: the owner must be invalidated, or the
task's next return here skips its XRSTOR. The model's registers are one value,
so "the tiles were released" becomes "the registers hold init".

    fpustate check --design-file examples/idle_tilerelease.py

`linux+idle-tilerelease` holds; `linux+idle-tilerelease-keeps-owner` (the same
event without the owner write) is caught by user_sees_own_registers.
"""

from fpustate.designs import linux
from fpustate.kernel.actions import design_event
from fpustate.kernel.state import C_FPREGS, C_OWNER, IDLE, INIT, NULL, T_KIND, cpu, task


def current_is_idle(s, c, t):
    """Only the idle task enters the cpuidle driver."""
    return s[task(s, t) + T_KIND] == IDLE


def fpu_idle_fpregs(k, c, t, tiles_in_use):
    """xfeatures_in_use() & XFEATURE_MASK_XTILE (outcome 0): tile_release() and owner = NULL."""
    if tiles_in_use == 0:
        k[cpu(c) + C_FPREGS] = INIT
        k[cpu(c) + C_OWNER] = NULL


def fpu_idle_fpregs_keeps_owner(k, c, t, tiles_in_use):
    """The same without __this_cpu_write(fpu_fpregs_owner_ctx, NULL)."""
    if tiles_in_use == 0:
        k[cpu(c) + C_FPREGS] = INIT


OUTCOMES = ("tiles in use: TILERELEASE", "tiles in init state: nothing to do")

DESIGNS = [
    linux.DESIGN.variant(
        name="linux+idle-tilerelease",
        summary="linux with the idle driver's fpu_idle_fpregs() as an event",
        extra_events=(design_event("intel_idle", "task", "kthread", current_is_idle, fpu_idle_fpregs,
                                   "cpuidle: fpu_idle_fpregs()", OUTCOMES),),
    ),
    linux.DESIGN.variant(
        name="linux+idle-tilerelease-keeps-owner",
        summary="the same, forgetting to invalidate fpu_fpregs_owner_ctx",
        extra_events=(design_event("intel_idle", "task", "kthread", current_is_idle,
                                   fpu_idle_fpregs_keeps_owner, "cpuidle: fpu_idle_fpregs()", OUTCOMES),),
    ),
]
