"""fpustate: the x86 FPU state machine of the Linux kernel, executable, checked and measured.

Reading order: `kernel/state.py` (the state vector), `kernel/context.py` (the
ownership helpers), `designs/linux.py` (a design), `kernel/machine.py` (where
paths interleave), `kernel/properties.py`, `check/explore.py`.

The Python API (`api.py`): `fpustate.check(design, scenario=None, **knobs)`,
`fpustate.load_design(path)`, `fpustate.simulate(traces=..., workloads=..., designs=...)`.
"""

__version__ = "0.1.0"

from .api import (  # noqa: E402  (the API needs __version__ defined first)
    CheckResult,
    Counterexample,
    Simulation,
    check,
    load_design,
    load_designs,
    scenario_of,
    simulate,
)
from .config import Scenario  # noqa: E402

__all__ = ["check", "load_design", "load_designs", "simulate", "scenario_of", "Scenario", "CheckResult",
           "Counterexample", "Simulation", "__version__"]
