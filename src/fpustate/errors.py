"""The three kinds of failure fpustate reports, kept apart.

- A design violating a property is a *result* (a counterexample), not an error.
- `UsageError` / `InvalidDesign`: the user's input is wrong; the CLI prints one
  line and exits with status 2.
- `InternalError`: fpustate itself is wrong; messages start with
  "[fpustate internal bug]".
"""


class FpustateError(Exception):
    """Base class of every error fpustate raises on purpose."""


class UsageError(FpustateError):
    """Bad input: an unknown design, an out-of-range knob, an unreadable file."""


class InvalidDesign(UsageError):
    """A design (built-in or from --design-file) is missing or has a bad hook."""


class InternalError(FpustateError):
    def __init__(self, msg: str) -> None:
        super().__init__("[fpustate internal bug] " + msg)
