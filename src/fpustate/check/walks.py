"""Random walks for scenarios beyond exhaustive reach (`fpustate check --walks N --depth D --seed S`).

Walk i starts at the initial state and takes up to D steps, each a successor
drawn uniformly from `successors()` by its own generator, seeded with (S, i):
the walks are the same whatever runs them, so the result for a given seed
and N does not depend on `--jobs`. Every state on a walk is checked against
the properties; the first walk (in walk order) that reaches a violating
state is the one reported. Walks run in chunks on forked processes, in order.

A violation found is shrunk, as Hypothesis shrinks a failing example: steps
are deleted (blocks of 8, 4, 2, 1) and each step is replaced by an earlier
action in its state's successor list, keeping a change only while the replay
still violates the same property and the index path gets smaller (shorter,
or as long and lexicographically smaller). A replay skips an action that is
not enabled where it comes and stops at the first violating state. The
result is a real path, printed like any counterexample; it is not proven
shortest, and a run without violation proves nothing: the verdict says
"no violation in N walks".
"""

from __future__ import annotations

import io
import multiprocessing
import random
import signal
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..kernel.machine import Action, Model, initial_state, successors
from ..kernel.properties import Property
from .explore import Violation

CHUNK = 16  # walks per task handed to a process
MAX_REPLAYS = 20_000  # shrinking budget (replays), a bound on its time


@dataclass
class WalkResult:
    design: str
    walks: int  # walks run: all of them, or up to and including the one that found a violation
    steps: int  # steps taken by those walks
    depth: int  # the depth bound D
    seconds: float
    violation: Optional[Violation]  # shrunk, with its path
    walk: Optional[int]  # the walk (0-based) that found it
    found_steps: int  # that walk's length before shrinking
    index_path: str  # of the shrunk counterexample
    complete: bool = True  # False when interrupted

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def _violated(m: Model, props: Sequence[Property], s: bytes) -> Optional[int]:
    """The first of `props` that state s violates (its position), or None."""
    for n, p in enumerate(props):
        if p.check(m, s) is not None:
            return n
    return None


def one_walk(m: Model, props: Sequence[Property], seed: int, i: int, depth: int) -> tuple[list[int], Optional[int]]:
    """Walk number i: its index path and the position of the property its last state
    violates (None: it took `depth` steps, or reached a state without successors)."""
    rng = random.Random(f"fpustate-walk:{seed}:{i}")
    s = initial_state(m)
    path: list[int] = []
    bad = _violated(m, props, s)
    while bad is None and len(path) < depth:
        succ = successors(m, s)
        if not succ:
            break
        k = rng.randrange(len(succ))
        s = succ[k][1]
        path.append(k)
        bad = _violated(m, props, s)
    return path, bad


def _chunk(m: Model, props: Sequence[Property], seed: int, depth: int, lo: int, hi: int) -> tuple:
    """Walks lo..hi-1 in order, stopping at the first violation: (walks, steps, found)."""
    steps = 0
    for i in range(lo, hi):
        path, bad = one_walk(m, props, seed, i, depth)
        steps += len(path)
        if bad is not None:
            return i - lo + 1, steps, (i, path, bad)
    return hi - lo, steps, None


_job: tuple = ()  # (model, properties, seed, depth) in a walk process, set before the fork


def _init_job(job: tuple) -> None:
    global _job
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _job = job


def _run_chunk(bounds: tuple[int, int]) -> tuple:
    return _chunk(*_job, *bounds)


def _reproducing(results, m: Model, props: Sequence[Property], seed: int, depth: int, chunks: list):
    """The chunks' results in order; a chunk that failed in a walk process is run again here,
    so a failing design hook raises with its own traceback (as it does with --jobs 1)."""
    it = iter(results)
    for bounds in chunks:
        try:
            yield next(it)
        except StopIteration:
            return
        except Exception:
            yield _chunk(m, props, seed, depth, *bounds)  # raises the hook's error here
            raise


def _replay(m: Model, prop: Property, actions: Sequence[tuple]) -> Optional[list[int]]:
    """Follow `actions`, skipping those not enabled; the index path up to the first state
    violating `prop`, or None if none does."""
    s = initial_state(m)
    if prop.check(m, s) is not None:
        return []
    path: list[int] = []
    for a in actions:
        succ = successors(m, s)
        k = next((k for k, (b, _) in enumerate(succ) if b == a), None)
        if k is None:
            continue
        s = succ[k][1]
        path.append(k)
        if prop.check(m, s) is not None:
            return path
    return None


def _actions(m: Model, path: Sequence[int]) -> list[tuple]:
    s, out = initial_state(m), []
    for k in path:
        a, s = successors(m, s)[k]
        out.append(a)
    return out


def shrink(m: Model, prop: Property, path: list[int]) -> list[int]:
    """A smaller index path (shorter, then lexicographically) that still violates `prop`."""
    best, acts = path, _actions(m, path)
    budget = [MAX_REPLAYS]

    def better(candidate: list[tuple]) -> bool:
        nonlocal best, acts
        if budget[0] <= 0:
            return False
        budget[0] -= 1
        got = _replay(m, prop, candidate)
        if got is not None and (len(got), got) < (len(best), best):
            best, acts = got, _actions(m, got)
            return True
        return False

    changed = True
    while changed and budget[0] > 0:
        changed = False
        for size in (8, 4, 2, 1):
            i = 0
            while i < len(acts):
                if better(acts[:i] + acts[i + size:]):
                    changed = True
                else:
                    i += 1
        s = initial_state(m)
        i = 0
        while i < len(best):  # an accepted change keeps best[:i], so s stays the state before step i
            succ = successors(m, s)
            for k in range(best[i]):
                if better(acts[:i] + [succ[k][0]] + acts[i + 1:]):
                    changed = True
                    break
            if i < len(best):
                s = succ[best[i]][1]
            i += 1
    return best


def run_walks(m: Model, props: Sequence[Property], walks: int, depth: int, seed: int, jobs: int,
              progress: Optional[Callable[[int, int, int], None]] = None) -> WalkResult:
    """Run `walks` random walks of at most `depth` steps on `jobs` processes; shrink the first
    violation found (in walk order)."""
    start = time.perf_counter()
    chunks = [(lo, min(lo + CHUNK, walks)) for lo in range(0, walks, CHUNK)]
    done = steps = 0
    found = None
    complete = True
    pool = None
    try:
        if jobs > 1 and len(chunks) > 1:
            pool = multiprocessing.get_context("fork").Pool(jobs, _init_job, ((m, tuple(props), seed, depth),))
            results = pool.imap(_run_chunk, chunks)
        else:
            results = (_chunk(m, props, seed, depth, lo, hi) for lo, hi in chunks)
        for n, st, f in _reproducing(results, m, props, seed, depth, chunks):
            # in chunk order: the first violation is the first walk's
            done += n
            steps += st
            if progress is not None:
                progress(done, steps, depth)
            if f is not None:
                found = f
                break
    except KeyboardInterrupt:
        complete = False
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    violation = None
    text = ""
    if found is not None:
        i, path, n = found
        prop = props[n]
        small = shrink(m, prop, path)
        violation = _violation(m, prop, small)
        text = "/".join(map(str, small))
    return WalkResult(m.design.name, done, steps, depth, time.perf_counter() - start, violation,
                      found[0] if found else None, len(found[1]) if found else 0, text, complete)


def _violation(m: Model, prop: Property, path: list[int]) -> Violation:
    s = initial_state(m)
    steps = []
    for k in path:
        a, s = successors(m, s)[k]
        steps.append((Action(*a), s))
    return Violation(prop, prop.check(m, s), -1, len(path), steps)


def verdict(r: WalkResult) -> str:
    """Never "holds": walks prove nothing."""
    if r.violation:
        return "VIOLATED"
    return f"no violation in {r.walks:,} walks" + ("" if r.complete else " (interrupted)")


def table(results: Sequence[WalkResult]) -> str:
    """The walks' table: one row per design."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    numeric = ("walks", "steps walked", "seconds", "steps/s", "steps")
    for name in ("design", "walks", "steps walked", "seconds", "steps/s", "verdict", "violated property", "steps"):
        t.add_column(name, justify="right" if name in numeric else "left", no_wrap=True,
                     min_width={"seconds": 7, "steps/s": 9}.get(name))
    for r in results:
        v = r.violation
        t.add_row(r.design, f"{r.walks:,}", f"{r.steps:,}", f"{r.seconds:.1f}", f"{r.steps_per_second:,.0f}",
                  verdict(r), v.prop.name if v else "-", str(len(v.path)) if v else "-")
    console = Console(width=200, color_system=None, force_terminal=False, record=True, file=io.StringIO())
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def as_json(m: Model, r: WalkResult) -> dict:
    v = r.violation
    return {"design": r.design, "kernel": m.design.kernel, "walks": r.walks, "steps_walked": r.steps,
            "depth": r.depth, "seconds": round(r.seconds, 3), "complete": r.complete,
            "verdict": "violated" if v else f"no violation in {r.walks} walks",
            "violation": None if v is None else {
                "property": v.prop.name, "detail": v.detail, "steps": len(v.path), "index_path": r.index_path,
                "walk": r.walk, "steps_before_shrinking": r.found_steps}}
