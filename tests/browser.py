"""The one Chromium of a test session, driven through Playwright.

Debian's `/usr/bin/chromium` is preferred (Playwright's own download cannot run on a closed
network); `GANGWAY_CHROMIUM` overrides the path. A missing browser is a hard failure, never a
skip: a suite that silently skipped its browser tests would claim coverage it does not have.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Without these flags Chromium phones home at start-up; on a closed network that costs seconds
# and floods the log with refused connections.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

ARTIFACTS = Path(__file__).parent / "artifacts"


def chromium_path() -> str | None:
    """The Chromium to drive: `GANGWAY_CHROMIUM`, Debian's, or None for Playwright's own."""
    explicit = os.environ.get("GANGWAY_CHROMIUM")
    if explicit:
        return explicit
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    return found


def launch_browser(playwright):  # type: ignore[no-untyped-def]
    path = chromium_path()
    try:
        return playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS, headless=True)
    except Exception as exc:  # noqa: BLE001 - re-raised as a clear failure
        pytest.fail(
            f"Chromium could not be launched ({path or 'playwright default'}): {exc}\n"
            "Install it (apt-get install -y chromium) or set GANGWAY_CHROMIUM.",
            pytrace=False,
        )
