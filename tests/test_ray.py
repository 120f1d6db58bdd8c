"""`--engine ray`: the partitioned search on Ray actors gives what the local engine gives."""

from __future__ import annotations

import pytest
from fpustate.check.explore import Explorer
from fpustate.check.parallel import ParallelExplorer
from fpustate.check.trace import index_path
from fpustate.config import Scenario
from fpustate.designs import get
from fpustate.kernel.machine import make_model

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")
pytestmark = pytest.mark.xdist_group(name="ray")  # one worker starts the local Ray, once

SMALL = Scenario(kthreads=0, execs=0, values=1)  # small enough for a local Ray in seconds


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def outcome(ex, **kw) -> tuple:
    r = ex.run(**kw)
    for v in r.violations:
        ex.trace(v)
    return (r.states, r.represented, r.transitions, r.depth, r.complete, r.stopped_after_violation, r.expanded,
            r.symmetry, r.store, [(v.prop.name, v.state_index, v.depth, v.detail, index_path(ex, v)) for v in r.violations])


DEFAULT = dict(symmetry=True, store="fingerprint")  # the CLI's search


@pytest.mark.parametrize("design, search, counts", [
    ("rfc2016-stale-flags", DEFAULT, (5521, 21922, 23960, 11)),
    ("linux", DEFAULT, (1104, 4328, 7525, 17)),
    ("linux", dict(symmetry=False, store="exact"), (4328, 4328, 29596, 20)),
])
def test_ray_matches_local_and_sequential(local_ray, design, search, counts):
    """On a local 2-CPU Ray, every count, verdict and counterexample equals the local engine's and --jobs 1's."""
    m = make_model(get(design), SMALL)
    on_ray = outcome(ParallelExplorer(m, jobs=2, engine="ray", **search))
    assert on_ray == outcome(ParallelExplorer(m, jobs=2, **search))
    assert on_ray == outcome(Explorer(m, **search))
    assert on_ray[:4] == counts


def test_ray_max_states_cut(local_ray):
    """--max-states stops the Ray search where the sequential one stops."""
    m = make_model(get("rfc2016-stale-flags"), SMALL)
    assert outcome(ParallelExplorer(m, jobs=2, engine="ray", **DEFAULT), max_states=3000) == \
        outcome(Explorer(m, **DEFAULT), max_states=3000)



def test_ray_checks_a_design_file(local_ray):
    """A design from --design-file (a module the actors cannot import) is shipped to them and checked alike."""
    from pathlib import Path

    from fpustate.designs.loader import load_design_file

    (design,) = load_design_file(str(Path(__file__).parents[1] / "examples" / "forgetful_linux.py"))
    m = make_model(design, SMALL)
    assert outcome(ParallelExplorer(m, jobs=2, engine="ray", **DEFAULT)) == outcome(Explorer(m, **DEFAULT))


def test_ray_interrupt_raised_by_a_hook(local_ray, tmp_path):
    """A KeyboardInterrupt a hook raises on an actor ends the run as Ctrl-C does ('interrupted'), as on
    the local engine, not as a failed partition."""
    from fpustate.designs.loader import load_design_file

    f = tmp_path / "interrupting.py"
    f.write_text("from fpustate.designs import linux\n\n\ndef switch_fpu(k, c, prev, nxt):\n"
                 "    raise KeyboardInterrupt\n\n\n"
                 "DESIGN = linux.DESIGN.variant(name='linux-interrupting', switch_fpu=switch_fpu)\n")
    (design,) = load_design_file(str(f))
    r = ParallelExplorer(make_model(design, SMALL), jobs=2, engine="ray", **DEFAULT).run()
    assert r.interrupted and not r.complete and r.violations == []
