"""`fpustate simulate`: replay traces and workloads through the designs, against the clairvoyant bound."""

from __future__ import annotations

import json
import os
import sys

import click

from .. import usercode
from ..designs import get
from ..errors import FpustateError, UsageError
from . import main
from .common import Progress, check_outputs, write_report


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
    from ..sim import report
    from ..sim.costs import load_profile
    from ..sim.run import simulate_trace, simulate_workload

    if not traces and not workloads:
        raise UsageError("simulate: give a TRACE file or --workload NAME")
    if as_json and as_csv:
        raise UsageError("simulate: --json and --csv are exclusive")
    profile = load_profile(profile_name)
    if plot_path:
        report.check_plot(plot_path)
    check_outputs(html=html_path)
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
        from ..report.html import simulate_page

        write_report(html_path, "--html", simulate_page(results, profile))
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


class _FileProgress(Progress):
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
