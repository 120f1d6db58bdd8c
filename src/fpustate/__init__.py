"""fpustate: the x86 FPU state machine of the Linux kernel, executable, checked and measured.

Reading order: `kernel/state.py` (the state vector), `kernel/context.py` (the
ownership helpers), `designs/linux.py` (a design), `kernel/machine.py` (where
paths interleave), `kernel/properties.py`, `check/explore.py`.
"""

__version__ = "0.1.0"
