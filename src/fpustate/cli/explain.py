"""`fpustate explain`: Andy Lutomirski's state classes a design reaches."""

from __future__ import annotations

import sys

import click

from ..check.verdict import EXIT_CAPPED, EXIT_INTERRUPTED
from ..config import PRESETS
from ..designs import get
from ..kernel.machine import make_model
from . import main
from .common import check_outputs, scenario_of, scenario_options, write_report


@main.command("explain")
@click.argument("design_name", metavar="DESIGN")
@click.option("--scenario", "preset", default="small", metavar="NAME",
              help=f"scenario preset: {', '.join(PRESETS)} (default: small; flags below override it)")
@scenario_options("small")
@click.option("--max-states", type=int, default=0, metavar="N", help="stop after N states (0: no limit)")
@click.option("--html", "html_path", metavar="FILE", help="also write a self-contained HTML page with the class graph (SVG)")
def explain_cmd(design_name, preset, max_states, html_path, **knobs) -> None:
    """Report which of Andy Lutomirski's state classes (1, 2a, 2b) DESIGN reaches, and what moves tasks between them."""
    from ..check.explain import explain, format_explanation

    m = make_model(get(design_name), scenario_of(preset, knobs))
    check_outputs(html=html_path)
    e = explain(m, max_states=max_states)
    if html_path:
        from ..report.html import explain_page

        write_report(html_path, "--html", explain_page(m, e))
    click.echo(format_explanation(m, e))
    if e.interrupted:  # the classes of a partial exploration are a lower bound: say so, as check does
        click.echo("fpustate: interrupted; the results above are partial", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not e.complete:
        click.echo("fpustate: --max-states stopped the exploration before the fixpoint; the classes above "
                   "are those reached so far (exit status 3)", err=True)
        sys.exit(EXIT_CAPPED)
