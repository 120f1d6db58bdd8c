"""Parallel checker speed-up: --jobs 1 (the sequential Explorer) against --jobs N, with the CLI's defaults.

Run: python bench/bench_parallel.py [DESIGN] [--scenario default|3x2|...] [--jobs 1 2] [--repeat 3]
     [--no-symmetry] [--store exact|fingerprint]

Every run is a fresh process (so its peak RSS is its own); the configurations
alternate, `--repeat` times, and the best wall time of each is kept (on a
shared machine the best run is the one least disturbed). Printed per --jobs:
states stored (canonical with symmetry), the raw states they stand for
(represented), transitions, depth, wall seconds (partitions started included),
CPU seconds (coordinator plus partitions: with other programs competing for the
cores the wall time says little, the CPU time shows the engine's own overhead),
canonical states/s, raw states/s (successors generated per second, before
deduplication), equivalent states/s (raw states represented per second),
peak RSS summed over the processes, bytes per stored state ((peak RSS - RSS at
the start) of each process, summed, over states; pages shared since fork count in
every process, so it is an upper bound for --jobs N), and the speed-up against the
first --jobs given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
SCENARIOS = {"default": {}, "3x2": dict(cpus=3, users=2), "small": dict(kthreads=0, execs=0)}

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
from fpustate.check.parallel import make_explorer
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import make_model
m = make_model(get({design!r}), Scenario(**{knobs!r}))
def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
c0, t0 = cpu(), time.perf_counter()
ex = make_explorer(m, jobs={jobs!r}, symmetry={sym!r}, store={store!r})
r = ex.run()
for v in r.violations:
    ex.trace(v)
wall, cpu_s = time.perf_counter() - t0, cpu() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest partition
own = peak - base + ({jobs!r} * max(0, child - base) if {jobs!r} > 1 else 0)
print(json.dumps(dict(counts=[r.states, r.represented, r.transitions, r.depth,
                              [(v.prop.name, v.state_index, len(v.path)) for v in r.violations]],
                      wall=wall, cpu=cpu_s, rss=peak + ({jobs!r} * child if {jobs!r} > 1 else 0), own=own,
                      group=r.symmetry, store=r.store)))
"""


def measure(design: str, knobs: dict, jobs: int, sym: bool, store: str) -> dict:
    code = CHILD.format(src=str(SRC), design=design, knobs=knobs, jobs=jobs, sym=sym, store=store)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"--jobs {jobs} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design", nargs="?", default="linux")
    ap.add_argument("--scenario", default="default", choices=list(SCENARIOS))
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-symmetry", dest="symmetry", action="store_false")
    ap.add_argument("--store", default="fingerprint", choices=["fingerprint", "exact"])
    args = ap.parse_args()
    knobs = SCENARIOS[args.scenario]
    print(f"{args.design}, scenario {args.scenario} {knobs or ''}; symmetry {'on' if args.symmetry else 'off'}, "
          f"store {args.store}")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start (other programs skew wall times)")
    best: dict[int, dict] = {}
    for _ in range(args.repeat):
        for j in args.jobs:
            r = measure(args.design, knobs, j, args.symmetry, args.store)
            if j in best and best[j]["counts"] != r["counts"]:
                sys.exit(f"--jobs {j} gave {r['counts']}, before {best[j]['counts']}")
            if j not in best or r["wall"] < best[j]["wall"]:
                best[j] = r
    ref = best[args.jobs[0]]
    print(f"{'jobs':>4} {'states':>10} {'represented':>11} {'transitions':>11} {'depth':>5} {'seconds':>7} {'cpu s':>6} "
          f"{'canon/s':>8} {'raw/s':>9} {'equiv/s':>9} {'RSS MiB':>7} {'B/state':>7} {'speed-up':>8} {'same':>4}")
    for j in args.jobs:
        r = best[j]
        states, represented, transitions, depth, _ = r["counts"]
        w = r["wall"]
        print(f"{j:>4} {states:>10,} {represented:>11,} {transitions:>11,} {depth:>5} {w:>7.2f} {r['cpu']:>6.2f} "
              f"{states / w:>8,.0f} {transitions / w:>9,.0f} {represented / w:>9,.0f} {r['rss'] / 2**20:>7.0f} "
              f"{r['own'] / states:>7.0f} {ref['wall'] / w:>7.2f}x {'yes' if r['counts'] == ref['counts'] else 'NO':>4}")
    print(f"group: {ref['group']}; store: {ref['store']}; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
