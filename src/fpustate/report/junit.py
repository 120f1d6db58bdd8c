"""JUnit XML for CI systems (`--junit FILE` on `check` and `bugs`).

Follows the junit-10 schema that Jenkins (xunit plugin) and pytest validate against
(`tests/data/junit-10.xsd`). `check`: one `<testsuite>` per design, one `<testcase>` per
property checked; a violated property is a `<failure>` whose message is the violation and whose
text is the counterexample as `--trace` prints it; a property neither violated nor proved (the
run stopped `--look-past` layers after another violation, was capped by `--max-states` or
interrupted) is `<skipped>` with the reason: it did not hold "so far", it was not decided.
`bugs`: one `<testcase>` per bug, failed when the mutant's violation is no longer found or the
fixed design does not hold; the counterexample is its `<system-out>`.
Deterministic: only the per-design `time` attributes vary from run to run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..check.trace import format_trace
from ..kernel.machine import initial_state


def _undecided(r, max_states: int) -> str:
    if r.stopped_after_violation:
        return "not decided: the exploration stopped --look-past layers after the first violation"
    if max_states and r.states >= max_states:
        return f"not decided: the exploration was capped at --max-states {max_states:,} states"
    return "not decided: the exploration was interrupted"


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def check_xml(results, properties, max_states: int = 0) -> bytes:
    """`results`: (model, explorer, Result) per design, as `fpustate check` runs them."""
    root = ET.Element("testsuites", name="fpustate check")
    total = failed = 0
    for m, _, r in results:
        by_prop = {v.prop.name: v for v in r.violations}
        suite = ET.SubElement(root, "testsuite", name=r.design, tests=str(len(properties)),
                              failures=str(len(by_prop)), errors="0", skipped="0", time=f"{r.seconds:.3f}",
                              package="fpustate.check")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="kernel", value=m.design.kernel)
        ET.SubElement(props, "property", name="scenario", value=m.scenario.describe())
        ET.SubElement(props, "property", name="states", value=str(r.states))
        skipped = 0
        for p in properties:
            case = ET.SubElement(suite, "testcase", name=p.name, classname=f"fpustate.check.{r.design}")
            v = by_prop.get(p.name)
            if v is not None:
                f = ET.SubElement(case, "failure", type="PropertyViolated",
                                  message=f"{p.name} violated after {len(v.path)} steps: {v.detail}")
                f.text = format_trace(m, v.path, initial_state(m), v)
            elif not r.complete:
                ET.SubElement(case, "skipped", message=_undecided(r, max_states))
                skipped += 1
        suite.set("skipped", str(skipped))
        total += len(properties)
        failed += len(by_prop)
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    return _xml(root)


def bugs_xml(results) -> bytes:
    """`results`: the `check.bugs.BugResult` of every bug."""
    root = ET.Element("testsuites", name="fpustate bugs")
    failures = sum(not b.passed for b in results)
    suite = ET.SubElement(root, "testsuite", name="fpustate bugs", tests=str(len(results)), failures=str(failures),
                          errors="0", skipped="0", package="fpustate.bugs")
    for b in results:
        case = ET.SubElement(suite, "testcase", name=b.bug.name, classname=f"fpustate.bugs.{b.bug.mutant}",
                             time=f"{b.mutant.seconds:.3f}")
        if b.found is None:
            f = ET.SubElement(case, "failure", type="BugNotFound",
                              message=f"{b.bug.mutant} no longer violates {b.bug.prop}: the model stopped seeing "
                                      f"the bug fixed by {b.bug.commit}")
            f.text = b.bug.why
        elif not (b.fixed.ok and b.fixed.complete):
            v = b.fixed.violations[0] if b.fixed.violations else None
            f = ET.SubElement(case, "failure", type="FixedDesignFails",
                              message=f"the fixed design {b.bug.fixed} does not hold: "
                                      + (f"{v.prop.name}: {v.detail}" if v else "exploration incomplete"))
        if b.found is not None:
            m = b.explorer.model
            out = ET.SubElement(case, "system-out")
            out.text = f"{b.bug.why}\n" + format_trace(m, b.found.path, initial_state(m), b.found)
    root.set("tests", str(len(results)))
    root.set("failures", str(failures))
    root.set("errors", "0")
    return _xml(root)
