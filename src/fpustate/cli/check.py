"""`fpustate check`: the exhaustive search (or random walks) of designs on a scenario."""

from __future__ import annotations

import json
import sys
from dataclasses import fields

import click

from .. import usercode
from ..check.explore import LOOK_PAST
from ..check.parallel import check_engine_flags, make_explorer
from ..check.trace import format_trace, index_path, model_tag
from ..check.verdict import check_status, incomplete, json_verdict, verdict
from ..config import PRESETS, Scenario
from ..designs import DESIGNS, get
from ..errors import FpustateError, UsageError
from ..kernel.machine import initial_state, make_model, unsupported
from ..kernel.properties import BY_NAME, PROPERTIES
from ..search_options import engine_from_flags, engine_options, footnotes, make_checkpoint, search_json
from . import main
from .common import (CHECK_COLUMNS, Progress, check_outputs, check_row, exhaustive_jobs, placement_options,
                     results_table, scenario_of, scenario_options, write_report)


@main.command("check")
@click.argument("design_names", nargs=-1, metavar="[DESIGN]...")
@click.option("--scenario", "preset", default="default", metavar="NAME",
              help=f"scenario preset: {', '.join(PRESETS)} (flags below override it)")
@scenario_options()
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
@placement_options
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
    scenario = scenario_of(preset, knobs)
    check_outputs(html=html_path, junit=junit_path)
    search = engine_from_flags(symmetry, store, checkpoint_dir, resume_dir)
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

    if search["root"] and (replay_path is not None or walks or depth is not None or seed is not None):
        raise UsageError("--checkpoint and --resume save an exhaustive check; drop them with --replay or --walks")
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
    jobs = exhaustive_jobs(jobs, engine, bool(search["root"]))

    results = []
    with Progress() as progress:
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
        from ..report.html import check_page

        write_report(html_path, "--html", check_page(scenario, results, CHECK_COLUMNS, [check_row(r) for _, _, r in results],
                                               verdict))
    if junit_path:
        from ..report.junit import check_xml

        write_report(junit_path, "--junit", check_xml(results, properties, max_states))
    if as_json:
        click.echo(json.dumps(_json(scenario, results), indent=2))
    else:
        click.echo(f"scenario: {scenario.describe()}")
        click.echo(results_table([check_row(r) for _, _, r in results]))
        for line in footnotes([r for _, _, r in results]):
            click.echo(line)
        for m, ex, r in results:
            chosen = r.violations if trace_all else r.violations[:1] if trace else []
            for v in chosen:
                click.echo("")
                click.echo(format_trace(m, v.path, initial_state(m), v))
                click.echo(f"  index path: {model_tag(m)}:{index_path(ex, v)}")
    sys.exit(check_status([r for _, _, r in results], search["root"]))


def _check_walks(designs, loaded, scenario, properties, walks, depth, seed, jobs, engine, trace, trace_all,
                 as_json) -> int:
    """`check --walks N`: random walks per design; the exit status as for the exhaustive check."""
    from ..check import walks as W

    if walks <= 0:
        raise UsageError("--depth and --seed go with --walks N (N of 1 or more)")
    depth = 100 if depth is None else depth
    if depth <= 0:
        raise UsageError(f"--depth: {depth} steps; give 1 or more")
    if engine != "local":
        raise UsageError("--walks runs on this machine's cores (--jobs); --engine ray is for the exhaustive search")
    check_engine_flags(jobs, engine, None)
    from ..check.parallel import default_jobs

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


def _replay(m, path_text: str, properties) -> int:
    """Print the replayed steps, the final state and the properties it violates."""
    from ..check.trace import format_steps, replay, state_summary

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
    from ..check.trace import steps as trace_steps

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
