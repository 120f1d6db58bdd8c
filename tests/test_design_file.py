"""User-written designs loaded with --design-file, and their one-line errors."""

from __future__ import annotations

from pathlib import Path

from test_cli import cli

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "forgetful_linux.py")


def test_example_variant_is_caught_in_two_steps():
    """The README's forgetful linux variant returns to user mode with kernel data after two steps."""
    p = cli("check", "--design-file", EXAMPLE, "--trace")
    assert p.returncode == 1
    assert "  violated: user_sees_own_registers: cpu0: A runs in user mode with registers kernel-data, expected A.0" in p.stdout


def write(tmp_path, text: str) -> str:
    f = tmp_path / "d.py"
    f.write_text(text)
    return str(f)


def one_line_error(*args) -> str:
    p = cli("check", *args)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_missing_design(tmp_path):
    """A file without DESIGN is rejected, saying what to add."""
    f = write(tmp_path, "x = 1\n")
    assert one_line_error("--design-file", f) == (
        f"fpustate: --design-file {f}: defines no DESIGN; add e.g. "
        "DESIGN = linux.DESIGN.variant(name='mine', kernel_fpu_begin=my_begin)")


def test_bad_hook_arity(tmp_path):
    """A hook with the wrong number of arguments is named with the arguments it must take."""
    f = write(tmp_path, "from fpustate.designs import linux\n"
                        "def sw(k, c):\n    pass\n"
                        "DESIGN = linux.DESIGN.variant(name='x', switch_fpu=sw)\n")
    assert one_line_error("--design-file", f) == (
        f"fpustate: --design-file {f}: hook switch_fpu of design 'x' must take 4 arguments "
        "(k, cpu, prev, next), but sw() takes 2")


def test_syntax_error(tmp_path):
    """A syntax error is reported with its line."""
    f = write(tmp_path, "def (:\n")
    assert one_line_error("--design-file", f).startswith(f"fpustate: --design-file {f}: line 1: syntax error")


def test_missing_file():
    """A file that does not exist is one line, exit 2."""
    assert one_line_error("--design-file", "/nonexistent/d.py") == "fpustate: --design-file /nonexistent/d.py: no such file"


def test_hook_that_raises(tmp_path):
    """A hook that raises while checking is reported in one line naming the function and line."""
    f = write(tmp_path, "from fpustate.designs import linux\n"
                        "def begin(k, c, ctx):\n    raise RuntimeError('oops')\n"
                        "DESIGN = linux.DESIGN.variant(name='x', kernel_fpu_begin=begin)\n")
    assert one_line_error("--design-file", f) == "fpustate: design 'x': a hook raised RuntimeError: oops in begin() at d.py:3"
