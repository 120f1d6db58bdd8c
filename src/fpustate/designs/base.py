"""The design hook protocol, re-exported where design files have always found it.

It lives in `fpustate.kernel.design` (the kernel must not import designs)."""

from ..kernel.design import DONE, HOOKS, K_HARDIRQ, K_NAMES, K_SOFTIRQ, K_TASK, Design, Step, no_snapshot

__all__ = ["DONE", "HOOKS", "K_HARDIRQ", "K_NAMES", "K_SOFTIRQ", "K_TASK", "Design", "Step", "no_snapshot"]
