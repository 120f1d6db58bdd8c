"""The kernel state the model explores: one immutable state vector.

A state is a `bytes` object, SPIN-style: every byte is one named field of a
CPU, a task or the observer's ghost record. `bytes` hashes once (the hash is
cached), compares with memcmp and costs ~150 bytes per stored state, which is
what lets pure Python explore millions of states.

A transition copies the vector into a private `bytearray` (the working copy
`k`), lets the generic kernel and the design's hooks edit it in place, and
freezes it again; from the outside every transition is a pure function
state -> state. `decode()` turns a vector into readable NamedTuples for traces
and tests.

Layout: a header, then `ncpus` CPU records, then one record per task slot:
the kernel's fields followed by the observer's ghost fields. Offsets inside a
record are the `C_*`, `T_*` and `G_*` constants; `cpu(c)`, `task(k, t)` and
`ghost(k, t)` give a record's base offset. Only the task base (`k[0]`) is
stored, so a vector can hold up to 254 task slots (the cost simulator's).

Register and memory contents are abstract *values* from a small domain:
`INIT` (the architectural init state), `KERNEL` (scratch data of an in-kernel
FPU user), `GARBAGE` (registers half-written by an XRSTOR that faulted midway)
and `user_value(t, v)`, version `v` of the data user task slot `t` wrote.

Every XSAVE image (a task's fpstate, a signal frame) carries a header apart
from its data, as the hardware keeps it: XSTATE_BV bits for the FP/SSE group
and for PKRU, and whether XCOMP_BV/the reserved bytes are valid (`HDR_BAD`:
XRSTOR raises #GP and loads nothing). A clear XSTATE_BV bit makes XRSTOR load
the component's *hardware* init value: `INIT` for the registers, 0 for PKRU
(`PKRU_HW_INIT`, all keys enabled, not the kernel's `init_pkru_value`). The
registers' own header (XINUSE) is a function of their values (`xinuse`):
XSAVE writes XSTATE_BV = XINUSE, so an XSAVE always writes a valid header.
(The SDM lets a CPU keep XINUSE set for a component in its init value; AMD's
init tracker clears XINUSE[PKRU] on any WRPKRU(0), the case ae6012d72fa6 is
about, and the model takes that behaviour.) init_fpstate's header is 0: every
component in its init state.
"""

from __future__ import annotations

from typing import NamedTuple

# ---------------------------------------------------------------- values
INIT = 0  # init_fpstate contents: no task's data
KERNEL = 1  # data of a kernel_fpu_begin() user (crypto keys, RAID syndromes)
GARBAGE = 2  # registers left half-written by an XRSTOR that faulted midway (not a header state)
_USER_BASE = 3
VALUES_PER_TASK = 8  # stride of the value encoding; Scenario.values <= 8 are used

PKRU_INIT = 0  # init_pkru_value (the kernel's default); PKRU of user task t is pkru_of(t)
PKRU_HW_INIT = 254  # PKRU = 0, the hardware init value: what XRSTOR loads when XSTATE_BV[PKRU] is clear

# XSAVE header bits of an image (a byte per image).
XFEATURE_MASK_FPSSE = 1  # XSTATE_BV bits of the FP/SSE (and AVX) group: clear = init state
XFEATURE_MASK_PKRU = 2  # XSTATE_BV[PKRU]: clear = PKRU in its hardware init state (0)
HDR_BAD = 4  # XCOMP_BV or reserved header bytes invalid: XRSTOR raises #GP and loads nothing

NULL = 255  # fpu_fpregs_owner_ctx == NULL, last_cpu == -1, "not on a CPU"


def user_value(task: int, version: int) -> int:
    """Version `version` of the register contents written by user task `task`."""
    return _USER_BASE + task * VALUES_PER_TASK + version


def value_owner(value: int) -> int:
    """The task slot whose user program produced `value`, or NULL."""
    return (value - _USER_BASE) // VALUES_PER_TASK if value >= _USER_BASE else NULL


def value_version(value: int) -> int:
    return (value - _USER_BASE) % VALUES_PER_TASK


def guest_value(task: int, version: int) -> int:
    """Version `version` of the register contents the guest of vCPU task `task` wrote."""
    return user_value(task, GUEST_VERSION + version)


def is_guest_value(value: int) -> bool:
    return value >= _USER_BASE and value_version(value) >= GUEST_VERSION


def pkru_of(task: int, version: int = 0) -> int:
    """The protection-key rights a user task's program set up for itself (WRPKRU toggles the version)."""
    return 1 + 2 * task + version


def pkru_owner(pkru: int) -> int:
    return (pkru - 1) // 2 if pkru not in (PKRU_INIT, PKRU_HW_INIT, NULL) else NULL


def xinuse(fpregs: int, pkru: int) -> int:
    """The XSTATE_BV an XSAVE writes for registers holding `fpregs` and `pkru`: a component's
    bit is set unless it is in its init state (XINUSE). Never HDR_BAD."""
    return (XFEATURE_MASK_FPSSE if fpregs != INIT else 0) | (XFEATURE_MASK_PKRU if pkru != PKRU_HW_INIT else 0)


def xrstor_value(data: int, hdr: int) -> int:
    """What XRSTOR loads into the FP/SSE registers from an image (header valid)."""
    return data if hdr & XFEATURE_MASK_FPSSE else INIT


def xrstor_pkru(slot: int, hdr: int) -> int:
    """What XRSTOR loads into PKRU from an image's PKRU slot (header valid)."""
    return slot if hdr & XFEATURE_MASK_PKRU else PKRU_HW_INIT


def pkru_version(pkru: int) -> int:
    return (pkru - 1) % 2


# ---------------------------------------------------------------- enums
# Task kinds (PF_KTHREAD, the per-CPU idle task, and a user worker: an io_uring/vhost thread on
# its owner's mm, PF_USER_WORKER since 5.x with the owner's PKRU from copy_thread()).
USER, KTHREAD, IDLE, UWORKER = 0, 1, 2, 3
KIND_NAMES = ("user", "kthread", "idle", "user-worker")

# Run states. NEW is TASK_NEW: copy_process() is still building the task (a fork child until
# wake_up_new_task()); like a dead one, nothing runs it and no property looks at it (RUN >= DEAD).
RUNNING, RUNNABLE, SLEEPING, DEAD, NEW = 0, 1, 2, 3, 4
RUN_NAMES = ("running", "runnable", "sleeping", "dead", "new")

# Where a task is (its program counter). Multi-step paths (exec, signal
# delivery, the two sigreturn paths, fork, exit) use
# PATH_BASE + path * PATH_STRIDE + next_step.
PC_USER = 0  # executing in user mode
PC_SYSCALL = 1  # inside a syscall body, preemptible
PC_SYSCALL_KFPU = 2  # between kernel_fpu_begin() and kernel_fpu_end() in a syscall
PC_EXIT_LOOP = 3  # in exit_to_user_mode_loop(): IRQs and preemption enabled
PC_KTHREAD = 4  # kernel thread / idle body
PC_KTHREAD_KFPU = 5  # kernel thread inside a kernel-FPU section
PC_IRQ_FROM_USER = 6  # user mode interrupted; a softirq runs on top of it
PC_DEAD = 7
PC_KVM_RUN = 8  # in KVM_RUN's vcpu_run() loop, host kernel, preemptible, the guest fpstate swapped in
PC_GUEST = 9  # in guest mode (VMX non-root), between VM entry and VM exit
PC_OFFLINE = 10  # an idle task whose CPU is offline (hotplug): nothing runs there until it is brought up
PC_XFD_NM = 11  # in handle_xfd_event() from user mode, IRQs enabled, before fpstate_realloc()'s lock
PATH_BASE = 16
PATH_STRIDE = 16  # at most 16 steps a path (pc is one byte: 16 + 6 * 16 < 255)
PATH_EXEC, PATH_SIGNAL, PATH_SIGRETURN, PATH_SIGRETURN_IA32, PATH_FORK, PATH_EXIT = 0, 1, 2, 3, 4, 5  # exit stays last
PATH_NAMES = ("exec", "signal", "sigreturn", "sigreturn-ia32", "fork", "exit")
PC_NAMES = ("user", "syscall", "syscall:kernel_fpu", "exit_to_user_mode_loop", "kthread",
            "kthread:kernel_fpu", "irq-from-user", "dead", "kvm_run", "guest", "offline", "xfd-#NM")
KVM_PCS = (PC_KVM_RUN, PC_GUEST)  # inside KVM_RUN: fpu->fpstate points at the guest's fpstate

# CPU execution context on top of the current task.
CTX_TASK = 0
CTX_SOFTIRQ_KFPU = 1  # a softirq is inside its kernel-FPU section
CTX_NAMES = ("task", "softirq")


def path_pc(path: int, step: int) -> int:
    return PATH_BASE + path * PATH_STRIDE + step


def pc_path(pc: int) -> int:
    """The multi-step path a pc belongs to, or NULL."""
    return (pc - PATH_BASE) // PATH_STRIDE if pc >= PATH_BASE else NULL


def pc_step(pc: int) -> int:
    return (pc - PATH_BASE) % PATH_STRIDE


SIGRETURN_PC_LO = PATH_BASE + PATH_SIGRETURN * PATH_STRIDE
SIGRETURN_PC_HI = PATH_BASE + (PATH_SIGRETURN_IA32 + 1) * PATH_STRIDE


def in_sigreturn(pc: int) -> bool:
    """Inside rt_sigreturn's FPU restore: the program's registers are being replaced by the
    frame's, so what it "has" is undefined until the path ends."""
    return SIGRETURN_PC_LO <= pc < SIGRETURN_PC_HI


def pc_name(pc: int) -> str:
    if pc >= PATH_BASE:
        return f"{PATH_NAMES[pc_path(pc)]}[{pc_step(pc)}]"
    return PC_NAMES[pc]


# ---------------------------------------------------------------- layout
# Header.
H_TASK_BASE = 0  # offset of task 0's record
H_NTASKS = 1  # number of task slots
H_FORKS = 2  # remaining fork() budget
H_EXECS = 3
H_EXITS = 4
H_CLOBBERED = 5  # ghost marker: task whose image was saved from foreign registers
H_PTRACE = 6  # remaining ptrace regset-write budget
H_SIGNALS = 7  # remaining signal-delivery budget
H_STALE_READ = 8  # ghost marker: task whose state a reader (coredump, ptrace, fsave header) saw stale
H_XFD_NM = 9  # ghost marker: task whose AMX state an XRSTOR loaded with XFD armed (#NM in the kernel)
HEADER = 10

# CPU record.
C_FPREGS = 0  # what the FPU/SSE/AVX registers hold (a value)
C_OWNER = 1  # fpu_fpregs_owner_ctx: task slot whose struct fpu it names, or NULL
C_PKRU = 2  # the PKRU register
C_CURR = 3  # current
C_CTX = 4  # CTX_TASK, or a softirq in a kernel-FPU section on top of current
C_PREEMPT = 5  # preempt_count of the code running here
C_BH = 6  # local_bh_disable() nesting (fpregs_lock() on !RT)
C_IN_KFPU = 7  # in_kernel_fpu (v6.18: !kernel_fpu_allowed)
C_TS = 8  # CR0.TS (only the lazy design sets it)
C_XFD = 9  # MSR_IA32_XFD: XFD_ARMED (AMX tile data disabled, first use traps #NM) or 0
C_XFD_STATE = 10  # the per-CPU xfd_state, the kernel's cache of MSR_IA32_XFD (5.16+)
CPU_W = 11
XFD_ARMED = 1  # XFEATURE_MASK_XTILE_DATA set in an XFD value (init_fpstate.xfd when AMX is enabled)

# Task record: a task_struct slot with its struct fpu and thread_info flags.
T_KIND = 0  # USER, KTHREAD, IDLE
T_RUN = 1  # RUNNING, RUNNABLE, SLEEPING, DEAD
T_PC = 2  # where the task is (PC_*)
T_LOCAL = 3  # a local variable of the current path (the cached_flags snapshot)
T_CPU = 4  # CPU it runs on, NULL when not running
T_FPSTATE = 5  # fpu->fpstate->regs, the in-memory image (a value)
T_LAST_CPU = 6  # fpu->last_cpu
T_NEED_LOAD = 7  # TIF_NEED_FPU_LOAD (or the design's own "load" flag)
T_FPREGS_ACTIVE = 8  # fpu->fpregs_active (4.x designs)
T_FPSTATE_ACTIVE = 9  # fpu->fpstate_active / fpu->initialized (4.x designs)
T_COUNTER = 10  # fpu->counter, the lazy preload heuristic
T_PKRU = 11  # thread.pkru, or the PKRU component of the xsave image
T_SIGDEPTH = 12  # signal frames on the user stack (user memory, not kernel state)
T_SIGFRAME = 13  # the fpstate in frame 0 .. MAX_SIGFRAMES-1 (a value; GARBAGE = bad header)
MAX_SIGFRAMES = 2
GHOST_OFF = T_SIGFRAME + MAX_SIGFRAMES  # the ghost fields follow the kernel's in each task record

# Ghost fields (offsets from ghost(k, t)): observer state, what the task's user program believes.
G_VALUE = 0  # register contents the program last wrote or was given
G_PKRU = 1  # the PKRU value the program runs with
G_FRAME = 2  # what the program expects back from signal frame 0 .. MAX_SIGFRAMES-1
GHOST_W = G_FRAME + MAX_SIGFRAMES

# Fields appended after the ghost, kernel fields first, then the ghost's (encode() relies on it).
# 5.16+: KVM's fpstate swap, AMX/XFD. fpu_swap_kvm_fpstate() swaps fpu->fpstate with
# guest_fpu.fpstate: the model exchanges the (T_FPSTATE, T_XFD, T_XSIZE, T_FPSTATE_HDR) fields with
# the T_SWAP_* ones, and the ghost's G_VALUE with G_SWAP_VALUE, so every hook that reads
# "current's fpstate" sees the guest's while a vCPU task is in KVM_RUN.
EXT_OFF = GHOST_OFF + GHOST_W
T_XFD = EXT_OFF + 0  # fpu->fpstate->xfd (XFD_ARMED or 0)
T_XSIZE = EXT_OFF + 1  # fpu->fpstate is fpstate_realloc()'s large buffer (AMX tile data in the image)
T_XPERM = EXT_OFF + 2  # ARCH_REQ_XCOMP_PERM granted: fpu->perm includes XFEATURE_XTILE_DATA
T_SWAP_FPSTATE = EXT_OFF + 3  # the other fpstate's regs: guest_fpu.fpstate outside KVM_RUN, __task_fpstate inside
T_SWAP_XFD = EXT_OFF + 4  # the other fpstate's xfd
T_SWAP_XSIZE = EXT_OFF + 5  # the other fpstate's size
EXT_W = 6
# The XSAVE headers and the second PKRU home (kernel state and user memory).
_X = EXT_OFF + EXT_W
T_FPSTATE_HDR = _X  # fpu->fpstate->regs.xsave.header: XSTATE_BV bits | HDR_BAD
T_XPKRU = _X + 1  # the PKRU slot of the xsave buffer (5.14+; before, T_PKRU is that slot)
T_SIGFRAME_HDR = _X + 2  # header of frame 0 .. MAX_SIGFRAMES-1
T_SIGFRAME_PKRU = T_SIGFRAME_HDR + MAX_SIGFRAMES  # the PKRU slot of frame 0 .. MAX_SIGFRAMES-1
T_SIG_PKRU = T_SIGFRAME_PKRU + MAX_SIGFRAMES  # handle_signal()'s pkru local (6.12+ sig_prepare_pkru()); NULL outside
T_SWAP_HDR = T_SIG_PKRU + 1  # the other fpstate's header (KVM)
T_CHILD = T_SWAP_HDR + 1  # copy_process()'s p: the child a fork is building (NULL outside fork)
X_FIELDS = T_CHILD + 1 - _X
# Ghost fields after the kernel's (offsets from ghost()).
_GX = _X + X_FIELDS
G_SWAP_VALUE = _GX - GHOST_OFF  # what the other context (host or guest) expects
G_FRAME_PKRU = _GX + 1 - GHOST_OFF  # PKRU the program expects back from frame i (NULL: it corrupted it)
TASK_W = _GX + 1 + MAX_SIGFRAMES
GUEST_VERSION = 4  # guest_value(t, v) = user_value(t, GUEST_VERSION + v): task t's guest's data


def cpu(c: int) -> int:
    """Offset of CPU c's record."""
    return HEADER + c * CPU_W


def task(k, t: int) -> int:
    """Offset of task t's record in state (or working copy) k."""
    return k[0] + t * TASK_W


def ghost(k, t: int) -> int:
    """Offset of task t's ghost fields."""
    return k[0] + t * TASK_W + GHOST_OFF


def ncpus(k) -> int:
    return (k[0] - HEADER) // CPU_W


def ntasks(k) -> int:
    return k[H_NTASKS]


# ---------------------------------------------------------------- decoded view
class CpuState(NamedTuple):
    fpregs: int
    owner: int
    pkru: int
    curr: int
    ctx: int
    preempt_count: int
    bh_count: int
    in_kernel_fpu: int
    ts: int
    xfd: int = 0
    xfd_state: int = 0


class TaskState(NamedTuple):
    kind: int
    run: int
    pc: int
    local: int
    cpu: int
    fpstate: int
    last_cpu: int
    need_load: int
    fpregs_active: int
    fpstate_active: int
    counter: int
    pkru: int
    sigdepth: int
    sigframe0: int
    sigframe1: int
    xfd: int = 0
    xsize: int = 0
    xperm: int = 0
    swap_fpstate: int = 0
    swap_xfd: int = 0
    swap_xsize: int = 0
    fpstate_hdr: int = 0
    xpkru: int = 0
    sigframe_hdr0: int = 0
    sigframe_hdr1: int = 0
    sigframe_pkru0: int = 0
    sigframe_pkru1: int = 0
    sig_pkru: int = NULL
    swap_hdr: int = 0
    child: int = NULL


class Ghost(NamedTuple):
    value: int
    pkru: int
    frame0: int
    frame1: int
    swap_value: int = 0
    frame_pkru0: int = 0
    frame_pkru1: int = 0


class KernelState(NamedTuple):
    """The decoded, readable form of a state vector."""

    cpus: tuple[CpuState, ...]
    tasks: tuple[TaskState, ...]
    ghost: tuple[Ghost, ...]
    budget: tuple[int, int, int]  # forks, execs, exits
    fpstate_clobbered: int
    ptrace_writes: int  # remaining ptrace regset-write budget
    signals: int  # remaining signal-delivery budget
    stale_read: int  # task a reader saw stale, or NULL
    xfd_nm: int = NULL  # task whose AMX state was XRSTORed with XFD armed, or NULL


def encode(ks: KernelState) -> bytes:
    nc, nt = len(ks.cpus), len(ks.tasks)
    tb = HEADER + nc * CPU_W
    out = [tb, nt, *ks.budget, ks.fpstate_clobbered, ks.ptrace_writes, ks.signals, ks.stale_read, ks.xfd_nm]
    for c in ks.cpus:
        out.extend(c)
    for t, g in zip(ks.tasks, ks.ghost):
        out.extend(t[:GHOST_OFF])
        out.extend(g[:GHOST_W])
        out.extend(t[GHOST_OFF:])
        out.extend(g[GHOST_W:])
    return bytes(out)


def decode(s) -> KernelState:
    nc, nt = ncpus(s), ntasks(s)
    cpus = tuple(CpuState(*s[cpu(c): cpu(c) + CPU_W]) for c in range(nc))
    tasks = tuple(TaskState(*s[task(s, t): task(s, t) + GHOST_OFF], *s[task(s, t) + EXT_OFF: task(s, t) + _GX])
                  for t in range(nt))
    ghosts = tuple(Ghost(*s[ghost(s, t): ghost(s, t) + GHOST_W],
                         *s[ghost(s, t) + G_SWAP_VALUE: ghost(s, t) + G_FRAME_PKRU + MAX_SIGFRAMES]) for t in range(nt))
    return KernelState(cpus, tasks, ghosts, (s[H_FORKS], s[H_EXECS], s[H_EXITS]), s[H_CLOBBERED], s[H_PTRACE],
                       s[H_SIGNALS], s[H_STALE_READ], s[H_XFD_NM])
