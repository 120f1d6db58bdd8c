"""Checker throughput: unique states/s, transitions/s and bytes per stored state, per design.

Run: python bench/bench_check.py [--scenario default|small|lifecycle] [DESIGN ...]
One core, pure Python. Memory is measured in a second run with tracemalloc
(which slows Python down), so speed and memory never disturb each other.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fpustate.check.explore import Explorer  # noqa: E402
from fpustate.cli import PRESETS  # noqa: E402
from fpustate.config import Scenario  # noqa: E402
from fpustate.designs import DESIGNS, get  # noqa: E402
from fpustate.kernel.machine import make_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("designs", nargs="*", default=list(DESIGNS))
    ap.add_argument("--scenario", default="default", choices=list(PRESETS))
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    args = ap.parse_args()
    sc = Scenario(**PRESETS[args.scenario])
    print(f"scenario {args.scenario}: {sc.describe()}")
    print(f"{'design':<20} {'states':>10} {'transitions':>12} {'seconds':>8} {'states/s':>10} "
          f"{'trans/s':>10} {'bytes/state':>12}")
    total = 0.0
    for name in args.designs:
        m = make_model(get(name), sc)
        t0 = time.perf_counter()
        r = Explorer(m).run()
        dt = time.perf_counter() - t0
        total += dt
        per_state = "-"
        if not args.no_memory:
            rm = Explorer(m).run(measure_memory=True)
            per_state = f"{rm.peak_bytes / rm.states:.0f}"
        print(f"{name:<20} {r.states:>10,} {r.transitions:>12,} {dt:>8.2f} {r.states / dt:>10,.0f} "
              f"{r.transitions / dt:>10,.0f} {per_state:>12}", flush=True)
    print(f"total {total:.1f} s")


if __name__ == "__main__":
    main()
