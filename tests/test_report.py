"""--html pages in headless Chromium, --junit XML against the JUnit schema, and report files
written safely (atomically, checked before the run, special files refused)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser import chromium_path, open_page

DATA = Path(__file__).parent / "data"
HEADER = re.compile(r"^(\S+): (\w+) violated after (\d+) steps", re.M)
STEP = re.compile(r"^ {2}\s*(\d+)  (?:cpu\d+|-)\s", re.M)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fpustate", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


def traces(text: str) -> dict[str, int]:
    """property -> number of step lines of each counterexample printed by --trace/--trace-all."""
    out = {}
    blocks = HEADER.split(text)[1:]
    for design, prop, n, body in zip(blocks[0::4], blocks[1::4], blocks[2::4], blocks[3::4]):
        nums = [int(x) for x in STEP.findall(body.split("  violated:")[0])]
        assert nums == list(range(1, int(n) + 1)), (prop, nums)
        out[prop] = len(nums)
    return out


def schema():
    import xmlschema

    return xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))


def test_check_html_timeline_in_chromium(browser, tmp_path):
    """check --html: one timeline per violated property, as many data-step elements as the text
    trace prints, the violating step marked with the property, no console error, no network."""
    html, junit = tmp_path / "out.html", tmp_path / "out.xml"
    p = cli("check", "rfc2016-stale-flags", "--execs", "0", "--trace-all", "--html", str(html), "--junit", str(junit))
    assert p.returncode == 1, p.stderr
    printed = traces(p.stdout)
    first = cli("check", "rfc2016-stale-flags", "--execs", "0", "--trace")
    assert list(traces(first.stdout).items()) == [next(iter(printed.items()))]  # --trace prints the first
    assert next(iter(printed)) == "user_sees_own_registers"
    page, errors, requests = open_page(browser, html)
    assert errors == [] and requests == []
    section = page.locator('section[data-design="rfc2016-stale-flags"]')
    assert section.count() == 1
    assert section.locator("[data-property]").evaluate_all("els => els.map(e => e.dataset.property)") == list(printed)
    for prop, n in printed.items():
        tl = section.locator(f'[data-property="{prop}"]')
        assert tl.locator("[data-step]").evaluate_all("els => els.map(e => +e.dataset.step)") == list(range(1, n + 1))
        marked = tl.locator("[data-violation]")
        assert marked.count() == 1
        assert marked.get_attribute("data-violation") == prop and marked.get_attribute("data-step") == str(n)
        assert "why it matters:" in marked.inner_text()
    assert page.locator("[data-step]").count() == sum(printed.values())
    # the state under a step: each CPU's registers and owner, the tasks' flag, changed values marked
    step = section.locator('[data-property="user_sees_own_registers"] .lane-cell').first
    assert "fpu_fpregs_owner_ctx" in step.inner_text()
    assert section.locator('[data-property="user_sees_own_registers"] td.changed').count() > 0
    page.screenshot(path=str(tmp_path / "check.png"))
    assert (tmp_path / "check.png").stat().st_size > 10_000
    schema().validate(str(junit))


def test_check_junit_cases(tmp_path):
    """check --junit: one test case per design x property; a violated property fails with its
    counterexample text, a design that holds to the fixpoint passes every case."""
    import xml.etree.ElementTree as ET

    from fpustate.kernel.properties import PROPERTIES

    junit = tmp_path / "j.xml"
    p = cli("check", "linux", "lazy", "--scenario", "small", "--trace-all", "--junit", str(junit))
    assert p.returncode == 1
    schema().validate(str(junit))
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["linux", "lazy"]
    assert [c.get("name") for c in suites["linux"].iter("testcase")] == [q.name for q in PROPERTIES]
    assert not list(suites["linux"].iter("failure")) and not list(suites["linux"].iter("skipped"))
    failures = {c.get("name"): c.find("failure") for c in suites["lazy"].iter("testcase") if c.find("failure") is not None}
    printed = traces(p.stdout)
    assert list(failures) == [q for q in printed]  # lazy's violations, in the text's order
    for prop, f in failures.items():
        assert f.get("message").startswith(f"{prop} violated after {printed[prop]} steps: ")
        assert f.text in p.stdout  # the counterexample exactly as --trace-all prints it
    undecided = [c for c in suites["lazy"].iter("testcase") if c.find("skipped") is not None]
    assert len(undecided) == len(PROPERTIES) - len(failures)  # stopped after the violation: not proved
    assert root.get("tests") == str(2 * len(PROPERTIES)) and root.get("failures") == str(len(failures))


@pytest.mark.xdist_group(name="bug_suite")  # one worker runs the session fixture once
def test_bugs_html_and_junit(browser, bug_suite, tmp_path):
    """bugs --html shows every bug (a section per mutant, its property marked on the last step);
    bugs --junit has one passing test case per bug and validates."""
    from fpustate.check.bugs import BUGS

    rows, html, junit, p = bug_suite
    assert p.returncode == 0, p.stderr
    page, errors, requests = open_page(browser, html)
    assert errors == [] and requests == []
    sections = page.locator("section[data-design]")
    assert sections.evaluate_all("els => els.map(e => e.dataset.design)") == [b.mutant for b in BUGS]
    for bug, row in zip(BUGS, rows, strict=True):
        n = row["steps"]
        s = page.locator(f'section[data-design="{bug.mutant}"]')
        assert s.locator("[data-step]").count() == n
        assert s.locator(f'[data-step="{n}"]').get_attribute("data-violation") == bug.prop
    page.screenshot(path=str(tmp_path / "bugs.png"))
    schema().validate(str(junit))
    text = junit.read_text()
    assert text.count("<testcase ") == len(BUGS) and "<failure" not in text


def test_explain_html_class_graph(browser, tmp_path):
    """explain --html draws the class graph as inline SVG: classes 1, 2a, 2b, arcs labelled with kernel functions."""
    html = tmp_path / "e.html"
    p = cli("explain", "linux", "--html", str(html))
    assert p.returncode == 0, p.stderr
    page, errors, requests = open_page(browser, html)
    assert errors == [] and requests == []
    svg = page.locator('section[data-design="linux"] svg.classgraph')
    assert svg.locator("g.node").evaluate_all("els => els.map(e => e.dataset.class)") == ["1", "2a", "2b"]
    edges = svg.locator("path.edge").evaluate_all("els => els.map(e => e.dataset.edge)")
    assert "2a-1" in edges and "2b-2a" in edges and "1-lost" not in edges
    labels = svg.locator("text.edge-label").evaluate_all("els => els.map(e => e.textContent)")
    assert any("arch_exit_to_user_mode_prepare" in t for t in labels)
    assert any("switch_fpu" in t for t in labels)
    page.screenshot(path=str(tmp_path / "explain.png"))


def test_simulate_html_tables_and_plot(browser, tmp_path):
    """simulate --html has each run's table (a row per design and the bound) and the plot as inline SVG."""
    html = tmp_path / "s.html"
    p = cli("simulate", "--workload", "crypto", "--workload", "signals", "--length", "200", "--design", "linux",
            "--design", "eager", "--html", str(html))
    assert p.returncode == 0, p.stderr
    page, errors, requests = open_page(browser, html)
    assert errors == [] and requests == []
    assert page.locator("section[data-source]").evaluate_all("els => els.map(e => e.dataset.source)") == [
        "workload crypto", "workload signals"]
    first = page.locator('section[data-source="workload crypto"] table.summary tr td:first-child').all_inner_texts()
    assert first == ["linux", "eager", "clairvoyant bound"]
    assert page.locator(".plot svg").count() == 1
    page.screenshot(path=str(tmp_path / "simulate.png"))


def test_html_is_deterministic(tmp_path):
    """Two runs give the same page but for the seconds and states/s cells: no timestamp."""
    pages = []
    for n in (1, 2):
        f = tmp_path / f"{n}.html"
        assert cli("check", "lazy", "--scenario", "small", "--html", str(f)).returncode == 1
        pages.append(re.sub(r'<td class="num">[\d,.]+</td>', "N", f.read_text()))
    assert pages[0] == pages[1]
    assert re.search(r"20\d\d-\d\d-\d\d", pages[0]) is None


@pytest.mark.parametrize("target, why", [("missing-dir/x.html", "does not exist"), (".", "is a directory"),
                                         ("/dev/full", "not a regular file")])
def test_bad_report_path_is_one_line_before_the_run(tmp_path, target, why):
    """An unwritable --html/--junit target is one line, exit 2, before any exploration, and nothing is replaced."""
    path = str(tmp_path / target) if not target.startswith("/") else target
    for option in ("--html", "--junit"):
        p = cli("check", "linux", option, path)
        assert p.returncode == 2 and p.stdout == ""
        assert len(p.stderr.strip().splitlines()) == 1 and why in p.stderr and option in p.stderr


def test_fifo_is_refused_and_symlink_written_through(tmp_path):
    """A FIFO target is refused (never replaced); a symlink is written through and stays a symlink."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    p = cli("explain", "linux", "--max-states", "10", "--html", str(fifo))
    assert p.returncode == 2 and "not a regular file" in p.stderr
    assert fifo.is_fifo()
    real, link = tmp_path / "real.xml", tmp_path / "link.xml"
    real.write_text("old")
    link.symlink_to(real)
    cli("check", "linux", "--scenario", "small", "--max-states", "50", "--junit", str(link))
    assert link.is_symlink() and real.read_text().startswith("<?xml")
    schema().validate(str(real))
    assert real.read_text().count("<skipped ") == real.read_text().count("<testcase ")  # capped: nothing proved


def test_write_error_leaves_nothing(tmp_path, monkeypatch):
    """A failing write (a full disk) is one UsageError naming the option and file; no temp file is left."""
    import errno

    from fpustate.errors import UsageError
    from fpustate.report import output

    def full(*a):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("fpustate.output.os.replace", full)
    target = tmp_path / "r.html"
    with pytest.raises(UsageError, match=r"^--html .*r\.html: cannot write it \(No space left on device\); nothing was written$"):
        output.write_atomic(str(target), "<html>", "--html")
    assert list(tmp_path.iterdir()) == []
