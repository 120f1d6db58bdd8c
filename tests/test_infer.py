"""The x86_fpu inference's view of the traced kernel (sim.kernel_view): what it infers from each
shipped trace, per kind and line, and each rule on a few hand-written records."""

from __future__ import annotations

from pathlib import Path

import pytest

from fpustate.designs import get
from fpustate.sim import ops as O
from fpustate.sim.costs import load_profile
from fpustate.sim.events import TraceReader
from fpustate.sim.infer import Inference
from fpustate.sim.kernel_view import (BOOT_LIVE, EXEC_UNRECORDED, INFERRED_KINDS, KFPU_FLAG_CLEAR, KFPU_NO_SAVE,
                                      KFPU_STILL_VALID, RETURN_BEFORE_EXIT)
from fpustate.sim.ops import Op
from fpustate.sim.run import simulate_ops, simulate_trace

TRACES = Path(__file__).parent / "data" / "traces"
PROFILE = load_profile("spr-user-hot")
ALL = [get(n) for n in ("eager", "lazy", "strawman", "linux")]


def inferred_ops(path: str) -> tuple[dict, list]:
    """(count per kind, [(operation, pid, line)]) of what the inference adds to a trace."""
    records = list(TraceReader(path))
    traced_execs = {r.line for r in records if r.event == "sched_process_exec"}
    exits = {r.line for r in records if r.event == "sched_process_exit"}
    inf = Inference(fpu_events=True)
    ops = [(O.NAMES[o.code], o.pid, o.line) for o in inf.run(records)
           if o.code in (O.BOOT, O.KFPU) or (o.code == O.EXEC and o.line not in traced_execs)
           or (o.code == O.RETURN and o.line in exits)]
    return {why: inf.inferred[why] for why in INFERRED_KINDS if inf.inferred[why]}, ops


INFERRED = {  # per shipped x86 trace: count per kind, and (what, pid, trace line) of each inferred operation
    "mixed_cpu0": ({BOOT_LIVE: 1, KFPU_FLAG_CLEAR: 2, RETURN_BEFORE_EXIT: 3},  # (the returns: new this release)
                   [("boot", 9113, 13), ("kfpu", 9113, 16), ("kfpu", 9118, 4142), ("return", 9119, 7007),
                    ("return", 9116, 8864), ("return", 9117, 9127)]),
    "pipe_pingpong_cpu0": ({BOOT_LIVE: 1, KFPU_FLAG_CLEAR: 1}, [("boot", 8663, 14), ("kfpu", 9096, 117)]),
    "pipe_pingpong_threads_cpu0": ({BOOT_LIVE: 1, KFPU_NO_SAVE: 1}, [("boot", 8663, 13), ("kfpu", 9106, 7200)]),
    "perf_script_pipe_cpu1": ({EXEC_UNRECORDED: 1, KFPU_FLAG_CLEAR: 1}, [("exec", 7704, 5), ("kfpu", 7704, 2150)]),
}


@pytest.mark.parametrize("name", sorted(INFERRED))
def test_inferred_events_on_shipped_traces(name):
    """Each shipped x86 trace implies exactly these untraced events (kind, task and line pinned)."""
    assert inferred_ops(str(TRACES / f"{name}.txt.gz")) == INFERRED[name]


def test_inferred_counts_are_reported():
    """The simulation result carries the inferred events per kind, zeros included, in report order."""
    r = simulate_trace(str(TRACES / "pipe_pingpong_threads_cpu0.txt.gz"), [get("linux")], PROFILE)
    assert list(r.inferred) == list(INFERRED_KINDS)
    assert {k: n for k, n in r.inferred.items() if n} == INFERRED["pipe_pingpong_threads_cpu0"][0]


# ---------------------------------------------------------------- each rule, by hand
HEAD = "# tracer: nop\n"


def rec(pid: int, event: str, payload: str, flags: str = "d....", comm: str = "t", cpu: int = 0) -> str:
    return f"   {comm}-{pid} [{cpu:03d}] {flags} 1.000000: {event}: {payload}\n"


def switch(prev: int, nxt: int, state: str = "S", nxt_comm: str = "t") -> str:
    return rec(prev, "sched_switch", f"prev_comm=t prev_pid={prev} prev_prio=120 prev_state={state} ==> "
               f"next_comm={nxt_comm} next_pid={nxt} next_prio=120", "d..2.")


def fpu(pid: int, event: str, load: int, xf: str = "a2", flags: str = "d....") -> str:
    return rec(pid, "x86_fpu_" + event, f"x86/fpu: 00000000deadbeef load: {load} xfeatures: {xf} "
               "xcomp_bv: 80000000000200e7", flags)


def run_linux(tmp_path, text: str):
    p = tmp_path / "t.txt"
    p.write_text(HEAD + text)
    inf = Inference(fpu_events=True)
    ops = [(O.NAMES[o.code], o.pid) for o in inf.run(TraceReader(str(p))) if o.code != O.XFEATURES]
    res = simulate_trace(str(p), [get("linux")], PROFILE)
    return ops, dict(inf.inferred), res


def test_first_save_boots_the_trace_start_task_live(tmp_path):
    """A trace-start task saved at its first switch-out had its registers live: booted so, no restore counted."""
    ops, why, res = run_linux(tmp_path, switch(10, 11) + fpu(10, "regs_deactivated", 1) + fpu(11, "regs_activated", 1))
    assert ops == [("boot", 10), ("switch", 11), ("return", 11)] and why == {BOOT_LIVE: 1}
    assert res.designs[0][1]["restores"] == 1 and res.conformance["switch"] == (1, 1) and not res.disagreements


def test_first_restore_boots_the_trace_start_task_in_memory(tmp_path):
    """A trace-start task whose first event is a restore had its state in memory: switched in, nothing inferred."""
    ops, why, res = run_linux(tmp_path, fpu(10, "regs_activated", 1))
    assert ops == [("switch", 10), ("return", 10)] and why == {}
    assert res.conformance["return"] == (1, 1)


def test_restore_while_the_flag_was_clear_is_a_kernel_fpu_user(tmp_path):
    """A second restore with nothing between: kernel_fpu_begin_mask() set the flag (no tracepoint)."""
    ops, why, res = run_linux(tmp_path, fpu(10, "regs_activated", 1) + fpu(10, "regs_activated", 1))
    assert ops == [("switch", 10), ("return", 10), ("kfpu", 10), ("return", 10)] and why == {KFPU_FLAG_CLEAR: 1}
    assert res.conformance["return"] == (2, 2) and res.designs[0][1]["kfpu_saves"] == 1


def test_restore_of_still_valid_registers_is_a_kernel_fpu_user(tmp_path):
    """Saved, a kernel thread ran, restored on return: fpregs_state_valid() held, so a kernel FPU user
    (__cpu_invalidate_fpregs_state) must have cleared the owner."""
    text = (fpu(10, "regs_activated", 1) + switch(10, 5, "S", "kworker/0:1") + fpu(10, "regs_deactivated", 1)
            + rec(5, "sched_switch", "prev_comm=kworker/0:1 prev_pid=5 prev_prio=120 prev_state=I ==> next_comm=t "
                  "next_pid=10 next_prio=120", "d..2.", "kworker/0:1") + fpu(10, "regs_activated", 1))
    ops, why, res = run_linux(tmp_path, text)
    assert why == {KFPU_STILL_VALID: 1} and ops[-2:] == [("kfpu", 10), ("return", 10)]
    assert res.conformance["return"] == (2, 2) and not res.disagreements


def test_switch_out_saving_nothing_with_the_flag_clear(tmp_path):
    """After fpu__drop() the flag is still clear, so a final switch that saves nothing means a kernel
    FPU user set it first; the usual final switch does save (11 of the 12 exits in the shipped traces)."""
    exit_ = rec(10, "sched_process_exit", "comm=t pid=10 prio=120 group_dead=true", ".....")
    drop = fpu(10, "regs_deactivated", 0, flags="...1.") + fpu(10, "dropped", 0, flags="...1.")
    saved, why_saved, r1 = run_linux(tmp_path, fpu(10, "regs_activated", 1) + exit_ + drop + switch(10, 0, "Z")
                                     + fpu(10, "regs_deactivated", 1))
    unsaved, why_unsaved, r2 = run_linux(tmp_path, fpu(10, "regs_activated", 1) + exit_ + drop + switch(10, 0, "Z")
                                         + rec(0, "sched_wakeup", "comm=t pid=3 prio=120 target_cpu=000", comm="<idle>"))
    assert why_saved == {} and r1.conformance["switch"] == (1, 1)
    assert why_unsaved == {KFPU_NO_SAVE: 1} and ("kfpu", 10) in unsaved and r2.conformance["switch"] == (1, 1)


def test_unrecorded_exec_restores_the_init_image(tmp_path):
    """A restore of XSTATE_BV 0 with the flag clear, after a non-init image: an exec the trace lacks."""
    ops, why, res = run_linux(tmp_path, fpu(10, "regs_activated", 1, "a2") + fpu(10, "regs_activated", 1, "0"))
    assert ops == [("switch", 10), ("return", 10), ("exec", 10), ("return", 10)] and why == {EXEC_UNRECORDED: 1}
    assert res.designs[0][1]["kfpu_saves"] == 0 and not res.disagreements


def test_save_after_lost_records_is_unknown(tmp_path):
    """A switch whose next record is from neither task (perf's per-task events, a lost slice) does not
    count as 'did not save', and nothing is inferred from it; nor from a switch the trace ends on."""
    text = fpu(10, "regs_activated", 1) + switch(10, 11) + fpu(10, "regs_activated", 1) + switch(10, 12)
    ops, why, res = run_linux(tmp_path, text)
    assert why == {} and res.conformance["switch"] == (0, 0)


def test_bound_stays_below_designs_with_a_booted_task():
    """The bound charges a booted task's live state like the designs do: never above any design."""
    ops = [[Op(O.BOOT, 0, 1)], [Op(O.SWITCH, 0, 2, O.PREV_RUNNABLE), Op(O.RETURN, 0, 2, 1)],
           [Op(O.SWITCH, 0, 1, O.PREV_RUNNABLE), Op(O.RETURN, 0, 1, 1)]]
    r = simulate_ops("hand", "-", ops, 1, ALL, PROFILE, False)
    assert (r.bound["saves"], r.bound["restores"]) == (1, 2)
    assert {name: (s["saves"], s["restores"]) for name, s in r.designs}["linux"] == (2, 2)
    assert all(r.bound["cycles"] <= s["cycles"] for _, s in r.designs)
