"""Checker at scale: symmetry reduction and the fingerprint store, speed and memory.

Run: python bench/bench_scale.py [--design linux] [--scenario default|3x2|...] [--modes ...]

Each (scenario, mode) runs `Explorer.run()` in a fresh process, so its peak RSS
(`ru_maxrss`) is its own. Printed per run: states stored (canonical with
symmetry), transitions, seconds, states/s (stored), the raw states those stand
for (sum of orbit sizes: the unreduced count, when the reachable set is closed
under the permutations) and the equivalent rate (raw states represented per
second), peak RSS and bytes per stored state ((peak RSS - RSS after imports and
model setup) / states). One core, pure Python plus numpy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
SCENARIOS = {"default": {}, "3x2": dict(cpus=3, users=2), "3x3": dict(cpus=3, users=3), "small": dict(kthreads=0, execs=0)}
MODES = {"raw-exact": (False, "exact"), "sym-exact": (True, "exact"), "sym-fingerprint": (True, "fingerprint"),
         "raw-fingerprint": (False, "fingerprint")}

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
from fpustate.check.explore import Explorer
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import make_model
ex = Explorer(make_model(get({design!r}), Scenario(**{knobs!r})), symmetry={sym!r}, store={store!r})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
r = ex.run(max_states={cap!r})
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(states=r.states, transitions=r.transitions, depth=r.depth, seconds=dt, complete=r.complete,
                      represented=r.represented, peak=peak, base=base, group=r.symmetry)))
"""


def run(design: str, knobs: dict, sym: bool, store: str, cap: int) -> dict:
    code = CHILD.format(src=str(SRC), design=design, knobs=knobs, sym=sym, store=store, cap=cap)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default="linux")
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    ap.add_argument("--modes", nargs="*", default=["raw-exact", "sym-exact", "sym-fingerprint"], choices=list(MODES))
    ap.add_argument("--max-states", type=int, default=0, help="cap each run (0: to the fixpoint)")
    args = ap.parse_args()
    print(f"{'scenario':<9} {'mode':<16} {'states':>10} {'trans':>11} {'depth':>5} {'sec':>7} {'states/s':>9} "
          f"{'raw repr.':>11} {'equiv/s':>9} {'peak MiB':>8} {'B/state':>7}  group")
    for sc in args.scenario or ["default", "3x2"]:
        for mode in args.modes:
            sym, store = MODES[mode]
            r = run(args.design, SCENARIOS[sc], sym, store, args.max_states)
            per = (r["peak"] - r["base"]) / r["states"]
            print(f"{sc:<9} {mode:<16} {r['states']:>10,} {r['transitions']:>11,} {r['depth']:>5} {r['seconds']:>7.1f} "
                  f"{r['states'] / r['seconds']:>9,.0f} {r['represented']:>11,} {r['represented'] / r['seconds']:>9,.0f} "
                  f"{r['peak'] / 2**20:>8.0f} {per:>7.0f}  {r['group']}{'' if r['complete'] else ' (capped)'}",
                  flush=True)


if __name__ == "__main__":
    main()
