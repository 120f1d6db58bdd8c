"""`--jobs N`: the partitioned search gives what the sequential Explorer gives."""

from __future__ import annotations

import re

import pytest
from test_cli import GOLDEN, cli

from fpustate.check import local_engine
from fpustate.check.explore import Explorer
from fpustate.check.parallel import ParallelExplorer, make_explorer
from fpustate.check.trace import index_path
from fpustate.cli import run
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import make_model, successors

SMALL = Scenario(kthreads=0, execs=0)


def outcome(ex, **kw) -> tuple:
    """Everything a run reports, counterexamples (steps and index paths) included."""
    r = ex.run(**kw)
    for v in r.violations:
        ex.trace(v)
    return (r.states, r.transitions, r.depth, r.complete, r.stopped_after_violation, r.expanded,
            [(v.prop.name, v.state_index, v.depth, v.detail, [a for a, _ in v.path], index_path(ex, v))
             for v in r.violations])


@pytest.mark.parametrize("design", ["rfc2016-stale-flags", "linux", "lazy"])
def test_two_partitions_match_sequential(design):
    """Counts, depth, look-past stop and every counterexample are those of --jobs 1."""
    m = make_model(get(design), SMALL)
    assert outcome(ParallelExplorer(m, jobs=2)) == outcome(Explorer(m))


@pytest.mark.parametrize("kw", [dict(max_states=5000), dict(look_past=0), dict(look_past=2)])
def test_stops_where_sequential_stops(kw):
    """--max-states cuts inside the layer where --jobs 1 does; --look-past stops at the same layer."""
    m = make_model(get("rfc2016-stale-flags"), SMALL)
    assert outcome(ParallelExplorer(m, jobs=3), **kw) == outcome(Explorer(m), **kw)


def test_one_job_is_the_sequential_explorer():
    """--jobs 1 runs the sequential Explorer itself; more jobs the partitioned search."""
    m = make_model(get("linux"), SMALL)
    assert type(make_explorer(m, jobs=1)) is Explorer
    assert type(make_explorer(m, jobs=2)) is ParallelExplorer


def test_cli_trace_is_the_golden_one_with_two_jobs():
    """The stale cached_flags counterexample prints exactly as pinned with --jobs 2 (the trace and
    its index path; the partitions search the unreduced space, so the table's counts are raw)."""
    p = cli("check", "rfc2016-stale-flags", "--trace", "--execs", "0", "--property", "user_sees_own_registers",
            "--jobs", "2", "--no-symmetry")
    assert p.returncode == 1
    golden = (GOLDEN / "stale_flags_trace.out").read_text()
    trace = golden[golden.index("\nrfc2016-stale-flags: "):]
    assert p.stdout.endswith(trace)


def test_bug_entry_with_two_jobs():
    """A `fpustate bugs` entry run on two partitions finds the same counterexample and counts."""
    from fpustate.check.bugs import BUGS, run_bug

    bug = next(b for b in BUGS if b.mutant == "lazy")
    seq = run_bug(bug, {})
    par = run_bug(bug, {}, explorer=lambda m, props: make_explorer(m, props, jobs=2))
    assert par.passed and seq.passed
    assert [a for a, _ in par.found.path] == [a for a, _ in seq.found.path]
    assert (par.mutant.states, par.fixed.states, par.fixed.transitions) == \
        (seq.mutant.states, seq.fixed.states, seq.fixed.transitions)


def test_bugs_accepts_engine_flags():
    """`fpustate bugs` takes the engine flags and checks them like `check` does."""
    p = cli("bugs", "--jobs", "2", "--ray-address", "auto")
    assert (p.returncode, p.stdout, p.stderr) == (2, "", "fpustate: --ray-address needs --engine ray\n")


@pytest.mark.parametrize("args, message", [
    (["--jobs", "-1"], "fpustate: --jobs: -1 is negative; give 1 or more (0: every core)"),
    (["--ray-address", "auto"], "fpustate: --ray-address needs --engine ray"),
])
def test_bad_engine_flags_are_one_line(args, message):
    """Bad engine flags are one line on stderr, exit 2."""
    p = cli("check", "linux", *args)
    assert (p.returncode, p.stdout, p.stderr.strip()) == (2, "", message)


def test_hook_that_raises_in_a_partition(tmp_path):
    """A design hook failing inside a partition process is the same one-line error as with --jobs 1."""
    f = tmp_path / "d.py"
    f.write_text("from fpustate.designs import linux\n"
                 "def begin(k, c, ctx):\n    raise RuntimeError('oops')\n"
                 "DESIGN = linux.DESIGN.variant(name='x', kernel_fpu_begin=begin)\n")
    p = cli("check", "--design-file", str(f), "--jobs", "2")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr.strip() == "fpustate: design 'x': a hook raised RuntimeError: oops in begin() at d.py:3"


def test_interrupted_parallel_run_prints_partial_result(monkeypatch, capsys):
    """Ctrl-C during a partitioned check prints the layers done so far, marked partial, exit 130."""
    real = local_engine.LocalTransport.layer
    calls = {"n": 0}

    def interrupting(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(local_engine.LocalTransport, "layer", interrupting)
    assert run(["check", "linux", "--scenario", "small", "--jobs", "2", "--no-symmetry"]) == 130
    out = capsys.readouterr()
    # Layers 0..4 were expanded, layer 5 was being expanded: the states known are layers 0..5.
    m = make_model(get("linux"), SMALL)
    ex = Explorer(m)
    ex.run()
    depth = [0]
    for i in range(1, len(ex.states)):
        depth.append(depth[ex.parent[i]] + 1)
    states = sum(d <= 5 for d in depth)
    transitions = sum(len(successors(m, s)) for s, d in zip(ex.states, depth) if d <= 4)
    assert re.search(rf"^linux\s+{states:,}\s+{transitions:,}\s+5\s+\S+\s+\S+\s+incomplete \(interrupted\)",
                     out.out, re.M), out.out
    assert out.err.strip() == "fpustate: interrupted; the results above are partial"
