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

from . import __version__, output, usercode
from .check.explore import LOOK_PAST, Result
from .check.parallel import ENGINES, check_engine_flags, make_explorer
from .check.trace import format_trace, index_path, model_tag
from .check.verdict import EXIT_CAPPED, EXIT_INTERRUPTED, check_status, incomplete, json_verdict, verdict
from .config import PRESETS, Scenario, knob_help, scenario_from_env
from .designs import DESIGNS, get
from .errors import FpustateError, UsageError
from .kernel.machine import initial_state, make_model, unsupported
from .kernel.properties import BY_NAME, PROPERTIES
from .search_options import engine_from_flags, engine_options, footnotes, make_checkpoint, search_json


def _scenario_options(preset: str = "default"):
    """One CLI option per Scenario field; its help says what it models, its range, the
    default the command really uses (the preset's) and the FPUSTATE_<FIELD> variable."""
    defaults = Scenario(**PRESETS[preset])

    def decorate(f):
        for fld in reversed(fields(Scenario)):
            name = "--" + fld.name.replace("_", "-")
            help_text = knob_help(fld.name, getattr(defaults, fld.name))
            if fld.type in ("bool", bool):
                f = click.option(name + "/--no-" + fld.name.replace("_", "-"), fld.name, default=None,
                                 help=help_text)(f)
            else:
                f = click.option(name, fld.name, type=int, default=None, metavar="N", help=help_text)(f)
        return f

    return decorate


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


def _row(r: Result) -> list[str]:
    v = r.violations
    prop = "-"
    steps = "-"
    if v:
        prop = v[0].prop.name + (f" (+{len(v) - 1} more)" if len(v) > 1 else "")
        steps = str(len(v[0].path))
    return [r.design, f"{r.states:,}", f"{r.transitions:,}", str(r.depth), f"{r.seconds:.1f}",
            f"{r.states_per_second:,.0f}", verdict(r), prop, steps]


CHECK_COLUMNS = ("design", "states", "transitions", "depth", "seconds", "states/s", "verdict", "violated property",
                 "steps")


def _check_outputs(**paths) -> None:
    """Fail before any work if a report file (--html, --junit) cannot be written."""
    from .report.output import check_writable

    for option, path in paths.items():
        if path is not None:
            check_writable(path, f"--{option}")


def _write(path: str, option: str, data) -> None:
    from .report.output import write_atomic

    write_atomic(path, data, option)


def _table(rows: list[list[str]]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    numeric = ("states", "transitions", "depth", "seconds", "states/s", "steps")
    for name in CHECK_COLUMNS:
        # Fixed minimum widths for the timing columns keep the layout stable run to run.
        width = {"seconds": 7, "states/s": 9}.get(name)
        t.add_column(name, justify="right" if name in numeric else "left", no_wrap=True, min_width=width)
    for r in rows:
        t.add_row(*r)
    console = Console(width=200, color_system=None, force_terminal=False, record=True, file=io.StringIO())
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def _engine_options(f):
    """--jobs, --engine and --ray-address: where the search runs (check and bugs)."""
    f = click.option("--ray-address", metavar="ADDR", default=None,
                     help="with --engine ray: an existing Ray cluster (e.g. ray://head:10001 or auto); "
                          "default: start a local one")(f)
    f = click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="local: processes on this machine; ray: Ray actors (pip install 'fpustate[ray]')")(f)
    f = click.option("--jobs", type=int, default=1, show_default=True, metavar="N",
                     help="partitions searched in parallel (0: every core, or every CPU of the Ray cluster; "
                          "1: the sequential search, which alone has the fingerprint store and checkpoints)")(f)
    return f


@main.command("check")
@click.argument("design_names", nargs=-1, metavar="[DESIGN]...")
@click.option("--scenario", "preset", default="default", metavar="NAME",
              help=f"scenario preset: {', '.join(PRESETS)} (flags below override it)")
@_scenario_options()
@click.option("--property", "props", multiple=True, metavar="NAME",
              help="check only this property (repeatable); default: all")
@click.option("--trace", is_flag=True, help="print the shortest counterexample of each failing design")
@click.option("--trace-all", is_flag=True, help="print the shortest counterexample of every violated property")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--look-past", type=int, default=LOOK_PAST, show_default=True, metavar="N",
              help="BFS layers explored after the first violation, to find other properties' counterexamples")
@click.option("--max-states", type=int, default=0, metavar="N",
              help="stop after N states (0: no limit); a capped run that found no violation is "
                   "'incomplete' and exits with status 3")
@click.option("--design-file", "design_files", multiple=True, metavar="FILE",
              help="check the design(s) a Python file defines (DESIGN or DESIGNS), e.g. a variant of linux; "
                   "the file is Python and runs with your rights")
@click.option("--replay", "replay_path", metavar="PATH",
              help="replay an index path printed under a counterexample (e.g. 3f9c2a:1/10/11/3/2; the tag "
                   "before ':' names the design and scenario, and a path from another one is refused), for one DESIGN")
@click.option("--html", "html_path", metavar="FILE",
              help="also write a self-contained HTML page: the table and a CPU-lane timeline per counterexample")
@click.option("--junit", "junit_path", metavar="FILE",
              help="also write JUnit XML: one test case per design and property, the counterexample as failure")
@_engine_options
@engine_options
@click.option("--walks", type=int, default=0, metavar="N",
              help="instead of the exhaustive search, N random walks (for scenarios too big to exhaust)")
@click.option("--depth", type=int, default=None, metavar="D", help="with --walks: steps per walk (default 100)")
@click.option("--seed", type=int, default=None, metavar="S", help="with --walks: the walks' seed (default 0)")
def check_cmd(design_names, preset, props, trace, trace_all, as_json, look_past, max_states, design_files,
              replay_path, html_path, junit_path, jobs, engine, ray_address, walks, depth, seed, symmetry, store,
              checkpoint_dir, resume_dir, **knobs) -> None:
    """Explore every interleaving of DESIGN (default: all built-in designs).

    \b
    Exit status: 0 every property holds (explored to the fixpoint), 1 a property
    is violated, 2 bad input (one line on stderr), 3 no violation but --max-states
    stopped a run before the fixpoint ('incomplete'), 130 interrupted (Ctrl-C)."""
    scenario = _scenario(preset, knobs)
    _check_outputs(html=html_path, junit=junit_path)
    search = engine_from_flags(symmetry, store, checkpoint_dir, resume_dir)
    if search["root"] and (jobs != 1 or engine != "local"):
        raise UsageError("--checkpoint and --resume work with the sequential search (--jobs 1, the default)")
    if look_past < 0 or max_states < 0:
        raise UsageError("--look-past and --max-states must be 0 or more")
    loaded = [d for f in design_files for d in usercode.load_design_file(f)]
    designs = [get(n) for n in design_names]
    if not designs and not loaded:
        designs = list(DESIGNS.values())
        for d in [d for d in designs if unsupported(d, scenario)]:  # named ones are refused by make_model
            click.echo(f"fpustate: skipped: {unsupported(d, scenario)}", err=True)
            designs.remove(d)
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
        if html_path or junit_path:
            raise UsageError("--html and --junit report a check; --replay prints one path (drop them)")
        try:
            status = _replay(make_model(designs[0], scenario), replay_path, properties)
        except FpustateError:
            raise
        except (Exception, SystemExit) as e:  # a user-written hook failed: one line, exit 2
            if designs[0] not in loaded:
                raise
            raise usercode.hook_error(e, designs[0]) from None
        sys.exit(status)
    if walks or depth is not None or seed is not None:
        if html_path or junit_path:
            raise UsageError("--html and --junit report an exhaustive check; drop them with --walks")
        sys.exit(_check_walks(designs, loaded, scenario, properties, walks, depth, seed, jobs, engine, trace,
                              trace_all, as_json))
    check_engine_flags(jobs, engine, ray_address)

    results = []
    with _Progress() as progress:
        for d in designs:
            m = make_model(d, scenario)
            ex = make_explorer(m, properties, jobs, engine, ray_address, symmetry=search["symmetry"],
                               store=search["store"])
            ck = make_checkpoint(search, ex)
            try:
                r = ex.run(progress=progress.callback(d.name), max_states=max_states, look_past=look_past,
                           **({"checkpoint": ck} if ck else {}))
            except FpustateError:
                raise
            except (Exception, SystemExit) as e:  # a user-written hook failed: one line, exit 2
                if d not in loaded:
                    raise
                raise usercode.hook_error(e, d) from None
            for v in r.violations:
                ex.trace(v)
            results.append((m, ex, r))
            if r.interrupted:
                break  # Ctrl-C: report what we have

    if html_path:
        from .report.html import check_page

        _write(html_path, "--html", check_page(scenario, results, CHECK_COLUMNS, [_row(r) for _, _, r in results],
                                               verdict))
    if junit_path:
        from .report.junit import check_xml

        _write(junit_path, "--junit", check_xml(results, properties, max_states))
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
                click.echo(f"  index path: {model_tag(m)}:{index_path(ex, v)}")
    status = check_status([r for _, _, r in results])
    if status == EXIT_INTERRUPTED and search["root"]:
        click.echo(f"fpustate: continue with --resume {search['root']}", err=True)
    sys.exit(status)


def _check_walks(designs, loaded, scenario, properties, walks, depth, seed, jobs, engine, trace, trace_all,
                 as_json) -> int:
    """`check --walks N`: random walks per design; the exit status as for the exhaustive check."""
    from .check import walks as W

    if walks <= 0:
        raise UsageError("--depth and --seed go with --walks N (N of 1 or more)")
    depth = 100 if depth is None else depth
    if depth <= 0:
        raise UsageError(f"--depth: {depth} steps; give 1 or more")
    if engine != "local":
        raise UsageError("--walks runs on this machine's cores (--jobs); --engine ray is for the exhaustive search")
    check_engine_flags(jobs, engine, None)
    from .check.parallel import default_jobs

    results = []
    for d in designs:
        m = make_model(d, scenario)
        try:
            r = W.run_walks(m, properties, walks, depth, seed or 0, jobs or default_jobs())
        except (Exception, SystemExit) as e:  # a user-written hook failed: one line, exit 2
            if d not in loaded:
                raise
            raise usercode.hook_error(e, d) from None
        results.append((m, r))
        if not r.complete:
            break
    if as_json:
        click.echo(json.dumps([W.as_json(m, r) for m, r in results], indent=2))
    else:
        click.echo(f"scenario: {scenario.describe()}; {walks:,} random walks of up to {depth} steps, seed {seed or 0}")
        click.echo(W.table([r for _, r in results]))
        for m, r in results:
            if r.violation and (trace or trace_all):
                click.echo("")
                click.echo(format_trace(m, r.violation.path, initial_state(m), r.violation))
                click.echo(f"  found by walk {r.walk} after {r.found_steps} steps, shrunk to {len(r.violation.path)}")
                click.echo(f"  index path: {model_tag(m)}:{r.index_path}")
    if any(r.violation for _, r in results):
        return 1
    if not all(r.complete for _, r in results):
        click.echo("fpustate: interrupted; the results above are partial", err=True)
        return 130
    return 0


@main.command("bugs")
@click.option("--trace", is_flag=True, help="print each bug's shortest counterexample")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--html", "html_path", metavar="FILE",
              help="also write a self-contained HTML page: the table and every bug's counterexample timeline")
@click.option("--junit", "junit_path", metavar="FILE", help="also write JUnit XML: one test case per bug")
@_engine_options
@engine_options
def bugs_cmd(trace, as_json, html_path, junit_path, jobs, engine, ray_address, symmetry, store, checkpoint_dir,
             resume_dir) -> None:
    """Check the regression suite of real kernel FPU bugs: each mutant must violate its
    property, and each fixed design must hold every property on the same scenario."""
    from .check.bugs import BUGS, run_bug

    _check_outputs(html=html_path, junit=junit_path)
    check_engine_flags(jobs, engine, ray_address)
    search = engine_from_flags(symmetry, store, checkpoint_dir, resume_dir)
    if search["root"] and (jobs != 1 or engine != "local"):
        raise UsageError("--checkpoint and --resume work with the sequential search (--jobs 1, the default)")

    def explorer(m, properties):
        return make_explorer(m, properties, jobs, engine, ray_address, symmetry=symmetry, store=store)
    cache: dict = {}
    results = []
    with _Progress() as progress:
        for bug in BUGS:
            results.append(run_bug(bug, cache, progress.callback, explorer,
                                   checkpoint=(lambda ex, tag: make_checkpoint(search, ex, tag)) if search["root"] else None))
            if results[-1].mutant.interrupted or results[-1].fixed.interrupted:
                break  # Ctrl-C: report what we have
    if html_path:
        from .report.html import bugs_page

        _write(html_path, "--html", bugs_page(results, BUGS_COLUMNS, [_bug_row(b) for b in results]))
    if junit_path:
        from .report.junit import bugs_xml

        _write(junit_path, "--junit", bugs_xml(results))
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
    if any(b.mutant.interrupted or b.fixed.interrupted for b in results):
        click.echo("fpustate: interrupted; the results above are partial", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0 if all(b.passed for b in results) else 1)


BUGS_COLUMNS = ("bug", "commit", "mutant", "property violated", "steps", "states", "seconds", "fixed design",
                "verdict")


def _bug_row(b) -> list[str]:
    fixed = f"{b.bug.fixed}: " + verdict(b.fixed)
    cut_short = b.mutant.interrupted or b.fixed.interrupted
    return [b.bug.name, b.bug.commit, b.bug.mutant, b.bug.prop, str(len(b.found.path)) if b.found else "-",
            f"{b.mutant.states:,}", f"{b.mutant.seconds:.1f}", fixed,
            "ok" if b.passed else "INCOMPLETE" if cut_short else
            ("NOT FOUND" if not b.found else "FIXED DESIGN FAILS")]


def _bugs_table(results) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in BUGS_COLUMNS:
        t.add_column(name, justify="right" if name in ("steps", "states", "seconds") else "left", no_wrap=True,
                     min_width={"seconds": 7}.get(name))
    for b in results:
        t.add_row(*_bug_row(b))
    console = Console(width=250, color_system=None, force_terminal=False, record=True, file=io.StringIO())
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def _bug_json(b) -> dict:
    return {"bug": b.bug.name, "commit": b.bug.commit, "mutant": b.bug.mutant, "property": b.bug.prop,
            "scenario": b.bug.scenario, "found": b.found is not None,
            "steps": len(b.found.path) if b.found else None, "detail": b.found.detail if b.found else None,
            "index_path": (f"{model_tag(b.explorer.model)}:{index_path(b.explorer, b.found)}" if b.found else None),
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
@click.option("--design-file", "design_files", multiple=True, metavar="FILE", help="also replay the design(s) in FILE (Python; it runs with your rights)")
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
@click.option("--html", "html_path", metavar="FILE", help="also write a self-contained HTML page: the tables and the plot")
def simulate_cmd(traces, workloads, design_names, design_files, profile_name, fpu_use, seed, length, cpus, as_json,
                 as_csv, plot_path, html_path) -> None:
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
    _check_outputs(html=html_path)
    designs = [get(n) for n in (design_names or ("eager", "lazy", "strawman", "linux"))]
    loaded = [d for f in design_files for d in usercode.load_design_file(f)]
    designs += loaded
    for t in traces:
        if not os.path.isfile(t):
            raise UsageError(f"{t}: no such trace file" if not os.path.exists(t) else
                             f"{t}: not a regular file (the trace is read twice: pass a file, not a pipe)")
    results = []
    skip = not design_names and not design_files  # the default designs: those without KVM are left out of KVM runs
    try:
        with _FileProgress() as progress:
            for t in traces:
                results.append(simulate_trace(t, designs, profile, fpu_use, seed, progress.callback(t), cpus,
                                              skip_without_kvm=skip))
                if results[-1].interrupted:
                    break
            for w in workloads if not (results and results[-1].interrupted) else ():
                results.append(simulate_workload(w, designs, profile, fpu_use, seed, length, skip_without_kvm=skip))
                if results[-1].interrupted:
                    break
    except FpustateError:
        raise
    except (Exception, SystemExit) as e:  # a user-written hook failed: one line, exit 2
        culprit = usercode.culprit(e, loaded)
        if culprit is None:
            raise
        raise usercode.hook_error(e, culprit) from None
    for line in dict.fromkeys(line for r in results for line in r.skipped_designs):
        click.echo(f"fpustate: skipped: {line}", err=True)
    if plot_path:
        report.plot(results, plot_path)
    if html_path and results:
        from .report.html import simulate_page

        _write(html_path, "--html", simulate_page(results, profile))
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
@_scenario_options("small")
@click.option("--max-states", type=int, default=0, metavar="N", help="stop after N states (0: no limit)")
@click.option("--html", "html_path", metavar="FILE", help="also write a self-contained HTML page with the class graph (SVG)")
def explain_cmd(design_name, preset, max_states, html_path, **knobs) -> None:
    """Report which of Andy Lutomirski's state classes (1, 2a, 2b) DESIGN reaches, and what moves tasks between them."""
    from .check.explain import explain, format_explanation

    m = make_model(get(design_name), _scenario(preset, knobs))
    _check_outputs(html=html_path)
    e = explain(m, max_states=max_states)
    if html_path:
        from .report.html import explain_page

        _write(html_path, "--html", explain_page(m, e))
    click.echo(format_explanation(m, e))
    if e.interrupted:  # the classes of a partial exploration are a lower bound: say so, as check does
        click.echo("fpustate: interrupted; the results above are partial", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not e.complete:
        click.echo("fpustate: --max-states stopped the exploration before the fixpoint; the classes above "
                   "are those reached so far (exit status 3)", err=True)
        sys.exit(EXIT_CAPPED)


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
    from .check.trace import steps as trace_steps

    out = {"scenario": {f.name: getattr(scenario, f.name) for f in fields(Scenario)}, "designs": []}
    for m, ex, r in results:
        viols = []
        for v in r.violations:
            steps = [{"cpu": st.cpu, "task": st.actor, "context": st.context, "function": st.function,
                      "changes": st.changes} for st in trace_steps(m, v.path, initial_state(m))]
            viols.append({"property": v.prop.name, "kind": v.prop.kind, "doc": v.prop.doc,
                          "detail": v.detail, "steps": len(v.path), "index_path": index_path(ex, v),
                          "replay_path": f"{model_tag(m)}:{index_path(ex, v)}",
                          "trace": steps})
        out["designs"].append({
            "design": r.design, "kernel": m.design.kernel, "states": r.states, "transitions": r.transitions,
            "depth": r.depth, "seconds": round(r.seconds, 3), "states_per_second": round(r.states_per_second),
            "complete": r.complete, "stopped_after_violation": r.stopped_after_violation,
            "incomplete": incomplete(r), "verdict": json_verdict(r), "violations": viols, **search_json(r),
        })
    return out


def run(argv: Optional[list[str]] = None) -> int:
    """Entry point: click in non-standalone mode, every error as one line, exit 2; a failed
    write of the results (a full disk, an I/O error) is one line too."""
    try:
        status = _run(argv)
        output.flush_stdout()
        return status
    except OSError as e:
        if not output.stdout_failure(e):
            raise
        return output.stdout_failed(e)


def _run(argv: Optional[list[str]]) -> int:
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
