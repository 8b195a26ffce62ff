"""The console's browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download does not work everywhere modelog is
tested, so the tests drive the distribution's Chromium. If it is missing the
fixture installs it with apt, as CI (root, Debian's apt reachable) can: a
missing browser is set up, never a reason to skip.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


def installed_chromium() -> Path:
    if not CHROMIUM.exists():
        apt = shutil.which("apt-get")
        assert apt, "Chromium is missing and there is no apt-get to install it with"
        subprocess.run([apt, "update"], check=True)
        subprocess.run([apt, "install", "-y", "--no-install-recommends", "chromium"], check=True)
    return CHROMIUM


# One browser per module, not per session: while Playwright's sync API is
# open, its event loop counts as running in the main thread, and every later
# test that runs a coroutine (asyncio.run, pytest-asyncio) would be refused.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = installed_chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text()
