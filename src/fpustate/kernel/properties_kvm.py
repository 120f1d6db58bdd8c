"""Properties of KVM guests, AMX/XFD and CPU hotplug (checked only under their knobs).

The guest's state rides on the vCPU task's own fields while the fpstate pointer
is swapped (see `state.T_SWAP_FPSTATE`), so the generic properties already check
it the way the kernel treats it: `need_load_or_valid`, `fpregs_state_valid_sound`,
`state_survives` and `fpstate_not_clobbered` speak of the guest's state during
KVM_RUN and of the host's outside. These add what only KVM and XFD have.
"""

from __future__ import annotations

from typing import Optional

from .state import (
    C_CTX,
    C_CURR,
    C_FPREGS,
    C_XFD,
    C_XFD_STATE,
    CPU_W,
    CTX_TASK,
    DEAD,
    G_SWAP_VALUE,
    G_VALUE,
    GHOST_OFF,
    H_XFD_NM,
    HEADER,
    KVM_PCS,
    NULL,
    PC_GUEST,
    PC_OFFLINE,
    PC_USER,
    T_PC,
    T_RUN,
    T_SWAP_FPSTATE,
    T_XFD,
    TASK_W,
)


def guest_sees_own_registers(m, s) -> Optional[str]:
    """A guest in guest mode finds exactly its own FPU values in the registers at every VM entry and while it runs; otherwise the guest computes with its host's, another task's or the kernel's data (and that data leaks into the guest)."""
    if not m.scenario.vcpus:
        return None
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        if s[tb + t * TASK_W + T_PC] == PC_GUEST:
            want = s[tb + t * TASK_W + GHOST_OFF + G_VALUE]  # the guest's while the fpstate is swapped
            if s[q + C_FPREGS] != want:
                return (f"cpu{c}: {m.name(t)}'s guest runs with registers {m.value(s[q + C_FPREGS])}, "
                        f"expected {m.value(want)}")
    return None


def inactive_fpstate_kept(m, s) -> Optional[str]:
    """The fpstate a vCPU thread is not using (the guest's outside KVM_RUN, the host's inside) holds that context's latest state; otherwise KVM_RUN or the return to the VMM resumes it with stale or foreign registers."""
    if not m.scenario.vcpus:
        return None
    tb = s[0]
    for t in range(m.scenario.vcpus):
        p = tb + t * TASK_W
        if s[p + T_RUN] >= DEAD:
            continue
        got, want = s[p + T_SWAP_FPSTATE], s[p + GHOST_OFF + G_SWAP_VALUE]
        if got != want:
            inside = s[p + T_PC] in KVM_PCS
            which = f"{m.name(t)}'s own fpstate (__task_fpstate)" if inside else f"{m.name(t)}'s guest fpstate"
            return f"{which} holds {m.value(got)}, expected {m.value(want)}"
    return None


def xfd_state_matches_msr(m, s) -> Optional[str]:
    """On every online CPU the per-CPU xfd_state equals MSR_IA32_XFD; otherwise xfd_update_state() skips a needed MSR write (D8, CVE-2024-35801)."""
    if not m.scenario.amx:
        return None
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        if s[tb + s[q + C_CURR] * TASK_W + T_PC] != PC_OFFLINE and s[q + C_XFD] != s[q + C_XFD_STATE]:
            return f"cpu{c}: xfd_state={s[q + C_XFD_STATE]} but MSR_IA32_XFD={s[q + C_XFD]}"
    return None


def xfd_matches_fpstate(m, s) -> Optional[str]:
    """A task in user or guest mode runs with MSR_IA32_XFD equal to its fpstate's xfd; otherwise a task without the large buffer uses AMX untrapped (its tiles are lost at the next XSAVE) or one with it traps again."""
    if not m.scenario.amx:
        return None
    tb = s[0]
    for c in range(m.scenario.cpus):
        q = HEADER + c * CPU_W
        t = s[q + C_CURR]
        p = tb + t * TASK_W
        if s[p + T_PC] in (PC_USER, PC_GUEST) and s[q + C_CTX] == CTX_TASK and s[q + C_XFD] != s[p + T_XFD]:
            return f"cpu{c}: {m.name(t)} runs with MSR_IA32_XFD={s[q + C_XFD]}, its fpstate's xfd is {s[p + T_XFD]}"
    return None


def xrstor_respects_xfd(m, s) -> Optional[str]:
    """No XRSTOR loads a task's AMX tile data while MSR_IA32_XFD arms it; otherwise the XRSTOR raises #NM in the kernel and the machine dies ("unexpected #NM exception", CVE-2024-35801)."""
    t = s[H_XFD_NM]
    if t != NULL:
        return f"XRSTOR of {m.name(t)}'s AMX state with XFD armed: #NM in the kernel"
    return None
