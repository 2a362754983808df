"""The browser tests' Chromium: a fresh profile per test (Debian's chromium, driven by
Playwright), skipped when the console is not built."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.common.static import DIST
from tests.chromium import ARGS, chromium, fresh_profile

playwright = pytest.importorskip("playwright.async_api", reason="playwright is a dev extra")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A fresh Chromium profile at 1920×1080 (Debian's chromium, driven by Playwright)."""
    if not (DIST / "district.html").is_file():
        pytest.skip("the console is not built: `make console` (needs npm)")
    executable = chromium()
    profile = fresh_profile()
    async with playwright.async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=ARGS,
            viewport={"width": 1920, "height": 1080},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        try:
            yield context
        finally:
            await context.close()  # (the tests close their pages first: open streams would
            # hold a service's shutdown)
            shutil.rmtree(profile, ignore_errors=True)
