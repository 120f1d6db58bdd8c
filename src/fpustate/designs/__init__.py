"""The built-in designs, registered explicitly by name (no scanning)."""

from __future__ import annotations

from ..errors import UsageError
from . import eager, lazy, linux, mutants, mutants_kvm, rfc2016, strawman
from ..kernel.design import Design

DESIGNS: dict[str, Design] = {
    d.name: d
    for d in (eager.DESIGN, lazy.DESIGN, rfc2016.DESIGN, rfc2016.STALE_FLAGS, strawman.DESIGN, linux.DESIGN)
}


# Real kernel bugs, re-created as one-hook mutants of a real design. Checked by
# name; `fpustate check` without names runs only DESIGNS.
MUTANTS: dict[str, Design] = dict(mutants.MUTANTS) | mutants_kvm.MUTANTS


def get(name: str) -> Design:
    if name in DESIGNS:
        return DESIGNS[name]
    if name in MUTANTS:
        return MUTANTS[name]
    raise UsageError(f"unknown design {name!r}; available: {', '.join(DESIGNS)}; "
                     f"mutants: {', '.join(MUTANTS)}")
