"""What each event of the action table does (`kernel.actions`): two functions per event.
Here the interrupts and user mode; task context and the events not bound to a CPU are in
`kernel.effects_task`.

`X_outcomes(m, s, c, t)` is the enabling test: the `(code, arg)` of every outcome the event
has in state `s` with CPU c's current task t (both NULL for an event not bound to a CPU), in
a fixed order, () when it is disabled. `X(m, k, c, t, code, arg)` is the effect of one
outcome on a working copy `k` that still equals `s`, in place. The checker builds every
outcome in a private copy (`machine.successors`); the cost simulator applies the one its
trace shows to its own vector, whose tracepoint probe counts what the hooks execute
(`actions.apply_action`).
"""

from __future__ import annotations


from .design import K_HARDIRQ, K_SOFTIRQ
from .state import (
    C_BH,
    C_CTX,
    CPU_W,
    CTX_SOFTIRQ_KFPU,
    CTX_TASK,
    G_FRAME,
    G_PKRU,
    G_VALUE,
    GARBAGE,
    HDR_BAD,
    HEADER,
    PATH_SIGRETURN,
    PATH_SIGRETURN_IA32,
    PC_EXIT_LOOP,
    PC_IRQ_FROM_USER,
    PC_SYSCALL,
    PKRU_HW_INIT,
    T_LOCAL,
    T_PC,
    T_SIGDEPTH,
    T_SIGFRAME_HDR,
    TASK_W,
    ghost,
    path_pc,
    pkru_of,
    pkru_owner,
    pkru_version,
)
from . import machine as M


def once(code: str):
    """The outcomes of an event that is always enabled in its situations and has one outcome."""
    one = ((code, 0),)
    return lambda m, s, c, t: one


# ---------------------------------------------------------------- interrupts
def hardirq_kfpu_outcomes(m, s, c, t):
    if m.scenario.kfpu_hardirq and m.design.irq_fpu_usable(s, c, K_HARDIRQ, False):
        return ((M.HARDIRQ_KFPU, 0),)
    return ()


def hardirq_kfpu(m, k, c, t, code, arg):
    """A hardirq handler's kernel_fpu_begin() .. kernel_fpu_end(), IRQs off (one step)."""
    M.hardirq_kfpu(m.design, k, c)


def softirq_kfpu_end(m, k, c, t, code, arg):
    """The softirq's kernel_fpu_end(); back to task context (or, from user mode, the exit path)."""
    from_user = k[k[0] + t * TASK_W + T_PC] == PC_IRQ_FROM_USER
    m.design.kernel_fpu_end(k, c, K_SOFTIRQ)
    k[HEADER + c * CPU_W + C_CTX] = CTX_TASK
    if from_user:
        M.enter_exit_loop(m, k, c, t)


def softirq_kfpu_begin_outcomes(m, s, c, t):
    if (m.scenario.kfpu_softirq and s[HEADER + c * CPU_W + C_BH] == 0
            and m.design.irq_fpu_usable(s, c, K_SOFTIRQ, False)):
        return ((M.SOFTIRQ_KFPU_BEGIN, 0),)
    return ()


def softirq_kfpu_begin(m, k, c, t, code, arg):
    """A softirq at IRQ exit or local_bh_enable() (BH enabled) enters kernel_fpu_begin()."""
    k[HEADER + c * CPU_W + C_CTX] = CTX_SOFTIRQ_KFPU
    m.design.kernel_fpu_begin(k, c, K_SOFTIRQ)


# ---------------------------------------------------------------- user mode
def user_write_outcomes(m, s, c, t):
    d = m.design
    if d.user_fpu_accessible(s, c):
        return ((M.USER_WRITE, 0),)
    if d.do_device_not_available is not None:
        return ((M.NM_TRAP, 0),)
    return ()


def user_write(m, k, c, t, code, arg):
    """The program writes its FPU registers; with CR0.TS set the first access traps (#NM)."""
    if code == M.NM_TRAP:
        m.design.do_device_not_available(k, c, t)
        M.enter_exit_loop(m, k, c, t)
        return
    g = ghost(k, t)
    k[HEADER + c * CPU_W] = k[g + G_VALUE] = M.next_user_value(m, t, k[g + G_VALUE])  # C_FPREGS


def wrpkru_outcomes(m, s, c, t):
    if not m.design.has_pkru:
        return ()
    out = []
    if m.scenario.pkru_writes:
        out.append((M.WRPKRU, 0))
    if m.scenario.user_xstate and s[ghost(s, t) + G_PKRU] != PKRU_HW_INIT:
        out.append((M.WRPKRU, 1))
    return out


def wrpkru(m, k, c, t, code, arg):
    """User WRPKRU: the program changes its protection keys (no kernel involvement): to its own
    keys (arg 0; --pkru-writes) or to 0, PKRU's init state (arg 1; --user-xstate)."""
    g = ghost(k, t)
    old = k[g + G_PKRU]
    if arg:
        new = PKRU_HW_INIT
    else:
        new = pkru_of(t, 1 - pkru_version(old)) if pkru_owner(old) == t else pkru_of(t)
    k[HEADER + c * CPU_W + 2] = k[g + G_PKRU] = new  # C_PKRU


def xrstor_user_outcomes(m, s, c, t):
    d = m.design
    if not (m.scenario.user_xstate and d.user_fpu_accessible(s, c)):
        return ()
    if d.has_pkru:
        return ((M.XRSTOR_USER, M.XRSTOR_FPSSE_INIT), (M.XRSTOR_USER, M.XRSTOR_PKRU_INIT))
    return ((M.XRSTOR_USER, M.XRSTOR_FPSSE_INIT),)


def xrstor_user(m, k, c, t, code, arg):
    """The program XRSTORs from its own memory with one XSTATE_BV bit clear (--user-xstate):
    FP/SSE clear loads their init values (PKRU from the buffer: its current keys), or PKRU
    clear loads PKRU's hardware init value 0 (FP/SSE from the buffer: new data). A header
    XRSTOR rejects raises #GP in user mode and loads nothing (SIGSEGV; not modelled)."""
    q = HEADER + c * CPU_W
    g = ghost(k, t)
    if arg == M.XRSTOR_FPSSE_INIT:
        k[q] = k[g + G_VALUE] = M.INIT  # C_FPREGS
    else:
        k[q] = k[g + G_VALUE] = M.next_user_value(m, t, k[g + G_VALUE])
        k[q + 2] = k[g + G_PKRU] = PKRU_HW_INIT  # C_PKRU


def sigreturn_outcomes(m, s, c, t):
    if s[s[0] + t * TASK_W + T_SIGDEPTH]:
        return ((M.SIGRETURN, PATH_SIGRETURN), (M.SIGRETURN, PATH_SIGRETURN_IA32))
    return ()


def sigreturn(m, k, c, t, code, arg):
    """rt_sigreturn() entry by the 64-bit or the ia32 frame path: preemptible until the lock."""
    k[k[0] + t * TASK_W + T_PC] = path_pc(arg, 0)


def sigframe_corrupt_outcomes(m, s, c, t):
    p = s[0] + t * TASK_W
    depth = s[p + T_SIGDEPTH]
    if depth and m.scenario.corrupt_frames and not s[p + T_SIGFRAME_HDR + depth - 1] & HDR_BAD:
        return ((M.SIGFRAME_CORRUPT, 0),)
    return ()


def sigframe_corrupt(m, k, c, t, code, arg):
    """The program scribbles over its top signal frame's xsave header (a nonzero XCOMP_BV or
    reserved bytes): the data stay, the header is one XRSTOR rejects. The ghost marks the frame."""
    p = k[0] + t * TASK_W
    depth = k[p + T_SIGDEPTH]
    k[p + T_SIGFRAME_HDR + depth - 1] |= HDR_BAD
    k[ghost(k, t) + G_FRAME + depth - 1] = GARBAGE


def syscall(m, k, c, t, code, arg):
    k[k[0] + t * TASK_W + T_PC] = PC_SYSCALL


def irq_from_user(m, k, c, t, code, arg):
    """An interrupt from user mode with work pending: the exit path takes its flags snapshot."""
    p = k[0] + t * TASK_W
    k[p + T_LOCAL], k[p + T_PC] = m.design.exit_to_user_snapshot(k, c, t), PC_EXIT_LOOP


def _usable_from_user(code: str, knob: str, ctx: int):
    """The outcomes of an interrupt from user mode that uses the FPU if `knob` and the
    design's irq_fpu_usable() allow it."""
    one = ((code, 0),)

    def outcomes(m, s, c, t):
        return one if getattr(m.scenario, knob) and m.design.irq_fpu_usable(s, c, ctx, True) else ()

    return outcomes


hardirq_kfpu_user_outcomes = _usable_from_user(M.HARDIRQ_KFPU_USER, "kfpu_hardirq", K_HARDIRQ)
softirq_kfpu_user_outcomes = _usable_from_user(M.SOFTIRQ_KFPU_USER, "kfpu_softirq", K_SOFTIRQ)


def hardirq_kfpu_user(m, k, c, t, code, arg):
    """A hardirq from user mode uses the FPU, then the task leaves through the exit path."""
    M.hardirq_kfpu(m.design, k, c)
    irq_from_user(m, k, c, t, code, arg)


def softirq_kfpu_user(m, k, c, t, code, arg):
    """The softirq run at exit from an IRQ taken in user mode enters kernel_fpu_begin()."""
    k[k[0] + t * TASK_W + T_PC] = PC_IRQ_FROM_USER
    k[HEADER + c * CPU_W + C_CTX] = CTX_SOFTIRQ_KFPU
    m.design.kernel_fpu_begin(k, c, K_SOFTIRQ)
