"""Load user-written designs from a Python file (`fpustate check --design-file F`).

The file defines `DESIGN` (one `Design`) or `DESIGNS` (a list). The usual way
to write one is `linux.DESIGN.variant(name=..., hook=my_function)`. Every hook
is validated before checking starts, so a malformed file fails with one line
naming the hook and what is wrong.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

from ..errors import InvalidDesign
from ..kernel.actions import GLOBAL, KERNEL_CODES, SITUATIONS, Event
from ..kernel.design import HOOKS, Design, Step
from ..kernel.state import PATH_STRIDE
from ..kernel.fields import FIELD_KINDS

# Positional arguments each hook receives, as documented in base.Design.
ARITY = {
    "boot_task": ("k", "t", "cpu"),
    "switch_fpu": ("k", "cpu", "prev", "next"),
    "exit_to_user": ("k", "cpu", "task", "snapshot"),
    "irq_fpu_usable": ("state", "cpu", "ctx", "from_user"),
    "kernel_fpu_begin": ("k", "cpu", "ctx"),
    "kernel_fpu_end": ("k", "cpu", "ctx"),
    "regs_live": ("state", "t", "cpu"),
    "xstateregs_set": ("k", "t", "value", "hdr", "pkru"),
    "fpu_sync_fpstate": ("k", "cpu", "task"),
    "xstateregs_get": ("state", "t"),
    "boot_cpu": ("k", "cpu"),
    "exit_to_user_snapshot": ("state", "cpu", "task"),
    "user_fpu_accessible": ("state", "cpu"),
    "do_device_not_available": ("k", "cpu", "task"),
    "fpstate_image": ("state", "t"),
    "fpstate_active": ("state", "t"),
}
STEP_ARGS = ("k", "cpu", "task")
FAULT_STEP_ARGS = ("k", "cpu", "task", "fault")
STEP_HOOKS = ("exec_steps", "exit_steps", "signal_steps", "sigreturn_steps", "sigreturn_ia32_steps", "fork_steps")


def _check_callable(where: str, fn, args: tuple[str, ...]) -> None:
    if not callable(fn):
        raise InvalidDesign(f"{where} must be a function taking ({', '.join(args)}), got {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and some partials: cannot tell, trust them
    try:
        sig.bind(*args)
    except TypeError:
        n = len([p for p in sig.parameters.values() if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        raise InvalidDesign(f"{where} must take {len(args)} arguments ({', '.join(args)}), "
                            f"but {getattr(fn, '__name__', fn)}() takes {n}") from None


def validate(d: Design, origin: str) -> Design:
    """Check every hook of `d`; raise InvalidDesign naming the first bad one."""
    if not isinstance(d, Design):
        raise InvalidDesign(f"{origin}: DESIGN must be a fpustate Design (e.g. linux.DESIGN.variant(...)), "
                            f"got {type(d).__name__}")
    if not isinstance(d.name, str) or not d.name.strip():
        raise InvalidDesign(f"{origin}: the design needs a non-empty name")
    _validate_events(d, origin)
    if d.local_kind not in FIELD_KINDS:
        raise InvalidDesign(f"{origin}: local_kind of design {d.name!r} must be one of {', '.join(FIELD_KINDS)}, "
                            f"got {d.local_kind!r}")
    for hook in HOOKS:
        value = getattr(d, hook)
        where = f"{origin}: hook {hook} of design {d.name!r}"
        if hook in STEP_HOOKS:
            if not isinstance(value, tuple) or not all(isinstance(s, Step) for s in value):
                raise InvalidDesign(f"{where} must be a tuple of Step(name, function)")
            if hook != "exec_steps" and not value:
                raise InvalidDesign(f"{where} needs at least one step")
            if len(value) > PATH_STRIDE:
                raise InvalidDesign(f"{where} has {len(value)} steps; a path may have at most {PATH_STRIDE}")
            for s in value:
                _check_callable(f"{where}, step {s.name!r}", s.fn, FAULT_STEP_ARGS if s.may_fault else STEP_ARGS)
        elif hook == "do_device_not_available" and value is None:
            continue
        else:
            _check_callable(where, value, ARITY[hook])
    return d


def _validate_events(d: Design, origin: str) -> None:
    """A design's own events: Event records (`kernel.actions.design_event`) with new codes."""
    where = f"{origin}: extra_events of design {d.name!r}"
    if not isinstance(d.extra_events, tuple):
        raise InvalidDesign(f"{where} must be a tuple of events made by fpustate.kernel.actions.design_event()")
    seen = set(KERNEL_CODES)
    for e in d.extra_events:
        if not isinstance(e, Event):
            raise InvalidDesign(f"{where}: {e!r} is not an event; make it with design_event(code, ctx, where, ...)")
        if not isinstance(e.code, str) or not e.code or e.code in seen:
            raise InvalidDesign(f"{where}: event code {e.code!r} is empty or already taken; choose a new name")
        seen.add(e.code)
        if not (callable(e.outcomes) and callable(e.apply) and callable(e.text)
                and (e.enabled is None or callable(e.enabled))):
            raise InvalidDesign(f"{where}: event {e.code!r} needs callable outcomes, apply and text (and enabled, if given)")
        if (not isinstance(e.also, tuple) or not all(isinstance(c, str) and c for c in e.also)
                or any(c in seen for c in e.also)):
            raise InvalidDesign(f"{where}: event {e.code!r}: its other codes (also) must be a tuple of new names")
        seen.update(e.also)
        if not isinstance(e.ctx, str):
            raise InvalidDesign(f"{where}: event {e.code!r}: its context must be a string such as 'task'")
        if not isinstance(e.at, tuple) or not e.at or not all(w == GLOBAL or isinstance(w, int) for w in e.at):
            raise InvalidDesign(f"{where}: event {e.code!r} has no valid situation; use one of {', '.join(SITUATIONS)}")
        try:
            hash(e)  # the action table is built once per set of events (a cache keyed by them)
        except TypeError as err:
            raise InvalidDesign(f"{where}: event {e.code!r} has an unhashable field ({err}); use tuples and plain functions") from None


def load_design_file(path: str) -> list[Design]:
    """Import `path` and return its validated designs."""
    p = Path(path)
    origin = f"--design-file {path}"
    if not p.is_file():
        raise InvalidDesign(f"{origin}: no such file")
    mod_name = f"fpustate_user_design_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise InvalidDesign(f"{origin}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise InvalidDesign(f"{origin}: line {e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:  # the user's code failed at import: say where
        line = _user_line(e, p)
        raise InvalidDesign(f"{origin}: importing it raised {type(e).__name__}: {e}{line}") from None
    found = getattr(module, "DESIGNS", None)
    if found is None:
        found = [getattr(module, "DESIGN")] if hasattr(module, "DESIGN") else None
    if not found:
        raise InvalidDesign(f"{origin}: defines no DESIGN; add e.g. "
                            "DESIGN = linux.DESIGN.variant(name='mine', kernel_fpu_begin=my_begin)")
    return [validate(d, origin) for d in found]


def _user_line(e: BaseException, p: Path) -> str:
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if Path(frame.filename).resolve() == p.resolve():
            return f" (line {frame.lineno})"
    return ""


def hook_failure(e: BaseException, d: Design) -> InvalidDesign:
    """A hook raised while the design was being checked: one line naming where."""
    frames = traceback.extract_tb(e.__traceback__)
    last = frames[-1] if frames else None
    where = f" in {last.name}() at {Path(last.filename).name}:{last.lineno}" if last else ""
    return InvalidDesign(f"design {d.name!r}: a hook raised {type(e).__name__}: {e}{where}")
