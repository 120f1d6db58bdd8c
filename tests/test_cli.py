"""Golden CLI output, exit statuses and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import cli, interrupt_at_call
from fpustate.cli import run

GOLDEN = Path(__file__).parent / "golden"


def mask_seconds(text: str) -> str:
    """The seconds and states/s columns are the only non-deterministic output."""
    text = re.sub(r"(?m)^(\S+\s+[\d,]+\s+[\d,]+\s+\d+\s+)\d+\.\d(\s+)[\d,]+(\s)", r"\1X.X\2N\3", text)
    return re.sub(r" {2,}", "  ", text)


def test_designs_golden():
    """`fpustate designs` lists every design with its pinned kernel and summary."""
    p = cli("designs")
    assert p.returncode == 0
    assert p.stdout == (GOLDEN / "designs.out").read_text()


def test_mask_seconds_hides_only_timing():
    """The golden-file mask replaces exactly the seconds and states/s columns."""
    row = "linux   27,000   197,312   23   0.4   61,234   holds   -   -"
    assert mask_seconds(row) == "linux  27,000  197,312  23  X.X  N  holds  -  -"


def test_stale_flags_trace_golden():
    """The stale cached_flags counterexample prints exactly as pinned, kernel-trace style."""
    p = cli("check", "rfc2016-stale-flags", "--trace", "--execs", "0", "--property", "user_sees_own_registers")
    assert p.returncode == 1
    assert mask_seconds(p.stdout) == mask_seconds((GOLDEN / "stale_flags_trace.out").read_text())


def test_holds_exits_zero():
    """A design that holds every property exits with status 0."""
    p = cli("check", "linux", "--scenario", "small", "--no-symmetry", "--store", "exact")
    assert p.returncode == 0
    assert re.search(r"^linux\s+27,000\s+197,312\s+23\s+\S+\s+\S+\s+holds\s+-\s+-$", p.stdout, re.M)
    assert "symmetry: off; store: exact" in p.stdout.splitlines()


def test_default_search_reduces_and_says_it_used_fingerprints():
    """By default states are stored once per orbit as 64-bit fingerprints, and the verdict says so."""
    raw = cli("check", "linux", "--scenario", "small", "--no-symmetry", "--store", "exact", "--json")
    p = cli("check", "linux", "--scenario", "small", "--json")
    assert p.returncode == 0
    r, d = json.loads(raw.stdout)["designs"][0], json.loads(p.stdout)["designs"][0]
    assert d["symmetry"] == "CPUs x user tasks (4 permutations)" and d["fingerprints"] is True
    assert d["raw_states_represented"] == r["states"] and d["states"] < r["states"]
    assert d["expected_missed_states"] == d["states"] ** 2 / 2**65
    p = cli("check", "linux", "--scenario", "small")
    n = d["states"]
    assert re.search(rf"^linux\s+{n:,}\s+.*\s+holds\*\s+-\s+-$", p.stdout, re.M)
    assert p.stdout.splitlines()[-1] == (f"* linux: 64-bit fingerprints, expected missed states {n * n / 2**65:.1e} "
                                         f"(n^2/2^65 for n = {n:,}, as SPIN's hash compaction)")


def test_json_output():
    """--json gives the verdict, counts and each counterexample step as data."""
    p = cli("check", "rfc2016-stale-flags", "--execs", "0", "--json", "--property", "user_sees_own_registers")
    assert p.returncode == 1
    data = json.loads(p.stdout)
    d = data["designs"][0]
    assert d["verdict"] == "violated" and d["states"] > 0
    v = d["violations"][0]
    assert v["property"] == "user_sees_own_registers" and v["steps"] == 5
    assert v["trace"][-1]["function"].startswith("loop done, IRQs off: prepare_exit_to_usermode_stale()")


@pytest.mark.parametrize(
    "args,message",
    [
        (["check", "nosuch"], "fpustate: unknown design 'nosuch'; available: eager, lazy, rfc2016, rfc2016-stale-flags, strawman, linux; mutants: linux-sigframe-pkru-xstate-bv, linux-ptrace-pkru-init, linux-irq-fpu-usable, linux-exec-invalidation, linux-sigframe-owner-cache, linux-sigreturn-no-deactivate, eager-sigreturn-bh, eager-xcomp-bv, linux-fork-no-lock, linux-kvm-save-ignores-need-load, linux-xfd-cache-hotplug"),
        (["check", "--cpus", "9"], "fpustate: scenario: --cpus must be a whole number from 1 to 4, got 9"),
        (["check", "--scenario", "huge"], "fpustate: --scenario: unknown preset 'huge'; available: default, small, lifecycle, pkru, signals, ptrace, kvm, amx"),
        (["check", "--property", "nope"], "fpustate: --property: unknown property 'nope'; available: user_sees_own_registers, "
         "need_load_or_valid, fpregs_state_valid_sound, fpstate_not_clobbered, state_survives, sigframe_holds_user_state, "
         "xrstor_image_valid, readers_see_current_state, kernel_uaccess_uses_own_pkru, guest_sees_own_registers, inactive_fpstate_kept, "
         "xrstor_respects_xfd, xfd_matches_fpstate, xfd_state_matches_msr, no_foreign_data_exposed"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    """Bad input gets exactly one line on stderr naming the problem, exit status 2, nothing on stdout."""
    p = cli(*args)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.strip().splitlines() == [message]


def test_click_usage_error_is_one_line():
    """A malformed option value is reported by click in one line, exit status 2, with a pointer to --help."""
    p = cli("check", "--cpus", "two")
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fpustate check: ") and "'two'" in lines[0]
    assert lines[0].endswith("(see 'fpustate check --help')")


def test_bad_env_knob(monkeypatch, capsys):
    """A malformed FPUSTATE_* variable is a one-line error with status 2."""
    monkeypatch.setenv("FPUSTATE_CPUS", "lots")
    assert run(["check", "linux"]) == 2
    assert capsys.readouterr().err.strip() == "fpustate: FPUSTATE_CPUS: expected a whole number, got 'lots'"


def test_replay_reaches_the_counterexample():
    """--replay follows a printed index path to the same violating state."""
    p = cli("check", "rfc2016-stale-flags", "--execs", "0", "--replay", "1/10/11/3/2")
    assert p.returncode == 1
    assert "  violated: user_sees_own_registers: cpu0: B runs in user mode with registers A.0, expected B.0" in p.stdout.splitlines()


def test_replay_bad_index_is_one_line():
    """A replay index beyond the enabled actions is a one-line error with status 2."""
    p = cli("check", "linux", "--replay", "1/99")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == ("fpustate: --replay: step 2 asks for action 99, but only 14 are enabled there "
                                "(was the path made with the same design and scenario?)")


def test_interrupted_run_prints_partial_result(monkeypatch, capsys):
    """Ctrl-C during a check prints the states explored so far, marks them partial and exits 130."""
    from fpustate.check import explore

    interrupt_at_call(monkeypatch, explore, "successors", 5000)
    assert run(["check", "linux", "--jobs", "1"]) == 130  # the sequential search (test_parallel: --jobs 2)
    out = capsys.readouterr()
    assert re.search(r"^linux\s+[\d,]+\s+[\d,]+\s+\d+\s+\S+\s+\S+\s+incomplete \(interrupted\)", out.out, re.M)
    assert out.err.strip() == "fpustate: interrupted; the results above are partial"
