"""Hostile input: every class ends in one line on stderr and its documented exit status, never a
traceback, a hang, a half-written file, a replaced special file or a wrong verdict."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fpustate.cli import run
from fpustate.sim.events import MAX_LINE, PERF_RE, TRACEFS_RE, TraceReader

TRACES = Path(__file__).parent / "data" / "traces"
MIXED = str(TRACES / "mixed_cpu0.txt.gz")
PROFILE = Path(__file__).parents[1] / "src" / "fpustate" / "sim" / "profiles" / "spr-user-hot.toml"


def fpustate(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fpustate", *args], stdout=stdout, stderr=subprocess.PIPE, text=True)


def error(capsys, *args: str, status: int = 2) -> str:
    """Run in-process; the exit status must be `status`, stderr one line (returned), stdout empty."""
    assert run(list(args)) == status
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    return lines[0]


def sched_switch(cpu: int, prev: int, state: str, nxt: int, ts: int) -> str:
    return (f"           t-{prev}   [{cpu:03d}] d..2.   1.{ts:06d}: sched_switch: prev_comm=t prev_pid={prev} "
            f"prev_prio=120 prev_state={state} ==> next_comm=t next_pid={nxt} next_prio=120\n")


def fork(cpu: int, parent: int, child: int, ts: int) -> str:
    return (f"           t-{parent}   [{cpu:03d}] .....   1.{ts:06d}: sched_process_fork: comm=t pid={parent} "
            f"child_comm=t child_pid={child}\n")


# ---------------------------------------------------------------- the trace parser
@pytest.mark.parametrize("line", [" " * 5000, "-1 " * 2000, "a " * 3000, "a-1 [0] " * 800, "a 1 [0] " * 800,
                                  "a-1 [0] 1.0: " + "a:" * 3000, "1" * 6000, "x-1 ( " + "1" * 6000])
def test_patterns_run_in_linear_time(line):
    """A long line of blanks, dashes or digits is matched or rejected in milliseconds (it took minutes)."""
    t0 = time.perf_counter()
    for _ in range(10):
        TRACEFS_RE.fullmatch(line)
        PERF_RE.fullmatch(line)
    assert time.perf_counter() - t0 < 0.5


def test_blank_lines_trace(tmp_path, capsys):
    """A trace of 1,000- and 5,000-blank lines fails at once: no records."""
    p = tmp_path / "blanks.txt"
    p.write_text(" " * 1000 + "\n" + " " * 5000 + "\n")
    t0 = time.perf_counter()
    assert error(capsys, "simulate", str(p)) == (
        f"fpustate: {p}: no trace records found; expected tracefs, trace-cmd report or perf script text")
    assert time.perf_counter() - t0 < 2


def test_line_length_is_capped(tmp_path, capsys):
    """A line longer than MAX_LINE characters is named with its length."""
    p = tmp_path / "long.txt"
    p.write_text("# tracer: nop\n" + "x" * (MAX_LINE + 1) + "\n")
    assert error(capsys, "simulate", str(p)) == (
        f"fpustate: {p}:2: a line of 65,538 characters; a trace record has at most 65,536 (is this a text trace?)")


def test_negative_cpu_is_not_a_record(tmp_path, capsys):
    """A negative CPU number is not read as a CPU (it indexed the state vector backwards)."""
    p = tmp_path / "neg.txt"
    p.write_text("   a-1   [-1] d..2.   1.000001: sched_wakeup: comm=b pid=2 prio=1 target_cpu=0\n")
    assert error(capsys, "simulate", str(p)).startswith(f"fpustate: {p}:1: expected a trace record")


def test_gz_name_on_plain_text(tmp_path):
    """A plain-text trace named .gz is read as text: the records are those of the plain file."""
    plain = tmp_path / "plain.gz"
    plain.write_bytes(gzip.decompress(Path(MIXED).read_bytes()))
    assert list(TraceReader(str(plain))) == list(TraceReader(MIXED))


def test_gzip_without_gz_name(tmp_path):
    """A gzipped trace without the .gz name is recognised by its magic number."""
    p = tmp_path / "trace.txt"
    p.write_bytes(Path(MIXED).read_bytes())
    assert sum(1 for _ in TraceReader(str(p))) == 9132


def test_truncated_gzip_is_bad_input(tmp_path, capsys):
    """A truncated gzip exits 2 naming the line where the data ends (it exited 130, as if interrupted)."""
    p = tmp_path / "cut.txt.gz"
    p.write_bytes(Path(MIXED).read_bytes()[:20000])
    assert error(capsys, "simulate", str(p)) == (
        f"fpustate: {p}:4663: cannot read the trace: the gzip data ends early (truncated file?)")


def test_corrupt_gzip_is_bad_input(tmp_path, capsys):
    """A gzip whose checksum does not match its data is one line, exit 2."""
    data = bytearray(Path(MIXED).read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 of the trailer
    p = tmp_path / "bad.gz"
    p.write_bytes(bytes(data))
    assert re.fullmatch(rf"fpustate: {re.escape(str(p))}:9145: cannot read the trace: corrupt gzip data "
                        r"\(CRC check failed 0x[0-9a-f]+ != 0x[0-9a-f]+\)", error(capsys, "simulate", str(p)))


def test_other_compressor(tmp_path, capsys):
    """An xz file is named as such instead of being parsed as binary text."""
    p = tmp_path / "t.xz"
    p.write_bytes(b"\xfd7zXZ\x00\x00\x04rest")
    assert error(capsys, "simulate", str(p)) == f"fpustate: {p}: compressed with xz; decompress it (or gzip it) first"


def test_trace_that_is_a_pipe_or_directory(tmp_path, capsys):
    """A FIFO or a directory given as a trace is named as not a regular file (it said 'no such file')."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for t in (fifo, tmp_path):
        assert error(capsys, "simulate", str(t)) == (
            f"fpustate: {t}: not a regular file (the trace is read twice: pass a file, not a pipe)")


# ---------------------------------------------------------------- crafted schedules
def test_fork_of_pid_0_is_rejected(tmp_path, capsys):
    """A fork whose child is pid 0 (the idle task) is bad input; it drove the replay into endless recursion."""
    lines = [sched_switch(0, 0, "R", 100, 0), fork(0, 100, 0, 1), sched_switch(0, 100, "S", 0, 2),
             sched_switch(0, 0, "X", 100, 3), sched_switch(1, 0, "R", 200, 4), fork(1, 200, 0, 5),
             sched_switch(1, 200, "S", 0, 6), sched_switch(1, 0, "X", 200, 7), sched_switch(0, 100, "S", 300, 8),
             sched_switch(1, 200, "S", 400, 9), sched_switch(0, 300, "S", 0, 10)]
    p = tmp_path / "fork0.txt"
    p.write_text("#P:2\n" + "".join(lines))
    assert error(capsys, "simulate", str(p)) == (
        f"fpustate: {p}:3: sched_process_fork: child_pid=0 is not a pid a fork can create")


def test_fork_of_a_running_pid_is_rejected(tmp_path, capsys):
    """A fork child that is running on a CPU is bad input (its record would be overwritten)."""
    p = tmp_path / "forkrun.txt"
    p.write_text("#P:2\n" + sched_switch(0, 0, "R", 100, 0) + sched_switch(1, 0, "R", 200, 1) + fork(0, 100, 200, 2))
    assert error(capsys, "simulate", str(p)) == (
        f"fpustate: {p}:4: sched_process_fork: child_pid=200 is running (on CPU 1); a fork creates a new task")


def test_late_cpu_beyond_the_limit(tmp_path, capsys):
    """A CPU past the 27 the simulator models, first seen late, is not answered with a --cpus it rejects."""
    early = [sched_switch(0, 0, "R", 100, 0)] + [sched_switch(0, 100 + i % 2, "R", 101 - i % 2, i + 1)
                                                 for i in range(2000)]
    p = tmp_path / "late.txt"
    p.write_text("".join(early) + sched_switch(500, 0, "R", 300, 2001))
    assert error(capsys, "simulate", str(p)) == (
        f"fpustate: {p}:2002: CPU 500 first appears after the first 2,000 records; "
        "the simulator models at most 27 CPUs (0 to 26)")


# ---------------------------------------------------------------- output
@pytest.mark.parametrize("args", [["simulate", MIXED, "--json"], ["simulate", MIXED, "--csv"], ["simulate", MIXED],
                                  ["check", "linux", "--scenario", "small", "--max-states", "100"]])
def test_full_disk_on_stdout(args):
    """Results written to a full disk (/dev/full) are one line, exit 2, no traceback."""
    with open("/dev/full", "w") as full:
        p = fpustate(*args, stdout=full)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == "fpustate: cannot write the results to standard output: No space left on device"
    assert "Traceback" not in p.stderr


def test_plot_into_a_directory(tmp_path, capsys):
    """--plot naming a directory fails before the run, suggesting a file name."""
    assert error(capsys, "simulate", MIXED, "--plot", str(tmp_path)) == (
        f"fpustate: --plot {tmp_path}: is a directory; give a file name, e.g. {tmp_path}/plot.png")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_plot_refuses_special_files(tmp_path, capsys, kind):
    """--plot never replaces a FIFO or a device node (or a symlink to one): one line, the file untouched."""
    if kind == "fifo":
        special = tmp_path / "fifo"
        os.mkfifo(special)
    else:
        special = Path("/dev/null")
    link = tmp_path / "link.png"
    link.symlink_to(special)
    for target in (special, link):
        assert error(capsys, "simulate", MIXED, "--plot", str(target)) == (
            f"fpustate: --plot {target}: is not a regular file (a FIFO, device or socket); "
            "give the name of an ordinary file")
    assert link.is_symlink() and (special.is_fifo() if kind == "fifo" else special.is_char_device())


def test_plot_writes_through_a_symlink(tmp_path, capsys):
    """--plot through a symlink replaces the file it points to and keeps the link, like any tool."""
    real = tmp_path / "real.png"
    real.write_text("old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    assert run(["simulate", MIXED, "--design", "linux", "--plot", str(link)]) == 0
    capsys.readouterr()
    assert link.is_symlink() and real.read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["link.png", "real.png"]


def test_plot_format_is_checked_first(tmp_path, capsys):
    """A file extension matplotlib cannot write is refused before the run."""
    assert error(capsys, "simulate", MIXED, "--plot", str(tmp_path / "p.doc")).startswith(
        f"fpustate: --plot {tmp_path}/p.doc: matplotlib cannot write .doc files; use one of .")


def test_failed_write_leaves_the_target_untouched(tmp_path):
    """A write that fails midway leaves the old file as it was and no temporary file behind."""
    from fpustate.errors import UsageError
    from fpustate.output import write_atomically

    target = tmp_path / "out.png"
    target.write_text("old")

    def half(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(UsageError) as e:
        write_atomically(str(target), "--plot", half)
    assert str(e.value) == f"--plot {target}: cannot write it (No space left on device); nothing was written"
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.png"]


# ---------------------------------------------------------------- cost profiles
@pytest.mark.parametrize("line,message", [
    ("ghz = 0", "ghz must be a number from 0.01 to 100, got 0"),
    ("ghz = nan", "ghz must be a number from 0.01 to 100, got nan"),
    ("ghz = -4.1", "ghz must be a number from 0.01 to 100, got -4.1"),
    ("ghz = inf", "ghz must be a number from 0.01 to 100, got inf"),
    ("ghz = true", "ghz must be a number, got True"),
])
def test_bad_profile_numbers(tmp_path, capsys, line, message):
    """A profile's clock of 0, nan, a negative or infinite number is one line naming the key."""
    p = tmp_path / "p.toml"
    p.write_text(PROFILE.read_text().replace("ghz = 4.1", line))
    assert error(capsys, "simulate", "--workload", "pingpong", "--length", "10", "--profile", str(p)) == (
        f"fpustate: {p}: {message}")


def test_bad_profile_cost(tmp_path, capsys):
    """A negative or infinite cycle cost is one line naming the entry."""
    p = tmp_path / "p.toml"
    p.write_text(PROFILE.read_text().replace("nm = 600", "nm = -inf"))
    assert error(capsys, "simulate", "--workload", "pingpong", "--length", "10", "--profile", str(p)) == (
        f"fpustate: {p}: trap.nm must be a number from 0 to 1,000,000,000, got -inf")


# ---------------------------------------------------------------- design files
def design(tmp_path, body: str) -> str:
    p = tmp_path / "d.py"
    p.write_text("import sys\nfrom fpustate.designs import linux\n" + body)
    return str(p)


def test_design_file_that_exits(tmp_path, capsys):
    """A design file calling sys.exit() at import is an error (it exited 0 with no output)."""
    f = design(tmp_path, "sys.exit()\n")
    assert error(capsys, "check", "--design-file", f) == (
        f"fpustate: --design-file {f}: importing it called sys.exit() (line 3); a design file must define DESIGN, not exit")


def test_hook_that_exits(tmp_path, capsys):
    """A hook calling sys.exit(0) while checking is named, exit 2."""
    f = design(tmp_path, "def begin(k, c, ctx):\n    sys.exit(0)\n"
                         "DESIGN = linux.DESIGN.variant(name='x', kernel_fpu_begin=begin)\n")
    assert error(capsys, "check", "--design-file", f, "--scenario", "small") == (
        "fpustate: design 'x': a hook called sys.exit(0) in begin() at d.py:4")


def test_replay_with_a_raising_hook(tmp_path, capsys):
    """--replay through a hook that raises is the same one line as checking (it was a traceback)."""
    f = design(tmp_path, "def begin(k, c, ctx):\n    raise RuntimeError('oops')\n"
                         "DESIGN = linux.DESIGN.variant(name='x', kernel_fpu_begin=begin)\n")
    assert error(capsys, "check", "--design-file", f, "--replay", "1/2/3") == (
        "fpustate: design 'x': a hook raised RuntimeError: oops in begin() at d.py:4")


def test_wrong_return_type_same_line_in_check_and_simulate(tmp_path, capsys):
    """A hook passing the wrong type on gets the same one line from simulate as from check."""
    f = design(tmp_path, "def sw(k, cpu, prev, next):\n    return linux.DESIGN.switch_fpu(k, cpu, prev, 0.5)\n"
                         "DESIGN = linux.DESIGN.variant(name='wrong', switch_fpu=sw)\n")
    checked = error(capsys, "check", "--design-file", f, "--scenario", "small")
    simulated = error(capsys, "simulate", "--workload", "pingpong", "--length", "10", "--design-file", f)
    assert checked == simulated
    assert checked.startswith("fpustate: design 'wrong': a hook raised TypeError: ")


# ---------------------------------------------------------------- incomplete runs
def test_capped_run_is_incomplete(capsys):
    """A run capped by --max-states never says holds: verdict incomplete, exit 3, a notice."""
    assert run(["check", "linux", "--scenario", "small", "--max-states", "100"]) == 3
    out = capsys.readouterr()
    assert re.search(r"^linux\s+[\d,]+\s+[\d,]+\s+\d+\s+\S+\s+\S+\s+incomplete \(--max-states\)\s+-\s+-$", out.out, re.M)
    assert out.err.strip() == ("fpustate: --max-states stopped the run before the fixpoint; no violation so far, "
                               "which proves nothing (exit status 3)")
    assert run(["check", "linux", "--scenario", "small", "--max-states", "100", "--json"]) == 3
    d = json.loads(capsys.readouterr().out)["designs"][0]
    assert (d["verdict"], d["complete"], d["incomplete"]) == ("incomplete", False, "max-states")


def test_interrupt_after_a_violation(monkeypatch, capsys):
    """Ctrl-C in the second design, after the first was violated, still prints the notice and exits 130."""
    from fpustate.check import explore

    real = explore.successors

    def interrupting(m, s):
        if m.design.name == "linux":
            raise KeyboardInterrupt
        return real(m, s)

    monkeypatch.setattr(explore, "successors", interrupting)
    assert run(["check", "strawman", "linux", "--scenario", "small"]) == 130
    out = capsys.readouterr()
    assert re.search(r"^strawman .* VIOLATED ", out.out, re.M)
    assert re.search(r"^linux .* incomplete \(interrupted\)", out.out, re.M)
    assert out.err.strip() == "fpustate: interrupted; the results above are partial"


def test_interrupted_bug_suite(monkeypatch, capsys):
    """Ctrl-C in the bug suite stops it: the row is INCOMPLETE (not NOT FOUND), notice, exit 130."""
    from fpustate.check import explore

    def interrupting(m, s):
        raise KeyboardInterrupt

    monkeypatch.setattr(explore, "successors", interrupting)
    assert run(["bugs"]) == 130
    out = capsys.readouterr()
    rows = out.out.split("\n\n")[0].splitlines()[2:]  # the table, up to its footnotes
    assert len(rows) == 1 and rows[0].rstrip().endswith("incomplete (interrupted)   INCOMPLETE")
    assert out.err.strip() == "fpustate: interrupted; the results above are partial"


def test_capped_explain_is_partial(capsys):
    """explain capped by --max-states marks its classes partial and exits 3 (it exited 0)."""
    assert run(["explain", "linux", "--max-states", "50"]) == 3
    out = capsys.readouterr()
    assert out.out.splitlines()[0].endswith(" states (partial)")
    assert out.err.strip() == ("fpustate: --max-states stopped the exploration before the fixpoint; the classes "
                               "above are those reached so far (exit status 3)")


# ---------------------------------------------------------------- replay paths
def test_replay_path_from_another_scenario_is_refused(capsys):
    """A tagged index path replayed on another scenario is refused, naming this run's tag and scenario."""
    from fpustate.check.trace import model_tag
    from fpustate.config import Scenario
    from fpustate.designs import get
    from fpustate.kernel.machine import make_model

    tag = model_tag(make_model(get("rfc2016-stale-flags"), Scenario(execs=0)))
    here = model_tag(make_model(get("rfc2016-stale-flags"), Scenario()))
    assert error(capsys, "check", "rfc2016-stale-flags", "--replay", f"{tag}:1/10/11/3/2") == (
        f"fpustate: --replay: path {tag}:1/10/11/3/2 was recorded on another design or scenario (this run is "
        f"{here}: rfc2016-stale-flags; cpus=2 users=2 spare=0 kthreads=1 workers=0 values=2 forks=0 execs=1 exits=0 "
        "ptrace_writes=0 signals=0); give the DESIGN and scenario flags it was printed with")
    assert run(["check", "rfc2016-stale-flags", "--execs", "0", "--replay", f"{tag}:1/10/11/3/2"]) == 1


def test_printed_path_replays(capsys):
    """The path printed under a counterexample, tag included, replays to the violation."""
    assert run(["check", "lazy", "--scenario", "small", "--look-past", "0", "--trace"]) == 1
    out = capsys.readouterr().out
    detail = re.search(r"^  violated: .*$", out, re.M).group(0)
    path = re.search(r"^  index path: ([0-9a-f]{6}:[\d/]+)$", out, re.M).group(1)
    assert run(["check", "lazy", "--scenario", "small", "--replay", path]) == 1
    assert detail in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------- help
def test_every_knob_help_says_range_and_variable():
    """Each scenario knob's --help says what it models, its range and its FPUSTATE_* variable."""
    from dataclasses import fields

    from fpustate.config import KNOB_HELP, LIMITS, Scenario

    text = " ".join(fpustate("check", "--help").stdout.split())
    for f in fields(Scenario):
        env = f"env FPUSTATE_{f.name.upper()}"
        if f.type in ("bool", bool):
            assert f"{KNOB_HELP[f.name]}; default {'on' if f.default else 'off'}; {env}=0|1" in text, f.name
        else:
            lo, hi = LIMITS[f.name]
            assert f"{KNOB_HELP[f.name]}; {lo} to {hi}, default {f.default}; {env}" in text, f.name


def test_explain_help_shows_the_defaults_it_uses():
    """explain's help shows the small preset's defaults, the ones it runs with."""
    text = " ".join(fpustate("explain", "--help").stdout.split())
    assert "0 to 3, default 0; env FPUSTATE_KTHREADS" in text and "0 to 4, default 0; env FPUSTATE_EXECS" in text
