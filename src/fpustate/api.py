"""The Python API: check a design, load one from a file, run the cost simulator.

Everything the command line does, as functions returning plain results, for tests
("my patched design still holds") and notebooks::

    import fpustate

    r = fpustate.check("rfc2016-stale-flags", execs=0)
    r.ok                    # False
    v = r.violations[0]
    v.property, len(v.steps)  # ('user_sees_own_registers', 5)
    print(v.text)           # the counterexample, as `fpustate check --trace` prints it

    mine = fpustate.load_design("examples/forgetful_linux.py")
    assert not fpustate.check(mine, "small").ok

    sim = fpustate.simulate(workloads=["crypto"], designs=["linux", "eager"], length=500)
    sim.rows()              # one dict per source and design (and the bound)

Bad input raises `fpustate.errors.UsageError` (an unknown design, an out-of-range knob) or
`fpustate.errors.InvalidDesign` (a malformed design file or a hook that raises), each with the
one-line message the command line prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterable, Optional, Sequence, Union

from .check.explore import LOOK_PAST, Explorer, Result
from .check.trace import Step, format_trace, index_path, model_tag, steps
from .config import PRESETS, Scenario
from .designs import DESIGNS, get
from .designs.base import Design
from .designs.loader import hook_failure, load_design_file
from .errors import InvalidDesign, UsageError
from .kernel.machine import Model, initial_state, make_model
from .kernel.properties import BY_NAME, PROPERTIES



@dataclass(frozen=True)
class Counterexample:
    """The shortest path to a state that violates `property`."""

    property: str  # the property's name, e.g. "user_sees_own_registers"
    detail: str  # what is wrong in the final state
    why: str  # the property's docstring: what a user loses when it breaks
    steps: tuple[Step, ...]  # each with .n, .cpu, .actor, .context, .function, .changes
    text: str  # the whole counterexample as `fpustate check --trace` prints it
    index_path: str  # tag:path, for `fpustate check DESIGN --replay PATH` (the tag names design and scenario)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class CheckResult:
    """The outcome of exploring one design on one scenario.

    `ok` is True only when every property holds over the *whole* state space: a run capped by
    `max_states` or stopped after a violation (`look_past`) decides nothing about the properties
    it did not see violated. `verdict` says which: "holds", "violated" or "incomplete"."""

    design: str
    scenario: Scenario
    states: int
    transitions: int
    depth: int
    seconds: float
    complete: bool  # explored to the fixpoint
    violations: tuple[Counterexample, ...]  # most severe first, one per violated property
    model: Model = field(repr=False, compare=False)
    result: Result = field(repr=False, compare=False)  # the explorer's raw result
    explorer: Optional[Explorer] = field(default=None, repr=False, compare=False)  # for index paths and pages

    @property
    def ok(self) -> bool:
        return self.complete and not self.violations

    @property
    def verdict(self) -> str:
        return "violated" if self.violations else "holds" if self.complete else "incomplete"

    def violation(self, prop: str) -> Optional[Counterexample]:
        """The counterexample of property `prop`, or None."""
        return next((v for v in self.violations if v.property == prop), None)

    def html(self) -> str:
        """The page `fpustate check --html` writes for this design: summary, then a timeline per violation."""
        from .check.verdict import verdict
        from .cli.common import CHECK_COLUMNS, check_row
        from .report.html import check_page

        return check_page(self.scenario, [(self.model, self.explorer, self.result)], CHECK_COLUMNS,
                          [check_row(self.result)], verdict)

    def _repr_html_(self) -> str:
        """Jupyter shows a result as its page (`html()`), framed."""
        from .report.html import notebook_frame

        return notebook_frame(self.html())


def scenario_of(scenario: Union[None, str, Scenario] = None, **knobs) -> Scenario:
    """A Scenario: None (the default), a preset name ("small", "signals", ...) or a Scenario,
    with `knobs` (Scenario fields, e.g. execs=0, cpus=1) applied over it."""
    if scenario is None:
        scenario = Scenario()
    elif isinstance(scenario, str):
        if scenario not in PRESETS:
            raise UsageError(f"scenario: unknown preset {scenario!r}; available: {', '.join(PRESETS)}")
        scenario = Scenario(**PRESETS[scenario])
    elif not isinstance(scenario, Scenario):
        raise UsageError(f"scenario: expected None, a preset name or a Scenario, got {type(scenario).__name__}")
    names = {f.name for f in fields(Scenario)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise UsageError(f"scenario: unknown knob {unknown[0]!r}; available: {', '.join(sorted(names))}")
    return scenario.replace(**knobs)


def _design(design: Union[str, Design]) -> Design:
    if isinstance(design, Design):
        return design
    if isinstance(design, str):
        return get(design)
    raise UsageError(f"design: expected a design name or a Design, got {type(design).__name__}")


def check(design: Union[str, Design], scenario: Union[None, str, Scenario] = None, *,
          properties: Optional[Sequence[str]] = None, look_past: int = LOOK_PAST, max_states: int = 0,
          symmetry: bool = True, store: str = "fingerprint", **knobs) -> CheckResult:
    """Explore every interleaving of `design` (a name from `fpustate designs`, a mutant's name, or
    a `Design`, e.g. from `load_design()`) on `scenario` (see `scenario_of`; knobs such as
    `execs=0` override it). `properties`: names to check (default: all); `symmetry` and `store`
    ("fingerprint" or "exact") as the command's --symmetry and --store. As `fpustate check`."""
    d = _design(design)
    sc = scenario_of(scenario, **knobs)
    props = PROPERTIES
    if properties is not None:
        for p in properties:
            if p not in BY_NAME:
                raise UsageError(f"properties: unknown property {p!r}; available: {', '.join(BY_NAME)}")
        props = tuple(p for p in PROPERTIES if p.name in properties)
    if look_past < 0 or max_states < 0:
        raise UsageError("look_past and max_states must be 0 or more")
    m = make_model(d, sc)
    if store not in ("exact", "fingerprint"):
        raise UsageError(f"store: {store!r}; use 'exact' or 'fingerprint'")
    ex = Explorer(m, props, symmetry=symmetry, store=store)
    try:
        r = ex.run(max_states=max_states, look_past=look_past)
        for v in r.violations:
            ex.trace(v)
    except Exception as e:  # a hook of a design that is not built in failed: one line
        if d.name in DESIGNS and DESIGNS[d.name] is d:
            raise
        raise hook_failure(e, d) from None
    init = initial_state(m)
    cex = tuple(Counterexample(v.prop.name, v.detail, v.prop.doc, tuple(steps(m, v.path, init)),
                               format_trace(m, v.path, init, v), f"{model_tag(m)}:{index_path(ex, v)}") for v in r.violations)
    return CheckResult(d.name, sc, r.states, r.transitions, r.depth, r.seconds, r.complete, cex, m, r, ex)


def load_design(path: str) -> Design:
    """The design a Python file defines (`DESIGN = linux.DESIGN.variant(...)`), validated hook by
    hook. A design file is Python: loading it runs it with your rights. A file that defines several
    (`DESIGNS`) needs `load_designs()`."""
    found = load_design_file(path)
    if len(found) != 1:
        raise InvalidDesign(f"{path}: defines {len(found)} designs; use fpustate.load_designs() for all of them")
    return found[0]


def load_designs(path: str) -> list[Design]:
    """Every design a Python file defines (`DESIGN` or `DESIGNS`), validated."""
    return load_design_file(path)


@dataclass(frozen=True)
class Simulation:
    """The cost simulator's results: one `sim.run.SimResult` per trace or workload, in order."""

    runs: tuple  # SimResult: .source, .designs [(name, counters)], .bound, .conformance ...
    profile: object  # sim.costs.Profile

    def rows(self) -> list[dict]:
        """One dict per source and design, and one for the clairvoyant bound (as `--csv`)."""
        from .sim.report import rows

        return [dict(source=r.source, **row) for r in self.runs for row in rows(r)]

    def cycles(self, design: str, source: Optional[str] = None) -> int:
        """Total FPU cycles of `design` over every run (or over the run of `source`)."""
        return sum(dict(r.designs)[design]["cycles"] for r in self.runs if source in (None, r.source))

    def table(self) -> str:
        """The tables `fpustate simulate` prints."""
        from .sim.report import table

        return "\n\n".join(table(r, self.profile) for r in self.runs)

    def html(self) -> str:
        """The page `fpustate simulate --html` writes: per run its table, then the plot against the bound."""
        from .report.html import simulate_page

        return simulate_page(self.runs, self.profile)

    def _repr_html_(self) -> str:
        """Jupyter shows the simulation as its page (`html()`), framed."""
        from .report.html import notebook_frame

        return notebook_frame(self.html())


DEFAULT_SIM_DESIGNS = ("eager", "lazy", "strawman", "linux")


def simulate(traces: Iterable[str] = (), workloads: Iterable[str] = (),
             designs: Iterable[Union[str, Design]] = DEFAULT_SIM_DESIGNS, *,
             profile: str = "spr-user-hot", fpu_use: float = 1.0, seed: int = 0, length: int = 20_000,
             cpus: int = 0) -> Simulation:
    """Replay scheduler `traces` (paths) and synthetic `workloads` (names) through `designs` and
    the clairvoyant bound, as `fpustate simulate`: saves, restores, skipped restores, #NM traps,
    CR0.TS writes and cycles under the cost `profile` (a built-in name or a TOML file). A run
    with KVM or AMX events (the `kvm` workload, a trace with `kvm_fpu`) needs designs with the
    5.16+ hooks: with the default `designs` the others are left out (each run's
    `skipped_designs` says why), named ones are refused."""
    import os

    from .sim.costs import load_profile
    from .sim.run import simulate_trace, simulate_workload

    traces, workloads = list(traces), list(workloads)
    if isinstance(traces, str) or isinstance(workloads, str):
        raise UsageError("simulate: traces and workloads are lists of names")
    if not traces and not workloads:
        raise UsageError("simulate: give traces=[PATH, ...] or workloads=[NAME, ...]")
    if not 0.0 <= fpu_use <= 1.0:
        raise UsageError(f"simulate: fpu_use must be from 0 to 1, got {fpu_use!r}")
    designs = tuple(designs)
    skip = designs == DEFAULT_SIM_DESIGNS  # the default list: designs without KVM are left out of KVM runs
    ds = [_design(d) for d in designs]
    prof = load_profile(profile)
    for t in traces:
        if not os.path.isfile(t):
            raise UsageError(f"{t}: no such trace file")
    runs = [simulate_trace(t, ds, prof, fpu_use, seed, None, cpus, skip_without_kvm=skip) for t in traces]
    runs += [simulate_workload(w, ds, prof, fpu_use, seed, length, skip_without_kvm=skip) for w in workloads]
    return Simulation(tuple(runs), prof)
