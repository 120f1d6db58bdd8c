"""`check --walks N --depth D --seed S`: random walks, shrunk counterexamples, honest verdicts."""

from __future__ import annotations

import json
import re

import pytest
from test_cli import cli

from fpustate.check.explore import Explorer
from fpustate.check.walks import one_walk, run_walks, shrink
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import initial_state, make_model, successors
from fpustate.kernel.properties import BY_NAME, PROPERTIES

NO_EXEC = Scenario(execs=0)


def summary(r) -> tuple:
    return r.walks, r.steps, r.walk, r.found_steps, r.index_path, r.violation and r.violation.prop.name


@pytest.mark.parametrize("design", ["rfc2016-stale-flags", "linux"])
def test_same_walks_whatever_the_jobs(design):
    """For a seed and N, the walks, their steps and the shrunk counterexample do not depend on --jobs."""
    m = make_model(get(design), NO_EXEC)
    one = run_walks(m, PROPERTIES, 80, 40, 7, jobs=1)
    assert summary(run_walks(m, PROPERTIES, 80, 40, 7, jobs=2)) == summary(one)
    assert one_walk(m, PROPERTIES, 7, 0, 40) != one_walk(m, PROPERTIES, 8, 0, 40)  # the seed matters


def test_broken_design_counterexample_found_and_shrunk():
    """Walks find rfc2016-stale-flags broken; the shrunk trace is as short as the BFS's and replays."""
    p = cli("check", "rfc2016-stale-flags", "--execs", "0", "--walks", "50", "--depth", "40", "--trace")
    assert p.returncode == 1 and p.stderr == ""
    row = re.search(r"^rfc2016-stale-flags\s+(\d+)\s+([\d,]+)\s+\S+\s+\S+\s+VIOLATED\s+(\w+)\s+(\d+)$", p.stdout, re.M)
    assert row, p.stdout
    prop, steps = row.group(3), int(row.group(4))
    m = make_model(get("rfc2016-stale-flags"), NO_EXEC)
    bfs = Explorer(m, (BY_NAME[prop],)).run(look_past=0)
    assert steps == bfs.violations[0].depth  # shrinking reached the shortest length here
    assert f"\nrfc2016-stale-flags: {prop} violated after {steps} steps (v4.8 + RFC 0/5" in p.stdout
    found = re.search(rf"^  found by walk 0 after (\d+) steps, shrunk to {steps}$", p.stdout, re.M)
    assert found and int(found.group(1)) > steps
    path = re.search(r"^  index path: ([0-9a-f]{6}:[\d/]+)$", p.stdout, re.M).group(1)
    replay = cli("check", "rfc2016-stale-flags", "--execs", "0", "--replay", path)
    assert replay.returncode == 1 and f"  violated: {prop}: " in replay.stdout


def test_no_violation_verdict_never_says_holds():
    """A design without violation gets 'no violation in N walks', exit 0, every step walked."""
    p = cli("check", "linux", "--walks", "20", "--depth", "30", "--seed", "4")
    assert p.returncode == 0 and p.stderr == ""
    assert re.search(r"^linux\s+20\s+600\s+\S+\s+\S+\s+no violation in 20 walks\s+-\s+-$", p.stdout, re.M), p.stdout
    assert "holds" not in p.stdout
    assert p.stdout.startswith("scenario: cpus=2 users=2 spare=0 kthreads=1 workers=0 values=2 forks=0 execs=1 "
                               "exits=0 ptrace_writes=0 signals=0; 20 random walks of up to 30 steps, seed 4\n")


def test_walks_json():
    """--json gives the walks' verdict and the shrunk counterexample as data."""
    p = cli("check", "linux", "rfc2016-stale-flags", "--execs", "0", "--walks", "10", "--depth", "30", "--json")
    out = json.loads(p.stdout)
    assert [d["verdict"] for d in out] == ["no violation in 10 walks", "violated"]
    v = out[1]["violation"]
    assert v["walk"] == 0 and v["steps"] == len(v["index_path"].split("/")) <= v["steps_before_shrinking"]


def test_shrink_keeps_the_violation_and_only_shrinks():
    """Shrinking returns a path no larger (shorter, or as long and smaller) that ends in the violation."""
    m = make_model(get("rfc2016-stale-flags"), NO_EXEC)
    i = next(i for i in range(100) if one_walk(m, PROPERTIES, 1, i, 60)[1] is not None)
    path, n = one_walk(m, PROPERTIES, 1, i, 60)
    prop = PROPERTIES[n]
    small = shrink(m, prop, path)
    assert (len(small), small) <= (len(path), path)
    s = initial_state(m)
    for step, k in enumerate(small, 1):
        s = successors(m, s)[k][1]
        assert (prop.check(m, s) is not None) == (step == len(small))


@pytest.mark.parametrize("args, message", [
    (["--walks", "5", "--depth", "0"], "fpustate: --depth: 0 steps; give 1 or more"),
    (["--seed", "3"], "fpustate: --depth and --seed go with --walks N (N of 1 or more)"),
    (["--walks", "5", "--engine", "ray"],
     "fpustate: --walks runs on this machine's cores (--jobs); --engine ray is for the exhaustive search"),
])
def test_bad_walk_flags_are_one_line(args, message):
    """Walk flags that make no sense are one line on stderr, exit 2."""
    p = cli("check", "linux", *args)
    assert (p.returncode, p.stdout, p.stderr.strip()) == (2, "", message)


def test_hook_that_raises_in_a_walk_process(tmp_path):
    """A design hook failing in a walk process is the same one-line error as in the exhaustive check."""
    f = tmp_path / "d.py"
    f.write_text("from fpustate.designs import linux\n"
                 "def begin(k, c, ctx):\n    raise RuntimeError('oops')\n"
                 "DESIGN = linux.DESIGN.variant(name='x', kernel_fpu_begin=begin)\n")
    p = cli("check", "--design-file", str(f), "--walks", "100", "--jobs", "2")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr.strip() == "fpustate: design 'x': a hook raised RuntimeError: oops in begin() at d.py:3"
