"""The properties every design is checked against.

Each property is a named predicate over a state. It returns None when it
holds, or a one-line description of the violation (which CPU, which task,
what the registers hold). Its docstring's first line says what a user would
lose if it broke; the checker prints it under every counterexample.

Tasks on their way out (inside exit) are exempt from the state properties:
their registers are never used again; so are dead slots and a fork child
copy_process() is still building (TASK_NEW: T_RUN >= DEAD), which nothing runs. The order below is the reporting order
when one state breaks several properties: architectural violations first,
the LazyFP exposure class last.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from . import properties_kvm as K

from .state import (
    C_CTX,
    C_CURR,
    C_FPREGS,
    C_BH,
    C_IN_KFPU,
    C_OWNER,
    C_PKRU,
    CTX_TASK,
    DEAD,
    G_FRAME,
    G_FRAME_PKRU,
    G_PKRU,
    GARBAGE,
    HDR_BAD,
    G_VALUE,
    H_CLOBBERED,
    H_STALE_READ,
    INIT,
    NULL,
    PATH_EXIT,
    PC_EXIT_LOOP,
    PC_KTHREAD,
    PC_KVM_RUN,
    PC_SYSCALL,
    PC_USER,
    T_CPU,
    T_KIND,
    T_LAST_CPU,
    T_PC,
    T_RUN,
    T_SIGDEPTH,
    T_FPSTATE,
    T_FPSTATE_HDR,
    T_SIGFRAME,
    T_SIGFRAME_HDR,
    T_SIGFRAME_PKRU,
    TASK_W,
    USER,
    UWORKER,
    CPU_W,
    GHOST_OFF,
    HEADER,
    cpu,
    ghost,
    in_sigreturn,
    path_pc,
    value_owner,
    xrstor_pkru,
    xrstor_value,
)


class Property(NamedTuple):
    name: str
    check: Callable  # (model, state) -> Optional[str]
    kind: str  # "architectural" or "exposure"

    @property
    def doc(self) -> str:
        return " ".join((self.check.__doc__ or "").split("\n\n")[0].split())


UACCESS_PCS = (PC_USER, PC_SYSCALL, PC_EXIT_LOOP, PC_KVM_RUN)
EXIT_PC_LO = path_pc(PATH_EXIT, 0)
PATH_PC_LO = path_pc(0, 0)  # the first pc of a multi-step path  # pcs inside exit; nothing follows PATH_EXIT


def exiting(pc: int) -> bool:
    """The task is inside exit(): its FPU state is never used again."""
    return pc >= EXIT_PC_LO


def in_flux(pc: int) -> bool:
    """Inside exit (the state is dead) or sigreturn (it is being replaced by the frame's):
    exempt from the state properties; the result is checked when the path ends."""
    return pc >= EXIT_PC_LO or in_sigreturn(pc)


def in_locked_section(s, t: int) -> bool:
    """Task t runs a multi-step path inside an fpregs_lock()ed section (the BH count of its CPU
    is held by task context, outside a kernel-FPU section). Between the FPU instruction and the
    bookkeeping writes of such a section the registers, the owner and the flag disagree by
    design; the kernel only relies on them agreeing once the section is left (fpregs_unlock()),
    which is where they are checked. Whatever an interrupt broke inside stays broken after it."""
    tb = s[0]
    p = tb + t * TASK_W
    c = s[p + T_CPU]
    if c == NULL or s[p + T_PC] < PATH_PC_LO:
        return False
    q = HEADER + c * CPU_W
    return s[q + C_BH] > 0 and s[q + C_CTX] == CTX_TASK and not s[q + C_IN_KFPU]


def user_sees_own_registers(m, s) -> Optional[str]:
    """A task in user mode finds exactly its own FPU values in its CPU's registers; otherwise its program computes with lost, stale or another task's data."""
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        if s[tb + t * TASK_W + T_PC] == PC_USER and s[q + C_CTX] == CTX_TASK:
            want = s[tb + t * TASK_W + GHOST_OFF + G_VALUE]
            if s[q + C_FPREGS] != want and m.design.user_fpu_accessible(s, c):
                return (f"cpu{c}: {m.name(t)} runs in user mode with registers {m.value(s[q + C_FPREGS])}, "
                        f"expected {m.value(want)}")
    return None


def need_load_or_valid(m, s) -> Optional[str]:
    """If the running task's "needs load" flag is clear, its CPU holds its registers and fpu_fpregs_owner_ctx names it; otherwise the return to user space skips a restore it needed (fpregs_assert_state_consistent)."""
    d = m.design
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        p = tb + t * TASK_W
        if (s[p + T_KIND] != USER or s[q + C_IN_KFPU] or s[q + C_CTX] != CTX_TASK or in_flux(s[p + T_PC])
                or in_locked_section(s, t)):
            continue
        if d.regs_live(s, t, c):
            if (s[q + C_OWNER] != t or s[q + C_FPREGS] != s[ghost(s, t) + G_VALUE]
                    or (d.valid_while_live and s[p + T_LAST_CPU] != c)):
                last = s[p + T_LAST_CPU]
                return (f"cpu{c}: {m.name(t)}'s {d.flag_name} says its registers are live, but owner={m.owner(s[q + C_OWNER])} "
                        f"last_cpu={-1 if last == NULL else last} registers={m.value(s[q + C_FPREGS])}")
    return None


def fpregs_state_valid_sound(m, s) -> Optional[str]:
    """fpregs_state_valid(T, c) implies CPU c's registers hold T's current state; otherwise a skipped XRSTOR hands T stale or foreign registers."""
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_OWNER]
        if t == NULL or s[q + C_IN_KFPU] or in_locked_section(s, s[q + C_CURR]):
            continue  # (inside a locked section the CPU's registers are being replaced)
        p = tb + t * TASK_W
        if (s[p + T_LAST_CPU] != c or s[p + T_RUN] >= DEAD or s[p + T_KIND] != USER or in_flux(s[p + T_PC])
                or in_locked_section(s, t)):
            continue
        on = s[p + T_CPU]
        if on != NULL and on != c:
            continue  # running elsewhere: last_cpu is rewritten before it can run here again
        if not m.design.fpstate_active(s, t):
            continue  # no FPU context: the kernel never consults fpregs_state_valid() for it
        want = s[ghost(s, t) + G_VALUE]
        if s[q + C_FPREGS] != want:
            return (f"cpu{c}: fpregs_state_valid({m.name(t)}, {c}) holds but the registers contain "
                    f"{m.value(s[q + C_FPREGS])}, not {m.value(want)}")
    return None


def fpstate_not_clobbered(m, s) -> Optional[str]:
    """A task's memory image is never overwritten from registers that do not hold its state; otherwise the next restore loads foreign or stale data."""
    t = s[H_CLOBBERED]
    if t != NULL:
        return f"{m.name(t)}'s fpstate was saved from registers that did not hold its state"
    return None


def state_survives(m, s) -> Optional[str]:
    """A task's latest FPU state always exists in its memory image or in its own live registers; otherwise it is lost for good."""
    d = m.design
    tb = s[0]
    for t in range(m.scenario.slots):
        p = tb + t * TASK_W
        if s[p + T_RUN] >= DEAD or in_flux(s[p + T_PC]) or in_locked_section(s, t):
            continue
        want = s[tb + t * TASK_W + GHOST_OFF + G_VALUE]
        image = d.fpstate_image(s, t)
        if image == want:
            continue
        c = s[p + T_CPU]
        if c != NULL and s[cpu(c) + C_FPREGS] == want and d.regs_live(s, t, c):
            continue
        return (f"{m.name(t)}'s state {m.value(want)} is neither in its fpstate ({m.value(image)}) "
                f"nor in live registers")
    return None


def sigframe_holds_user_state(m, s) -> Optional[str]:
    """Every signal frame on a task's stack holds the registers and PKRU its program had when the signal arrived, as XRSTOR will load them; otherwise sigreturn resumes the program with another task's or stale registers, or with other protection keys.

    The frame is read as XRSTOR reads it: a component whose XSTATE_BV bit is clear
    comes back in its hardware init state (PKRU 0), whatever its slot holds. Frames
    the program itself corrupted (the ghost's GARBAGE mark) are not checked.
    """
    if not m.scenario.signals:
        return None  # no frames without signals (a cheap exit on the checker's hot path)
    tb = s[0]
    pkeys = m.design.has_pkru
    for t in range(m.scenario.slots):
        p = tb + t * TASK_W
        if s[p + T_RUN] >= DEAD:
            continue
        g = p + GHOST_OFF
        for i in range(s[p + T_SIGDEPTH]):
            want = s[g + G_FRAME + i]
            if want == GARBAGE:
                continue
            hdr = s[p + T_SIGFRAME_HDR + i]
            got = GARBAGE if hdr & HDR_BAD else xrstor_value(s[p + T_SIGFRAME + i], hdr)
            if got != want:
                return f"{m.name(t)}'s signal frame {i} holds {m.value(got)}, expected {m.value(want)}"
            want_pkru = s[g + G_FRAME_PKRU + i]
            got_pkru = xrstor_pkru(s[p + T_SIGFRAME_PKRU + i], hdr)
            if pkeys and want_pkru != NULL and got_pkru != want_pkru:
                return (f"{m.name(t)}'s signal frame {i} restores PKRU {m.pkru(got_pkru)}, "
                        f"expected {m.pkru(want_pkru)}")
    return None


def xrstor_image_valid(m, s) -> Optional[str]:
    """Every image the kernel will XRSTOR on a task's behalf is one XRSTOR accepts and holds a state somebody wrote: after any failed restore the memory image is the task's last good state or init, never half-written registers; otherwise the task's next restore faults or loads a state nobody had.

    Checked for every live user task whose memory image is authoritative (its registers
    are not live), outside exit, sigreturn and fpregs_lock()ed sections.
    """
    d = m.design
    tb = s[0]
    for t in range(m.scenario.slots):
        p = tb + t * TASK_W
        if s[p + T_RUN] >= DEAD or in_flux(s[p + T_PC]) or in_locked_section(s, t) or not d.fpstate_active(s, t):
            continue
        c = s[p + T_CPU]
        if c != NULL and d.regs_live(s, t, c):
            continue
        if s[p + T_FPSTATE_HDR] & HDR_BAD:
            return f"{m.name(t)}'s fpstate has a header XRSTOR rejects (#GP)"
        if s[p + T_FPSTATE] == GARBAGE:
            return f"{m.name(t)}'s fpstate holds half-written registers"
    return None


def readers_see_current_state(m, s) -> Optional[str]:
    """A reader of a task's FPU state (coredump, PTRACE_GETREGSET, the signal frame's fsave header) sees its latest values and PKRU; otherwise debuggers and core dumps show stale registers."""
    t = s[H_STALE_READ]
    if t != NULL:
        return f"a reader of {m.name(t)}'s FPU state got a stale copy"
    return None


def kernel_uaccess_uses_own_pkru(m, s) -> Optional[str]:
    """Kernel accesses to user memory run with the accessing task's own PKRU; otherwise copy_to_user() obeys another task's protection keys.

    Checked where the model's tasks touch user memory: in user mode, in a
    syscall body and in the exit-to-user work loop (signal frames), not in the
    middle of exec, exit or a kernel-FPU section, which do no uaccess; and in
    the body of a user worker (io_uring, vhost), which runs with the PKRU
    copy_thread() gave it: its owner's live keys when the owner created it
    (read_pkru(), a PF_USER_WORKER of v5.12+), or the init PKRU of a kernel thread
    on a borrowed mm (kthread_use_mm()) in older kernels.
    """
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        p = tb + t * TASK_W
        kind, pc = s[p + T_KIND], s[p + T_PC]
        if s[q + C_CTX] == CTX_TASK and ((kind == USER and pc in UACCESS_PCS) or (kind == UWORKER and pc == PC_KTHREAD)):
            want = s[tb + t * TASK_W + GHOST_OFF + G_PKRU]
            if s[q + C_PKRU] != want and want != NULL:
                return f"cpu{c}: {m.name(t)} runs with PKRU {m.pkru(s[q + C_PKRU])}, expected {m.pkru(want)}"
    return None


def no_foreign_data_exposed(m, s) -> Optional[str]:
    """No other task's or kernel data sits in the registers while a task runs in user mode; otherwise it is one speculative read away (LazyFP, CVE-2018-3665)."""
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        v = s[q + C_FPREGS]
        if (s[tb + t * TASK_W + T_PC] == PC_USER and s[q + C_CTX] == CTX_TASK and v != s[tb + t * TASK_W + GHOST_OFF + G_VALUE]
                and v != INIT and value_owner(v) != t):
            return f"cpu{c}: {m.name(t)} runs in user mode while the registers hold {m.value(v)}"
    return None


PROPERTIES: tuple[Property, ...] = (
    Property("user_sees_own_registers", user_sees_own_registers, "architectural"),
    Property("need_load_or_valid", need_load_or_valid, "architectural"),
    Property("fpregs_state_valid_sound", fpregs_state_valid_sound, "architectural"),
    Property("fpstate_not_clobbered", fpstate_not_clobbered, "architectural"),
    Property("state_survives", state_survives, "architectural"),
    Property("sigframe_holds_user_state", sigframe_holds_user_state, "architectural"),
    Property("xrstor_image_valid", xrstor_image_valid, "architectural"),
    Property("readers_see_current_state", readers_see_current_state, "architectural"),
    Property("kernel_uaccess_uses_own_pkru", kernel_uaccess_uses_own_pkru, "architectural"),
    Property("guest_sees_own_registers", K.guest_sees_own_registers, "architectural"),
    Property("inactive_fpstate_kept", K.inactive_fpstate_kept, "architectural"),
    Property("xrstor_respects_xfd", K.xrstor_respects_xfd, "architectural"),
    Property("xfd_matches_fpstate", K.xfd_matches_fpstate, "architectural"),
    Property("xfd_state_matches_msr", K.xfd_state_matches_msr, "architectural"),
    Property("no_foreign_data_exposed", no_foreign_data_exposed, "exposure"),
)

BY_NAME = {p.name: p for p in PROPERTIES}
