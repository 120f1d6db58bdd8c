"""The search engine's command-line options, shared by `fpustate check` and `fpustate bugs`:
symmetry reduction, the visited-state store, checkpoints; and how a run's search is reported."""

from __future__ import annotations

from typing import Optional

import click

from .check.explore import Result
from .check.store import STORES
from .errors import UsageError

DEFAULT_STORE = "fingerprint"  # faster and 14 instead of ~200 bytes a state (bench/bench_scale.py)


def engine_options(f):
    """The search engine's options, shared by `check` and `bugs`."""
    f = click.option("--resume", "resume_dir", metavar="DIR",
                     help="continue the run checkpointed in DIR (same designs and flags), and keep checkpointing there")(f)
    f = click.option("--checkpoint", "checkpoint_dir", metavar="DIR",
                     help="save the run at BFS layer boundaries (every 30 s, at the end and on Ctrl-C) in DIR")(f)
    f = click.option("--store", type=click.Choice(STORES), default=DEFAULT_STORE, show_default=True,
                     help="visited states: exact, or 64-bit fingerprints (14 bytes a state; may miss a state "
                          "with probability about n^2/2^65)")(f)
    f = click.option("--symmetry/--no-symmetry", default=True, show_default=True,
                     help="store one state per permutation of CPUs and of interchangeable tasks")(f)
    return f


def engine_from_flags(symmetry: bool, store: str, checkpoint_dir: Optional[str], resume_dir: Optional[str]) -> dict:
    """Explorer options and the checkpoint root from the engine flags."""
    from .check.checkpoint import Checkpoint

    if checkpoint_dir and resume_dir and checkpoint_dir != resume_dir:
        raise UsageError("--checkpoint and --resume name different directories; --resume DIR keeps saving in DIR")
    root = resume_dir or checkpoint_dir
    if root:
        Checkpoint.check_root(root, resume=bool(resume_dir))
    return dict(symmetry=symmetry, store=store, root=root, resume=bool(resume_dir))


def make_checkpoint(engine: dict, ex, tag: Optional[str] = None):
    from .check.checkpoint import Checkpoint

    return Checkpoint(engine["root"], ex, engine["resume"], tag=tag) if engine["root"] else None


def footnotes(results: list[Result]) -> list[str]:
    """How the states were stored: symmetry, and what a fingerprint verdict of "holds" risks."""
    out = []
    syms = sorted({r.symmetry for r in results})
    out.append(f"symmetry: {', '.join(syms)}; store: {results[0].store}" if results else "")
    for r in results:
        if r.store == "fingerprint" and not r.violations:
            out.append(f"* {r.design}: 64-bit fingerprints, expected missed states {r.expected_omissions:.1e} "
                       f"(n^2/2^65 for n = {r.states:,}, as SPIN's hash compaction)")
    return out


def search_json(r: Result) -> dict:
    """How a run stored its states, as data."""
    return {"symmetry": r.symmetry, "store": r.store, "fingerprints": r.store == "fingerprint",
            "expected_missed_states": r.expected_omissions, "raw_states_represented": r.represented,
            "resumed": r.resumed}
