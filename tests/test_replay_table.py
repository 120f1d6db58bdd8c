"""The simulator's replay fires the action table's events: the same successors as the checker,
only enabled actions, and the trace-only switch counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel import actions
from fpustate.kernel import machine as M
from fpustate.kernel.machine import initial_state, make_model, successors
from fpustate.sim import replay as R
from fpustate.sim.costs import load_profile
from fpustate.sim.run import simulate_trace
from fpustate.sim.sched import SIM_EVENTS

TRACES = Path(__file__).parent / "data" / "traces"


def _bfs(m, limit: int) -> list[bytes]:
    seen, order = {initial_state(m)}, [initial_state(m)]
    for s in order:
        if len(order) >= limit:
            break
        for _, n in successors(m, s):
            if n not in seen:
                seen.add(n)
                order.append(n)
    return order[:limit]


def test_apply_action_builds_exactly_the_checkers_successor():
    """apply_action on a state gives, for every action successors() lists, the same successor."""
    sc = Scenario(forks=1, exits=1, signals=1, ptrace_writes=1, spare=1)
    m = make_model(get("linux"), sc)
    checked = Counter()
    for s in _bfs(m, 3000):
        for (code, c, arg), n in successors(m, s):
            k = bytearray(s)
            assert actions.apply_action(m, k, code, c, arg), (code, c, arg)
            assert bytes(k) == n, (code, c, arg)
            checked[code] += 1
    assert {"fork", "exit_step", "signal_step", "ptrace_set", "preempt", "sleep", "wake", "exec_step"} <= set(checked)


def test_apply_action_refuses_what_the_table_does_not_enable():
    """An action the table does not enable in a state is refused and leaves the state unchanged."""
    m = make_model(get("linux"), Scenario())
    k = bytearray(initial_state(m))
    before = bytes(k)
    assert not actions.apply_action(m, k, M.EXIT_TO_USER, 0)  # CPU 0 runs A in user mode
    assert not actions.apply_action(m, k, M.PREEMPT, 0, 0)  # A runs: it is not runnable
    assert not actions.apply_action(m, k, "no_such_event", 0)
    assert bytes(k) == before
    assert actions.apply_action(m, k, M.SYSCALL, 0)


def _applied(monkeypatch) -> Counter:
    seen = Counter()
    real = R.apply_action

    def spy(m, k, code, c, arg=0):
        ok = real(m, k, code, c, arg)
        if ok:
            seen[code] += 1
        return ok

    monkeypatch.setattr(R, "apply_action", spy)
    monkeypatch.setattr("fpustate.sim.sched.apply_action", spy)
    monkeypatch.setattr("fpustate.sim.replay_kvm.apply_action", spy)
    return seen


def test_replay_of_a_real_trace_is_table_events(monkeypatch):
    """Replaying the mixed x86 trace through linux applies these table events, no other edits."""
    seen = _applied(monkeypatch)
    res = simulate_trace(str(TRACES / "mixed_cpu0.txt.gz"), [get("linux")], load_profile("spr-user-hot"))
    assert dict(seen) == {
        "enter_exit_loop": 599, "exec_step": 40, "exit_step": 8, "exit_to_user": 768, "fork": 9,
        "fork_step": 27, "irq_from_user": 172, "kfpu_begin": 2, "kfpu_end": 2, "preempt": 374,
        "sched_switch": 4, "signal_step": 4828, "sigreturn": 605, "sigreturn_step": 1815, "sleep": 1840,
        "syscall": 1810, "syscall_exit": 1819, "task_dead": 8, "user_write": 2583, "wake": 1834,
    }
    assert res.traced_switches == 4
    assert dict(res.designs)["linux"]["saves"] == 1976


def test_enabled_tests_agree_with_outcomes():
    """Each event's one-action test (enabled) accepts exactly the outcomes it lists, in every state."""
    sc = Scenario(exits=1, spare=1, forks=1)
    m = make_model(get("linux"), sc, extra_events=SIM_EVENTS)
    events = [e for e in m.table.by_code.values() if e.enabled is not None]
    assert {e.code for e in events} == {"sleep", "preempt", "wake", "path_step", "sched_switch"}
    nt = m.idle_base + sc.cpus
    for s in _bfs(m, 1500):
        for c in (0, 1, actions.NULL):
            if c == actions.NULL:
                t, where = actions.NULL, actions.GLOBAL
            else:
                t = s[actions.HEADER + c * actions.CPU_W + actions.C_CURR]
                where = s[s[0] + t * actions.TASK_W + actions.T_PC]
            for e in events:
                if where not in e.at:
                    continue
                listed = set(e.outcomes(m, s, c, t))
                for code in (e.code,) + e.also:
                    for arg in range(max(4 * nt, 2 * M.FAULTED)):  # path steps: step + FAULTED * outcome
                        assert e.enabled(m, s, c, t, code, arg) == ((code, arg) in listed), (e.code, code, arg)


def _sim(ops, ncpus=1, designs=("linux",)):
    from fpustate.sim.run import simulate_ops
    return simulate_ops("hand", "-", [ops], ncpus, [get(n) for n in designs], load_profile("spr-user-hot"), False)


def test_seventy_forks_get_seventy_slots():
    """The simulator's fork argument survives slots past 64 (a fork's outcome is encoded above every slot)."""
    from fpustate.sim import ops as O
    ops = [O.Op(O.BOOT, 0, 1)] + [O.Op(O.FORK, 0, 100 + i) for i in range(70)]
    ops += [O.Op(O.SWITCH, 0, 169, O.PREV_RUNNABLE), O.Op(O.RETURN, 0, 169, 1)]
    r = _sim(ops)
    assert dict(r.designs)["linux"]["restores"] == 1  # the 70th child, switched to, restores its copy


def test_death_in_the_work_loop_and_in_kvm_run_replays():
    """A task that dies in the exit-to-user loop, or inside KVM_RUN, is switched out dead without an internal error."""
    from fpustate.sim import ops as O
    loop = [O.Op(O.BOOT, 0, 1), O.Op(O.SWITCH, 0, 2, O.PREV_RUNNABLE), O.Op(O.SWITCH, 0, 1, O.PREV_RUNNABLE),
            O.Op(O.SWITCH, 0, 2, O.PREV_DEAD)]
    assert dict(_sim(loop).designs)["linux"]["saves"] == 1
    kvm = [O.Op(O.BOOT, 0, 1), O.Op(O.KVM_LOAD, 0, 1), O.Op(O.VM_ENTRY, 0, 1, 1), O.Op(O.SWITCH, 0, 2, O.PREV_DEAD)]
    assert dict(_sim(kvm).designs)["linux"]["kvm_puts"] == 1


def test_missed_switch_out_keeps_a_vcpu_in_kvm_run():
    """A vCPU thread the trace shows on another CPU leaves guest mode on the first but stays in KVM_RUN."""
    from fpustate.sim import ops as O
    ops = [O.Op(O.BOOT, 0, 1), O.Op(O.KVM_LOAD, 0, 1), O.Op(O.VM_ENTRY, 0, 1, 1), O.Op(O.SWITCH, 1, 1, O.PREV_RUNNABLE)]
    s = dict(_sim(ops, ncpus=2).designs)["linux"]
    assert (s["kvm_puts"], s["vm_exits"], s["saves"]) == (0, 1, 2)


def test_design_without_exec_steps_replays_an_exec():
    """A design with no exec code of its own replays a traced exec as nothing, not an internal error."""
    from fpustate.sim import ops as O
    from fpustate.sim.run import simulate_ops
    d = get("linux").variant(name="no-exec", exec_steps=())
    r = simulate_ops("hand", "-", [[O.Op(O.BOOT, 0, 1), O.Op(O.EXEC, 0, 1), O.Op(O.RETURN, 0, 1, 1)]], 1, [d],
                     load_profile("spr-user-hot"), False)
    assert dict(r.designs)["no-exec"]["restores"] == 0


def test_a_design_cannot_take_the_simulators_event_code():
    """A design event named sched_switch (the simulator's own entry), or one with an unhashable
    field, is a one-line loader error."""
    import pytest
    from fpustate.designs.loader import InvalidDesign, validate

    class Unhashable:
        __hash__ = None

        def __call__(self, *args):
            return None

    ev = actions.design_event("sched_switch", "task", "syscall", lambda s, c, t: True, lambda k, c, t: None, "x()")
    with pytest.raises(InvalidDesign, match="already taken"):
        validate(get("linux").variant(name="x", extra_events=(ev,)), "f.py")
    with pytest.raises(InvalidDesign, match="unhashable"):
        validate(get("linux").variant(name="x", extra_events=(ev._replace(code="y", apply=Unhashable()),)), "f.py")


def test_an_exit_at_the_end_of_a_trace_is_replayed():
    """An exit the trace ends right after (no switch, no fpu__drop record) is still passed on."""
    from fpustate.sim import ops as O
    from fpustate.sim.infer import Inference
    inf = Inference(fpu_events=True)
    inf.exiting[7] = O.Op(O.EXIT, 0, 7, line=5)
    assert inf.finish() == [O.Op(O.EXIT, 0, 7, line=5)]
