"""`--jobs N`: the partitioned search gives what the sequential Explorer gives."""

from __future__ import annotations

import json
import re

import pytest
from conftest import interrupt_at_call
from test_cli import GOLDEN, cli, mask_seconds

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
    return (r.states, r.represented, r.transitions, r.depth, r.complete, r.stopped_after_violation, r.expanded,
            r.symmetry, r.store,
            [(v.prop.name, v.state_index, v.depth, v.detail, [a for a, _ in v.path], index_path(ex, v))
             for v in r.violations])


DEFAULT = dict(symmetry=True, store="fingerprint")  # the CLI's search


@pytest.mark.parametrize("design, counts", [
    ("rfc2016-stale-flags", (20552, 81894, 83158, 11)),
    ("linux", (6797, 27000, 49608, 20)),
    ("lazy", (14006, 55640, 65221, 12)),
])
def test_two_partitions_match_sequential(design, counts):
    """With the CLI's search (symmetry, fingerprints), counts, represented states, depth, look-past
    stop and every counterexample with its index path are those of --jobs 1."""
    m = make_model(get(design), SMALL)
    par = outcome(ParallelExplorer(m, jobs=2, **DEFAULT))
    assert par == outcome(Explorer(m, **DEFAULT))
    assert par[:4] == counts


@pytest.mark.parametrize("symmetry, store, counts", [
    (True, "exact", (6797, 27000, 49608, 20)),
    (False, "exact", (27000, 27000, 197312, 23)),
])
def test_every_store_and_symmetry_setting(symmetry, store, counts):
    """--store exact (canonical images compared byte for byte) and --no-symmetry give --jobs 1's results too."""
    m = make_model(get("linux"), SMALL)
    par = outcome(ParallelExplorer(m, jobs=2, symmetry=symmetry, store=store))
    assert par == outcome(Explorer(m, symmetry=symmetry, store=store))
    assert par[:4] == counts


@pytest.mark.parametrize("kw, counts", [
    (dict(max_states=5000), (5000, 19884, 17842, 9)),
    (dict(look_past=0), (511, 1996, 1830, 5)),
    (dict(look_past=2), (1995, 7896, 6755, 7)),
])
def test_stops_where_sequential_stops(kw, counts):
    """--max-states cuts inside the layer where --jobs 1 does; --look-past stops at the same layer."""
    m = make_model(get("rfc2016-stale-flags"), SMALL)
    par = outcome(ParallelExplorer(m, jobs=3, **DEFAULT), **kw)
    assert par == outcome(Explorer(m, **DEFAULT), **kw)
    assert par[:4] == counts


def test_one_job_is_the_sequential_explorer():
    """--jobs 1 runs the sequential Explorer itself; more jobs the partitioned search."""
    m = make_model(get("linux"), SMALL)
    assert type(make_explorer(m, jobs=1)) is Explorer
    assert type(make_explorer(m, jobs=2)) is ParallelExplorer


def test_cli_output_is_the_golden_one_with_two_jobs():
    """`check` with its default search on two partitions prints exactly the pinned output of
    --jobs 1: the table's counts, the footnotes, the stale cached_flags trace and its index path."""
    p = cli("check", "rfc2016-stale-flags", "--trace", "--execs", "0", "--property", "user_sees_own_registers",
            "--jobs", "2")
    assert p.returncode == 1
    assert mask_seconds(p.stdout) == mask_seconds((GOLDEN / "stale_flags_trace.out").read_text())


def test_cli_json_with_two_jobs_is_that_of_one():
    """`check --json` under a --max-states cut gives the same document with --jobs 2 as with --jobs 1,
    but for the timings: counts, verdicts, every counterexample and its replay path."""
    args = ("check", "rfc2016-stale-flags", "lazy", "--scenario", "small", "--max-states", "3000", "--json")
    one, two = (json.loads(cli(*args, "--jobs", j).stdout) for j in ("1", "2"))
    for doc in (one, two):
        for d in doc["designs"]:
            del d["seconds"], d["states_per_second"]
    assert two == one
    assert [(d["states"], d["transitions"], d["verdict"]) for d in one["designs"]] == \
        [(3001, 10151, "violated"), (3000, 10857, "violated")]


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
    interrupt_at_call(monkeypatch, local_engine.LocalTransport, "layer", 6)
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


def test_interrupt_raised_inside_a_partition(monkeypatch, capsys):
    """A KeyboardInterrupt raised inside a partition process (SIGINT itself is ignored there) ends the
    run as Ctrl-C does: the layers done so far, 'incomplete (interrupted)', exit 130, no hang."""
    from fpustate.check import explore

    interrupt_at_call(monkeypatch, explore, "successors", 500)  # each partition, at its 500th state
    assert run(["check", "linux", "--scenario", "small", "--jobs", "2"]) == 130
    out = capsys.readouterr()
    assert re.search(r"^linux\s+[\d,]+\s+[\d,]+\s+\d+\s+\S+\s+\S+\s+incomplete \(interrupted\)", out.out, re.M), out.out
    assert out.err.strip() == "fpustate: interrupted; the results above are partial"


def test_jobs_default_to_every_core():
    """Without --jobs, check and bugs search on every core; with --checkpoint or --resume, sequentially
    (only the sequential search has checkpoints); with Ray, on every CPU of the cluster."""
    from fpustate.check.parallel import default_jobs
    from fpustate.cli.common import exhaustive_jobs

    assert exhaustive_jobs(None, "local", False) == default_jobs()
    assert exhaustive_jobs(None, "local", True) == 1
    assert (exhaustive_jobs(None, "ray", False), exhaustive_jobs(3, "local", False)) == (0, 3)


def test_checkpoint_with_jobs_is_one_line(tmp_path):
    """--checkpoint with --jobs 2 is refused in one line, exit 2: only the sequential search saves layers."""
    p = cli("check", "linux", "--scenario", "small", "--jobs", "2", "--checkpoint", str(tmp_path / "ck"))
    assert (p.returncode, p.stdout, p.stderr) == (
        2, "", "fpustate: --checkpoint and --resume work with the sequential search only (--jobs 1)\n")


def test_checkpoint_with_walks_or_replay_is_one_line(tmp_path):
    """--checkpoint with --walks (or --replay) is refused in one line, exit 2, rather than ignored."""
    for extra in (("--walks", "1", "--depth", "1"), ("--replay", "1")):
        p = cli("check", "linux", "--scenario", "small", *extra, "--checkpoint", str(tmp_path / "ck"))
        assert (p.returncode, p.stdout, p.stderr) == (
            2, "", "fpustate: --checkpoint and --resume save an exhaustive check; drop them with --replay or --walks\n")


def test_interrupt_while_fetching_a_counterexample(monkeypatch, capsys):
    """Ctrl-C while the partitions send a violation's chain drops that violation, which has no trace
    to replay yet: the run is 'incomplete (interrupted)', exit 130, never a traceback."""
    calls = interrupt_at_call(monkeypatch, local_engine.LocalTransport, "lookup", 2)
    assert run(["check", "rfc2016-stale-flags", "--scenario", "small", "--jobs", "2", "--trace-all"]) == 130
    out = capsys.readouterr()
    assert calls["n"] == 2 and re.search(r"^rfc2016-stale-flags .* incomplete \(interrupted\)\s+-\s+-$", out.out, re.M)
    assert out.err.strip() == "fpustate: interrupted; the results above are partial"
