"""Chromium for the console's browser tests (Playwright drives it; its own browser download,
`playwright install`, is never used).

It is Debian's `chromium` package, with a Chinese font (`fonts-wqy-microhei`) so that the
screenshots read: when they are missing and the tests run as root with apt-get (CI), they are
installed once; without chromium anywhere else the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL_TIMEOUT_S = 900
BROWSER = Path("/usr/bin/chromium")
#: Debian package -> a file it installs
PACKAGES = {
    "chromium": BROWSER,
    "fonts-wqy-microhei": Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
}
#: a quiet, throw-away browser: no GPU, no QUIC, nothing phoning home, no first-run pages
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The path of Debian's chromium, or skip the calling test with the reason."""
    found, why = _find_or_install()
    if found is None:
        pytest.skip(f"chromium unavailable: {why}")
    return found


def fresh_profile() -> Path:
    """A new, empty user-data-dir (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix="cityops-chromium-"))


@functools.cache
def _find_or_install() -> tuple[str | None, str]:
    missing = [name for name, path in PACKAGES.items() if not path.exists()]
    if not missing:
        return str(BROWSER), ""
    cannot = _cannot_install()
    if cannot:  # without the font, the screenshots show boxes for Chinese: still a test
        return (str(BROWSER), "") if BROWSER.exists() else (None, f"not installed; {cannot}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *missing]):
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(argv)}` took more than {INSTALL_TIMEOUT_S}s"
        if done.returncode != 0:
            return None, f"`{' '.join(argv)}` failed: {done.stderr.strip()[-500:]}"
    if not BROWSER.exists():
        return None, f"the chromium package brought no {BROWSER}"
    return str(BROWSER), ""


def _cannot_install() -> str:
    if shutil.which("apt-get") is None:
        return "no apt-get to install Debian's `chromium` package"
    if os.geteuid() != 0:
        return "install Debian's `chromium` package (needs root)"
    return ""
