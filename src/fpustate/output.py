"""Writing results: files replaced atomically, and failures of standard output as one line.

A file an option names (`--plot FILE`) is written like `cp` or a shell redirection would
write it, but never half-written: the bytes go to a temporary file in the target's own
directory, which is then renamed over the target (rename(2) is atomic within a file
system). A symbolic link is followed, so the file it points to is replaced and the link
stays; anything but a regular file (a directory, a FIFO, a device node, a socket) is refused
before any work starts, so no special file is ever replaced.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import traceback
from typing import Callable

from .errors import UsageError


def target(path: str, option: str, example: str = "out") -> str:
    """The regular file `path` resolves to (following symbolic links), checked writable;
    raises UsageError naming `option` for a directory, a special file or an unwritable place."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write there ({e.strerror})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{option} {path}: is a directory; give a file name, e.g. {os.path.join(path, example)}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{option} {path}: is not a regular file (a FIFO, device or socket); "
                         "give the name of an ordinary file")
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise UsageError(f"{option} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{option} {path}: the directory {directory} is not writable")
    return real


def write_atomically(path: str, option: str, write: Callable[[str], None], example: str = "out") -> None:
    """Call `write(tmp)` to make the file at a temporary name next to the target, then
    rename it over the target; on any failure the target is untouched and the temporary
    file removed. The new file gets the target's permissions, or the umask's defaults."""
    real = target(path, option, example)
    directory = os.path.dirname(real)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError:
        mode = 0o644
    suffix = os.path.splitext(real)[1]
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(real) + ".", suffix=suffix, dir=directory)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write there ({e.strerror})") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write it ({e.strerror or e}); nothing was written") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def stdout_failure(e: OSError) -> bool:
    """Whether `e` was raised writing or flushing standard output (click.echo, our flush)."""
    for frame, _ in traceback.walk_tb(e.__traceback__):
        code = frame.f_code
        if code.co_name == "echo" and frame.f_globals.get("__name__") == "click.utils":
            return True
        if code is flush_stdout.__code__:
            return True
    return False


def flush_stdout() -> None:
    sys.stdout.flush()


def stdout_failed(e: OSError) -> int:
    """Report a failed write of the results in one line and silence the rest: exit status 2."""
    try:  # what is still buffered can never be written; do not fail again at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    reason = e.strerror or str(e)
    print(f"fpustate: cannot write the results to standard output: {reason}", file=sys.stderr)
    return 2
