"""Andy Lutomirski's class graph (`check.explain`) as an inline SVG arc diagram.

The classes 1, 2a, 2b (and "lost" when a design reaches it) stand in a row, each with how many
task-states are in it running and not running; every class change is an arc, forward changes
above the row and backward ones below, labelled with the kernel functions that cause it (the
names in `describe()`'s text; a user write has none and is labelled as such), split by whether
the task runs afterwards. Pure string building: the page needs no script and no network.
"""

from __future__ import annotations

import re
from collections import Counter
from html import escape
from typing import NamedTuple

from ..check.explain import CLASSES, MEANING, Explanation

FUNCTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(\)")
STEP_X, NODE_W, NODE_H, LINE_H = 340, 240, 64, 15


class Edge(NamedTuple):
    src: str
    dst: str
    running: tuple[str, ...]  # kernel functions, most frequent first, task running afterwards
    not_running: tuple[str, ...]  # ... task not running afterwards


def functions(text: str) -> tuple[str, ...]:
    """The kernel function names in one step description ("writes its FPU registers" has none)."""
    found = tuple(dict.fromkeys(FUNCTION.findall(text)))
    return found or (text.split(":")[0],)


def edges(e: Explanation) -> list[Edge]:
    """One edge per class change, its functions ranked by how many transitions they cause."""
    by: dict[tuple[str, str], dict[bool, Counter]] = {}
    for (a, b, running, fn), n in e.changes.items():
        side = by.setdefault((a, b), {True: Counter(), False: Counter()})[running]
        for f in functions(fn):
            side[f] += n

    def ranked(c: Counter) -> tuple[str, ...]:
        return tuple(f for f, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    keys = sorted(by, key=lambda k: (CLASSES.index(k[0]), CLASSES.index(k[1])))
    return [Edge(a, b, ranked(by[(a, b)][True]), ranked(by[(a, b)][False])) for a, b in keys]


def _label(edge: Edge) -> list[str]:
    lines = []
    for title, fns in (("running", edge.running), ("not running", edge.not_running)):
        if fns:
            lines.append(f"{edge.src} \u2192 {edge.dst}, {title}:")
            lines += [f"  {f}" for f in fns[:5]] + ([f"  (+{len(fns) - 5} more)"] if len(fns) > 5 else [])
    return lines


def svg(e: Explanation) -> str:
    """The class graph as an `<svg>` element."""
    shown = [k for k in CLASSES if k != "lost" or any(k in (x.src, x.dst) for x in edges(e))
             or e.occupancy.get((k, True)) or e.occupancy.get((k, False))]
    xs = {k: 40 + NODE_W / 2 + i * STEP_X for i, k in enumerate(shown)}
    es = [x for x in edges(e) if x.src in xs and x.dst in xs]
    labels = [_label(x) for x in es]
    span = {x: abs(shown.index(x.dst) - shown.index(x.src)) for x in es}
    tallest = max((len(lb) for lb in labels), default=1) * LINE_H
    up = max((span[x] for x in es if xs[x.dst] > xs[x.src]), default=0)
    down = max((span[x] for x in es if xs[x.dst] < xs[x.src]), default=0)
    rise = 60 + tallest  # arc height per span step
    mid = 30 + up * rise + NODE_H / 2
    width = 80 + NODE_W + (len(shown) - 1) * STEP_X
    height = mid + NODE_H / 2 + down * rise + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="classgraph" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="class graph of {escape(e.design)}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    for x, lines in zip(es, labels):
        x0, x1 = xs[x.src], xs[x.dst]
        forward = x1 > x0
        sign = -1 if forward else 1
        off = (10 + 14 * span[x]) * (1 if forward else -1)  # keep a->b, b->a and long arcs apart at the nodes
        y0 = mid + sign * NODE_H / 2
        h = span[x] * rise
        cy = y0 + sign * h * 4 / 3  # a cubic's apex reaches 3/4 of its control height
        out.append(f'<path class="edge" data-edge="{escape(x.src)}-{escape(x.dst)}" d="M{x0 + off:.0f},{y0:.0f} '
                   f'C{x0 + off:.0f},{cy:.0f} {x1 - off:.0f},{cy:.0f} {x1 - off:.0f},{y0:.0f}" fill="none" '
                   f'stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>')
        apex = y0 + sign * h
        # inside the arc: below the apex of an arc above the row, above the apex of one below it
        top = apex + 6 + LINE_H if forward else apex - 6 - (len(lines) - 1) * LINE_H
        lx = (x0 + x1) / 2
        out.append(f'<text class="edge-label" x="{lx:.0f}" y="{top:.0f}" text-anchor="middle">')
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if not line.startswith("  ") else ""
            out.append(f'<tspan x="{lx:.0f}" dy="{0 if i == 0 else LINE_H}"{weight}>{escape(line.strip())}</tspan>')
        out.append("</text>")
    for k in shown:
        x = xs[k]
        run_n, idle_n = e.occupancy.get((k, True), 0), e.occupancy.get((k, False), 0)
        fill = "#fde2e2" if k == "lost" else "#e8f0fe"
        out.append(f'<g class="node" data-class="{k}"><rect x="{x - NODE_W / 2:.0f}" y="{mid - NODE_H / 2:.0f}" '
                   f'width="{NODE_W}" height="{NODE_H}" rx="10" fill="{fill}" stroke="#335"/>'
                   f'<text x="{x:.0f}" y="{mid - 12:.0f}" text-anchor="middle" font-weight="bold">class {k}</text>'
                   f'<text x="{x:.0f}" y="{mid + 4:.0f}" text-anchor="middle" font-size="11">{escape(MEANING[k])}</text>'
                   f'<text x="{x:.0f}" y="{mid + 20:.0f}" text-anchor="middle" font-size="11">running {run_n:,} · '
                   f'not running {idle_n:,}</text></g>')
    out.append("</svg>")
    return "\n".join(out)
