"""Simulation output: the comparison table, JSON, CSV and a plot of the designs against the bound."""

from __future__ import annotations

import csv
import io
import os

from .. import output
from ..errors import UsageError
from .costs import Profile
from .run import SimResult

COLUMNS = (  # (header, counter key)
    ("saves", "saves"),
    ("kfpu saves", "kfpu_saves"),
    ("restores", "restores"),
    ("skipped", "restores_skipped"),
    ("init loads", "init_loads"),
    ("frame saves", "sigframe_saves"),
    ("frame restores", "sigframe_restores"),
    ("#NM", "nm_traps"),
    ("CR0.TS", "cr0_writes"),
)
KVM_COLUMNS = (  # shown for a kvm workload or a trace with KVM events, or when any is nonzero
    ("KVM_RUN in", "kvm_loads"),  # kvm_load_guest_fpu(): the fpstate swap into the guest (kvm_fpu load)
    ("KVM_RUN out", "kvm_puts"),  # kvm_put_guest_fpu() (kvm_fpu unload)
    ("VM entries", "vm_entries"),
    ("VM exits", "vm_exits"),
    ("XFD #NM", "xfd_traps"),  # first AMX use: handle_xfd_event() -> fpstate_realloc()
    ("XFD MSR", "xfd_msr_writes"),  # xfd_update_state() / xfd_set_state() writes of MSR_IA32_XFD
)
DECISION_NAMES = {"switch": "save at switch-out", "return": "restore at return to user",
                  "signal": "restore for a signal frame", "vm_entry": "restore at VM entry"}


def columns(res: SimResult) -> tuple:
    """The counter columns of a result: the KVM ones only when it has KVM events (so the
    outputs of traces and workloads without them are what they were)."""
    if res.kvm or any(s.get(k) for _, s in res.designs for _, k in KVM_COLUMNS):
        return COLUMNS + KVM_COLUMNS
    return COLUMNS


def _gap(cycles: int, bound: int) -> str:
    if bound <= 0:
        return "-"
    return f"{(cycles / bound - 1) * 100:+.1f}%"


def rows(res: SimResult) -> list[dict]:
    """One row per design and one for the bound: every counter, cycles, µs, gap to the bound."""
    out = []
    b = res.bound
    cols = columns(res)
    for name, s in res.designs:
        out.append(dict(design=name, **{k: s[k] for _, k in cols}, cycles=s["cycles"], ns=s["ns"],
                        gap=_gap(s["cycles"], b["cycles"])))
    row = dict(design="clairvoyant bound", saves=b["saves"], kfpu_saves=None, restores=b["restores"],
               restores_skipped=None, init_loads=None, sigframe_saves=b["sigframe_saves"],
               sigframe_restores=b["sigframe_restores"], nm_traps=None, cr0_writes=None)
    row.update({k: None for _, k in cols[len(COLUMNS):]})  # the bound leaves KVM and XFD events uncounted
    out.append(dict(row, cycles=b["cycles"], ns=b["ns"], gap="-"))
    return out


def table(res: SimResult, profile: Profile) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    import textwrap

    lines = [f"{res.source}: {res.records:,} records, {res.ops:,} operations, {res.cpus} CPU(s), "
             f"{res.seconds:.2f} s" + (" (INTERRUPTED: the counts cover the part replayed)" if res.interrupted else ""),
             f"  inference: {res.inference}"]
    lines += textwrap.wrap(f"profile: {profile.name} ({profile.ghz:g} GHz): {profile.source}", 110,
                           initial_indent="  ", subsequent_indent="    ")
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    t.add_column("design", no_wrap=True)
    cols = columns(res)
    for header, _ in cols:
        t.add_column(header, justify="right", no_wrap=True)
    for header in ("cycles", "µs", "vs bound"):
        t.add_column(header, justify="right", no_wrap=True)
    for r in rows(res):
        cells = ["-" if r[k] is None else f"{r[k]:,}" for _, k in cols]
        t.add_row(r["design"], *cells, f"{r['cycles']:,}", f"{r['ns'] / 1000:,.1f}", r["gap"])
    console = Console(width=240, color_system=None, force_terminal=False, record=True, file=io.StringIO())
    console.print(t)
    lines += ["  " + line.rstrip() for line in console.export_text().splitlines()]
    lines.append("  (the bound's restores include every init load; compare them with restores + init loads)")
    if len(cols) > len(COLUMNS):
        lines.append("  (KVM_RUN in/out: fpu_swap_kvm_fpstate() into and out of the guest; the bound counts no VM "
                     "or XFD events and loads a guest only for its FPU use)")
    if res.conformance:
        parts = []
        for kind, (agree, total) in res.conformance.items():
            if total:
                parts.append(f"{DECISION_NAMES[kind]} {agree:,}/{total:,} ({agree / total:.2%})")
        lines.append("  conformance of linux with the kernel's x86_fpu events: " + "; ".join(parts))
        for line, kind, pid, kernel, model in res.disagreements[:10]:
            did = "restored" if kind != "switch" else "saved"
            lines.append(f"    line {line}: {DECISION_NAMES[kind]} of pid {pid}: the kernel "
                         f"{did if kernel else 'did not'}, linux {did if model else 'did not'}")
    if any(res.inferred.values()):
        lines.append("  inferred, implied by the x86_fpu events but not traced: " + "; ".join(
            f"{why} ({n:,})" for why, n in res.inferred.items() if n))
    if res.synthesized:
        lines.append(f"  {res.synthesized} switch(es) the trace implied but did not record were synthesized")
    if res.traced_switches:
        lines.append(f"  {res.traced_switches} switch(es) the model's scheduler never makes (a runnable task to idle,"
                     " a stop in the work loop) ran as sched_switch")
    if res.skipped:
        lines.append("  skipped event types: " + ", ".join(f"{e} ({n:,})" for e, n in res.skipped.items()))
    if res.lost:
        lines.append(f"  the tracer reported {res.lost:,} lost events")
    return "\n".join(lines)


def as_json(res: SimResult, profile: Profile) -> dict:
    return {
        "source": res.source, "inference": res.inference, "records": res.records, "operations": res.ops,
        "cpus": res.cpus, "profile": {"name": profile.name, "source": profile.source, "ghz": profile.ghz},
        "rows": rows(res),
        "conformance": None if res.conformance is None else {
            kind: {"agree": a, "total": n, "percent": round(100 * a / n, 3) if n else None}
            for kind, (a, n) in res.conformance.items()},
        "disagreements": [dict(line=line, kind=kind, pid=pid, kernel=kernel, model=model)
                          for line, kind, pid, kernel, model in res.disagreements],
        "skipped_events": res.skipped, "lost_events": res.lost, "synthesized_switches": res.synthesized,
        "traced_switches": res.traced_switches,
        "inferred_events": res.inferred,
    }


def as_csv(results: list[SimResult]) -> str:
    buf = io.StringIO()
    cols = max((columns(r) for r in results), key=len, default=COLUMNS)
    fields = ["source", "design"] + [k for _, k in cols] + ["cycles", "ns", "gap"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for res in results:
        for r in rows(res):
            w.writerow({"source": res.source, **{k: ("" if v is None else v) for k, v in r.items()}})
    return buf.getvalue()


def check_plot(path: str) -> None:
    """Fail before any work if the plot cannot be made: matplotlib missing, a format it does
    not write, or a target that is not a regular file (fpustate.output.target)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'fpustate[plot]'")
    output.target(path, "--plot", "plot.png")
    fmt = _plot_format(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if fmt not in formats:
        raise UsageError(f"--plot {path}: matplotlib cannot write .{fmt} files; use one of "
                         + ", ".join("." + f for f in sorted(formats)))


def _plot_format(path: str) -> str:
    return os.path.splitext(path)[1][1:].lower() or "png"


def figure(results: list[SimResult]):
    """The figure `plot()` saves: bars of each design's FPU cycles per trace, normalised to the
    clairvoyant bound (1.0). `fpustate simulate --html` draws it inline as SVG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    names = [name for name, _ in results[0].designs]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(results) * max(1, len(names)) / 3), 4.5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, res in enumerate(results):
            cycles = dict(res.designs)[name]["cycles"]
            xs.append(j + (i - (len(names) - 1) / 2) * width)
            ys.append(cycles / res.bound["cycles"] if res.bound["cycles"] else 0)
        ax.bar(xs, ys, width, label=name)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="clairvoyant bound")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([os.path.basename(r.source) for r in results], rotation=15, ha="right")
    ax.set_ylabel("FPU cycles / bound")
    ax.set_title("FPU save/restore cost by design")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot(results: list[SimResult], path: str) -> None:
    """Bars of each design's FPU cycles per trace, normalised to the clairvoyant bound (1.0)."""
    check_plot(path)
    import matplotlib.pyplot as plt

    fig = figure(results)
    try:  # through a symlink, never over a special file, never half-written
        output.write_atomically(path, "--plot", lambda tmp: fig.savefig(tmp, format=_plot_format(path)), "plot.png")
    finally:
        plt.close(fig)
