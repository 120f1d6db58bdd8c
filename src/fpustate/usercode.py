"""User-written designs (`--design-file`) at the command line: whatever their Python does,
one line and exit status 2.

A design file is Python: importing it runs it with the user's rights, as `python FILE`
would. `designs.loader` validates what it defines; this module also turns the ways Python
code can leave that are not exceptions into errors naming the file or the design:
`sys.exit()` (SystemExit) at import or inside a hook. A file that loops at import hangs
like any Python program; Ctrl-C stops it and fpustate exits with status 130.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Optional, Sequence

from .designs import loader
from .designs.base import Design
from .errors import InvalidDesign


def load_design_file(path: str) -> list[Design]:
    """`designs.loader.load_design_file`, with a `sys.exit()` at import as an error."""
    try:
        return loader.load_design_file(path)
    except SystemExit as e:
        line = _user_line(e, path)
        raise InvalidDesign(f"--design-file {path}: importing it called {_exit(e)}{line}; "
                            "a design file must define DESIGN, not exit") from None


def hook_error(e: BaseException, d: Design) -> InvalidDesign:
    """A hook of user design `d` raised `e` (or called sys.exit()): one line naming where."""
    if isinstance(e, SystemExit):
        frames = traceback.extract_tb(e.__traceback__)
        last = frames[-1] if frames else None
        where = f" in {last.name}() at {Path(last.filename).name}:{last.lineno}" if last else ""
        return InvalidDesign(f"design {d.name!r}: a hook called {_exit(e)}{where}")
    return loader.hook_failure(e, d)


def culprit(e: BaseException, loaded: Sequence[Design]) -> Optional[Design]:
    """Which user design's hooks were running when `e` was raised during a simulation: the
    innermost replay on the traceback (sim.replay.Replay keeps its design as `origin`), or a
    frame in one of the design's hook functions. None: not a user design (an fpustate bug)."""
    for frame, _ in reversed(list(traceback.walk_tb(e.__traceback__))):
        origin = getattr(frame.f_locals.get("self"), "origin", None)
        if origin is not None:
            return next((d for d in loaded if d is origin), None)
    for d in loaded:
        files = {getattr(getattr(h, "__code__", None), "co_filename", None) for h in vars(d).values() if callable(h)}
        if any(f.filename in files for f in traceback.extract_tb(e.__traceback__)):
            return d
    return None


def _exit(e: SystemExit) -> str:
    return "sys.exit()" if e.code is None else f"sys.exit({e.code!r})"


def _user_line(e: BaseException, path: str) -> str:
    p = Path(path).resolve()
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if Path(frame.filename).resolve() == p:
            return f" (line {frame.lineno})"
    return ""
