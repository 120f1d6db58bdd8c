"""The documented Python API: fpustate.check, load_design, simulate."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import fpustate
from fpustate.errors import InvalidDesign, UsageError
from test_cli import cli

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "forgetful_linux.py")


def test_check_violation_matches_the_cli():
    """check() returns the counterexample the CLI prints: same text, one step record per printed step."""
    r = fpustate.check("rfc2016-stale-flags", execs=0, properties=["user_sees_own_registers"], look_past=0)
    assert not r.ok and r.verdict == "violated" and r.design == "rfc2016-stale-flags"
    (v,) = r.violations
    assert v.property == "user_sees_own_registers" and r.violation(v.property) is v
    p = cli("check", "rfc2016-stale-flags", "--execs", "0", "--property", "user_sees_own_registers", "--trace",
            "--look-past", "0")
    assert v.text in p.stdout and f"index path: {v.index_path}" in p.stdout
    assert [s.n for s in v.steps] == list(range(1, len(v.steps) + 1))
    assert f"violated after {len(v.steps)} steps" in v.text
    assert [s.function for s in v.steps] == [line.split(maxsplit=4)[4] for line in v.text.splitlines()[2:]
                                             if line[:6].strip().isdigit()]
    assert f"{r.states:,}" in p.stdout


def test_check_holds_and_incomplete():
    """A design that holds to the fixpoint is ok; a capped run is 'incomplete', never ok."""
    r = fpustate.check("linux", "small")
    assert r.ok and r.verdict == "holds" and r.complete and r.violations == ()
    capped = fpustate.check("linux", "small", max_states=100)
    assert not capped.ok and capped.verdict == "incomplete" and capped.states < r.states


def test_my_patched_design_still_holds():
    """The README's pytest example: a variant built in Python is checked like a built-in design."""
    from fpustate.designs import linux

    mine = linux.DESIGN.variant(name="linux-mine")
    assert fpustate.check(mine, "small").ok
    broken = fpustate.load_design(EXAMPLE)
    r = fpustate.check(broken, "small")
    assert r.violation("user_sees_own_registers").steps[-1].context == "task"


def test_load_design_errors(tmp_path):
    """load_design() refuses a file with several designs and one that raises, in one line each."""
    two = tmp_path / "two.py"
    two.write_text("from fpustate.designs import linux\n"
                   "DESIGNS = [linux.DESIGN.variant(name='a'), linux.DESIGN.variant(name='b')]\n")
    with pytest.raises(InvalidDesign, match="defines 2 designs; use fpustate.load_designs"):
        fpustate.load_design(str(two))
    assert [d.name for d in fpustate.load_designs(str(two))] == ["a", "b"]
    bad = tmp_path / "bad.py"
    bad.write_text("from fpustate.designs import linux\n"
                   "def begin(k, c, ctx):\n    raise RuntimeError('oops')\n"
                   "DESIGN = linux.DESIGN.variant(name='x', kernel_fpu_begin=begin)\n")
    with pytest.raises(InvalidDesign, match=r"^design 'x': a hook raised RuntimeError: oops in begin\(\)"):
        fpustate.check(fpustate.load_design(str(bad)), "small")


@pytest.mark.parametrize("call, message", [
    (lambda: fpustate.check("nope"), "unknown design 'nope'"),
    (lambda: fpustate.check("linux", "huge"), "unknown preset 'huge'"),
    (lambda: fpustate.check("linux", cpus=9), "--cpus must be a whole number from 1 to 4"),
    (lambda: fpustate.check("linux", cpu=1), "unknown knob 'cpu'"),
    (lambda: fpustate.check("linux", properties=["x"]), "unknown property 'x'"),
    (lambda: fpustate.simulate(), "give traces"),
    (lambda: fpustate.simulate(workloads=["nope"]), "unknown workload 'nope'"),
])
def test_bad_input_raises_usage_error(call, message):
    """Bad arguments raise UsageError with the CLI's one-line message."""
    with pytest.raises(UsageError, match=message):
        call()


def test_simulate_matches_the_cli():
    """simulate() gives the rows `fpustate simulate --csv` prints."""
    sim = fpustate.simulate(workloads=["crypto"], designs=["linux", "eager"], length=300)
    p = cli("simulate", "--workload", "crypto", "--design", "linux", "--design", "eager", "--length", "300", "--csv")
    want = list(csv.DictReader(io.StringIO(p.stdout)))
    got = [{k: "" if v is None else str(v) for k, v in row.items()} for row in sim.rows()]
    assert got == want
    assert sim.cycles("linux") == int(want[0]["cycles"])
    assert sim.table().startswith("workload crypto:")


def test_results_show_as_their_pages_in_a_notebook():
    """A check result and a simulation display in Jupyter as their --html pages, framed: the
    timeline's steps with the violation marked, the simulation's table and plot."""
    import html
    import re

    r = fpustate.check("rfc2016-stale-flags", "small", properties=["user_sees_own_registers"], look_past=0)
    (v,) = r.violations
    page = r.html()
    assert page.count("data-step=") == len(v.steps) and '<section data-design="rfc2016-stale-flags">' in page
    assert f'data-step="{len(v.steps)}" data-violation="user_sees_own_registers"' in page
    frame = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*" sandbox="allow-scripts"></iframe>', r._repr_html_())
    assert frame and html.unescape(frame.group(1)) == page
    sim = fpustate.simulate(workloads=["crypto"], designs=["linux"], length=100)
    shown = html.unescape(sim._repr_html_())
    assert shown.startswith('<iframe srcdoc="<!DOCTYPE html>') and "<svg" in shown and "clairvoyant bound" in shown
