"""The built-in designs, registered explicitly by name (no scanning)."""

from __future__ import annotations

from ..errors import UsageError
from . import eager, lazy, linux, rfc2016
from .base import Design

DESIGNS: dict[str, Design] = {
    d.name: d
    for d in (eager.DESIGN, lazy.DESIGN, rfc2016.DESIGN, rfc2016.STALE_FLAGS, linux.DESIGN)
}


def get(name: str) -> Design:
    try:
        return DESIGNS[name]
    except KeyError:
        raise UsageError(f"unknown design {name!r}; available: {', '.join(DESIGNS)}") from None
