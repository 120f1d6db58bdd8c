"""Writing report files: checked before the run, written atomically (temp file + rename).

A symlink is written through (its target is replaced), as any tool does; a target that exists
and is not a regular file (a directory, FIFO, device) is refused, so no special file is ever
replaced; a full disk or an unwritable directory is one error naming the option and the file,
and leaves nothing half-written.
"""

from __future__ import annotations

import os
import tempfile

from ..errors import UsageError


def _target(path: str, option: str) -> str:
    """The file that will be replaced: `path`, or what its symlink points to."""
    if not path:
        raise UsageError(f"{option}: the file name is empty")
    target = os.path.realpath(path)
    if os.path.lexists(target) and not os.path.isfile(target):
        raise UsageError(f"{option} {path}: not a regular file; give the path of a file to write")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise UsageError(f"{option} {path}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write into directory {directory!r}")
    return target


def check_writable(path: str, option: str) -> None:
    """Fail before any work if `path` cannot be written (see the module docstring)."""
    _target(path, option)


def write_atomic(path: str, data: str | bytes, option: str) -> None:
    """Write `data` (text is UTF-8) to `path` through a temporary file in the same directory."""
    target = _target(path, option)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=".fpustate-", suffix=".tmp", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        if os.path.exists(target):
            mode = os.stat(target).st_mode & 0o7777  # keep the replaced file's permissions
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp made it private; a report is an ordinary file
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
