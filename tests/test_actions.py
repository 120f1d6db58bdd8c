"""The action table, interrupts inside lock sections, and events a design adds."""

from fpustate.check.explore import check
from fpustate.check.trace import index_path
from fpustate.config import Scenario
from fpustate.designs import DESIGNS, get
from fpustate.designs.loader import load_design_file, validate
from fpustate.kernel.actions import EVENTS
from fpustate.kernel.machine import initial_state, make_model, successors
from fpustate.designs.mutants import MUTANTS

TINY = dict(cpus=1, users=1, kthreads=0, values=1)  # one CPU, one task, one exec
TINY_SIGNALS = dict(TINY, execs=0, signals=1)


def _run(design, **knobs):
    res, ex = check(make_model(design, Scenario(**knobs)))
    first = res.violations[0] if res.violations else None
    return res, (first.prop.name, len(first.path), index_path(ex, first)) if first else None


def test_every_builtin_design_validates():
    """loader.validate accepts every built-in design and mutant, as it would a user's file."""
    for d in list(DESIGNS.values()) + list(MUTANTS.values()):
        assert validate(d, "built-in") is d


def test_every_emitted_action_is_in_the_table():
    """Every action successors() emits has a table entry that prints it (no '?' contexts)."""
    m = make_model(get("linux"), Scenario(signals=1, ptrace_writes=1, ptrace_reads=True, readers=True,
                                          forks=1, spare=1, exits=1, pkru_writes=True, corrupt_frames=True,
                                          user_xstate=True))
    frontier, visited, seen = [initial_state(m)], set(), set()
    while frontier and len(visited) < 20000:  # breadth-first, far enough for every kind of action
        s = frontier.pop(0)
        for (code, _, _), s2 in successors(m, s):
            seen.add(code)
            if s2 not in visited:
                visited.add(s2)
                frontier.append(s2)
    assert seen <= set(m.table.by_code), seen - set(m.table.by_code)
    assert all(m.table.by_code[c].ctx != "?" for c in seen)
    assert {"ptrace_set", "signal_step", "fork", "exit_step", "task_dead", "wrpkru"} <= seen
    assert len({e.code for e in EVENTS}) == len(EVENTS)


def test_hardirq_inside_exec_lock_section_is_caught():
    """59f5ede3bc0f: a hardirq using the FPU inside fpu_reset_fpregs()'s fpregs_lock() section is found
    (the atomic-section model gave this mutant linux's exact state count)."""
    res, first = _run(get("linux"), **TINY)
    assert (res.states, res.ok) == (124, True)  # 112 before the image header: exec's init image has XSTATE_BV 0
    res, first = _run(get("linux-irq-fpu-usable"), **TINY)
    assert (res.states, first) == (185, ("user_sees_own_registers", 7, "1/4/1/0/1/2/4"))  # 171 before the header


def test_hardirq_inside_sigframe_lock_section_is_caught():
    """The same mutant breaks signal delivery, where the hardirq lands between the restore and the frame XSAVE."""
    res, first = _run(get("linux"), **TINY_SIGNALS)
    assert (res.states, res.ok) == (347, True)  # 192 before PKRU in the frame (sig_prepare_pkru, frame header and slot)
    res, first = _run(get("linux-irq-fpu-usable"), **TINY_SIGNALS)
    assert (res.states, first) == (495, ("user_sees_own_registers", 9, "2/2/1/1/2/1/0/1/2"))  # 426 before PKRU in the frame


def test_design_file_adds_an_event_with_a_choice():
    """examples/idle_tilerelease.py adds fpu_idle_fpregs() with two outcomes: it holds, and without the owner
    write it is caught."""
    good, bad = load_design_file("examples/idle_tilerelease.py")
    knobs = dict(cpus=2, users=2, kthreads=0, execs=0, values=1)
    res, first = _run(good, **knobs)
    assert (res.states, res.transitions, res.ok) == (6168, 52620, True)
    res, first = _run(bad, **knobs)
    assert (res.states, first) == (3127, ("user_sees_own_registers", 6, "1/3/3/10/3/4"))


def test_malformed_design_events_are_one_line_errors():
    """A design event with a list of situations, a non-callable apply or a taken code is refused by name."""
    import pytest
    from fpustate.designs.loader import InvalidDesign
    from fpustate.kernel.actions import Event, design_event

    ok = design_event("my_event", "task", "syscall", lambda s, c, t: True, lambda k, c, t: None, "my_fn()")
    linux = get("linux")
    assert validate(linux.variant(name="x", extra_events=(ok,)), "f.py").extra_events == (ok,)
    bad = {
        "has no valid situation": ok._replace(at=list(ok.at)),
        "needs callable outcomes, apply and text": ok._replace(apply=None),
        "already taken": ok._replace(code="preempt"),
        "must be a tuple of new names": ok._replace(also=("sleep",)),
    }
    for message, event in bad.items():
        with pytest.raises(InvalidDesign, match=message):
            validate(linux.variant(name="x", extra_events=(event,)), "f.py")
