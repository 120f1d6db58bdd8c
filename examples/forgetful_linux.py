"""A variant of `linux` whose kernel_fpu_begin_mask() forgets one invalidation.

It saves the task's registers and sets TIF_NEED_FPU_LOAD, but does not call
__cpu_invalidate_fpregs_state(), so fpu_fpregs_owner_ctx keeps naming the
task while the kernel scribbles over the registers. Check it with:

    fpustate check --design-file examples/forgetful_linux.py --trace
"""

from fpustate.designs import linux
from fpustate.kernel.context import kernel_clobbers_fpregs, save_fpregs_to_fpstate
from fpustate.kernel.state import C_BH, C_CURR, C_IN_KFPU, T_KIND, T_NEED_LOAD, USER, cpu, task


def kernel_fpu_begin_mask(k, c, ctx):
    """kernel_fpu_begin_mask() without __cpu_invalidate_fpregs_state()."""
    q = cpu(c)
    if ctx != 2:  # not hardirq: fpregs_lock()
        k[q + C_BH] += 1
    k[q + C_IN_KFPU] = 1
    t = k[q + C_CURR]
    p = task(k, t)
    if k[p + T_KIND] == USER and not k[p + T_NEED_LOAD]:
        k[p + T_NEED_LOAD] = 1
        save_fpregs_to_fpstate(k, c, t)
    # __cpu_invalidate_fpregs_state(k, c)   <- forgotten
    kernel_clobbers_fpregs(k, c)


DESIGN = linux.DESIGN.variant(
    name="linux-forgets-cpu-invalidate",
    summary="linux whose kernel_fpu_begin_mask() does not invalidate fpu_fpregs_owner_ctx",
    kernel_fpu_begin=kernel_fpu_begin_mask,
)
