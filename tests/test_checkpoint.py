"""Fingerprint store, checkpoints and resume: identical results, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import SMALL, interrupt_at_call
from fpustate.check import explore
from fpustate.check.checkpoint import Checkpoint
from fpustate.check.explore import Explorer
from fpustate.check.store import FingerprintSet, expected_omissions, fingerprint
from fpustate.cli import run
from fpustate.designs import get
from fpustate.kernel.machine import make_model

MODES = [(False, "exact"), (True, "exact"), (True, "fingerprint"), (False, "fingerprint")]


def _key(r):
    return (r.states, r.transitions, r.depth, r.complete, r.expanded, r.represented,
            [(v.prop.name, v.depth, v.state_index, v.detail) for v in r.violations])


def _interrupt_after(monkeypatch, n: int) -> None:
    interrupt_at_call(monkeypatch, explore, "successors", n)


def test_fingerprint_is_deterministic_across_processes():
    """fingerprint() is BLAKE2b-64, the same in every process (unlike the salted hash())."""
    code = "from fpustate.check.store import fingerprint; print(fingerprint(b'fpustate'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(other) == fingerprint(b"fpustate") == 0xdc4363ad1f9da10
    assert 0 <= fingerprint(b"") < 2**64


def test_fingerprint_set_and_omission_estimate():
    """The sorted fingerprint array answers membership after merges; n^2/2^65 is the SPIN estimate."""
    fs = FingerprintSet()
    fs.merge(np.array([5, 1, 2**64 - 1], dtype=np.uint64))
    fs.merge(np.array([3], dtype=np.uint64))
    assert fs.values.tolist() == [1, 3, 5, 2**64 - 1]
    assert fs.contains(np.array([0, 1, 4, 2**64 - 1], dtype=np.uint64)).tolist() == [False, True, False, True]
    assert expected_omissions(2**32) == 0.5


@pytest.mark.parametrize("symmetry,store", MODES)
def test_interrupted_run_resumes_to_identical_results(tmp_path, monkeypatch, symmetry, store):
    """Ctrl-C leaves the last layer boundary; resuming gives the counts, depth, violations and
    traces of an uninterrupted run (twice: a finished checkpoint resumes to the same result)."""
    m = make_model(get("rfc2016-stale-flags"), SMALL)
    ref_ex = Explorer(m, symmetry=symmetry, store=store)
    ref = ref_ex.run()
    _interrupt_after(monkeypatch, 3000)
    ex = Explorer(m, symmetry=symmetry, store=store)
    part = ex.run(checkpoint=Checkpoint(str(tmp_path), ex, resume=False, interval=0))
    assert not part.complete and part.states < ref.states
    monkeypatch.undo()
    for _ in range(2):
        ex2 = Explorer(m, symmetry=symmetry, store=store)
        r = ex2.run(checkpoint=Checkpoint(str(tmp_path), ex2, resume=True, interval=0))
        assert r.resumed and _key(r) == _key(ref)
        assert [ex2.trace(v) for v in r.violations] == [ref_ex.trace(v) for v in ref.violations]


def test_cli_ctrl_c_then_resume(tmp_path, monkeypatch, capsys):
    """`check --checkpoint DIR` interrupted by Ctrl-C says how to continue; `--resume DIR` prints
    the row of an uninterrupted run."""
    args = ["check", "linux", "--scenario", "small"]
    assert run(args) == 0
    want = re.search(r"^linux .*$", capsys.readouterr().out, re.M).group(0).split()
    _interrupt_after(monkeypatch, 2000)
    assert run(args + ["--checkpoint", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"fpustate: interrupted; the results above are partial; continue with --resume {tmp_path}"
    monkeypatch.undo()
    assert run(args + ["--resume", str(tmp_path)]) == 0
    got = re.search(r"^linux .*$", capsys.readouterr().out, re.M).group(0).split()
    assert got[:4] + got[6:] == want[:4] + want[6:]  # all but seconds and states/s


def _bad(args, capsys) -> str:
    assert run(args) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_bad_checkpoint_directories_are_one_line_errors(tmp_path, capsys):
    """A missing, plain-file, foreign, corrupt or mismatched checkpoint is one line, exit 2."""
    base = ["check", "linux", "--scenario", "small"]
    missing = tmp_path / "none"
    assert _bad(base + ["--resume", str(missing)], capsys) == f"fpustate: --resume {missing}: no such directory"
    plain = tmp_path / "file"
    plain.write_text("x")
    assert _bad(base + ["--checkpoint", str(plain)], capsys) == f"fpustate: --checkpoint {plain}: not a directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _bad(base + ["--resume", str(empty)], capsys) == (
        f"fpustate: --resume {empty}: not an fpustate checkpoint (no <design>/manifest.json in it)")
    ck = tmp_path / "ck"
    assert run(base + ["--checkpoint", str(ck)]) == 0
    capsys.readouterr()
    assert _bad(base + ["--checkpoint", str(ck)], capsys) == (
        f"fpustate: --checkpoint {ck}: already holds a checkpoint of linux; continue it with --resume {ck}, "
        f"or choose an empty directory")
    assert _bad(base + ["--resume", str(ck), "--values", "1"], capsys) == (
        f"fpustate: --resume {ck}: the checkpoint of linux was made with scenario values=2, this run has "
        f"values=1; resume with the same design and flags")
    assert _bad(base + ["--resume", str(ck), "--no-symmetry"], capsys) == (
        f"fpustate: --resume {ck}: the checkpoint of linux was made with symmetry CPUs x user tasks "
        f"(4 permutations), this run has off; resume with the same design and flags")
    manifest = ck / "linux" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(dict(data, format="other")))
    assert _bad(base + ["--resume", str(ck)], capsys) == (
        f"fpustate: --resume {ck}: {manifest} is not an fpustate checkpoint manifest")
    manifest.write_text("{")
    assert _bad(base + ["--resume", str(ck)], capsys).startswith(
        f"fpustate: --resume {ck}: {manifest} is not a valid fpustate checkpoint (")
    manifest.write_text(json.dumps(data))
    (ck / "linux" / data["data"]).write_bytes(b"not numpy")
    assert _bad(base + ["--resume", str(ck)], capsys).startswith(
        f"fpustate: --resume {ck}: the checkpoint data of linux cannot be read (")


def test_bugs_accepts_the_engine_flags(tmp_path, capsys, monkeypatch):
    """`fpustate bugs --store exact --checkpoint DIR --json` passes and checkpoints every entry (the
    suite's three smallest entries; the whole suite runs once per session in test_mutants)."""
    from fpustate.check import bugs

    small = tuple(b for b in bugs.BUGS if b.mutant in ("lazy", "linux-ptrace-pkru-init", "linux-irq-fpu-usable"))
    monkeypatch.setattr(bugs, "BUGS", small)
    assert run(["bugs", "--store", "exact", "--checkpoint", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 3 and all(d["passed"] for d in data) and {d["store"] for d in data} == {"exact"}
    BUGS = small

    runs = len(BUGS) + len({(b.fixed, tuple(sorted(b.scenario.items()))) for b in BUGS})  # fixed runs are shared
    assert len(list(tmp_path.glob("*/manifest.json"))) == runs
