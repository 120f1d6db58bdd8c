"""The simulator's tracepoint probe: count each FPU operation a design's hooks execute and
charge its cycles from the cost profile, with the live state (XSTATE_BV) of the task concerned."""

from __future__ import annotations

from collections import Counter

from .costs import Profile
from .replay_kvm import KVM_COUNTERS

COUNTERS = ("saves", "kfpu_saves", "restores", "restores_skipped", "init_loads", "sigframe_saves",
            "sigframe_restores", "nm_traps", "cr0_writes") + KVM_COUNTERS
PROBE_OPS = {  # tracepoint -> (counter, cost-profile entry or None)
    "save": ("saves", "save"),
    "restore": ("restores", "restore"),
    "skip": ("restores_skipped", None),
    "restore_init": ("init_loads", "restore_init"),
    "sigframe_save": ("sigframe_saves", "sigframe_save"),
    "sigframe_restore": ("sigframe_restores", "sigframe_restore"),
    "nm": ("nm_traps", None),
    "cr0_ts": ("cr0_writes", None),
    "kvm_load": ("kvm_loads", None),  # the FPU work inside (save, restore) is counted by its own tracepoints
    "kvm_put": ("kvm_puts", None),
    "vm_entry": ("vm_entries", None),  # VMLAUNCH/VMRESUME and the exit cost every design the same: not FPU work
    "vm_exit": ("vm_exits", None),
    "xfd_nm": ("xfd_traps", None),
    "xfd_msr": ("xfd_msr_writes", None),
}


class Meter:
    """The probe half of a `Replay` (`Model.probe` is the replay itself)."""

    def init_meter(self, profile: Profile) -> None:
        """Zero counters; per tracepoint its counter and its cycles (None, a fixed float, or a
        cache XSTATE_BV -> cycles)."""
        self.profile = profile
        self.counts = Counter({name: 0 for name in COUNTERS})
        self.cycles = 0.0
        self.default_xf = profile.default_xfeatures
        # tracepoint -> (counter, cycles: None, a fixed float, or a cache XSTATE_BV -> cycles)
        self._probe = {op: (counter, None if kind is None else {}) for op, (counter, kind) in PROBE_OPS.items()}
        self._probe["nm"] = ("nm_traps", float(profile.nm))
        self._probe["cr0_ts"] = ("cr0_writes", float(profile.cr0_write))
        self._probe["xfd_nm"] = ("xfd_traps", float(profile.nm))  # the #NM exception path; fpstate_realloc() unpriced
        self._probe["xfd_msr"] = ("xfd_msr_writes", float(profile.xfd_msr_write))
        if not profile.linear["restore_init"][1]:
            self._probe["restore_init"] = ("init_loads", float(profile.linear["restore_init"][0]))

    def __call__(self, op: str, c: int, t: int) -> None:
        """The model's probe: count one FPU operation and charge its cycles."""
        counter, costs = self._probe[op]
        counts = self.counts
        counts[counter] += 1
        if costs is None:
            return
        if costs.__class__ is float:  # a fixed cost (#NM, CR0 write, init load)
            self.cycles += costs
            return
        xf = self.xfeatures.get(t, self.default_xf)
        cost = costs.get(xf)
        if cost is None:
            cost = costs[xf] = self.profile.cost(PROBE_OPS[op][1], xf)
        self.cycles += cost
        if self.in_kfpu and op == "save":
            counts["kfpu_saves"] += 1


    def summary(self) -> dict:
        out = dict(self.counts)
        out["cycles"] = round(self.cycles)
        out["ns"] = round(self.cycles / self.profile.ghz)
        return out
