"""Shared fixtures: small scenarios and a cached checker run per (design, scenario)."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from fpustate.check.explore import check
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import make_model

SMALL = Scenario(kthreads=0, execs=0)  # 2 CPUs, 2 user tasks, no kernel thread, no exec
LIFECYCLE_1CPU = Scenario(cpus=1, users=2, kthreads=1, forks=1, execs=1, exits=1)


@functools.lru_cache(maxsize=None)
def run(design: str, scenario: Scenario):
    """Check `design` on `scenario` once per test session."""
    m = make_model(get(design), scenario)
    res, ex = check(m)
    return m, res, ex


@functools.lru_cache(maxsize=None)
def run_reduced(design: str, scenario: Scenario):
    """Check `design` on `scenario` as the command line does (symmetry and 64-bit fingerprints), once
    per session: `.states` are orbits, `.represented` the states they stand for (the raw count where
    boot is symmetric). The pinned counts were measured with the exact store too: a fingerprint
    collision would change a count and fail the test, never pass it."""
    res, _ = check(make_model(get(design), scenario), symmetry=True, store="fingerprint")
    return res


def first_violation(design: str, scenario: Scenario, prop: str):
    """The shortest counterexample of `prop` alone, the search stopped at its layer (the state and path
    a full check reports for it: each property's first violation is the first state in BFS order)."""
    from fpustate.check.explore import Explorer
    from fpustate.kernel.properties import BY_NAME

    ex = Explorer(make_model(get(design), scenario), (BY_NAME[prop],))
    (v,) = ex.run(look_past=0).violations
    ex.trace(v)
    return v


def interrupt_at_call(monkeypatch, owner, name: str, n: int) -> dict:
    """Make `owner.name` raise KeyboardInterrupt (as Ctrl-C would) at its n-th call, counted per
    process; returns the count ({"n": calls so far})."""
    real, calls = getattr(owner, name), {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(owner, name, interrupting)
    return calls


def pytest_collection_modifyitems(items):
    """Modules marked `heavy` (long fixpoints) run first, so the xdist workers finish together
    instead of one grinding a late fixpoint while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)  # stable: order kept otherwise


@pytest.fixture
def checked():
    return run


@pytest.fixture(scope="session")
def bug_suite(tmp_path_factory):
    """`fpustate bugs --json --html --junit`, run once per session (the suite is the slowest check):
    (the parsed JSON, the HTML path, the JUnit path, the process)."""
    import json

    d = tmp_path_factory.mktemp("bugs")
    html, junit = d / "bugs.html", d / "bugs.xml"
    p = cli("bugs", "--json", "--html", str(html), "--junit", str(junit))
    return json.loads(p.stdout) if p.stdout else None, html, junit, p


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run the fpustate command line in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fpustate", *args], capture_output=True, text=True)
