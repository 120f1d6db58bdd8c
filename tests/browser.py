"""Headless Chromium for the HTML report tests: Debian's `chromium` driven by Playwright.

Playwright's own browser download is never used (`executable_path` is the system browser:
`FPUSTATE_CHROMIUM`, else `chromium` on PATH). Without a browser the tests are skipped on a
developer's machine and fail in CI (`CI` set), where `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest


def chromium_path() -> str:
    path = os.environ.get("FPUSTATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        message = "no chromium: apt-get install chromium (or set FPUSTATE_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Loaded(NamedTuple):
    page: object  # playwright Page, open on the report
    errors: list  # console errors and uncaught exceptions
    requests: list  # every URL the page tried to load other than the file itself


def open_page(browser, html: Path, width: int = 1500) -> Loaded:
    """Open `html` in a new page, recording console errors and every request it makes."""
    page = browser.new_page(viewport={"width": width, "height": 1000})
    errors: list = []
    requests: list = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    url = html.resolve().as_uri()

    def route(r):
        if r.request.url != url:
            requests.append(r.request.url)
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_load_state("load")
    return Loaded(page, errors, requests)
