"""promtool, for the tests that check the Prometheus files and the services' /metrics.

It comes from Debian's `prometheus` package: when it is missing and the tests run as root
with apt-get (CI), it is installed once; anywhere else the tests that need it are skipped,
saying why.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest

INSTALL_TIMEOUT_S = 900


def promtool() -> str:
    """The path of promtool, or skip the calling test with the reason."""
    found, why = _find_or_install()
    if found is None:
        pytest.skip(f"promtool unavailable: {why}")
    return found


@functools.cache
def _find_or_install() -> tuple[str | None, str]:
    found = shutil.which("promtool")
    if found:
        return found, ""
    if shutil.which("apt-get") is None:
        return None, "not on PATH and no apt-get to install Debian's `prometheus` package"
    if os.geteuid() != 0:
        return None, "not on PATH; install Debian's `prometheus` package (needs root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
    ):
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(argv)}` took more than {INSTALL_TIMEOUT_S}s"
        if done.returncode != 0:
            return None, f"`{' '.join(argv)}` failed: {done.stderr.strip()[-500:]}"
    found = shutil.which("promtool")
    return (found, "") if found else (None, "the prometheus package brought no promtool")
