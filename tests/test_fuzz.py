"""Fuzz tests (Hypothesis, derandomized: the same examples every run) of the trace parser, the
replay of crafted schedules and the design loader: any input is a result or one line of
UsageError, never another exception, a hang or an exit."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fpustate.cli import run
from fpustate.designs import DESIGNS
from fpustate.errors import InvalidDesign, UsageError
from fpustate.sim.costs import load_profile
from fpustate.sim.events import PERF_RE, TRACEFS_RE, TraceError, TraceReader
from fpustate.sim.run import simulate_trace
from fpustate.usercode import load_design_file

FUZZ = settings(max_examples=150, deadline=None, derandomize=True)

# The patterns before the linear-time rewrite (commit 973c18c): the reference the new ones
# must agree with, on lines short enough for their backtracking to finish.
OLD_TRACEFS = re.compile(
    r"\s*(.+?)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:([^\s\[\]]{4,5})\s+)?(\d+\.\d+):\s+([\w:]+):\s*(.*)")
OLD_PERF = re.compile(r"\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+([\w:]+):\s*(.*)")

REAL = ["     Web Content-1234  [003] d..2.   12.500000: sched_switch: prev_comm=a prev_pid=1 prev_state=R",
        "           <...>-1701  (  1700) [001] d.h. 76.211513: sched_wakeup: comm=sh pid=1642",
        "          <idle>-0     [000]    76.211523: sched_switch:          prev_comm=swapper/0",
        "         taskset  7704 [001]   684.799930:      x86_fpu:x86_fpu_regs_activated: x86/fpu: 2 load: 1"]
PIECES = st.sampled_from([" ", "  ", "\t", "-", "1", "42", "a", "b c", "[", "]", "[0]", "[001]", "(", ")", "( 17)",
                          ".", ":", "1.5", "d..2.", "d.h.", "sched_switch", "x86_fpu:", ": ", "<idle>", "é", "\x00"])


def line_strategy():
    fuzzed = st.lists(PIECES, max_size=25).map("".join)
    mutated = st.tuples(st.sampled_from(REAL), st.integers(0, 90), st.integers(0, 12), PIECES).map(
        lambda t: t[0][:t[1]] + t[3] + t[0][t[1] + t[2]:])
    return st.one_of(fuzzed, mutated)


def groups(m):
    if m is None:
        return None
    g = list(m.groups())
    g[0] = g[0].strip()
    return g


@FUZZ
@given(line_strategy())
def test_patterns_agree_with_the_old_ones(line):
    """The linear-time patterns match exactly the lines the old ones did, with the same fields."""
    if "\n" in line:
        return
    assert groups(TRACEFS_RE.fullmatch(line)) == groups(OLD_TRACEFS.fullmatch(line))
    assert groups(PERF_RE.fullmatch(line)) == groups(OLD_PERF.fullmatch(line))


@FUZZ
@given(st.lists(line_strategy(), min_size=1, max_size=8))
def test_reader_yields_records_or_one_error(lines):
    """Any text is records with sane fields or one TraceError, quickly."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.txt"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        t0 = time.perf_counter()
        try:
            for rec in TraceReader(str(p)):
                assert rec.cpu >= 0 and isinstance(rec.pid, int) and rec.event
        except TraceError as e:
            assert "\n" not in str(e)
        assert time.perf_counter() - t0 < 1


EVENT = st.one_of(
    st.tuples(st.just("switch"), st.integers(0, 1), st.sampled_from([0, 0, 1, 2, 3]), st.sampled_from("RSDXZ")),
    st.tuples(st.just("fork"), st.integers(0, 1), st.sampled_from([-1, 0, 1, 2, 3, 4]), st.just("")),
    st.tuples(st.just("fpu"), st.integers(0, 1), st.sampled_from([0, 1]), st.sampled_from(["b....", "d...."])),
    st.tuples(st.just("migrate"), st.integers(0, 1), st.sampled_from([0, 1, 2, 3]), st.sampled_from(["0", "1", "5", "-1"])),
    st.tuples(st.just("exit"), st.integers(0, 1), st.sampled_from([1, 2, 3]), st.just("")),
    st.tuples(st.just("exec"), st.integers(0, 1), st.sampled_from([1, 2, 3]), st.just("")),
)


def schedule_text(events) -> str:
    cur = {0: 0, 1: 0}
    out = ["#P:2\n"]
    for i, (kind, cpu, arg, extra) in enumerate(events):
        p = cur[cpu]
        head = f"           t-{p}   [{cpu:03d}] {'d..2.' if kind != 'fpu' else extra}   1.{i:06d}: "
        if kind == "switch":
            out.append(head + f"sched_switch: prev_comm=t prev_pid={p} prev_prio=120 prev_state={extra} ==> "
                              f"next_comm=t next_pid={arg} next_prio=120\n")
            cur[cpu] = arg
        elif kind == "fork":
            out.append(head + f"sched_process_fork: comm=t pid={p} child_comm=t child_pid={arg}\n")
        elif kind == "fpu":
            out.append(head + f"x86_fpu_regs_activated: x86/fpu: 00000000 load: {arg} xfeatures: a3 xcomp_bv: 8\n")
        elif kind == "migrate":
            out.append(head + f"sched_migrate_task: comm=t pid={arg} prio=120 orig_cpu={cpu} dest_cpu={extra}\n")
        elif kind == "exit":
            out.append(head + f"sched_process_exit: comm=t pid={arg} prio=120\n")
        else:
            out.append(head + f"sched_process_exec: filename=/bin/t pid={p} old_pid={p}\n")
    return "".join(out)


PROFILE = load_profile("spr-user-hot")
ALL = [DESIGNS[n] for n in ("eager", "lazy", "strawman", "linux")]


@FUZZ
@given(st.lists(EVENT, min_size=1, max_size=30))
def test_crafted_schedules_replay_or_fail_in_one_line(events):
    """A crafted schedule (pid 0 forks, dead idle tasks, migrations anywhere) replays or is one UsageError."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.txt"
        p.write_text(schedule_text(events))
        try:
            res = simulate_trace(str(p), ALL, PROFILE)
        except UsageError as e:
            assert "\n" not in str(e)
        else:
            assert res.records == len(events)


HOOKS = {"kernel_fpu_begin": "k, cpu, ctx", "switch_fpu": "k, cpu, prev, next", "regs_live": "state, t, cpu",
         "irq_fpu_usable": "state, cpu, ctx, from_user"}
BODIES = ["pass", "return 1 / 0", "sys.exit(2)", "return 'x'", "return 3.5", "k[0] = 'x'", "raise ValueError('bad')",
          "return linux.DESIGN.{hook}({args})"]
TOPLEVEL = st.sampled_from(["", "sys.exit()", "sys.exit(0)", "sys.exit('bye')", "raise RuntimeError('boom')",
                            "import nonexistent_module", "def (:", "DESIGN = 3", "DESIGN = None", "DESIGNS = []",
                            "DESIGNS = [linux.DESIGN, 'x']", "DESIGN = linux.DESIGN.variant(name='')"])


@st.composite
def design_file(draw) -> str:
    lines = ["import sys", "from fpustate.designs import linux"]
    lines.append(draw(TOPLEVEL) if draw(st.sampled_from([True, False, False])) else "")
    hook = draw(st.sampled_from(sorted(HOOKS)))
    args = HOOKS[hook]
    if draw(st.booleans()):
        args = draw(st.sampled_from(["k", "*a", args + ", extra", args]))
    body = draw(st.sampled_from(BODIES)).format(hook=hook, args=HOOKS[hook])
    lines += [f"def h({args}):", f"    {body}"]
    value = draw(st.sampled_from(["h", "h", "h", "'not a function'", "None"]))
    if draw(st.sampled_from([True, True, True, False])):
        lines.append(f"DESIGN = linux.DESIGN.variant(name='fuzz', {hook}={value})")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(design_file())
def test_design_files_load_or_fail_in_one_line(text):
    """Any design file loads, or is one InvalidDesign line; checking it briefly ends in 0, 1, 2 or 3, one line on 2."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "design.py"
        p.write_text(text)
        try:
            designs = load_design_file(str(p))
        except InvalidDesign as e:
            assert "\n" not in str(e)
            return
        assert designs
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = run(["check", "--design-file", str(p), "--scenario", "small", "--max-states", "40"])
        assert status in (0, 1, 2, 3), (status, err.getvalue())
        if status == 2:
            assert len(err.getvalue().strip().splitlines()) == 1 and out.getvalue() == ""
