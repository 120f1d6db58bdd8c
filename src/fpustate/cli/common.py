"""What the commands share: scenario options, progress lines, tables, report files, where a search runs."""

from __future__ import annotations

import io
import sys
from dataclasses import fields

import click

from ..check.explore import Result
from ..check.parallel import ENGINES, default_jobs
from ..check.verdict import verdict
from ..config import PRESETS, Scenario, knob_help, scenario_from_env
from ..errors import UsageError


def scenario_options(preset: str = "default"):
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


def scenario_of(preset: str, knobs: dict) -> Scenario:
    """The preset, then FPUSTATE_* variables, then the flags given on the command line."""
    if preset not in PRESETS:
        raise UsageError(f"--scenario: unknown preset {preset!r}; available: {', '.join(PRESETS)}")
    base = scenario_from_env(Scenario(**PRESETS[preset]))
    return base.replace(**{k: v for k, v in knobs.items() if v is not None})


class Progress:
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


def check_row(r: Result) -> list[str]:
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


def check_outputs(**paths) -> None:
    """Fail before any work if a report file (--html, --junit) cannot be written."""
    from ..report.output import check_writable

    for option, path in paths.items():
        if path is not None:
            check_writable(path, f"--{option}")


def write_report(path: str, option: str, data) -> None:
    from ..report.output import write_atomic

    write_atomic(path, data, option)


def results_table(rows: list[list[str]]) -> str:
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


def placement_options(f):
    """--jobs, --engine and --ray-address: where the search runs (check and bugs)."""
    f = click.option("--ray-address", metavar="ADDR", default=None,
                     help="with --engine ray: an existing Ray cluster (e.g. ray://head:10001 or auto); "
                          "default: start a local one")(f)
    f = click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="local: processes on this machine; ray: Ray actors (pip install 'fpustate[ray]')")(f)
    f = click.option("--jobs", type=int, default=None, metavar="N",
                     help="partitions searched in parallel (0: every core, or every CPU of the Ray cluster; "
                          "1: the sequential search, which alone has checkpoints). Default: every core (1 with "
                          "--checkpoint or --resume), every CPU with --engine ray")(f)
    return f


def exhaustive_jobs(jobs, engine: str, checkpointing: bool) -> int:
    """--jobs for the exhaustive search: as given, else every core locally (the partitioned search,
    faster than the sequential one with two cores or more; one core is the sequential search),
    every CPU of a Ray cluster, and 1 with --checkpoint or --resume (only the sequential search
    has checkpoints)."""
    if checkpointing and (jobs not in (None, 1) or engine != "local"):
        raise UsageError("--checkpoint and --resume work with the sequential search only (--jobs 1)")
    if jobs is None:
        return 0 if engine == "ray" else 1 if checkpointing else default_jobs()
    return jobs
