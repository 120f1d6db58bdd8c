"""The generic kernel: interleaving rules and determinism, on random walks too."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fpustate.config import Scenario
from fpustate.designs import DESIGNS, get
from fpustate.kernel import machine as M
from fpustate.kernel.machine import initial_state, make_model, successors
from fpustate.kernel.properties import PROPERTIES
from fpustate.kernel.state import C_BH, C_IN_KFPU, PC_SYSCALL_KFPU, T_PC, cpu, decode, encode, task


def test_successors_are_deterministic():
    """The same state always yields the same actions and successors in the same order."""
    m = make_model(get("linux"), Scenario())
    s = initial_state(m)
    assert successors(m, s) == successors(m, s)


def test_no_preemption_inside_kernel_fpu_section():
    """Inside a v6.18 task-context kernel-FPU section (BH off) nothing preempts, no softirq runs, no hardirq uses the FPU."""
    m = make_model(get("linux"), Scenario())
    s = initial_state(m)
    s = dict(successors(m, s))[(M.SYSCALL, 0, 0)]
    s = dict(successors(m, s))[(M.KFPU_BEGIN, 0, 0)]
    assert s[task(s, 0) + T_PC] == PC_SYSCALL_KFPU and s[cpu(0) + C_BH] == 1 and s[cpu(0) + C_IN_KFPU] == 1
    cpu0 = [a for a, _ in successors(m, s) if a[1] == 0]
    assert cpu0 == [(M.KFPU_END, 0, 0)]


def test_lazy_user_mode_traps_when_ts_set():
    """In lazy mode a task whose CR0.TS is set gets #NM instead of writing its registers."""
    m = make_model(get("lazy"), Scenario())
    s = initial_state(m)
    s = dict(successors(m, s))[(M.IRQ_FROM_USER, 0, 0)]
    s = dict(successors(m, s))[(M.PREEMPT, 0, 2)]  # A -> kworker0: TS set
    s = dict(successors(m, s))[(M.SLEEP, 0, 0)]  # kworker0 sleeps, A comes back
    s = dict(successors(m, s))[(M.EXIT_TO_USER, 0, 0)]
    codes = [a[0] for a, _ in successors(m, s) if a[1] == 0]
    assert M.NM_TRAP in codes and M.USER_WRITE not in codes


@settings(max_examples=60, deadline=None)
@given(design=st.sampled_from(["linux", "eager"]), choices=st.lists(st.integers(0, 10_000), min_size=1, max_size=60))
def test_random_walks_on_a_bigger_machine_keep_every_property(design, choices):
    """Random walks with 3 CPUs, 3 users, 2 kernel threads, fork/exec/exit never break a correct design."""
    sc = Scenario(cpus=3, users=3, spare=1, kthreads=2, forks=2, execs=2, exits=2)
    m = make_model(get(design), sc)
    s = initial_state(m)
    for n in choices:
        succ = successors(m, s)
        _, s = succ[n % len(succ)]
        assert encode(decode(s)) == s
        for p in PROPERTIES:
            assert p.check(m, s) is None, (p.name, p.check(m, s))


def test_every_design_registers_every_hook():
    """Each built-in design provides every hook as a callable."""
    from fpustate.designs.base import HOOKS

    for d in DESIGNS.values():
        for h in HOOKS:
            v = getattr(d, h)
            assert v is None or callable(v) or isinstance(v, tuple), (d.name, h)
