"""`Design`: the small, explicit set of hooks a kernel FPU design provides.

This is the hook protocol between the generic kernel (`fpustate.kernel`) and
the designs (`fpustate.designs`, or a user's file); it lives in `kernel/` so
that the kernel never imports a design.

Hooks that change state take the transition's working copy `k` (a bytearray,
see `fpustate.kernel.state`) and edit it in place; predicates take a state or
working copy and only read it.

The generic kernel (`fpustate.kernel.machine`) decides *when* each path runs
and where it can be interrupted; a design decides *what* its FPU code does at
each of those points. Every hook is a plain function named after the kernel
function it models (its `__name__` is what counterexample traces print), so a
variant that differs in one kernel line is `dataclasses.replace(DESIGN,
hook=new_function)`.

Contexts passed to the kernel-FPU hooks: `K_TASK`, `K_SOFTIRQ`, `K_HARDIRQ`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

from .fields import FIELD_DATA
from .state import T_FPSTATE, T_PKRU, task


K_TASK, K_SOFTIRQ, K_HARDIRQ = 0, 1, 2
K_NAMES = ("task", "softirq", "hardirq")
DONE = 0xFF  # what a path step returns to end its path

State = bytes  # or the bytearray working copy of a transition
StepFn = Callable[[bytearray, int, int], None]


class Step(NamedTuple):
    """One uninterruptible piece of a multi-step kernel path (exec, signal
    delivery, sigreturn, fork, exit): one FPU instruction, one user-memory access,
    or the plain writes between two of them. A hardirq may arrive between
    two steps; a softirq and the scheduler too when the CPU's BH and preempt
    counts (which the steps keep, as fpregs_lock()/fpregs_unlock() do) allow.

    `fn(k, cpu, task)` edits k and returns the index of the next step, or
    None for the one after it; an index past the last step ends the path.
    A step with several possible outcomes takes a fourth argument and the
    machine explores every outcome: `may_fault` (a user-memory access with
    page faults disabled: `fault` is False or True), or `outcomes`, the names
    of the outcomes of a nondeterministic choice (the argument is the index
    into it; traces print the name).
    """

    name: str  # kernel function(s), as printed in traces
    fn: Callable  # (k, cpu, task[, outcome]) -> Optional[int]
    may_fault: bool = False
    outcomes: tuple[str, ...] = ()
    # The step after which the program's FPU state is init (exec's invalidation or fpu__drop(),
    # 4.x signal delivery's and failed sigreturn's fpu__clear()): the generic kernel
    # (`kernel.paths`) sets what the ghost expects once the step's function, which touches
    # kernel fields only, is done. (Exec's and signal delivery's ends set it anyway.)
    fresh_state: bool = False

    def choices(self) -> tuple:
        """The values of the fourth argument the machine explores, or () for a plain step."""
        if self.outcomes:
            return tuple(range(len(self.outcomes)))
        return (False, True) if self.may_fault else ()

    def outcome_text(self, choice) -> str:
        if self.outcomes:
            return f" -> {self.outcomes[choice]}"
        return " -> page fault, retry" if choice else ""


class FpuExt(NamedTuple):
    """The 5.16+ FPU code around KVM's guest fpstate, AMX/XFD and CPU hotplug: one hook each,
    named after the kernel function (`designs/linux_kvm.py` has v6.18's). A design without
    them (`Design.fpu_ext` None) refuses the --vcpus, --amx and --hotplug knobs."""

    fpu_swap_kvm_fpstate: Callable  # (k, cpu, task, enter_guest): KVM_RUN entry and exit
    vcpu_enter_guest: Callable  # (k, cpu, task): the FPU part of VM entry, IRQs off
    fpu_copy_guest_fpstate_to_uabi: Callable  # (state, task) -> value: KVM_GET_XSAVE
    fpu_copy_uabi_to_guest_fpstate: Callable  # (k, task, value): KVM_SET_XSAVE
    xstate_request_perm: Callable  # (k, task): arch_prctl(ARCH_REQ_XCOMP_PERM)
    handle_xfd_event: Callable  # (k, cpu, task): the #NM of a first AMX use, fpstate_realloc()
    fpu_idle_fpregs: Callable  # (k, cpu): the idle driver's TILERELEASE
    cpu_dead: Callable  # (k, cpu): the CPU goes offline (takedown_cpu, play_dead)
    fpu__init_cpu: Callable  # (k, cpu, init_xfd): the CPU comes back (smpboot, fpu__init_cpu)


def _no_boot_cpu(k: bytearray, c: int) -> None:
    return None


def no_snapshot(k, c: int, t: int) -> int:
    """The flags snapshot of a design that re-reads the flags after the work loop: unused."""
    return 0


def _always_accessible(k, c: int) -> bool:
    return True


def _always_active(k, t: int) -> bool:
    return True


def _image(k, t: int) -> int:
    return k[task(k, t) + T_FPSTATE]


def _saved_state(s, t: int) -> tuple[int, int]:
    return s[task(s, t) + T_FPSTATE], s[task(s, t) + T_PKRU]


@dataclass(frozen=True)
class Design:
    name: str
    summary: str  # one line, shown by `fpustate designs`
    kernel: str  # the pinned kernel version, e.g. "v6.18"
    files: str  # the kernel files the hooks follow
    flag_name: str  # how the "needs load" flag is called in this kernel, for traces
    has_pkru: bool  # protection keys available (XFEATURE_PKRU enabled)
    valid_while_live: bool  # the running task's last_cpu is kept equal to its CPU while its registers are live

    # Boot: set the design's bookkeeping of task t, which either runs in
    # user mode on CPU `cpu` with its registers live, or (cpu == NULL) sits
    # in the kernel with its state saved in memory. (k, t, cpu)
    boot_task: Callable[[bytearray, int, int], None]

    # __switch_to(): the FPU part of a context switch from prev to next on
    # CPU c, IRQs off. (k, cpu, prev, next)
    switch_fpu: Callable[[bytearray, int, int, int], None]

    # Return to user: the IRQs-off tail that runs after the work loop until
    # user mode, given the flags snapshot taken before the loop.
    # (k, cpu, task, snapshot)
    exit_to_user: Callable[[bytearray, int, int, int], None]

    # irq_fpu_usable(state, cpu, K_*, interrupted_user_mode) says whether
    # that context may call kernel_fpu_begin(); begin includes the clobber.
    irq_fpu_usable: Callable[[State, int, int, bool], bool]
    kernel_fpu_begin: Callable[[bytearray, int, int], None]
    kernel_fpu_end: Callable[[bytearray, int, int], None]

    # fork: copy_thread() -> fpu_clone() as steps run by the parent (`task`), with the
    # child slot already holding a copy of the parent's task_struct (dup_task_struct) and
    # named by `context.fork_child(k, task)`; the child is TASK_NEW until the last step is
    # done (wake_up_new_task()). Steps are split where the kernel's fork can be interrupted.
    fork_steps: tuple[Step, ...]
    # exec and exit: steps with a preemption point between each two.
    exec_steps: tuple[Step, ...]
    exit_steps: tuple[Step, ...]

    # The design's claim that the running task t's registers are live on
    # CPU c (its "needs load" flag is clear). (state, t, cpu)
    regs_live: Callable[[State, int, int], bool]

    # ptrace: a tracer writes the xstate of stopped task t (PTRACE_SETREGSET).
    # `value` is the new contents, `hdr` the buffer's header (XSTATE_BV bits,
    # HDR_BAD for a bogus xcomp_bv); `pkru` the PKRU in the buffer, or NULL if
    # the tracer keeps it (meaningless when XSTATE_BV[PKRU] is clear). The hook
    # invalidates as the kernel does and writes the image, or rejects the
    # buffer. (k, t, value, hdr, pkru)
    xstateregs_set: Callable[[bytearray, int, int, int, int], None]

    # Signal delivery (from the exit-to-user work loop): copy the registers
    # into the user frame (`context.xsave_to_sigframe`) and give the handler a
    # fresh state. sigreturn: restore from the frame (`context.xrstor_from_sigframe`)
    # by the 64-bit path and by the ia32 FXSR-frame path.
    signal_steps: tuple[Step, ...]
    sigreturn_steps: tuple[Step, ...]
    sigreturn_ia32_steps: tuple[Step, ...]

    # A reader of the current task's own state (coredump, regset read of
    # self, the legacy fsave header): make the memory image current.
    # Runs under the design's lock, one step. (k, cpu, task)
    fpu_sync_fpstate: Callable[[bytearray, int, int], None]

    boot_cpu: Callable[[bytearray, int], None] = _no_boot_cpu
    # The flags snapshot prepare_exit_to_usermode() takes with IRQs off
    # before the work loop (kept in the task's T_LOCAL). (state, cpu, task)
    exit_to_user_snapshot: Callable[[State, int, int], int] = no_snapshot
    # Lazy FPU: may user mode touch the registers (CR0.TS clear)? If not, the
    # first FPU instruction traps into do_device_not_available(k, cpu, task).
    user_fpu_accessible: Callable[[State, int], bool] = _always_accessible
    do_device_not_available: Optional[Callable[[bytearray, int, int], None]] = None
    # What a restore of task t's image would produce (a never-activated
    # fpstate restores as init). (state, t)
    fpstate_image: Callable[[State, int], int] = _image
    # Does the kernel keep an FPU context for task t at all (v4.x:
    # fpu->fpstate_active / fpu->initialized)? Only then does it consult
    # fpregs_state_valid() for t. (state, t)
    fpstate_active: Callable[[State, int], bool] = _always_active
    # ptrace: what PTRACE_GETREGSET copies out of stopped task t:
    # (register value, PKRU). (state, t)
    xstateregs_get: Callable[[State, int], tuple[int, int]] = _saved_state
    # The design the cost simulator replays, when the checker's scales a kernel constant down
    # (lazy: fpu->counter's preload threshold). None: this design itself.
    simulation: Optional["Design"] = None
    # Does exit_to_user() decide from the snapshot taken before the work loop (a stale
    # cached_flags, the 2016 RFC's hazard) rather than from the flags re-read with IRQs off?
    stale_snapshot: bool = False
    # Does the design's kernel make user workers (io_uring, vhost) as PF_USER_WORKER threads of
    # their owner (create_io_thread(), vhost_task_create(): copy_process() from the owner, and
    # copy_thread() gives them read_pkru(), the owner's live PKRU; 5.12+ for io_uring)? If not,
    # a user worker is a kernel thread from kthreadd on a borrowed mm (kthread_use_mm()), and
    # copy_thread()/fpu__copy() give it the init PKRU.
    pf_user_worker: bool = False
    # Events this design adds to the kernel's action table (`fpustate.kernel.actions.Event`):
    # a new user or kernel path with its enabling test, its effect and its trace text.
    extra_events: tuple = ()
    # What the design keeps in a task's T_LOCAL, one of kernel.fields.FIELD_KINDS (symmetry
    # reduction rewrites it when it names a CPU or a task): the cached_flags snapshot is plain
    # data; a cached owner pointer is FIELD_TASK_PLUS1.
    local_kind: str = FIELD_DATA
    # The 5.16+ KVM, AMX/XFD and hotplug hooks (None: the design's kernel has no such code, and
    # `no_fpu_ext` says what it had instead; the knobs are refused).
    fpu_ext: Optional[FpuExt] = None
    no_fpu_ext: str = "no fpu_swap_kvm_fpstate(), XFD or xfd_state: that code came with 5.16"

    def variant(self, **changes) -> "Design":
        """This design with some hooks or fields replaced."""
        return dataclasses.replace(self, **changes)


HOOKS = tuple(
    f.name
    for f in dataclasses.fields(Design)
    if f.name not in ("name", "summary", "kernel", "files", "flag_name", "has_pkru", "valid_while_live", "simulation",
                      "stale_snapshot", "pf_user_worker", "extra_events", "fpu_ext", "no_fpu_ext", "local_kind")
)
