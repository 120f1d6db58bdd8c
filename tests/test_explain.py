"""Andy's state classes, measured on the designs."""

from __future__ import annotations

from fpustate.check.explain import explain
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import make_model

SMALL = Scenario(kthreads=0, execs=0)


def test_rik_claim_switched_out_tasks_are_never_class_1():
    """As Rik argued, a task that is not running is never in class 1 (its state is always saved at switch-out)."""
    for d in ("linux", "eager"):
        e = explain(make_model(get(d), SMALL))
        assert e.occupancy.get(("1", False), 0) == 0, d
        assert e.occupancy[("2a", False)] > 0 and e.occupancy[("2b", False)] > 0
        assert not any(k[0] == "lost" for k in e.occupancy)


def test_linux_class_counts_and_causes():
    """linux's class occupancy is pinned, and the deferred restore is what moves a running task from 2b to 2a."""
    e = explain(make_model(get("linux"), SMALL))
    assert e.occupancy == {("1", True): 3360, ("2a", True): 5600, ("2a", False): 4400,
                           ("2b", True): 20384, ("2b", False): 20256}
    writes = {(a, b) for (a, b, running, fn) in e.changes if fn == "writes its FPU registers"}
    assert writes == {("2a", "1")}  # Rik: nothing marks the 2a -> 1 transition but the user's own write
    causes = {fn for (a, b, running, fn) in e.changes if (a, b, running) == ("2b", "2a", True)}
    assert causes == {"loop done, IRQs off: arch_exit_to_user_mode_prepare() -> user mode",
                      "syscall exit, no work pending: arch_exit_to_user_mode_prepare() -> user mode"}


def test_stale_flags_loses_state():
    """The stale-flags variant reaches the "lost" class that no correct design reaches."""
    e = explain(make_model(get("rfc2016-stale-flags"), SMALL), max_states=20000)
    assert any(k[0] == "lost" for k in e.occupancy)
