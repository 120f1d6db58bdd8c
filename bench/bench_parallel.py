"""Parallel checker speed-up: states/s with --jobs 1 (the sequential Explorer) and --jobs N.

Run: python bench/bench_parallel.py [DESIGN] [--scenario default] [--jobs 1 2] [--repeat 3]
Each configuration runs `--repeat` times, alternating, and the best wall time is kept (on a
shared machine the best run is the one least disturbed). CPU seconds (coordinator plus
partition processes) are printed too: with other programs competing for the cores, the wall
time says little, and CPU time shows the parallel engine's own overhead.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fpustate.check.explore import Explorer  # noqa: E402
from fpustate.check.parallel import ParallelExplorer  # noqa: E402
from fpustate.cli import PRESETS  # noqa: E402
from fpustate.config import Scenario  # noqa: E402
from fpustate.designs import get  # noqa: E402
from fpustate.kernel.machine import make_model  # noqa: E402


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(m, jobs: int):
    ex = Explorer(m) if jobs == 1 else ParallelExplorer(m, jobs=jobs)
    c0, t0 = _cpu(), time.perf_counter()
    r = ex.run()
    return r, time.perf_counter() - t0, _cpu() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design", nargs="?", default="linux")
    ap.add_argument("--scenario", default="default", choices=list(PRESETS))
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sc = Scenario(**PRESETS[args.scenario])
    m = make_model(get(args.design), sc)
    print(f"{args.design}, scenario {args.scenario}: {sc.describe()}")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start (other programs skew wall times)")
    best: dict[int, tuple] = {}
    for _ in range(args.repeat):
        for j in args.jobs:
            r, wall, cpu = measure(m, j)
            counts = (r.states, r.transitions, r.depth, [(v.prop.name, len(v.path) or v.depth) for v in r.violations])
            if j in best and best[j][0] != counts:
                sys.exit(f"--jobs {j} gave {counts}, before {best[j][0]}")
            if j not in best or wall < best[j][1]:
                best[j] = (counts, wall, cpu)
    ref = best[args.jobs[0]]
    print(f"{'jobs':>4} {'states':>10} {'transitions':>12} {'depth':>5} {'seconds':>8} {'states/s':>10} "
          f"{'cpu s':>7} {'speed-up':>8} {'same counts':>11}")
    for j in args.jobs:
        counts, wall, cpu = best[j]
        print(f"{j:>4} {counts[0]:>10,} {counts[1]:>12,} {counts[2]:>5} {wall:>8.2f} {counts[0] / wall:>10,.0f} "
              f"{cpu:>7.2f} {ref[1] / wall:>7.2f}x {'yes' if counts == ref[0] else 'NO':>11}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
