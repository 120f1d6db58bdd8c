"""Writing report files (`--html`, `--junit`): checked before the run, written atomically.

The rules are `fpustate.output`'s, which every output file of the tool follows: a symlink is
written through, a target that is not a regular file is refused, a full disk or an unwritable
directory is one error naming the option, and nothing is left half-written.
"""

from __future__ import annotations

from .. import output
from ..errors import UsageError


def check_writable(path: str, option: str) -> None:
    """Fail before any work if `path` cannot be written."""
    if not path:
        raise UsageError(f"{option}: the file name is empty")
    output.target(path, option, "report.html")


def write_atomic(path: str, data: str | bytes, option: str) -> None:
    """Write `data` (text is UTF-8) to `path` through a temporary file in the same directory."""
    raw = data.encode("utf-8") if isinstance(data, str) else data

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(raw)

    output.write_atomically(path, option, write, "report.html")
