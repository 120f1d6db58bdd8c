"""The two state-key functions the parallel engine needs, in one place.

Issue 9 gives them to `check/symmetry.py` (`canonicalizer`) and `check/store.py`
(`fingerprint`). Until those land, this shim defines the same names with the
same signatures: no symmetry reduction (the canonical form of a state is the
state itself) and a deterministic 64-bit BLAKE2b fingerprint. `parallel.py` and
`ray_engine.py` import them from here only, so switching to the real ones is
replacing this file's two definitions by
`from .symmetry import canonicalizer` and `from .store import fingerprint`.
"""

from __future__ import annotations

import hashlib
from typing import Callable

from ..kernel.machine import Model


def _identity(s: bytes) -> bytes:
    return s


def canonicalizer(model: Model) -> Callable[[bytes], bytes]:
    """The canonical form of a state of `model` (here: the state itself)."""
    return _identity


def fingerprint(s: bytes) -> int:
    """A deterministic 64-bit fingerprint of a state (the same in every process and run)."""
    return int.from_bytes(hashlib.blake2b(s, digest_size=8).digest(), "little")
