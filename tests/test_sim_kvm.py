"""The cost simulator with KVM and AMX: the hand-made kvm_fpu trace's counters computed by hand,
the inference of swaps and VM entries, XFD #NM and MSR writes, the kvm workload, the bound on
random KVM schedules, and what designs without KVM get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import cli
from fpustate.designs import get
from fpustate.designs.base import K_SOFTIRQ, K_TASK
from fpustate.errors import UsageError
from fpustate.sim import ops as O
from fpustate.sim.costs import load_profile
from fpustate.sim.events import TraceReader
from fpustate.sim.infer import Inference
from fpustate.sim.ops import Op
from fpustate.sim.run import simulate_ops, simulate_trace, simulate_workload

SYNTHETIC = str(Path(__file__).parent / "data" / "traces" / "kvm_synthetic.txt")
PROFILE = load_profile("spr-user-hot")
LINUX = get("linux")
KVM_DESIGNS = [get(n) for n in ("linux", "linux-kvm-save-ignores-need-load", "linux-xfd-cache-hotplug")]
SAVE_A2, RESTORE_A2 = 70 + 25 * 1.625, 75 + 25 * 1.625  # XSTATE_BV a2: 576 + 64 + 1024 bytes = 1.625 KiB


def _ops(path: str, fpu_events: bool) -> list[tuple]:
    inf = Inference(fpu_events, kvm=True)
    return [(O.NAMES[o.code], o.cpu, o.pid, o.kernel) for o in inf.run(TraceReader(path))]


# ---------------------------------------------------------------- the hand-made trace
def test_synthetic_trace_operations():
    """The swaps' activations become KVM_RUN entries and exits (not signals), a reload inside KVM_RUN a VM entry."""
    assert _ops(SYNTHETIC, True) == [
        ("switch", 0, 0, -1), ("switch", 0, 3001, -1), ("xfeatures", 0, 3001, -1), ("return", 0, 3001, 1),
        ("kvm_load", 0, 3001, -1), ("vm_entry", 0, 3001, 0), ("vm_exit", 0, 3001, -1), ("vm_entry", 0, 3001, 0),
        ("vm_exit", 0, 3001, -1), ("switch", 0, 2000, 1), ("xfeatures", 0, 2000, -1), ("return", 0, 2000, 1),
        ("switch", 0, 3001, 1), ("vm_entry", 0, 3001, 1), ("vm_exit", 0, 3001, -1), ("kvm_put", 0, 3001, -1),
        ("return", 0, 3001, 0), ("switch", 0, 0, 1), ("switch", 1, 0, -1), ("switch", 1, 3001, -1),
        ("return", 1, 3001, 1), ("kvm_load", 1, 3001, -1), ("vm_entry", 1, 3001, 0), ("vm_exit", 1, 3001, -1),
        ("switch", 1, 0, 1)]


def test_synthetic_trace_counters_by_hand():
    """The hand-made trace's counters, as computed by hand from v6.18's code (see the comment).

    linux: the return to user on CPU 0 restores QEMU (1); KVM_RUN's swap saves QEMU's live
    registers and XRSTORs the guest (save 1, restore 2); two VM entries with the flag clear
    restore nothing; the preemption saves the guest (save 2); bash is restored (3) and saved
    (3); the next VM entry reloads the guest (4); the swap back saves the guest and restores
    QEMU (save 4, restore 5); QEMU returns with its registers live and blocks (save 5); on
    CPU 1 its return restores (6), KVM_RUN's swap saves and restores (save 6, restore 7), the
    VM entry restores nothing and the halt saves the guest (save 7). Bound: loads where a
    context is used and not in the registers (QEMU, guest, bash, guest, QEMU, QEMU on CPU 1,
    guest on CPU 1: 7), saves of dirty states needed again (QEMU evicted by the guest, the
    guest evicted by bash, QEMU moving to CPU 1, the guest needed on CPU 1: 4)."""
    res = simulate_trace(SYNTHETIC, [LINUX], PROFILE)
    s, b = res.designs[0][1], res.bound
    assert (res.records, res.ops, res.kvm) == (28, 25, True)
    assert {k: s[k] for k in ("saves", "restores", "restores_skipped", "kvm_loads", "kvm_puts", "vm_entries",
                              "vm_exits", "xfd_traps", "xfd_msr_writes")} == dict(
        saves=7, restores=7, restores_skipped=0, kvm_loads=2, kvm_puts=1, vm_entries=4, vm_exits=4, xfd_traps=0,
        xfd_msr_writes=0)
    assert s["cycles"] == round(7 * SAVE_A2 + 7 * RESTORE_A2) == 1584
    assert (b["saves"], b["restores"], b["cycles"]) == (4, 7, round(4 * SAVE_A2 + 7 * RESTORE_A2)) == (4, 7, 1252)
    assert res.conformance == {"switch": (4, 4), "return": (4, 4), "signal": (0, 0), "vm_entry": (4, 4)}
    assert res.skipped == {} and res.synthesized == 0


def test_synthetic_trace_without_x86_fpu_events(tmp_path):
    """Without x86_fpu events a vCPU thread switched in inside KVM_RUN enters the guest once (not a return to user)."""
    path = tmp_path / "kvm_nofpu.txt"
    path.write_text("".join(line for line in Path(SYNTHETIC).read_text().splitlines(True) if "x86_fpu" not in line))
    ops = _ops(str(path), False)
    assert [(n, c, p) for n, c, p, _ in ops] == [
        ("switch", 0, 0), ("switch", 0, 3001), ("return", 0, 3001), ("kvm_load", 0, 3001), ("vm_entry", 0, 3001),
        ("vm_exit", 0, 3001), ("vm_entry", 0, 3001), ("vm_exit", 0, 3001), ("switch", 0, 2000), ("return", 0, 2000),
        ("switch", 0, 3001), ("vm_entry", 0, 3001), ("vm_exit", 0, 3001), ("kvm_put", 0, 3001), ("switch", 1, 0),
        ("switch", 1, 3001), ("return", 1, 3001), ("kvm_load", 1, 3001), ("vm_entry", 1, 3001), ("vm_exit", 1, 3001),
        ("switch", 0, 0), ("switch", 1, 0)]


def test_malformed_kvm_fpu_is_one_line(tmp_path):
    """A kvm_fpu record that says neither load nor unload is one line naming the file and line, exit 2."""
    bad = tmp_path / "bad.txt"
    bad.write_text("   qemu-7 [000] ..... 1.0: kvm_fpu: maybe\n")
    p = cli("simulate", str(bad), "--design", "linux")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == f"fpustate: {bad}:1: kvm_fpu: expected 'load' or 'unload', got 'maybe'"


# ---------------------------------------------------------------- AMX
def test_xfd_first_use_and_msr_writes_by_hand():
    """AMX: the first tile instruction traps once, XFD is written at the realloc and whenever an AMX
    task and another alternate, and saves and restores carry 8 KiB of tiles (hand-computed)."""
    batches = [[Op(O.SWITCH, 0, 10), Op(O.RETURN, 0, 10, 1), Op(O.XFD_NM, 0, 10)],
               [Op(O.SWITCH, 0, 11, O.PREV_BLOCKED), Op(O.RETURN, 0, 11, 1)],
               [Op(O.SWITCH, 0, 10, O.PREV_BLOCKED), Op(O.RETURN, 0, 10, 1)]]
    res = simulate_ops("amx", "-", batches, 1, [LINUX], PROFILE, False, amx=True)
    s, b = res.designs[0][1], res.bound
    tiles = 1.625 + (64 + 8192) / 1024  # + XTILECFG + XTILEDATA
    save_t, restore_t = 70 + 25 * tiles, 75 + 25 * tiles
    assert (s["saves"], s["restores"], s["xfd_traps"], s["xfd_msr_writes"]) == (2, 3, 1, 3)
    # restore A, #NM, XFD := 0, save A (tiles), restore B, XFD := armed, save B, restore A (tiles), XFD := 0
    assert s["cycles"] == round(RESTORE_A2 + 600 + 400 + save_t + RESTORE_A2 + 400 + SAVE_A2 + restore_t + 400) == 2771
    assert (b["saves"], b["restores"], b["cycles"]) == (1, 3, round(2 * RESTORE_A2 + save_t + restore_t)) == (1, 3, 861)


def test_profile_without_xfd_cost_gets_the_default(tmp_path):
    """A profile written before trap.xfd_msr_write existed loads with cost-model.md 3.5's 400 cycles."""
    text = Path(load_profile.__code__.co_filename).with_name("profiles").joinpath("haswell.toml").read_text()
    old = tmp_path / "old.toml"
    old.write_text("\n".join(line for line in text.splitlines() if not line.startswith("xfd_msr_write")))
    assert load_profile(str(old)).xfd_msr_write == 400.0


# ---------------------------------------------------------------- the kvm workload
def test_kvm_workload_pinned():
    """The seeded kvm workload exercises every KVM and AMX counter; same seed, same counts (pinned)."""
    a = simulate_workload("kvm", [LINUX], PROFILE, fpu_use=0.5, seed=3, length=400)
    b = simulate_workload("kvm", [LINUX], PROFILE, fpu_use=0.5, seed=3, length=400)
    assert a.designs == b.designs and a.bound == b.bound and a.kvm
    s = a.designs[0][1]
    assert {k: s[k] for k in ("saves", "kfpu_saves", "restores", "kvm_loads", "kvm_puts", "vm_entries", "vm_exits",
                              "xfd_traps", "xfd_msr_writes")} == PINNED_WORKLOAD
    assert all(s[k] for k in PINNED_WORKLOAD)
    _assert_bounded(a)


PINNED_WORKLOAD = dict(saves=488, kfpu_saves=77, restores=470, kvm_loads=77, kvm_puts=75, vm_entries=449, vm_exits=449,
                       xfd_traps=1, xfd_msr_writes=254)


def test_default_designs_skip_kvm_with_a_line_each():
    """`simulate --workload kvm` with the default designs runs linux and says in one line per design why the others are left out."""
    p = cli("simulate", "--workload", "kvm", "--length", "50", "--json")
    assert p.returncode == 0, p.stderr
    assert [r["design"] for r in json.loads(p.stdout)[0]["rows"]] == ["linux", "clairvoyant bound"]
    lines = p.stderr.splitlines()
    assert [line.split("'")[1] for line in lines] == ["eager", "lazy", "strawman"]
    assert lines[0].startswith("fpustate: skipped: design 'eager' (v4.19) cannot replay KVM or AMX events: "
                               "v4.19's kvm_load_guest_fpu()")


def test_named_design_without_kvm_is_refused():
    """A design named on the command line that has no KVM code is refused with one line, exit 2."""
    p = cli("simulate", SYNTHETIC, "--design", "lazy")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("fpustate: design 'lazy' (v4.8 (eagerfpu=off)) cannot replay KVM or AMX events: ")
    assert p.stderr.strip().endswith("; leave it out or pass --design linux") and len(p.stderr.splitlines()) == 1


def test_late_kvm_event_is_one_line(tmp_path):
    """KVM events first seen after the peeked records stop a design without KVM with one line naming the line."""
    switch = ("   a-{0} [000] d..2. 1.{0}: sched_switch: prev_comm=a prev_pid={0} prev_prio=120 prev_state=S"
              " ==> next_comm=a next_pid={1} next_prio=120\n")
    path = tmp_path / "late.txt"
    path.write_text("".join(switch.format(10 + i % 2, 11 - i % 2) for i in range(2100))
                    + "   a-11 [000] ..... 3.0: kvm_fpu: load\n")
    with pytest.raises(UsageError) as e:
        simulate_trace(str(path), [get("eager")], PROFILE)
    assert str(e.value).startswith(f"{path}:2101: design 'eager' (v4.19) cannot replay KVM or AMX events: ")
    assert str(e.value).endswith("(the first 2,000 records had no KVM event; pass --design linux)")


def test_kvm_columns_only_for_kvm_runs():
    """The KVM counters appear in JSON and CSV for a KVM run and not for a run without KVM events."""
    p = cli("simulate", "--workload", "pingpong", "--length", "20", "--design", "linux", "--csv")
    assert "kvm_loads" not in p.stdout and p.stdout.splitlines()[0].endswith("cr0_writes,cycles,ns,gap")
    p = cli("simulate", SYNTHETIC, "--design", "linux", "--csv")
    assert p.stdout.splitlines()[0].endswith("cr0_writes,kvm_loads,kvm_puts,vm_entries,vm_exits,xfd_traps,"
                                             "xfd_msr_writes,cycles,ns,gap")
    assert p.stdout.splitlines()[1] == f"{SYNTHETIC},linux,7,0,7,0,0,0,0,0,0,2,1,4,4,0,0,1584,386,+26.5%"


# ---------------------------------------------------------------- the bound, property-based
def _assert_bounded(res):
    for name, s in res.designs:
        assert res.bound["saves"] <= s["saves"], name
        assert res.bound["restores"] <= s["restores"] + s["init_loads"], name
        assert res.bound["cycles"] <= s["cycles"], name


@st.composite
def kvm_schedules(draw):
    """Random schedules on 2 CPUs: vCPU threads entering and leaving KVM_RUN, VM entries (with or
    without guest FPU use) and exits, preemption and migration inside the run loop, kernel FPU,
    signals, returns to user and AMX first uses."""
    running = {0: 0, 1: 0}
    tasks = [1, 2, 3, 4]
    in_kvm: set = set()
    batches = []
    for _ in range(draw(st.integers(1, 60))):
        c = draw(st.integers(0, 1))
        cur = running[c]
        choice = draw(st.integers(0, 12))
        if choice >= 10:  # the run loop's common case: into the guest and out again
            choice = 4 if cur in in_kvm else 8
        others = [t for t in tasks if t not in running.values()]
        if choice <= 2 and others:
            nxt = draw(st.sampled_from(others + [0]))
            batches.append([Op(O.SWITCH, c, nxt, draw(st.sampled_from([O.PREV_RUNNABLE, O.PREV_BLOCKED])),
                               O.IDLE if nxt == 0 else O.USER)])
            running[c] = nxt
        elif cur == 0:
            continue
        elif choice == 3 and cur not in in_kvm:
            batches.append([Op(O.KVM_LOAD, c, cur)])
            in_kvm.add(cur)
        elif choice == 4 and cur in in_kvm:
            batches.append([Op(O.VM_ENTRY, c, cur, draw(st.integers(0, 1))), Op(O.VM_EXIT, c, cur)])
        elif choice == 5:
            batches.append([Op(O.VM_EXIT, c, cur)])
        elif choice == 6 and cur in in_kvm:
            batches.append([Op(O.KVM_PUT, c, cur)])
            in_kvm.discard(cur)
        elif choice == 7:
            batches.append([Op(O.KFPU, c, cur, draw(st.sampled_from([K_TASK, K_SOFTIRQ])))])
        elif choice == 8:  # back to user mode (a vCPU thread leaves KVM_RUN first), or a signal
            in_kvm.discard(cur)
            batches.append(draw(st.sampled_from([[Op(O.RETURN, c, cur, 1)], [Op(O.RETURN, c, cur, 0)],
                                                 [Op(O.SIGNAL, c, cur), Op(O.USE, c, cur), Op(O.SIGRETURN, c, cur)]])))
        elif choice == 9 and draw(st.booleans()):
            in_kvm.discard(cur)
            batches.append([Op(O.XFD_NM, c, cur)])
    return batches


@settings(max_examples=300, deadline=None, derandomize=True)  # the same 300 schedules every run
@given(kvm_schedules())
def test_bound_is_below_every_kvm_design(batches):
    """On random KVM and AMX schedules the bound's saves, loads and cycles never exceed linux's or its KVM mutants'."""
    res = simulate_ops("random", "-", batches, 2, KVM_DESIGNS, PROFILE, False, amx=True)
    _assert_bounded(res)


def test_html_page_has_kvm_headers_only_for_kvm_runs():
    """simulate --html gives each run its own header row: the KVM counters only for the run with KVM events."""
    import re

    from fpustate.report.html import simulate_page

    runs = [simulate_trace(SYNTHETIC, [LINUX], PROFILE), simulate_workload("pingpong", [LINUX], PROFILE, length=20)]
    tables = re.findall(r'<table class="summary">(.*?)</table>', simulate_page(runs, PROFILE), re.S)
    assert ["VM entries" in t for t in tables] == [True, False]
    assert [t.count("<th") for t in tables] == [19, 13]
