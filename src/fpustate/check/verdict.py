"""Verdicts and exit statuses of `fpustate check` and `fpustate bugs`.

A run that stopped before its fixpoint without finding a violation (capped by
--max-states, or interrupted) proves nothing: its verdict is "incomplete", never
"holds", and its exit status is not 0.
"""

from __future__ import annotations

from typing import Optional

import click

from .explore import Result

EXIT_CAPPED = 3  # no violation found, but --max-states stopped a run before its fixpoint
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), whatever was found before


def verdict(r: Result) -> str:
    """VIOLATED, holds (explored to the fixpoint), or incomplete: an unfinished run that found
    no violation proves nothing, so it never says "holds"."""
    if r.violations:
        return "VIOLATED"
    if r.complete:  # a fingerprint run's "holds" carries a mark, explained under the table
        return "holds*" if getattr(r, "store", "exact") == "fingerprint" else "holds"
    return "incomplete (interrupted)" if r.interrupted else "incomplete (--max-states)"


def json_verdict(r: Result) -> str:
    return "violated" if r.violations else "holds" if r.complete else "incomplete"


def incomplete(r: Result) -> Optional[str]:
    """Why a run without a violation stopped before its fixpoint: None, "interrupted" or "max-states"."""
    if r.complete or r.stopped_after_violation:
        return None
    return "interrupted" if r.interrupted else "max-states"


def check_status(results: list[Result], resume_dir: Optional[str] = None) -> int:
    """130 interrupted (with a notice, naming the checkpoint to resume from), else 1 a property
    is violated, else 3 a run was capped by --max-states before its fixpoint (with a notice),
    else 0: every property holds."""
    if any(r.interrupted for r in results):
        click.echo("fpustate: interrupted; the results above are partial"
                   + (f"; continue with --resume {resume_dir}" if resume_dir else ""), err=True)
        return EXIT_INTERRUPTED
    if any(r.violations for r in results):
        return 1
    if any(incomplete(r) for r in results):
        click.echo("fpustate: --max-states stopped the run before the fixpoint; no violation so far, "
                   "which proves nothing (exit status 3)", err=True)
        return EXIT_CAPPED
    return 0
