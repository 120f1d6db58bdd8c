"""Simulator throughput: trace events/s for parsing alone, end to end (parse, inference and
replay of one design; then also with the clairvoyant bound) per design, all designs in one
pass, and peak memory as the trace grows.

Run: python bench/bench_sim.py [--copies N]
The input is the shipped ping-pong and mixed traces (tests/data/traces) concatenated N times
into a temporary file, so the figures come from a few hundred thousand events. One core,
pure Python; each figure is the best of 3 runs, because the VM is noisy.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fpustate.designs import DESIGNS  # noqa: E402
from fpustate.sim.costs import load_profile  # noqa: E402
from fpustate.sim.events import TraceReader  # noqa: E402
from fpustate.sim.run import simulate_trace, simulate_workload  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "traces"
SIM_DESIGNS = ("eager", "lazy", "strawman", "linux")


def build(copies: int) -> str:
    """A trace of `copies` concatenations of the shipped x86 traces (header kept once)."""
    parts = []
    for name in ("pipe_pingpong_cpu0", "mixed_cpu0"):
        with gzip.open(DATA / f"{name}.txt.gz", "rt") as f:
            parts.append([line for line in f if not line.startswith("#")])
    f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    f.write("# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:2\n")
    for _ in range(copies):
        for lines in parts:
            f.writelines(lines)
    f.close()
    return f.name


def best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=12, help="concatenations of the shipped traces")
    args = ap.parse_args()
    profile = load_profile("spr-user-hot")
    path = build(args.copies)
    try:
        events = sum(1 for _ in TraceReader(path))
        print(f"input: {events:,} trace events ({args.copies} copies of pipe_pingpong_cpu0 + mixed_cpu0)")
        dt = best(lambda: sum(1 for _ in TraceReader(path)))
        print(f"{'parse only':<28} {events / dt:>10,.0f} events/s")
        for name in SIM_DESIGNS:
            dt = best(lambda: simulate_trace(path, [DESIGNS[name]], profile, with_bound=False))
            dtb = best(lambda: simulate_trace(path, [DESIGNS[name]], profile))
            print(f"{'end to end, ' + name:<28} {events / dt:>10,.0f} events/s   "
                  f"with the bound: {events / dtb:>8,.0f} events/s")
        dt = best(lambda: simulate_trace(path, [DESIGNS[n] for n in SIM_DESIGNS], profile))
        print(f"{'end to end, all 4 designs':<28} {events / dt:>10,.0f} events/s (parsed once)")
        res = simulate_workload("kvm", [DESIGNS["linux"]], profile, fpu_use=0.5, length=5_000)
        dt = best(lambda: simulate_workload("kvm", [DESIGNS["linux"]], profile, fpu_use=0.5, length=5_000))
        print(f"{'kvm workload, linux':<28} {res.ops / dt:>10,.0f} operations/s (with the bound)")
        for copies in (max(1, args.copies // 4), args.copies):
            p = build(copies)
            tracemalloc.start()
            simulate_trace(p, [DESIGNS[n] for n in SIM_DESIGNS], profile)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            Path(p).unlink()
            print(f"peak memory, {copies:>3} copies: {peak / 1024:>8,.0f} KiB")
    finally:
        Path(path).unlink()


if __name__ == "__main__":
    main()
