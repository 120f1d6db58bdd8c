"""Symmetry reduction is sound: orbit counts by brute force, equal shortest counterexamples."""

from __future__ import annotations

import itertools

import pytest

from conftest import SMALL, first_violation, run
from fpustate.check.explore import check
from fpustate.check.symmetry import Factor, Symmetry, canonicalizer, factors
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import initial_state, make_model, successors
from fpustate.kernel.state import (
    CPU_W,
    GHOST_OFF,
    GHOST_W,
    HEADER,
    NULL,
    PKRU_HW_INIT,
    PKRU_INIT,
    TASK_W,
    decode,
    encode,
    pkru_of,
    pkru_owner,
    pkru_version,
    user_value,
    value_owner,
    value_version,
)
from fpustate.kernel.fields import (
    CPU_FIELDS,
    GHOST_FIELDS,
    HEADER_FIELDS,
    TASK_FIELDS,
)

pytestmark = pytest.mark.heavy  # long fixpoints: scheduled first (conftest.py)


def permute(m, s: bytes, cmap: list[int], tmap: list[int]) -> bytes:
    """Apply a CPU and task-slot permutation through the decoded state, naming every field
    that refers to a CPU, a task or an owner-tagged value (independently of the field-kind table)."""
    ks = decode(s)
    T = lambda t: NULL if t == NULL else tmap[t]  # noqa: E731
    C = lambda c: NULL if c == NULL else cmap[c]  # noqa: E731
    V = lambda v: v if value_owner(v) == NULL else user_value(tmap[value_owner(v)], value_version(v))  # noqa: E731
    P = lambda p: p if p in (PKRU_INIT, PKRU_HW_INIT, NULL) else pkru_of(tmap[pkru_owner(p)], pkru_version(p))  # noqa: E731
    local = {"data": lambda x: x, "task+1": lambda x: x if x in (0, 0xFF) else tmap[x - 1] + 1}[m.design.local_kind]
    cpus, tasks, ghosts = [None] * len(ks.cpus), [None] * len(ks.tasks), [None] * len(ks.tasks)
    for c, x in enumerate(ks.cpus):
        cpus[cmap[c]] = x._replace(fpregs=V(x.fpregs), owner=T(x.owner), pkru=P(x.pkru), curr=T(x.curr))
    for t, (x, g) in enumerate(zip(ks.tasks, ks.ghost)):
        tasks[tmap[t]] = x._replace(local=local(x.local), cpu=C(x.cpu), fpstate=V(x.fpstate), last_cpu=C(x.last_cpu),
                                    pkru=P(x.pkru), sigframe0=V(x.sigframe0), sigframe1=V(x.sigframe1),
                                    swap_fpstate=V(x.swap_fpstate), xpkru=P(x.xpkru), sig_pkru=P(x.sig_pkru),
                                    sigframe_pkru0=P(x.sigframe_pkru0), sigframe_pkru1=P(x.sigframe_pkru1),
                                    child=T(x.child))
        ghosts[tmap[t]] = g._replace(value=V(g.value), pkru=P(g.pkru), frame0=V(g.frame0), frame1=V(g.frame1),
                                     swap_value=V(g.swap_value), frame_pkru0=P(g.frame_pkru0),
                                     frame_pkru1=P(g.frame_pkru1))
    return encode(ks._replace(cpus=tuple(cpus), tasks=tuple(tasks), ghost=tuple(ghosts),
                              fpstate_clobbered=T(ks.fpstate_clobbered), stale_read=T(ks.stale_read),
                              xfd_nm=T(ks.xfd_nm)))


def group(m, fs: list[Factor]):
    """Every (cpu map, task map) of the product of the factors; idle tasks follow their CPU."""
    sc = m.scenario
    nt = m.idle_base + sc.cpus
    for combo in itertools.product(*(itertools.permutations(f.members) for f in fs)):
        cmap, tmap = list(range(sc.cpus)), list(range(nt))
        for f, image in zip(fs, combo):
            for a, b in zip(f.members, image):
                (cmap if f.name == "CPUs" else tmap)[a] = b
        for c in range(sc.cpus):
            tmap[m.idle_of(c)] = m.idle_of(cmap[c])
        yield cmap, tmap


def orbits(m, states, fs) -> tuple[int, int]:
    """Number of orbits of `states` under the group and number of states in them, by applying
    every permutation."""
    perms = list(group(m, fs))
    images = [{permute(m, s, c, t) for c, t in perms} for s in states]
    return len({min(i) for i in images}), len(set().union(*images))


CASES = [
    ("linux", SMALL.replace(values=1)),  # CPUs x user tasks
    ("linux", Scenario(cpus=1, kthreads=2, execs=0, values=1, kfpu_softirq=False, kfpu_hardirq=False)),  # kthreads
    ("linux", Scenario(cpus=1, users=1, kthreads=0, workers=2, execs=0, values=1)),  # user workers
    ("linux", Scenario(cpus=3, users=1, kthreads=0, execs=0, values=1, kfpu_softirq=False)),  # 3 CPUs and their idles
    ("linux-sigframe-owner-cache", SMALL.replace(cpus=1, values=1, signals=1)),  # a cached owner pointer in T_LOCAL
    ("rfc2016", Scenario(cpus=1, kthreads=0, execs=0, values=1, ptrace_writes=1, ptrace_reads=True, readers=True)),
    ("strawman", Scenario(cpus=1, users=2, kthreads=0, forks=1, execs=1, exits=1, values=1)),  # fork into one dead slot
    ("linux", Scenario(cpus=1, users=2, kthreads=0, forks=1, execs=0, exits=1, values=1)),  # fpu_clone()'s steps: T_CHILD
]


@pytest.mark.parametrize("design,scenario", CASES, ids=[f"{d}-{i}" for i, (d, _) in enumerate(CASES)])
def test_canonical_count_is_the_number_of_orbits(design, scenario):
    """With symmetry, both stores hold exactly one state per orbit of the unreduced reachable
    set (for a broken design: up to the same depth past its first violation), and the orbit sizes add up to the states of those orbits (the raw count, or more where
    boot is not symmetric)."""
    m = make_model(get(design), scenario)
    raw, ex = check(m)
    sym = Symmetry(m)
    assert sym.size > 1
    want, closure = orbits(m, ex.states, sym.factors)
    assert closure >= raw.states
    for store in ("exact", "fingerprint"):
        r, _ = check(m, symmetry=True, store=store)
        assert (r.states, r.represented) == (want, closure), store


def test_fork_into_the_lowest_dead_slot_breaks_user_symmetry():
    """Fork's lowest-dead-slot rule is not symmetric in user slots: with two dead slots the
    reduction is switched off for them, and forcing it would count other than the orbits."""
    m = make_model(get("linux"), Scenario(cpus=1, users=1, spare=2, kthreads=0, forks=2, execs=0, values=1))
    assert [f.name for f in factors(m)] == []
    s = initial_state(m)
    for code in ("syscall", "fork", "fork_step", "fork_step", "fork_step"):  # the rest of fpu_clone()'s steps
        s = next(x for (c, _, _), x in successors(m, s) if c == code)  # A forks into slot 1, slot 2 stays dead
    users = Factor("user tasks", (0, 1, 2))
    (cmap, tmap), = [p for p in group(m, [users]) if p[1][:3] == [0, 2, 1]]
    forked = lambda st: sorted(a for (code, _, a), _ in successors(m, st) if code == "fork")  # noqa: E731
    assert forked(s) == [2] and forked(permute(m, s, cmap, tmap)) == [1]


def test_every_bug_has_the_same_shortest_counterexample_length():
    """Every `fpustate bugs` mutant's shortest counterexample has as many steps without symmetry
    as the bug suite pins with it (symmetry and fingerprints, the command line's default)."""
    from fpustate.check.bugs import BUGS
    from test_mutants import BUG_SUITE

    for bug in BUGS:  # first_violation: no symmetry, the exact store
        v = first_violation(bug.mutant, Scenario(**bug.scenario), bug.prop)
        assert len(v.path) == BUG_SUITE[bug.mutant][0], bug.name


@pytest.mark.parametrize("design", ["lazy", "rfc2016", "rfc2016-stale-flags", "strawman"])
def test_every_violated_property_keeps_its_shortest_length(design):
    """On the small scenario each violated property's shortest counterexample has the same
    length with symmetry, and the kept trace replays to a real violation."""
    _, raw, _ = run(design, SMALL)
    r, ex = check(make_model(get(design), SMALL), symmetry=True, store="fingerprint")
    assert {v.prop.name: len(v.path) for v in r.violations} == {v.prop.name: len(v.path) for v in raw.violations}
    assert {v.prop.name: v.depth for v in r.violations} == {v.prop.name: v.depth for v in raw.violations}


def test_field_kind_table_covers_every_byte():
    """Every header, CPU, task and ghost offset has a field kind."""
    assert sorted(HEADER_FIELDS) == list(range(HEADER))
    assert sorted(CPU_FIELDS) == list(range(CPU_W))
    task_bytes = sorted(list(TASK_FIELDS) + [GHOST_OFF + g for g in GHOST_FIELDS])
    assert task_bytes == list(range(TASK_W))  # each byte once: kernel fields and the ghost's
    assert set(range(GHOST_OFF)) <= set(TASK_FIELDS) and set(range(GHOST_W)) <= set(GHOST_FIELDS)


def test_canonicalizer_contract():
    """canonicalizer() maps every permutation of a state to one image, and is the identity when off."""
    m = make_model(get("linux"), Scenario())
    canon = canonicalizer(m)
    s = initial_state(m)
    for _, s in successors(m, s)[:3]:
        images = {canon(permute(m, s, c, t)) for c, t in group(m, Symmetry(m).factors)}
        assert len(images) == 1
    off = canonicalizer(m, enabled=False)
    assert off(s) is s


def test_batch_canonicalization_agrees_with_the_one_state_canonicalizer():
    """Symmetry's batch path (hashes, canonical, images: what both engines use) gives the images
    canonicalizer() gives, and equal fingerprints exactly for equal images."""
    import numpy as np

    m = make_model(get("linux"), Scenario(cpus=3, users=2))
    states = [s for _, s in successors(m, initial_state(m))]
    states += [s2 for s in states for _, s2 in successors(m, s)]
    rows = np.frombuffer(b"".join(states), np.uint8).reshape(len(states), -1)
    for enabled in (True, False):
        sym = Symmetry(m, enabled=enabled)
        g, fps = sym.canonical(sym.hashes(rows))
        images = [r.tobytes() for r in sym.images(rows, g)]
        canonical = canonicalizer(m, enabled)
        assert images == [canonical(s) for s in states]
        if enabled:
            assert len(set(images)) == len(set(fps.tolist())) < len(states)
        else:
            assert images == states and len(set(fps.tolist())) == len(set(states))
