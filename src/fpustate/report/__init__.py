"""Reports for people and for CI: self-contained HTML pages and JUnit XML.

- `timeline`: the counterexample steps (`check.trace.steps`) with the state that matters after
  each one (per CPU: registers and whose they are, `fpu_fpregs_owner_ctx`, PKRU; per task:
  `last_cpu`, the design's load flag, PKRU), the data the HTML timeline draws.
- `html`: `check`, `bugs`, `explain` and `simulate` pages (jinja2 templates in `templates/`,
  CSS, JS and graphics inline: the page loads nothing from the network).
- `classgraph`: Andy Lutomirski's class graph (`check.explain`) as inline SVG.
- `junit`: JUnit XML (the Jenkins/Surefire junit-10 schema) for `check` and `bugs`.
- `output`: every report file is written atomically (temp file + rename), checked before the run.

Markup contract of the check/bugs pages (scripts rely on it): each design is a
`<section data-design="NAME">`; each counterexample is a `<div data-property="NAME">` timeline;
each step is an element with `data-step="N"` (1-based), and the violating step also carries
`data-violation="PROPERTY"`.
"""
