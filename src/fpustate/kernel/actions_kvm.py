"""The action table's entries for KVM vCPU threads, AMX/XFD and CPU hotplug (5.16+ kernels).

The events call the design's `FpuExt` hooks (`kernel/design.py`; v6.18's are in
`designs/linux_kvm.py`) and are enabled only under their knobs (`--vcpus N`,
`--amx`, `--hotplug`), so other scenarios explore exactly what they did before.

How each path interleaves (v6.18, arch/x86/kvm/x86.c and arch/x86/kernel/fpu/):
- KVM_RUN entry and exit (kvm_load_guest_fpu()/kvm_put_guest_fpu() ->
  fpu_swap_kvm_fpstate()): one step each. The swap runs under fpregs_lock():
  no switch and no softirq can run inside; a hardirq can, but irq_fpu_usable()
  refuses it the FPU (softirq_count() != 0), so a finer split adds states and
  no behaviour.
- The run loop (vcpu_run(), PC_KVM_RUN) runs with IRQs and preemption on:
  hardirqs and softirqs may use the FPU there, the scheduler may switch the
  vCPU thread out (halt, kvm_vcpu_block() and xfer_to_guest_mode_handle_work()
  switch the same way) and any CPU may pick it up again (migration).
- VM entry (vcpu_enter_guest() from local_irq_disable() to VMLAUNCH) and VM
  exit (to local_irq_enable()) are single IRQs-off steps; the guest runs in
  between (PC_GUEST) and only writes its registers; an interrupt in guest
  mode is a VM exit first.
- KVM_GET_XSAVE/KVM_SET_XSAVE are vCPU ioctls (vcpu->mutex): never concurrent
  with KVM_RUN, one step from a syscall.
- The first AMX use with XFD armed traps (#NM): handle_xfd_event() reads and
  clears XFD_ERR with IRQs off (one step), then runs with IRQs on
  (PC_XFD_NM: preemptible, interrupts may use the FPU) until
  fpstate_realloc()'s fpregs_lock() section (one step), then leaves through
  the exit-to-user path.
- arch_prctl(ARCH_REQ_XCOMP_PERM) touches no register state: one step.
- The idle driver's fpu_idle_fpregs() runs with IRQs off: one step.
- Hotplug: the CPU goes offline from its idle task (takedown_cpu() has moved
  every task away; play_dead()) and comes back (native_kick_ap(),
  fpu__init_cpu()) as one step each; nothing runs on it in between.
"""

from __future__ import annotations

from .actions import Event
from .effects import once
from .state import (
    C_BH,
    C_CTX,
    C_CURR,
    C_IN_KFPU,
    C_XFD,
    CPU_W,
    CTX_TASK,
    G_SWAP_VALUE,
    G_VALUE,
    GUEST_VERSION,
    H_STALE_READ,
    HEADER,
    IDLE,
    NULL,
    PC_GUEST,
    PC_KTHREAD,
    PC_KVM_RUN,
    PC_OFFLINE,
    PC_SYSCALL,
    PC_USER,
    PC_XFD_NM,
    T_KIND,
    T_PC,
    T_XPERM,
    T_XSIZE,
    TASK_W,
    XFD_ARMED,
    ghost,
    guest_value,
    value_owner,
    value_version,
)
from . import context
from . import machine as M
from . import paths

KVM_RUN = "kvm_run"  # KVM_RUN ioctl: kvm_load_guest_fpu()
KVM_RUN_EXIT = "kvm_run_exit"  # back to userspace: kvm_put_guest_fpu()
VM_ENTRY = "vm_entry"
VM_EXIT = "vm_exit"
GUEST_WRITE = "guest_write"
KVM_GET_XSAVE = "kvm_get_xsave"  # emitted only when the copy is stale
KVM_SET_XSAVE = "kvm_set_xsave"
XCOMP_PERM = "arch_prctl_xcomp_perm"
AMX_NM = "amx_first_use"  # the first tile instruction with XFD armed: #NM with XFD_ERR
FPSTATE_REALLOC = "fpstate_realloc"
IDLE_TILERELEASE = "fpu_idle_fpregs"
CPU_DOWN = "cpu_down"
CPU_UP = "cpu_up"


def _ext(m):
    return m.design.fpu_ext


def next_guest_value(m, t: int, current: int) -> int:
    """What a guest FPU write produces: the next version of t's guest's data."""
    if not m.scenario.values:
        return M.UNTRACKED
    if value_owner(current) == t and value_version(current) >= GUEST_VERSION:
        return guest_value(t, (value_version(current) - GUEST_VERSION + 1) % m.scenario.values)
    return guest_value(t, 0)


# ---------------------------------------------------------------- KVM
def kvm_run_outcomes(m, s, c, t):
    return ((KVM_RUN, 0),) if t < m.scenario.vcpus else ()


def kvm_run(m, k, c, t, code, arg):
    """ioctl(KVM_RUN) -> kvm_arch_vcpu_ioctl_run() -> kvm_load_guest_fpu(): the guest fpstate goes in."""
    _ext(m).fpu_swap_kvm_fpstate(k, c, t, True)
    paths.swap_expectations(k, t)
    k[k[0] + t * TASK_W + T_PC] = PC_KVM_RUN


def kvm_run_exit(m, k, c, t, code, arg):
    """An exit to userspace (MMIO, I/O, a pending signal): kvm_put_guest_fpu(), back in the syscall."""
    _ext(m).fpu_swap_kvm_fpstate(k, c, t, False)
    paths.swap_expectations(k, t)
    k[k[0] + t * TASK_W + T_PC] = PC_SYSCALL


def vm_entry(m, k, c, t, code, arg):
    _ext(m).vcpu_enter_guest(k, c, t)
    k[k[0] + t * TASK_W + T_PC] = PC_GUEST


def vm_exit(m, k, c, t, code, arg):
    """VM exit, IRQs off until the exit is handled (fpu_sync_guest_vmexit_xfd_state() is a no-op:
    the modelled guest does not write XFD)."""
    context.trace(k, "vm_exit", c, t)
    k[k[0] + t * TASK_W + T_PC] = PC_KVM_RUN


def guest_write(m, k, c, t, code, arg):
    """The guest writes its FPU registers (no trap: KVM passes the FPU through)."""
    g = ghost(k, t)
    k[HEADER + c * CPU_W] = k[g + G_VALUE] = next_guest_value(m, t, k[g + G_VALUE])  # C_FPREGS


def kvm_xsave_outcomes(m, s, c, t):
    """KVM_GET_XSAVE (only a stale copy is emitted: a correct one changes nothing) and KVM_SET_XSAVE
    (the VMM loads new guest state, e.g. on migration)."""
    if t >= m.scenario.vcpus:
        return ()
    if s[H_STALE_READ] == NULL and _ext(m).fpu_copy_guest_fpstate_to_uabi(s, t) != s[ghost(s, t) + G_SWAP_VALUE]:
        return ((KVM_GET_XSAVE, 0), (KVM_SET_XSAVE, 0))
    return ((KVM_SET_XSAVE, 0),)


def kvm_xsave(m, k, c, t, code, arg):
    if code == KVM_GET_XSAVE:
        k[H_STALE_READ] = t
        return
    g = ghost(k, t)
    value = next_guest_value(m, t, k[g + G_SWAP_VALUE])
    _ext(m).fpu_copy_uabi_to_guest_fpstate(k, t, value)
    k[g + G_SWAP_VALUE] = value


# ---------------------------------------------------------------- AMX / XFD
def xcomp_perm_outcomes(m, s, c, t):
    return ((XCOMP_PERM, 0),) if m.scenario.amx and not s[s[0] + t * TASK_W + T_XPERM] else ()


def xcomp_perm(m, k, c, t, code, arg):
    _ext(m).xstate_request_perm(k, t)


def amx_first_use_outcomes(m, s, c, t):
    p = s[0] + t * TASK_W
    if s[p + T_XPERM] and not s[p + T_XSIZE] and s[HEADER + c * CPU_W + C_XFD] == XFD_ARMED:
        return ((AMX_NM, 0),)
    return ()


def amx_first_use(m, k, c, t, code, arg):
    """A tile instruction with MSR_IA32_XFD arming XTILE_DATA: #NM, XFD_ERR says why;
    handle_xfd_event() clears XFD_ERR and enables IRQs (a program asks for permission first)."""
    context.trace(k, "xfd_nm", c, t)
    k[k[0] + t * TASK_W + T_PC] = PC_XFD_NM


def fpstate_realloc(m, k, c, t, code, arg):
    """xfd_enable_feature() -> fpstate_realloc()'s locked section; then the exit to user mode."""
    _ext(m).handle_xfd_event(k, c, t)
    M.enter_exit_loop(m, k, c, t)


def _idle_here(s, c, t) -> bool:
    q = HEADER + c * CPU_W
    return (s[s[0] + t * TASK_W + T_KIND] == IDLE and s[q + C_CTX] == CTX_TASK and not s[q + C_BH]
            and not s[q + C_IN_KFPU])


def idle_tilerelease_outcomes(m, s, c, t):
    """cpuidle: fpu_idle_fpregs() before a deep C-state (emitted only when the tiles are in use)."""
    if m.scenario.amx and _idle_here(s, c, t):
        k = bytearray(s)
        _ext(m).fpu_idle_fpregs(k, c)
        if k != s:
            return ((IDLE_TILERELEASE, 0),)
    return ()


def idle_tilerelease(m, k, c, t, code, arg):
    _ext(m).fpu_idle_fpregs(k, c)


# ---------------------------------------------------------------- CPU hotplug
def cpu_down_outcomes(m, s, c, t):
    return ((CPU_DOWN, 0),) if m.scenario.hotplug and c != 0 and _idle_here(s, c, t) else ()


def cpu_down(m, k, c, t, code, arg):
    _ext(m).cpu_dead(k, c)
    k[k[0] + t * TASK_W + T_PC] = PC_OFFLINE


def cpu_up(m, k, c, t, code, arg):
    _ext(m).fpu__init_cpu(k, c, XFD_ARMED if m.scenario.amx else 0)
    k[k[0] + t * TASK_W + T_PC] = PC_KTHREAD


def _who(m, a, s) -> str:
    return m.name(s[HEADER + a.cpu * CPU_W + C_CURR])


def _text(fn):
    return lambda m, a, s: (_who(m, a, s), fn(m))


KVM_EVENTS: tuple[Event, ...] = (
    Event(KVM_RUN, "task", (PC_SYSCALL,), kvm_run_outcomes, kvm_run,
          _text(lambda m: f"ioctl(KVM_RUN): kvm_load_guest_fpu -> {m.design.fpu_ext.fpu_swap_kvm_fpstate.__name__}(guest, enter)")),
    Event(KVM_SET_XSAVE, "task", (PC_SYSCALL,), kvm_xsave_outcomes, kvm_xsave,
          _text(lambda m: f"ioctl(KVM_SET_XSAVE): {m.design.fpu_ext.fpu_copy_uabi_to_guest_fpstate.__name__}()"),
          (KVM_GET_XSAVE,)),
    Event(KVM_GET_XSAVE, "task", (), None, None,  # kvm_xsave's, when the copy is stale
          _text(lambda m: f"ioctl(KVM_GET_XSAVE): {m.design.fpu_ext.fpu_copy_guest_fpstate_to_uabi.__name__}()")),
    Event(XCOMP_PERM, "task", (PC_SYSCALL,), xcomp_perm_outcomes, xcomp_perm,
          _text(lambda m: f"arch_prctl(ARCH_REQ_XCOMP_PERM): {m.design.fpu_ext.xstate_request_perm.__name__}()")),
    Event(VM_ENTRY, "task", (PC_KVM_RUN,), once(VM_ENTRY), vm_entry,
          _text(lambda m: f"IRQs off: {m.design.fpu_ext.vcpu_enter_guest.__name__}() -> VM entry")),
    Event(KVM_RUN_EXIT, "task", (PC_KVM_RUN,), once(KVM_RUN_EXIT), kvm_run_exit,
          _text(lambda m: f"exit to userspace: kvm_put_guest_fpu -> {m.design.fpu_ext.fpu_swap_kvm_fpstate.__name__}(guest, leave)")),
    Event(GUEST_WRITE, "guest", (PC_GUEST,), once(GUEST_WRITE), guest_write, _text(lambda m: "guest writes its FPU registers")),
    Event(VM_EXIT, "guest", (PC_GUEST,), once(VM_EXIT), vm_exit, _text(lambda m: "VM exit -> vcpu_run() loop")),
    Event(AMX_NM, "user", (PC_USER,), amx_first_use_outcomes, amx_first_use,
          _text(lambda m: "first AMX tile instruction, XFD armed: #NM, handle_xfd_event() reads XFD_ERR")),
    Event(FPSTATE_REALLOC, "task", (PC_XFD_NM,), once(FPSTATE_REALLOC), fpstate_realloc,
          _text(lambda m: f"{m.design.fpu_ext.handle_xfd_event.__name__}: xfd_enable_feature -> fpstate_realloc"
                          " -> exit_to_user_mode_loop")),
    Event(IDLE_TILERELEASE, "task", (PC_KTHREAD,), idle_tilerelease_outcomes, idle_tilerelease,
          _text(lambda m: f"cpuidle: {m.design.fpu_ext.fpu_idle_fpregs.__name__}(): TILERELEASE")),
    Event(CPU_DOWN, "task", (PC_KTHREAD,), cpu_down_outcomes, cpu_down,
          _text(lambda m: f"CPU offline: takedown_cpu -> play_dead: {m.design.fpu_ext.cpu_dead.__name__}()")),
    Event(CPU_UP, "task", (PC_OFFLINE,), once(CPU_UP), cpu_up,
          _text(lambda m: f"CPU online: native_kick_ap, {m.design.fpu_ext.fpu__init_cpu.__name__}()")),
)
