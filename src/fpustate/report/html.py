"""Self-contained HTML pages for `check`, `bugs`, `explain` and `simulate` (`--html FILE`).

jinja2 templates (`templates/`, autoescaped); CSS, the small view script and every graphic are
inline, so a page opens in any browser and loads nothing from the network. The pages carry no
timestamp: the same run gives the same page except the seconds columns. The counterexample
data comes from `timeline` (built on `check.trace.steps`), the tables from the same rows the
text output prints.
"""

from __future__ import annotations

import io
from typing import Callable, Optional, Sequence

from markupsafe import Markup, escape

from .. import __version__
from ..check.trace import index_path
from .timeline import timeline


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("fpustate.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["groupby_label"] = lambda cells: {c.label: c for c in cells}
    env.globals["summary_table"] = summary_table
    env.globals["version"] = __version__
    return env


def _render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


NUMERIC = {"states", "transitions", "depth", "seconds", "states/s", "steps"}


def summary_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Markup:
    """An HTML table of the text summary's headers and cells; verdict cells are coloured."""
    out = ['<table class="summary"><tr>']
    out += [f'<th class="{"num" if h in NUMERIC else ""}">{escape(h)}</th>' for h in headers]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>")
        for h, cell in zip(headers, row):
            cls = "num" if h in NUMERIC else verdict_class(cell) if h == "verdict" else ""
            out.append(f'<td class="{cls}">{escape(cell)}</td>')
        out.append("</tr>")
    out.append("</table>")
    return Markup("".join(out))


def notebook_frame(page: str, height: int = 640) -> str:
    """A page for a notebook cell (`_repr_html_`): the whole self-contained page in an iframe's
    `srcdoc`, so its stylesheet and script cannot restyle the notebook around it."""
    return (f'<iframe srcdoc="{escape(page)}" style="width:100%;height:{height}px;border:1px solid #d5dae3" '
            'sandbox="allow-scripts"></iframe>')


def verdict_class(verdict: str) -> str:
    v = verdict.lower()
    if v.startswith(("violated", "not found", "fixed design fails")):
        return "verdict-bad"
    if v in ("holds", "ok"):
        return "verdict-ok"
    return "verdict-open"  # anything undecided: interrupted, capped


def check_page(scenario, results, headers: Sequence[str], rows: Sequence[Sequence[str]],
               verdict: Callable) -> str:
    """The `fpustate check` page. `results`: (model, explorer, Result) with every violation traced;
    `headers`/`rows`: the summary table as the text output prints it; `verdict(result)`: its label."""
    designs = []
    for m, ex, r in results:
        label = verdict(r)
        designs.append(dict(name=r.design, kernel=m.design.kernel, states=r.states, complete=r.complete,
                            verdict=label, verdict_class=verdict_class(label),
                            timelines=[timeline(m, v, index_path(ex, v)) for v in r.violations]))
    return _render("check.html.j2", title="fpustate check", scenario=scenario.describe(), headers=headers,
                   rows=rows, designs=designs)


def bugs_page(results, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The `fpustate bugs` page: the summary, then every bug with its mutant's counterexample."""
    from ..config import Scenario

    bugs = []
    for b, row in zip(results, rows):
        m = b.explorer.model
        label = row[-1]
        bugs.append(dict(name=b.bug.name, commit=b.bug.commit, mutant=b.bug.mutant, kernel=m.design.kernel,
                         fixed=b.bug.fixed, why=b.bug.why, scenario=Scenario(**b.bug.scenario).describe(),
                         verdict=label, verdict_class=verdict_class(label),
                         timeline=timeline(m, b.found, index_path(b.explorer, b.found)) if b.found else None))
    return _render("bugs.html.j2", title="fpustate bugs", headers=headers, rows=rows, bugs=bugs)


def explain_page(m, e) -> str:
    """The `fpustate explain` page: the class graph as inline SVG, occupancy and class changes."""
    from ..check.explain import CLASSES, MEANING, format_explanation
    from .classgraph import svg

    classes = [dict(name=k, meaning=MEANING[k], running=_mark(e.occupancy.get((k, True), 0)),
                    idle=_mark(e.occupancy.get((k, False), 0))) for k in CLASSES]
    changes = [dict(src=a, dst=b, running="running" if running else "not running", count=n, function=fn)
               for (a, b, running, fn), n in sorted(
                   e.changes.items(),
                   key=lambda kv: (CLASSES.index(kv[0][0]), CLASSES.index(kv[0][1]), not kv[0][2], -kv[1], kv[0][3]))]
    return _render("explain.html.j2", title=f"fpustate explain {e.design}", design=e.design,
                   kernel=m.design.kernel, scenario=m.scenario.describe(), states=e.states, complete=e.complete,
                   graph=Markup(svg(e)), classes=classes, changes=changes, text=format_explanation(m, e))


def _mark(n: int) -> str:
    return f"{n:,}" if n else "-"


def simulate_page(results, profile) -> str:
    """The `fpustate simulate` page: per trace or workload the table, then the plot against the bound."""
    from ..sim import report

    runs = []
    for res in results:
        cols = report.columns(res)  # the KVM counters only for runs with KVM events
        rows = [[r["design"], *("-" if r[k] is None else f"{r[k]:,}" for _, k in cols),
                 f"{r['cycles']:,}", f"{r['ns'] / 1000:,.1f}", r["gap"]] for r in report.rows(res)]
        text = report.table(res, profile).splitlines()
        end = next(i for i, line in enumerate(text) if line.lstrip().startswith("clairvoyant bound"))
        runs.append(dict(source=res.source, info=text[:2], rows=rows, notes="\n".join(text[end + 1:]),
                         headers=["design"] + [h for h, _ in cols] + ["cycles", "µs", "vs bound"]))
    return _render("simulate.html.j2", title="fpustate simulate", profile=profile, runs=runs,
                   plot=Markup(plot_svg(results)) if results else None)


def plot_svg(results) -> Optional[str]:
    """The designs-against-bound plot as an inline `<svg>` (None without matplotlib). Deterministic:
    no date in the metadata, fixed element ids."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib
    import matplotlib.pyplot as plt

    from ..sim.report import figure

    with matplotlib.rc_context({"svg.hashsalt": "fpustate", "svg.fonttype": "path"}):
        fig = figure(results)
        buf = io.StringIO()
        try:
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]
