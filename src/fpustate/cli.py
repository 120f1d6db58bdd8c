"""The `fpustate` command line: `designs` and `check`.

Exit status: 0 every property holds, 1 a property is violated, 2 bad input
(one line on stderr, no traceback).
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import fields
from typing import Optional

import click

from . import __version__
from .check.explore import LOOK_PAST, Explorer, Result
from .check.trace import format_trace, index_path
from .config import Scenario, scenario_from_env
from .designs import DESIGNS, get
from .designs.loader import hook_failure, load_design_file
from .errors import FpustateError, UsageError
from .kernel.machine import initial_state, make_model
from .kernel.properties import BY_NAME, PROPERTIES
from .kernel.state import NULL
from .search_options import engine_from_flags, engine_options, footnotes, make_checkpoint, search_json

PRESETS = {
    "default": {},
    "small": dict(kthreads=0, execs=0),
    "lifecycle": dict(forks=1, execs=1, exits=1),
    "pkru": dict(kthreads=0, execs=0, pkru_writes=True),
    "signals": dict(kthreads=0, execs=0, values=1, signals=1, corrupt_frames=True),
    "ptrace": dict(kthreads=0, execs=0, ptrace_writes=1, ptrace_reads=True, readers=True, pkru_writes=True),
}


def _scenario_options(f):
    """One CLI option per Scenario field (FPUSTATE_<FIELD> sets the default)."""
    for fld in reversed(fields(Scenario)):
        name = "--" + fld.name.replace("_", "-")
        if fld.type in ("bool", bool):
            f = click.option(name + "/--no-" + fld.name.replace("_", "-"), fld.name, default=None,
                             help=f"scenario: {fld.name} (default {fld.default})")(f)
        else:
            f = click.option(name, fld.name, type=int, default=None, metavar="N",
                             help=f"scenario: {fld.name} (default {fld.default})")(f)
    return f


def _scenario(preset: str, knobs: dict) -> Scenario:
    """The preset, then FPUSTATE_* variables, then the flags given on the command line."""
    if preset not in PRESETS:
        raise UsageError(f"--scenario: unknown preset {preset!r}; available: {', '.join(PRESETS)}")
    base = scenario_from_env(Scenario(**PRESETS[preset]))
    return base.replace(**{k: v for k, v in knobs.items() if v is not None})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fpustate")
def main() -> None:
    """Model-check the x86 FPU state machine of the Linux kernel."""


@main.command("designs")
def designs_cmd() -> None:
    """List the built-in designs."""
    width = max(len(n) for n in DESIGNS)
    for name, d in DESIGNS.items():
        click.echo(f"{name:<{width}}  {d.kernel:<28}  {d.summary}")


class _Progress:
    """A rich progress line on a terminal (stderr); nothing when output is redirected."""

    def __init__(self) -> None:
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                console=Console(stderr=True), transient=True)

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def callback(self, design: str):
        if not self.bar:
            return None
        task = self.bar.add_task(design, total=None)

        def cb(expanded: int, states: int, depth: int) -> None:
            self.bar.update(task, description=f"{design}: {states:,} states, depth {depth}")

        return cb


def _verdict(r: Result) -> str:
    if r.violations:
        return "VIOLATED"
    mark = "*" if r.store == "fingerprint" else ""  # explained under the table (search_options.footnotes)
    return f"holds{mark}" if r.complete else f"holds so far (interrupted){mark}"


def _row(r: Result) -> list[str]:
    v = r.violations
    prop = "-"
    steps = "-"
    if v:
        prop = v[0].prop.name + (f" (+{len(v) - 1} more)" if len(v) > 1 else "")
        steps = str(len(v[0].path))
    return [r.design, f"{r.states:,}", f"{r.transitions:,}", str(r.depth), f"{r.seconds:.1f}",
            f"{r.states_per_second:,.0f}", _verdict(r), prop, steps]


def _table(rows: list[list[str]]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    numeric = ("states", "transitions", "depth", "seconds", "states/s", "steps")
    for name in ("design", "states", "transitions", "depth", "seconds", "states/s", "verdict",
                 "violated property", "steps"):
        # Fixed minimum widths for the timing columns keep the layout stable run to run.
        width = {"seconds": 7, "states/s": 9}.get(name)
        t.add_column(name, justify="right" if name in numeric else "left", no_wrap=True, min_width=width)
    for r in rows:
        t.add_row(*r)
    console = Console(width=200, color_system=None, force_terminal=False, record=True, file=io.StringIO())
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


@main.command("check")
@click.argument("design_names", nargs=-1, metavar="[DESIGN]...")
@click.option("--scenario", "preset", default="default", metavar="NAME",
              help=f"scenario preset: {', '.join(PRESETS)} (flags below override it)")
@_scenario_options
@click.option("--property", "props", multiple=True, metavar="NAME",
              help="check only this property (repeatable); default: all")
@click.option("--trace", is_flag=True, help="print the shortest counterexample of each failing design")
@click.option("--trace-all", is_flag=True, help="print the shortest counterexample of every violated property")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--look-past", type=int, default=LOOK_PAST, show_default=True, metavar="N",
              help="BFS layers explored after the first violation, to find other properties' counterexamples")
@click.option("--max-states", type=int, default=0, metavar="N", help="stop after N states (0: no limit)")
@click.option("--design-file", "design_files", multiple=True, metavar="FILE",
              help="check the design(s) a Python file defines (DESIGN or DESIGNS), e.g. a variant of linux")
@click.option("--replay", "replay_path", metavar="PATH",
              help="replay an index path (e.g. 1/10/11/3/2) printed under a counterexample, for one DESIGN")
@engine_options
def check_cmd(design_names, preset, props, trace, trace_all, as_json, look_past, max_states, design_files,
              replay_path, symmetry, store, checkpoint_dir, resume_dir, **knobs) -> None:
    """Explore every interleaving of DESIGN (default: all built-in designs)."""
    scenario = _scenario(preset, knobs)
    engine = engine_from_flags(symmetry, store, checkpoint_dir, resume_dir)
    if look_past < 0 or max_states < 0:
        raise UsageError("--look-past and --max-states must be 0 or more")
    loaded = [d for f in design_files for d in load_design_file(f)]
    designs = [get(n) for n in design_names]
    if not designs and not loaded:
        designs = list(DESIGNS.values())
    designs += loaded
    properties = PROPERTIES
    if props:
        for p in props:
            if p not in BY_NAME:
                raise UsageError(f"--property: unknown property {p!r}; available: {', '.join(BY_NAME)}")
        properties = tuple(p for p in PROPERTIES if p.name in props)

    if replay_path is not None:
        if len(designs) != 1:
            raise UsageError("--replay needs exactly one DESIGN")
        sys.exit(_replay(make_model(designs[0], scenario), replay_path, properties))

    results = []
    with _Progress() as progress:
        for d in designs:
            m = make_model(d, scenario)
            ex = Explorer(m, properties, symmetry=engine["symmetry"], store=engine["store"])
            try:
                r = ex.run(progress=progress.callback(d.name), max_states=max_states, look_past=look_past,
                           checkpoint=make_checkpoint(engine, ex))
            except FpustateError:
                raise
            except Exception as e:  # a user-written hook failed: one line, exit 2
                if d not in loaded:
                    raise
                raise hook_failure(e, d) from None
            for v in r.violations:
                ex.trace(v)
            results.append((m, ex, r))
            if not r.complete and not r.stopped_after_violation and not max_states:
                break  # interrupted: report what we have

    if as_json:
        click.echo(json.dumps(_json(scenario, results), indent=2))
    else:
        click.echo(f"scenario: {scenario.describe()}")
        click.echo(_table([_row(r) for _, _, r in results]))
        for line in footnotes([r for _, _, r in results]):
            click.echo(line)
        for m, ex, r in results:
            chosen = r.violations if trace_all else r.violations[:1] if trace else []
            for v in chosen:
                click.echo("")
                click.echo(format_trace(m, v.path, initial_state(m), v))
                click.echo(f"  index path: {index_path(ex, v)}")
    interrupted = any(not r.complete and not r.stopped_after_violation and not max_states for _, _, r in results)
    if any(r.violations for _, _, r in results):
        sys.exit(1)
    if interrupted:
        click.echo("fpustate: interrupted; the results above are partial"
                   + (f"; continue with --resume {engine['root']}" if engine["root"] else ""), err=True)
        sys.exit(130)
    sys.exit(0)


@main.command("bugs")
@click.option("--trace", is_flag=True, help="print each bug's shortest counterexample")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@engine_options
def bugs_cmd(trace, as_json, symmetry, store, checkpoint_dir, resume_dir) -> None:
    """Check the regression suite of real kernel FPU bugs: each mutant must violate its
    property, and each fixed design must hold every property on the same scenario."""
    from .check.bugs import BUGS, run_bug

    engine = engine_from_flags(symmetry, store, checkpoint_dir, resume_dir)
    cache: dict = {}
    results = []
    with _Progress() as progress:
        for bug in BUGS:
            results.append(run_bug(bug, cache, progress.callback, symmetry=symmetry, store=store,
                                   checkpoint=lambda ex, tag: make_checkpoint(engine, ex, tag)))
    if as_json:
        click.echo(json.dumps([_bug_json(b) for b in results], indent=2))
    else:
        click.echo(_bugs_table(results))
        fixed = list({id(b.fixed): b.fixed for b in results}.values())
        click.echo("")
        click.echo(footnotes(fixed)[0])
        if fixed and fixed[0].store == "fingerprint":
            big = max(fixed, key=lambda r: r.states)
            click.echo(f"* fixed designs: 64-bit fingerprints, expected missed states at most {big.expected_omissions:.1e} "
                       f"(n^2/2^65 for the largest run, n = {big.states:,}, as SPIN's hash compaction)")
        for b in results:
            if trace and b.found:
                m = b.explorer.model
                click.echo("")
                click.echo(f"{b.bug.name} ({b.bug.commit}): {b.bug.why}")
                click.echo(format_trace(m, b.found.path, initial_state(m), b.found))
    sys.exit(0 if all(b.passed for b in results) else 1)


def _bugs_table(results) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("bug", "commit", "mutant", "property violated", "steps", "states", "seconds", "fixed design", "verdict"):
        t.add_column(name, justify="right" if name in ("steps", "states", "seconds") else "left", no_wrap=True,
                     min_width={"seconds": 7}.get(name))
    for b in results:
        fixed = f"{b.bug.fixed}: " + ("VIOLATED" if b.fixed.violations else _verdict(b.fixed))
        t.add_row(b.bug.name, b.bug.commit, b.bug.mutant, b.bug.prop, str(len(b.found.path)) if b.found else "-",
                  f"{b.mutant.states:,}", f"{b.mutant.seconds:.1f}", fixed,
                  "ok" if b.passed else ("NOT FOUND" if not b.found else "FIXED DESIGN FAILS"))
    console = Console(width=250, color_system=None, force_terminal=False, record=True, file=io.StringIO())
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def _bug_json(b) -> dict:
    return {"bug": b.bug.name, "commit": b.bug.commit, "mutant": b.bug.mutant, "property": b.bug.prop,
            "scenario": b.bug.scenario, "found": b.found is not None,
            "steps": len(b.found.path) if b.found else None, "detail": b.found.detail if b.found else None,
            "states": b.mutant.states, "seconds": round(b.mutant.seconds, 3), "fixed": b.bug.fixed,
            "fixed_holds": b.fixed.ok and b.fixed.complete, "fixed_states": b.fixed.states, "passed": b.passed,
            **search_json(b.fixed)}


@main.command("simulate")
@click.argument("traces", nargs=-1, metavar="[TRACE]...")
@click.option("--workload", "workloads", multiple=True, metavar="NAME",
              help="a seeded synthetic workload instead of a trace (repeatable): "
                   "pingpong, hackbench, kthread-bounce, crypto, signals, ptrace")
@click.option("--design", "design_names", multiple=True, metavar="NAME",
              help="design to replay (repeatable; default: eager, lazy, strawman, linux)")
@click.option("--design-file", "design_files", multiple=True, metavar="FILE", help="also replay the design(s) in FILE")
@click.option("--profile", "profile_name", default="spr-user-hot", show_default=True, metavar="NAME|FILE",
              help="cost profile: a built-in name or a TOML file (copy one from fpustate/sim/profiles)")
@click.option("--fpu-use", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True, metavar="P",
              help="probability that a user slice executes FPU instructions (traces without x86_fpu events, workloads)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for --fpu-use and workloads")
@click.option("--length", type=click.IntRange(1, 10_000_000), default=20_000, show_default=True, metavar="N",
              help="rounds of a generated workload")
@click.option("--cpus", type=click.IntRange(0, 27), default=0, metavar="N",
              help="CPUs of the simulated machine (default: from the trace)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--csv", "as_csv", is_flag=True, help="one CSV row per trace and design")
@click.option("--plot", "plot_path", metavar="FILE.png", help="plot each design's cycles against the bound")
def simulate_cmd(traces, workloads, design_names, design_files, profile_name, fpu_use, seed, length, cpus, as_json,
                 as_csv, plot_path) -> None:
    """Replay scheduler traces (tracefs, trace-cmd report or perf script text) or synthetic
    workloads through the designs: saves, restores, skipped restores, #NM traps, CR0.TS writes
    and cycles, against the clairvoyant bound; conformance of linux with the kernel when the
    trace has x86_fpu events."""
    from .sim import report
    from .sim.costs import load_profile
    from .sim.run import simulate_trace, simulate_workload

    if not traces and not workloads:
        raise UsageError("simulate: give a TRACE file or --workload NAME")
    if as_json and as_csv:
        raise UsageError("simulate: --json and --csv are exclusive")
    profile = load_profile(profile_name)
    if plot_path:
        report.check_plot(plot_path)
    designs = [get(n) for n in (design_names or ("eager", "lazy", "strawman", "linux"))]
    loaded = [d for f in design_files for d in load_design_file(f)]
    designs += loaded
    for t in traces:
        if not os.path.isfile(t):
            raise UsageError(f"{t}: no such trace file")
    results = []
    try:
        with _FileProgress() as progress:
            for t in traces:
                results.append(simulate_trace(t, designs, profile, fpu_use, seed, progress.callback(t), cpus))
                if results[-1].interrupted:
                    break
            for w in workloads if not (results and results[-1].interrupted) else ():
                results.append(simulate_workload(w, designs, profile, fpu_use, seed, length))
                if results[-1].interrupted:
                    break
    except FpustateError:
        raise
    except Exception as e:  # a user-written hook failed: one line, exit 2
        culprit = next((d for d in loaded if _raised_in(e, d)), None)
        if culprit is None:
            raise
        raise hook_failure(e, culprit) from None
    if plot_path:
        report.plot(results, plot_path)
    if as_json:
        click.echo(json.dumps([report.as_json(r, profile) for r in results], indent=2))
    elif as_csv:
        click.echo(report.as_csv(results), nl=False)
    else:
        click.echo("\n\n".join(report.table(r, profile) for r in results))
        if plot_path:
            click.echo(f"\nplot: {plot_path}")
    if results and results[-1].interrupted:
        click.echo("fpustate: interrupted; the counts above are partial", err=True)
        sys.exit(130)


def _raised_in(e: BaseException, d) -> bool:
    """Whether exception e came from one of design d's hook functions."""
    import traceback

    files = {getattr(getattr(h, "__code__", None), "co_filename", None) for h in vars(d).values() if callable(h)}
    return any(frame.filename in files for frame in traceback.extract_tb(e.__traceback__))


class _FileProgress(_Progress):
    """A rich progress bar over the bytes of each trace (stderr, terminals only)."""

    def __init__(self) -> None:
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)

    def callback(self, name: str):
        if not self.bar:
            return None
        task = self.bar.add_task(os.path.basename(name), total=None)

        def cb(done: int, total: int) -> None:
            self.bar.update(task, completed=done, total=total)

        return cb


@main.command("explain")
@click.argument("design_name", metavar="DESIGN")
@click.option("--scenario", "preset", default="small", metavar="NAME",
              help=f"scenario preset: {', '.join(PRESETS)} (default: small; flags below override it)")
@_scenario_options
@click.option("--max-states", type=int, default=0, metavar="N", help="stop after N states (0: no limit)")
def explain_cmd(design_name, preset, max_states, **knobs) -> None:
    """Report which of Andy Lutomirski's state classes (1, 2a, 2b) DESIGN reaches, and what moves tasks between them."""
    from .check.explain import explain, format_explanation

    m = make_model(get(design_name), _scenario(preset, knobs))
    click.echo(format_explanation(m, explain(m, max_states=max_states)))


def _replay(m, path_text: str, properties) -> int:
    """Print the replayed steps, the final state and the properties it violates."""
    from .check.trace import format_steps, replay, state_summary

    path = replay(m, path_text)
    init = initial_state(m)
    click.echo(f"{m.design.name}: replay of {path_text} ({m.design.kernel}; {m.scenario.describe()})")
    click.echo("\n".join(format_steps(m, path, init)))
    final = path[-1][1] if path else init
    click.echo("final state:")
    click.echo("\n".join("  " + line for line in state_summary(m, final).splitlines()))
    bad = [(p, p.check(m, final)) for p in properties]
    bad = [(p, detail) for p, detail in bad if detail is not None]
    for p, detail in bad:
        click.echo(f"  violated: {p.name}: {detail}")
    if not bad:
        click.echo("  every property holds in the final state")
    return 1 if bad else 0


def _json(scenario: Scenario, results) -> dict:
    from .check.trace import changes, describe

    out = {"scenario": {f.name: getattr(scenario, f.name) for f in fields(Scenario)}, "designs": []}
    for m, ex, r in results:
        viols = []
        for v in r.violations:
            steps = []
            prev = initial_state(m)
            for a, s in v.path:
                who, ctx, fn = describe(m, a, prev)
                steps.append({"cpu": None if a.cpu == NULL else a.cpu, "task": who, "context": ctx,
                              "function": fn, "changes": changes(m, prev, s)})
                prev = s
            viols.append({"property": v.prop.name, "kind": v.prop.kind, "doc": v.prop.doc,
                          "detail": v.detail, "steps": len(v.path), "index_path": index_path(ex, v),
                          "trace": steps})
        out["designs"].append({
            "design": r.design, "kernel": m.design.kernel, "states": r.states, "transitions": r.transitions,
            "depth": r.depth, "seconds": round(r.seconds, 3), "states_per_second": round(r.states_per_second),
            "complete": r.complete, "stopped_after_violation": r.stopped_after_violation,
            "verdict": "violated" if r.violations else "holds", "violations": viols, **search_json(r),
        })
    return out


def run(argv: Optional[list[str]] = None) -> int:
    """Entry point: click in non-standalone mode, every error as one line, exit 2."""
    try:
        main.main(args=argv, prog_name="fpustate", standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    except click.exceptions.Abort:
        click.echo("fpustate: interrupted", err=True)
        return 130
    except click.ClickException as e:
        cmd = f" {e.ctx.command_path.split(' ', 1)[1]}" if getattr(e, "ctx", None) and " " in e.ctx.command_path else ""
        click.echo(f"fpustate{cmd}: {e.format_message()} (see 'fpustate{cmd} --help')", err=True)
        return 2
    except FpustateError as e:
        click.echo(f"fpustate: {e}", err=True)
        return 2
    return 0


def entry() -> None:
    sys.exit(run())
