"""Headless Chromium (Debian's package) for checking that HTML renders."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    """Path of the browser; skip (or fail when CI requires it) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (WORKBENCH_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


def render(page: Path, tmp: Path, screenshot: Path | None = None) -> tuple[str, str]:
    """Load ``page`` in headless Chromium; return (DOM after scripts ran, browser log)."""
    args = [chromium(), *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}"]
    if screenshot is not None:
        shot = subprocess.run(
            [*args, "--window-size=1280,5000", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert screenshot.exists(), shot.stderr[-2000:]
    proc = subprocess.run(
        [*args, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def page_errors(log: str) -> list[str]:
    """Console errors, uncaught exceptions and failed loads in a Chromium log."""
    keys = ("Uncaught", "net::ERR", "Failed to load resource", ":ERROR:CONSOLE")
    return [line for line in log.splitlines() if any(k in line for k in keys)]
