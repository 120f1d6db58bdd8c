"""Regenerate docs/check-timeline.png, the README's screenshot of `fpustate check --html`.

    python docs/screenshot.py   (needs Debian's chromium and the test extra's playwright)
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

out = Path(__file__).parent / "check-timeline.png"
with tempfile.TemporaryDirectory() as tmp:
    page_file = Path(tmp) / "check.html"
    subprocess.run([sys.executable, "-m", "fpustate", "check", "rfc2016-stale-flags", "--execs", "0",
                    "--html", str(page_file)], stdout=subprocess.DEVNULL)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 1250})
        page.goto(page_file.as_uri())
        page.screenshot(path=str(out))
        browser.close()
print(out)
