"""KVM vCPU threads, AMX/XFD and CPU hotplug: verdicts, pinned counts, stories and the checks that bite."""

from __future__ import annotations

from conftest import cli
from fpustate.check.explore import check
from fpustate.config import Scenario
from fpustate.designs import get, linux
from fpustate.designs import linux_kvm as K
from fpustate.kernel.context import fpregs_lock, fpregs_unlock, restore_fpregs_from_fpstate
from fpustate.kernel.context import fpregs_state_valid, save_fpregs_to_fpstate
from fpustate.kernel.machine import make_model
from fpustate.kernel.state import C_FPREGS, INIT, T_FPSTATE, T_NEED_LOAD, T_XFD, T_XSIZE, cpu, task

KVM = Scenario(kthreads=0, execs=0, values=1, vcpus=1)  # the `kvm` preset
AMX_1 = Scenario(kthreads=0, execs=0, values=1, users=1, amx=True, hotplug=True)  # `amx` with one task


def _run(design, scenario):
    res, ex = check(make_model(design, scenario))
    return res


def _first(design, scenario):
    res = _run(design, scenario)
    return (res.violations[0].prop.name, len(res.violations[0].path)) if res.violations else None


def test_linux_holds_kvm_preset_pinned():
    """linux holds every property with a vCPU thread (KVM_RUN, guest mode, KVM_GET/SET_XSAVE): 26,508 states."""
    res = _run(linux.DESIGN, KVM)
    assert res.ok and res.complete and res.states == 26508  # 15,548 before the image header and PKRU slot


def test_linux_holds_amx_hotplug_pinned():
    """linux holds with AMX permission, first-use #NM, fpstate_realloc, TILERELEASE and hotplug: 1,985 states."""
    res = _run(linux.DESIGN, AMX_1)
    assert res.ok and res.complete and res.states == 1985


def test_knobs_refused_by_older_designs():
    """eager (v4.19) refuses --vcpus with one line naming what its kernel had instead, exit 2."""
    p = cli("check", "eager", "--scenario", "kvm")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("fpustate: design 'eager' (v4.19) cannot run --vcpus: v4.19's kvm_load_guest_fpu()")


def test_all_designs_skip_the_ones_without_kvm():
    """`check --scenario kvm` with no design names checks linux and says which designs it skipped."""
    p = cli("check", "--scenario", "kvm", "--no-symmetry", "--store", "exact")
    assert p.returncode == 0
    assert [line.split(":")[1].strip() for line in p.stderr.splitlines()] == ["skipped"] * 5
    assert [line.split()[:3] for line in p.stdout.splitlines() if line.startswith("linux ")] == [
        ["linux", "26,508", "193,306"]]


def test_kvm_mutant_story():
    """c9aef3b85f42: a hardirq's kernel_fpu_begin() inside KVM_RUN, and leaving KVM_RUN saves the kernel's data as the guest's."""
    from fpustate.check.trace import format_trace
    from fpustate.kernel.machine import initial_state

    m = make_model(get("linux-kvm-save-ignores-need-load"), KVM)
    res, ex = check(m)
    v = next(v for v in res.violations if v.prop.name == "guest_sees_own_registers")
    text = format_trace(m, v.path, initial_state(m), v)
    assert "A.fpu->fpstate=&fpu->__fpstate A.guest_fpstate=kernel-data" in text
    assert text.splitlines()[-2] == "  violated: guest_sees_own_registers: cpu0: A's guest runs with registers kernel-data, expected init"


def test_swap_must_restore_even_when_owner_matches():
    """fpu_fpregs_owner_ctx is keyed by struct fpu: a swap that skips the XRSTOR when fpregs_state_valid() is caught."""
    def swap_trusting_owner(k, c, t, enter_guest):
        fpregs_lock(k, c)
        if not k[task(k, t) + T_NEED_LOAD]:
            save_fpregs_to_fpstate(k, c, t)
        K.swap_fpstate_pointer(k, t)
        if not fpregs_state_valid(k, t, c):
            restore_fpregs_from_fpstate(k, c, t)
        K.fpregs_mark_activate(k, c, t)
        fpregs_unlock(k, c)

    d = linux.DESIGN.variant(name="swap-trusts-owner", fpu_ext=linux.DESIGN.fpu_ext._replace(fpu_swap_kvm_fpstate=swap_trusting_owner))
    assert _first(d, KVM) == ("user_sees_own_registers", 5)


def test_kvm_get_xsave_must_read_the_guest_fpstate():
    """KVM_GET_XSAVE reading the task's own fpstate instead of guest_fpu.fpstate is a stale read."""
    d = linux.DESIGN.variant(name="get-xsave-own", fpu_ext=linux.DESIGN.fpu_ext._replace(
        fpu_copy_guest_fpstate_to_uabi=lambda s, t: s[task(s, t) + T_FPSTATE]))
    assert _first(d, KVM) == ("readers_see_current_state", 2)


def test_idle_tilerelease_must_invalidate_the_owner():
    """fpu_idle_fpregs() without fpu_fpregs_owner_ctx = NULL hands an AMX task the released tiles."""
    def keeps_owner(k, c):
        if K.tiles_in_use(k, c):
            k[cpu(c) + C_FPREGS] = INIT

    d = linux.DESIGN.variant(name="idle-keeps-owner", fpu_ext=linux.DESIGN.fpu_ext._replace(fpu_idle_fpregs=keeps_owner))
    assert _first(d, AMX_1) == ("user_sees_own_registers", 12)


def test_fpstate_realloc_must_load_the_registers_first():
    """fpstate_realloc() without the TIF_NEED_FPU_LOAD reload swaps in a zeroed buffer and loses the state."""
    def realloc_no_reload(k, c, t):
        p = task(k, t)
        fpregs_lock(k, c)
        k[p + T_FPSTATE], k[p + T_XSIZE], k[p + T_XFD] = INIT, 1, 0
        K.xfd_update_state(k, c, t)
        fpregs_unlock(k, c)

    d = linux.DESIGN.variant(name="realloc-no-reload", fpu_ext=linux.DESIGN.fpu_ext._replace(handle_xfd_event=realloc_no_reload))
    assert _first(d, AMX_1) == ("user_sees_own_registers", 7)


def test_default_scenario_never_enables_the_new_events():
    """Without --vcpus, --amx and --hotplug no new event fires: the default state vector's new fields stay at boot values."""
    from fpustate.kernel.machine import initial_state, successors
    from fpustate.kernel.actions_kvm import KVM_EVENTS

    m = make_model(linux.DESIGN, Scenario(kthreads=0, execs=0))
    codes = {e.code for e in KVM_EVENTS}
    s = initial_state(m)
    frontier, seen = [s], {s}
    while frontier and len(seen) < 3000:
        nxt = []
        for x in frontier:
            for a, y in successors(m, x):
                assert a[0] not in codes
                if y not in seen:
                    seen.add(y)
                    nxt.append(y)
        frontier = nxt
