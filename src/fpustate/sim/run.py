"""One simulation: a trace (or a generated workload) through every design and the bound.

The trace is parsed once and each record's operations go to every design's
replay and to the bound in lockstep, so nothing is stored per event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Optional

from ..kernel.design import Design
from ..errors import UsageError
from .bound import Bound
from .costs import Profile
from .events import READ_ERRORS, TraceError, TraceReader, _open, read_error
from .infer import FPU_EVENTS, Inference, MalformedRecord
from .infer_kvm import KVM_EVENTS
from .kernel_view import INFERRED_KINDS
from .replay import Replay
from .replay_kvm import KVM_COUNTERS, KvmUnsupported, kvm_unsupported

MAX_CPUS = 27  # the state vector stores the task records' offset in one byte
PEEK = 2_000  # records read ahead to find the CPU count and whether x86_fpu events are present
NCPUS_RE = re.compile(r"#P:(\d+)|cpus=(\d+)")


@dataclass
class SimResult:
    source: str  # trace path or "workload NAME"
    inference: str  # how slices and kernel threads were decided
    records: int
    ops: int
    cpus: int
    designs: list = field(default_factory=list)  # (name, summary dict)
    bound: dict = field(default_factory=dict)
    conformance: Optional[dict] = None  # kind -> (agree, total), plus the first disagreements
    disagreements: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)  # unknown event types -> count
    synthesized: int = 0
    traced_switches: int = 0  # switches the model's scheduler never makes, run as sched_switch (sim.sched)
    inferred: dict = field(default_factory=dict)  # why -> events the x86_fpu inference added (sim.kernel_view)
    lost: int = 0
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: the counts cover the part replayed so far
    kvm: bool = False  # a kvm workload or a trace with KVM events: the KVM counters are shown
    skipped_designs: list = field(default_factory=list)  # one line each: designs without KVM, left out


def kvm_designs(designs: list[Design], skip: bool) -> tuple[list[Design], list[str]]:
    """The designs that can replay KVM and AMX operations (`Design.fpu_ext`), and a line for
    each one that cannot: left out when `skip` (the default design list), refused otherwise."""
    lines = [kvm_unsupported(d) for d in designs if d.fpu_ext is None]
    if lines and not skip:
        raise UsageError(lines[0] + "; leave it out or pass --design linux")
    return [d for d in designs if d.fpu_ext is not None], lines


def peek(path: str) -> tuple[bool, int, bool]:
    """(x86_fpu events present, number of CPUs, KVM events present) from the header (`#P:N`,
    `cpus=N`) and the first PEEK records."""
    ncpus = 0
    with _open(path) as f:
        try:
            head = f.read(4096)
        except READ_ERRORS as e:
            raise read_error(path, e) from None
    m = NCPUS_RE.search(head)
    if m:
        ncpus = int(m.group(1) or m.group(2))
    fpu = kvm = False
    for rec in islice(TraceReader(path), PEEK):
        fpu = fpu or rec.event.startswith(FPU_EVENTS)
        kvm = kvm or rec.event in KVM_EVENTS
        ncpus = max(ncpus, rec.cpu + 1)
    return fpu, max(ncpus, 1), kvm


def simulate_ops(source: str, inference: str, items: Iterable, ncpus: int, designs: list[Design],
                 profile: Profile, conformance: bool, progress: Optional[Callable] = None,
                 expand: Optional[Callable] = None, finish: Optional[Callable] = None,
                 with_bound: bool = True, amx: bool = False) -> SimResult:
    """Feed operations to every design and the bound. `items` are batches of operations, or
    trace records that `expand` turns into batches (one pass, nothing stored per event).
    `amx`: an AMX machine (MSR_IA32_XFD armed at boot)."""
    import time

    replays = [Replay(d, ncpus, profile, conformance=conformance and d.name == "linux", amx=amx) for d in designs]
    bound = Bound(ncpus, profile)
    # Every operation goes to each design's replay and to the bound. With one design its
    # handler table is called directly (the common, fast case).
    single = replays[0]._handlers if len(replays) == 1 else None
    multi = tuple(r.apply for r in replays)
    bound_apply = bound.apply if with_bound else None
    t0 = time.perf_counter()
    n = 0
    interrupted = False

    def run(batch) -> None:
        for op in batch:
            if op.cpu >= ncpus:
                raise UsageError(_late_cpu(source, op))
            if single is not None:
                single[op[0]](op)
            else:
                for apply in multi:
                    apply(op)
            if bound_apply is not None:
                bound_apply(op)

    try:
        for i, item in enumerate(items):
            batch = expand(item) if expand is not None else item
            if not batch:
                continue
            run(batch)
            n += len(batch)
            if progress is not None and not i & 0x3FF:
                progress()
        if finish is not None:
            batch = finish()
            run(batch)
            n += len(batch)
    except KeyboardInterrupt:
        interrupted = True  # report what was replayed
    except KvmUnsupported as e:  # a KVM event after the first PEEK records, for a design without the hooks
        raise UsageError(f"{source}:{e.line}: {e} (the first {PEEK:,} records had no KVM event; "
                         "pass --design linux)") from None
    res = SimResult(source, inference, 0, n, ncpus, seconds=time.perf_counter() - t0, interrupted=interrupted)
    res.designs = [(r.name, r.summary()) for r in replays]
    res.bound = bound.summary() if with_bound else {}
    res.synthesized = max((r.synthesized for r in replays), default=0)
    res.traced_switches = max((r.traced_switches for r in replays), default=0)
    res.kvm = any(s[k] for _, s in res.designs for k in KVM_COUNTERS)
    for r in replays:
        if r.conformance:
            res.conformance = {kind: tuple(r.tally[kind]) for kind in ("switch", "return", "signal")}
            if r.tally["vm_entry"][1]:  # (only traces with KVM events decide it: older outputs unchanged)
                res.conformance["vm_entry"] = tuple(r.tally["vm_entry"])
            res.disagreements = sorted(r.disagreements)[:20]
    return res


def _late_cpu(source: str, op) -> str:
    """The error for a CPU number the first PEEK records and the header did not announce."""
    where = f"{source}:{op.line}: CPU {op.cpu} first appears after the first {PEEK:,} records"
    if op.cpu >= MAX_CPUS:
        return f"{where}; the simulator models at most {MAX_CPUS} CPUs (0 to {MAX_CPUS - 1})"
    return f"{where} and the header gives no CPU count; pass --cpus {op.cpu + 1} or more"


def simulate_trace(path: str, designs: list[Design], profile: Profile, fpu_use: float = 1.0, seed: int = 0,
                   progress: Optional[Callable] = None, cpus: int = 0, with_bound: bool = True,
                   skip_without_kvm: bool = False) -> SimResult:
    """Parse `path` once and replay it through every design and the bound. A trace with KVM
    events (`kvm_fpu`, `kvm_entry`, `kvm_exit`) in its first PEEK records needs designs with the
    5.16+ hooks: the others are left out (`skip_without_kvm`) or refused."""
    import time

    fpu, ncpus, kvm = peek(path)
    skipped: list[str] = []
    if kvm:
        designs, skipped = kvm_designs(designs, skip_without_kvm)
    ncpus = max(ncpus, cpus)
    if ncpus > MAX_CPUS:
        raise TraceError(f"{path}: the trace has {ncpus} CPUs; the simulator models at most {MAX_CPUS}")
    inference = Inference(fpu, fpu_use, seed, kvm)
    how = ("x86_fpu tracepoints (every user slice uses the FPU)" if fpu else
           f"heuristics: kernel threads by name and parentage, every user slice returns to user mode, "
           f"FPU use per slice {fpu_use:g} (seed {seed})")
    reader = TraceReader(path)

    tick = (lambda: progress(reader.bytes_read, reader.size)) if progress else None
    t0 = time.perf_counter()
    try:
        res = simulate_ops(path, how, reader, ncpus, designs, profile, conformance=fpu, progress=tick,
                           expand=inference.feed, finish=inference.finish, with_bound=with_bound)
    except MalformedRecord as e:  # "line N: what" -> "PATH:N: what"
        where, _, what = str(e).partition(": ")
        raise TraceError(f"{path}:{where.removeprefix('line ')}: {what}") from None
    res.seconds = time.perf_counter() - t0
    res.kvm = res.kvm or kvm or inference.kvm
    res.skipped_designs = skipped
    res.records = inference.records
    if not res.records:
        raise TraceError(f"{path}: no trace records found; expected tracefs, trace-cmd report or perf script text")
    res.skipped = dict(sorted(inference.skipped.items()))
    res.synthesized += inference.synthesized
    if fpu:
        res.inferred = {why: inference.inferred[why] for why in INFERRED_KINDS}
    res.lost = reader.lost
    return res


def simulate_workload(name: str, designs: list[Design], profile: Profile, fpu_use: float = 1.0, seed: int = 0,
                      length: int = 20_000, skip_without_kvm: bool = False) -> SimResult:
    """Generate a seeded synthetic workload and replay it through every design and the bound.
    The kvm workload needs designs with the 5.16+ hooks: the others are left out
    (`skip_without_kvm`) or refused."""
    from .workloads import WORKLOADS, generate

    if name not in WORKLOADS:
        raise UsageError(f"--workload: unknown workload {name!r}; available: {', '.join(WORKLOADS)}")
    w = WORKLOADS[name]
    skipped: list[str] = []
    if w.kvm:
        designs, skipped = kvm_designs(designs, skip_without_kvm)
    how = f"generated: {w.summary}; FPU use per slice {fpu_use:g} (seed {seed}, {length:,} rounds)"
    res = simulate_ops(f"workload {name}", how, generate(name, seed, fpu_use, length), w.cpus, designs, profile,
                       conformance=False, amx=w.kvm)
    res.kvm = res.kvm or w.kvm
    res.skipped_designs = skipped
    res.records = res.ops
    return res
