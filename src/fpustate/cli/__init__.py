"""The `fpustate` command line: designs, check, bugs, simulate, explain.

Exit status: 0 every property holds, 1 a property is violated, 2 bad input (one line on
stderr, no traceback), 3 a capped run without a violation, 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Optional

import click

from .. import __version__, output
from ..designs import DESIGNS
from ..config import PRESETS  # noqa: F401  (re-exported: bench/ and tests name presets through it)
from ..errors import FpustateError

__all__ = ["PRESETS", "entry", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fpustate")
def main() -> None:
    """Model-check the x86 FPU state machine of the Linux kernel."""


@main.command("designs")
def designs_cmd() -> None:
    """List the built-in designs."""
    width = max(len(n) for n in DESIGNS)
    for name, d in DESIGNS.items():
        click.echo(f"{name:<{width}}  {d.kernel:<28}  {d.summary}")


def run(argv: Optional[list[str]] = None) -> int:
    """Entry point: click in non-standalone mode, every error as one line, exit 2; a failed
    write of the results (a full disk, an I/O error) is one line too."""
    try:
        status = _run(argv)
        output.flush_stdout()
        return status
    except OSError as e:
        if not output.stdout_failure(e):
            raise
        return output.stdout_failed(e)


def _run(argv: Optional[list[str]]) -> int:
    try:
        main.main(args=argv, prog_name="fpustate", standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    except click.exceptions.Abort:
        click.echo("fpustate: interrupted", err=True)
        return 130
    except click.ClickException as e:
        cmd = f" {e.ctx.command_path.split(' ', 1)[1]}" if getattr(e, "ctx", None) and " " in e.ctx.command_path else ""
        click.echo(f"fpustate{cmd}: {e.format_message()} (see 'fpustate{cmd} --help')", err=True)
        return 2
    except FpustateError as e:
        click.echo(f"fpustate: {e}", err=True)
        return 2
    return 0


def entry() -> None:
    sys.exit(run())


from . import bugs, check, explain, simulate  # noqa: E402,F401  (registers the commands)
