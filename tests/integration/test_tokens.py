"""API tokens expire (401 `token_expired`), record their last use (at most once a minute), and
are rate-limited per token (429 with `Retry-After`)."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.common.auth import TOKENS, Role
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.ops import tokens
from tests.support import Service, running

ROUTE = "/api/v1/routing-rules"


async def call(service: Service, token: str) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s, s.get(service.url + ROUTE, headers=headers) as r:
        return r.status, dict(r.headers), await r.json()


async def token_row(settings: Settings, token: str) -> dict[str, Any]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM api_tokens WHERE id = $1", token.split("_")[1])
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


async def test_an_expired_token_is_refused_with_the_reason(settings: Settings) -> None:
    async with running(district_app(settings)) as district:
        store = district.app[TOKENS]
        token = await store.mint(Role.DISTRICT_OPERATOR, None, "短期", timedelta(seconds=1))
        status, _, body = await call(district, token)
        assert status == 200, body
        await asyncio.sleep(1.1)
        status, headers, body = await call(district, token)  # still in the resolve cache
        assert status == 401 and body["error"] == "token_expired", body
        assert (
            "expired at" in body["detail"]
            and 'error="invalid_token"' in headers["WWW-Authenticate"]
        )
        forever = await store.mint(Role.DISTRICT_OPERATOR)
        assert (await token_row(settings, forever))["expires_at"] is None


async def test_token_create_expires_in_and_its_default(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    tokens.add_arguments(parser)
    create = ["create", "--role", "auditor"]
    configured = replace(settings, token_expires_in="30d")
    assert await tokens.main(configured, parser.parse_args([*create, "--expires-in", "2h"])) == 0
    assert await tokens.main(configured, parser.parse_args(create)) == 0
    assert await tokens.main(configured, parser.parse_args([*create, "--expires-in", "x"])) == 2
    first, second = capsys.readouterr().out.split()[:2]
    now = datetime.now(UTC)
    for token, lifetime in ((first, timedelta(hours=2)), (second, timedelta(days=30))):
        expires = (await token_row(settings, token))["expires_at"]
        assert abs(expires - (now + lifetime)) < timedelta(minutes=1)
    assert await tokens.main(configured, parser.parse_args(["list"])) == 0
    listed = capsys.readouterr().out
    assert first.split("_")[1] in listed and "never" in listed  # not yet used


async def test_a_token_records_its_last_use_at_most_once_a_minute(settings: Settings) -> None:
    async with running(district_app(settings)) as district:
        token = await district.app[TOKENS].mint(Role.AUDITOR)
        assert (await token_row(settings, token))["last_used_at"] is None
        before = datetime.now(UTC)
        assert (await call(district, token))[0] == 200
        used = (await token_row(settings, token))["last_used_at"]
        assert used is not None and used >= before - timedelta(seconds=1)
        for _ in range(3):
            assert (await call(district, token))[0] == 200
        assert (await token_row(settings, token))["last_used_at"] == used


async def test_a_token_over_its_rate_gets_429_with_retry_after(settings: Settings) -> None:
    limited = replace(settings, token_rate=0.5, token_burst=3)
    async with running(district_app(limited)) as district:
        store = district.app[TOKENS]
        token, other = await store.mint(Role.AUDITOR), await store.mint(Role.AUDITOR)
        answers = [await call(district, token) for _ in range(4)]
        assert [a[0] for a in answers] == [200, 200, 200, 429]
        _, headers, body = answers[3]
        assert body["error"] == "rate_limited" and headers["Retry-After"] in ("1", "2"), body
        assert (await call(district, other))[0] == 200  # per token
        await asyncio.sleep(2.05)
        assert (await call(district, token))[0] == 200
        assert (await call(district, token))[0] == 429
