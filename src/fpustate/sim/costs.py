"""Cost profiles: what each FPU operation costs in cycles, as data files a user can copy.

A profile is a TOML file (see `profiles/spr-user-hot.toml`): a `source`
saying where the numbers come from, the core clock, the XSTATE_BV assumed
when a trace does not show one, a linear cost `base + per_kib * KiB` per
XSAVE/XRSTOR kind (KiB of live state: the components whose XSTATE_BV bit is
set, plus the legacy area and header), and the #NM and CR0.TS trap costs.
AMX tile data (8 KiB) therefore makes a save or restore markedly dearer.
`trap.xfd_msr_write` (one WRMSR of MSR_IA32_XFD, 5.16+ AMX machines) is
optional: profiles written before it existed get cost-model.md 3.5's suggested
400 cycles.
"""

from __future__ import annotations

import functools
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError

# Architectural component sizes in bytes, by XSTATE_BV bit (cost-model.md 3.1).
COMPONENT_BYTES = {2: 256, 5: 64, 6: 512, 7: 1024, 9: 8, 17: 64, 18: 8192}
LEGACY_BYTES = 512 + 64  # x87 + SSE legacy area and the XSAVE header: always written

XFD_MSR_WRITE = 400.0  # cost-model.md 3.5: xfd_msr_write_cycles, the suggested default (range 100-500)
KINDS = ("save", "restore", "restore_init", "sigframe_save", "sigframe_restore")


@functools.lru_cache(maxsize=1024)
def live_kib(xfeatures: int) -> float:
    """KiB an init-optimised XSAVE moves for this XSTATE_BV."""
    return (LEGACY_BYTES + sum(size for bit, size in COMPONENT_BYTES.items() if xfeatures >> bit & 1)) / 1024


class Profile(NamedTuple):
    name: str
    source: str
    ghz: float
    default_xfeatures: int
    linear: dict  # kind -> (base, per_kib)
    nm: float
    cr0_write: float
    xfd_msr_write: float = XFD_MSR_WRITE

    def cost(self, kind: str, xfeatures: int) -> float:
        base, per_kib = self.linear[kind]
        return base + per_kib * live_kib(xfeatures) if per_kib else base


def builtin_profiles() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).joinpath("profiles").iterdir()
                  if p.name.endswith(".toml"))


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or a TOML file by path; one-line errors for bad input."""
    if name_or_path in builtin_profiles():
        text = resources.files(__package__).joinpath("profiles", name_or_path + ".toml").read_text()
        where = f"profile {name_or_path}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(f"--profile: {name_or_path!r} is neither a built-in profile "
                             f"({', '.join(builtin_profiles())}) nor a readable file")
        text, where = path.read_text(errors="replace"), str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: not valid TOML ({e})") from None
    try:
        linear = {}
        for kind in KINDS:
            sec = data[kind]
            linear[kind] = (_number(where, f"{kind}.base", sec["base"], 0.0, MAX_CYCLES),
                            _number(where, f"{kind}.per_kib", sec.get("per_kib", 0), 0.0, MAX_CYCLES))
        xfeatures = int(str(data.get("default_xfeatures", "a2")), 16)
        if not 0 <= xfeatures < 1 << 64:
            raise UsageError(f"{where}: default_xfeatures must be a 64-bit XSTATE_BV in hex, such as \"a2\"")
        return Profile(str(data["name"]), " ".join(str(data["source"]).split()),
                       _number(where, "ghz", data["ghz"], MIN_GHZ, MAX_GHZ), xfeatures, linear,
                       _number(where, "trap.nm", data["trap"]["nm"], 0.0, MAX_CYCLES),
                       _number(where, "trap.cr0_write", data["trap"]["cr0_write"], 0.0, MAX_CYCLES),
                       _number(where, "trap.xfd_msr_write", data["trap"].get("xfd_msr_write", XFD_MSR_WRITE), 0.0,
                               MAX_CYCLES))
    except KeyError as e:
        raise UsageError(f"{where}: missing {e.args[0]!r}; copy a built-in profile "
                         f"(e.g. {builtin_profiles()[0]}) and edit it") from None
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: a value is not a number ({e})") from None


MIN_GHZ, MAX_GHZ = 0.01, 100.0  # a core clock, in GHz
MAX_CYCLES = 1e9  # any one operation's cost; keeps every total a finite number


def _number(where: str, key: str, value, lo: float, hi: float) -> float:
    """A finite number from lo to hi (TOML also allows nan and inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{where}: {key} must be a number, got {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise UsageError(f"{where}: {key} must be a number, got {value!r}") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        bounds = " to ".join(f"{b:,.0f}" if b >= 1 else f"{b:g}" for b in (lo, hi))
        raise UsageError(f"{where}: {key} must be a number from {bounds}, got {value!r}")
    return x
