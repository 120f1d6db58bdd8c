"""`fpustate bugs`: the regression suite of real kernel FPU bugs."""

from __future__ import annotations

import io
import json
import sys

import click

from ..check.parallel import check_engine_flags, make_explorer
from ..check.trace import format_trace, index_path, model_tag
from ..check.verdict import EXIT_INTERRUPTED, verdict
from ..kernel.machine import initial_state
from ..search_options import engine_from_flags, engine_options, footnotes, make_checkpoint, search_json
from . import main
from .common import Progress, check_outputs, exhaustive_jobs, placement_options, write_report


@main.command("bugs")
@click.option("--trace", is_flag=True, help="print each bug's shortest counterexample")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--html", "html_path", metavar="FILE",
              help="also write a self-contained HTML page: the table and every bug's counterexample timeline")
@click.option("--junit", "junit_path", metavar="FILE", help="also write JUnit XML: one test case per bug")
@placement_options
@engine_options
def bugs_cmd(trace, as_json, html_path, junit_path, jobs, engine, ray_address, symmetry, store, checkpoint_dir,
             resume_dir) -> None:
    """Check the regression suite of real kernel FPU bugs: each mutant must violate its
    property, and each fixed design must hold every property on the same scenario."""
    from ..check.bugs import BUGS, run_bug

    check_outputs(html=html_path, junit=junit_path)
    check_engine_flags(jobs, engine, ray_address)
    search = engine_from_flags(symmetry, store, checkpoint_dir, resume_dir)
    jobs = exhaustive_jobs(jobs, engine, bool(search["root"]))

    def explorer(m, properties):
        return make_explorer(m, properties, jobs, engine, ray_address, symmetry=symmetry, store=store)
    cache: dict = {}
    results = []
    with Progress() as progress:
        for bug in BUGS:
            results.append(run_bug(bug, cache, progress.callback, explorer,
                                   checkpoint=(lambda ex, tag: make_checkpoint(search, ex, tag)) if search["root"] else None))
            if results[-1].mutant.interrupted or results[-1].fixed.interrupted:
                break  # Ctrl-C: report what we have
    if html_path:
        from ..report.html import bugs_page

        write_report(html_path, "--html", bugs_page(results, BUGS_COLUMNS, [_bug_row(b) for b in results]))
    if junit_path:
        from ..report.junit import bugs_xml

        write_report(junit_path, "--junit", bugs_xml(results))
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
