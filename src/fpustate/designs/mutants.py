"""Real kernel bugs as mutants: a real design with exactly the one change its fix undid.

Each mutant's docstring names the commit and what went wrong. The regression
suite of the signals/ptrace feature adds the bugs that need those paths.
"""

from __future__ import annotations

from ..kernel.context import fpregs_deactivate
from ..kernel.state import G_VALUE, INIT, T_FPSTATE, T_NEED_LOAD, ghost, task
from . import linux
from .base import Step


def fpu_reset_fpregs_before_1f69383b203e(k: bytearray, c: int, t: int) -> None:
    """exec: fpu_reset_fpregs() before "x86/fpu: Invalidate FPU state correctly on exec()"
    (1f69383b203e, v6.5-rc8): fpu__drop() clears fpu_fpregs_owner_ctx on *this* CPU
    instead of __fpu_invalidate_fpregs_state(). A copy of the old program's registers
    that is still valid on another CPU survives: if the task migrated since it was
    last saved there and migrates back before returning to user, the restore is
    skipped and the new program starts with the old program's registers."""
    k[ghost(k, t) + G_VALUE] = INIT
    fpregs_deactivate(k, c)  # fpu__drop(): owner = NULL, this CPU only
    p = task(k, t)
    k[p + T_FPSTATE], k[p + T_NEED_LOAD] = INIT, 1


EXEC_INVALIDATION = linux.DESIGN.variant(
    name="linux-exec-invalidation",
    summary="linux with exec's invalidation before 1f69383b203e (fpu__drop on the current CPU only)",
    exec_steps=(Step("fpu_flush_thread", fpu_reset_fpregs_before_1f69383b203e),) + linux.DESIGN.exec_steps[1:],
)

MUTANTS = {d.name: d for d in (EXEC_INVALIDATION,)}
