"""Multi-step kernel paths (exec, signal delivery, the two sigreturn paths, fork, exit) and
the other events that touch a task's record: ptrace's regset access, a reader of current.

The machine (`kernel.machine`) says when a path step may run; this module runs it: one step
of the design's `Step` tuple per transition, every outcome of a step that has several, the
path's entry bookkeeping (budgets, fresh signal frames, what the ghost expects back) and where
the task goes when the last step is done.
"""

from __future__ import annotations

from .design import Design
from .machine import (
    PTRACE_BOGUS,
    PTRACE_PKRU,
    PTRACE_PKRU_INIT,
    Model,
    context_switch,
    enter_exit_loop,
    next_user_value,
)
from .state import (
    DEAD,
    NEW,
    G_FRAME_PKRU,
    G_PKRU,
    G_VALUE,
    GARBAGE,
    HDR_BAD,
    H_EXECS,
    H_EXITS,
    H_FORKS,
    H_PTRACE,
    H_SIGNALS,
    H_STALE_READ,
    MAX_SIGFRAMES,
    G_FRAME,
    INIT,
    NULL,
    PATH_EXEC,
    PATH_EXIT,
    PATH_FORK,
    PATH_SIGNAL,
    PATH_SIGRETURN,
    PATH_SIGRETURN_IA32,
    PC_DEAD,
    PC_SYSCALL,
    PKRU_HW_INIT,
    PKRU_INIT,
    RUNNABLE,
    T_CHILD,
    T_CPU,
    T_FPSTATE,
    T_LOCAL,
    T_PC,
    T_RUN,
    T_SIGDEPTH,
    T_FPSTATE_HDR,
    T_SIGFRAME,
    T_SWAP_FPSTATE,
    T_SIGFRAME_HDR,
    T_SIGFRAME_PKRU,
    TASK_W,
    XFEATURE_MASK_FPSSE,
    XFEATURE_MASK_PKRU,
    G_SWAP_VALUE,
    ghost,
    path_pc,
    pkru_of,
    pkru_owner,
    pkru_version,
    task,
)


_STEPS = ("exec_steps", "signal_steps", "sigreturn_steps", "sigreturn_ia32_steps", "fork_steps", "exit_steps")


def path_steps(d: Design, path: int) -> tuple:
    """The design's steps of one multi-step path (PATH_EXEC, ... PATH_EXIT)."""
    return getattr(d, _STEPS[path])


def ptrace_set(m: Model, k: bytearray, t: int, kind: int) -> None:
    """A tracer on another CPU writes a stopped tracee's xstate (PTRACE_SETREGSET NT_X86_XSTATE).

    The buffer holds the next version of the tracee's data with a valid header
    (XSTATE_BV: FP/SSE and PKRU set), and: the tracee's own PKRU (PTRACE_VALUES,
    `pkru` NULL), new protection keys (PTRACE_PKRU), XSTATE_BV[PKRU] clear
    (PTRACE_PKRU_INIT: PKRU in its init state, as XRSTOR would load it: 0), or
    a bogus header (PTRACE_BOGUS: nonzero xcomp_bv, CVE-2017-15537). The
    design's xstateregs_set() decides; the tracee's program then expects what
    landed in its image: the written data, or, for an image no XRSTOR can load,
    the init state the kernel falls back to at best. An accepted write's PKRU
    is what the program runs with afterwards, whether or not the design stored it."""
    k[H_PTRACE] -= 1
    g, p = ghost(k, t), task(k, t)
    value = next_user_value(m, t, k[g + G_VALUE])
    hdr = XFEATURE_MASK_FPSSE | (0 if kind == PTRACE_PKRU_INIT else XFEATURE_MASK_PKRU)
    pkru = NULL
    if kind == PTRACE_BOGUS:
        hdr |= HDR_BAD
    elif kind == PTRACE_PKRU:
        old = k[g + G_PKRU]
        pkru = pkru_of(t, 1 - pkru_version(old)) if pkru_owner(old) == t else pkru_of(t)
    m.design.xstateregs_set(k, t, value, hdr, pkru)
    if k[p + T_FPSTATE] == value and (k[p + T_FPSTATE_HDR] & HDR_BAD) == (hdr & HDR_BAD):
        k[g + G_VALUE] = INIT if hdr & HDR_BAD else value
        if kind == PTRACE_PKRU:
            k[g + G_PKRU] = pkru
        elif kind == PTRACE_PKRU_INIT:
            k[g + G_PKRU] = PKRU_HW_INIT


def fpu_sync(m: Model, k: bytearray, c: int, t: int) -> None:
    """A syscall reads current's own FPU state (coredump, PTRACE_GETREGSET of self, the
    legacy fsave header): the design's fpu_sync_fpstate(), then a copy of the image. A
    reader that sees anything but the program's latest values leaves the ghost marker."""
    m.design.fpu_sync_fpstate(k, c, t)
    if m.design.fpstate_image(k, t) != k[ghost(k, t) + G_VALUE] and k[H_STALE_READ] == NULL:
        k[H_STALE_READ] = t


def free_slot(m: Model, s: bytes) -> int:
    """The slot a fork reuses: the lowest dead user slot (struct fpu address reuse)."""
    for t in range(m.scenario.slots):
        if s[task(s, t) + T_RUN] == DEAD:
            return t
    return NULL


def fork(m: Model, k: bytearray, c: int, parent: int, child: int, n: int = 0) -> None:
    """fork() from a syscall: copy_process() up to copy_thread() (budget, dup_task_struct()),
    then the first step of the design's fork path (outcome n), in one transition: what
    dup_task_struct() writes is the child's, which nobody else can see before wake_up_new_task()."""
    k[H_FORKS] -= 1
    dup_task_struct(k, parent, child)
    run_step(m, k, c, parent, PATH_FORK, 0, n)


def dup_task_struct(k: bytearray, parent: int, child: int) -> None:
    """dup_task_struct(): the parent's task_struct copied over the reused slot (4.x: struct fpu
    included; v6.18 copies only the task_struct and fpu_clone() initialises the struct fpu
    after it, every field of which the model's fork steps write). The child is TASK_NEW; it
    will return through the syscall tail like its parent, and copy_process()'s p names it.
    The ghost fields come along: the child's program is a copy of the parent's."""
    pp, cp = task(k, parent), task(k, child)
    k[cp: cp + TASK_W] = k[pp: pp + TASK_W]
    k[cp + T_RUN], k[cp + T_PC], k[cp + T_LOCAL], k[cp + T_CPU] = NEW, PC_SYSCALL, 0, NULL
    k[cp + T_SWAP_FPSTATE] = k[ghost(k, child) + G_SWAP_VALUE] = INIT  # no vCPU fd: a new guest fpstate if any
    k[pp + T_CHILD] = child


def wake_up_new_task(k: bytearray, parent: int) -> None:
    """copy_process() done: wake_up_new_task() puts the child on a runqueue. Run with the fork
    path's last step: what the kernel does between copy_thread() and the wake-up touches
    nothing the FPU code or another CPU can see, and the child cannot run before it."""
    pp = task(k, parent)
    k[task(k, k[pp + T_CHILD]) + T_RUN] = RUNNABLE
    k[pp + T_CHILD] = NULL


def path_step(m: Model, k: bytearray, c: int, t: int, path: int, step: int, choice=None) -> int:
    """Run step `step` of a multi-step path on the working copy; the index of the next step
    (past the last one: the path is done). `choice` is the outcome of a step that has several
    (None: the first, a fault-free access)."""
    st = path_steps(m.design, path)[step]
    choices = st.choices()
    if choices:
        nxt = st.fn(k, c, t, choices[0] if choice is None else choice)
    else:
        nxt = st.fn(k, c, t)
    if st.fresh_state:  # the old program's (or the interrupted one's) state is dead from here
        k[ghost(k, t) + G_VALUE] = INIT
    return step + 1 if nxt is None else nxt


def step_outcomes(m: Model, path: int, step: int) -> range:
    """The outcome indices of one step of a path: 0 alone for a plain step, one per choice
    (0 the fault-free access) for a step that has several."""
    return range(len(path_steps(m.design, path)[step].choices()) or 1)


def run_step(m: Model, k: bytearray, c: int, t: int, path: int, step: int, n: int = 0,
             enter: bool = False) -> None:
    """One step of a multi-step path, outcome n, in place; `enter` does the path's entry
    bookkeeping first, in the same step. The task's pc moves to the next step, or, past
    the last one, where the path ends."""
    steps = path_steps(m.design, path)
    if enter:
        _enter_path(k, t, path)
    choices = steps[step].choices()
    nxt = path_step(m, k, c, t, path, step, choices[n] if choices else None)
    if nxt >= len(steps) and path != PATH_EXIT:
        _complete_path(m, k, c, t, path)
    else:
        k[task(k, t) + T_PC] = path_pc(path, nxt)


def _clear_frame(k: bytearray, t: int, i: int) -> None:
    """Frame i's memory and the ghost's record of it back to zero (as at boot)."""
    p, g = task(k, t), ghost(k, t)
    k[p + T_SIGFRAME + i] = k[p + T_SIGFRAME_HDR + i] = k[p + T_SIGFRAME_PKRU + i] = 0
    k[g + G_FRAME + i] = k[g + G_FRAME_PKRU + i] = 0


def _enter_path(k: bytearray, t: int, path: int) -> None:
    """Budgets, and the ghost's record of what a signal frame must bring back."""
    p, g = task(k, t), ghost(k, t)
    if path == PATH_EXEC:
        k[H_EXECS] -= 1
        for i in range(MAX_SIGFRAMES):  # the new program starts on a fresh stack
            _clear_frame(k, t, i)
        k[p + T_SIGDEPTH] = 0
    elif path == PATH_EXIT:
        k[H_EXITS] -= 1
    elif path == PATH_SIGNAL:
        k[H_SIGNALS] -= 1
        k[p + T_LOCAL] = 0
        depth = k[p + T_SIGDEPTH]
        _clear_frame(k, t, depth)  # fresh frame memory (copy_fpstate_to_sigframe() clears the header)
        k[g + G_FRAME + depth] = k[g + G_VALUE]  # what sigreturn must give back
        k[g + G_FRAME_PKRU + depth] = k[g + G_PKRU]


def _complete_path(m: Model, k: bytearray, c: int, t: int, path: int) -> None:
    """Where a path goes when its last step is done, and what the program expects afterwards,
    from the ghost alone (no design state is read). Fork: wake_up_new_task() (the parent's
    ghost is untouched: fork changes no register of its program).

    Signal delivery: the handler starts from the init registers and the kernel's default
    PKRU, init_pkru_value, in every modelled version (v6.18 fpu__clear_user_states() ->
    restore_fpregs_from_init_fpstate() -> pkru_write_default(); v4.19 fpu__clear() ->
    copy_init_pkru_to_fpregs(); v4.8 XRSTORs init_fpstate, PKRU included). sigreturn: the
    program continues with the registers *and the PKRU* it had when the signal arrived (the
    frame's XSTATE_BV[PKRU] is set and its PKRU slot holds that value: v6.18
    update_pkru_in_sigframe(), 4.x a plain XSAVE). A frame the program corrupted gets the init
    registers and SIGSEGV; its PKRU is then the business of that SIGSEGV's delivery (which the
    model does not run), so it is unchecked (NULL) until the program or a handler sets it."""
    p, g = task(k, t), ghost(k, t)
    if path == PATH_EXEC:
        # The new program starts from the init registers (where inside exec the old program's
        # state dies is the step marked `fresh_state`) and the kernel's default PKRU, in every
        # modelled version (v6.18 flush_thread() -> pkru_flush_thread(); 4.x fpu__clear()
        # XRSTORs init_fpstate, PKRU included).
        k[g + G_VALUE], k[g + G_PKRU] = INIT, PKRU_INIT
    elif path == PATH_FORK:
        wake_up_new_task(k, t)
    elif path == PATH_SIGNAL:
        # handle_signal() done: the frame is on the stack, the handler starts from init.
        k[p + T_SIGDEPTH] += 1
        k[g + G_VALUE], k[g + G_PKRU] = INIT, PKRU_INIT
        enter_exit_loop(m, k, c, t)  # the work loop re-reads the flags
        return
    if path in (PATH_SIGRETURN, PATH_SIGRETURN_IA32):
        depth = k[p + T_SIGDEPTH] - 1
        want = k[g + G_FRAME + depth]
        if want == GARBAGE:  # the ghost's mark of a frame the program corrupted
            k[g + G_VALUE], k[g + G_PKRU] = INIT, NULL
        else:
            k[g + G_VALUE], k[g + G_PKRU] = want, k[g + G_FRAME_PKRU + depth]
        k[p + T_SIGDEPTH] = depth
        _clear_frame(k, t, depth)
    k[p + T_PC] = PC_SYSCALL


def swap_expectations(k: bytearray, t: int) -> None:
    """After fpu_swap_kvm_fpstate(): what the program expects of "current's fpstate" is now the
    other context's (host <-> guest). Ghost bookkeeping, so the generic kernel's, not the hook's."""
    g = ghost(k, t)
    k[g + G_VALUE], k[g + G_SWAP_VALUE] = k[g + G_SWAP_VALUE], k[g + G_VALUE]


def task_dead(m: Model, k: bytearray, c: int, t: int, nxt: int) -> None:
    """do_task_dead(): the final schedule(); the slot becomes free for fork."""
    context_switch(m, k, c, t, nxt, DEAD)
    p, g = task(k, t), ghost(k, t)
    k[p + T_PC], k[p + T_LOCAL] = PC_DEAD, 0
    k[g + G_VALUE], k[g + G_PKRU] = INIT, PKRU_INIT
