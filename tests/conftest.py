"""Real PostgreSQL and a real Kafka-protocol broker for the tests.

PostgreSQL: one embedded server per run (or CITYOPS_DATABASE_URL's server); every test gets a
fresh database cloned from a migrated template. Kafka: a fresh embedded tansu broker per test
(memory-only, starts in milliseconds), or CITYOPS_KAFKA_BOOTSTRAP's cluster.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.common import db
from services.common.config import ROOT, Settings
from services.devstack import EmbeddedKafka, EmbeddedPostgres
from services.ops.bootstrap import bootstrap

TEMPLATE = "cityops_test_template"


@pytest.fixture(autouse=True)
async def no_unhandled_loop_exceptions() -> AsyncIterator[None]:
    """Fail the test when the event loop saw an exception nobody handled (a task that died
    unobserved, a callback that raised), as asyncpg's test base does: such errors are
    otherwise only logged, and the test would pass."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: seen.append(context))
    try:
        yield
    finally:
        loop.set_exception_handler(previous)
    if seen:
        described = "; ".join(f"{c.get('message')}: {c.get('exception')!r}" for c in seen)
        pytest.fail(f"the event loop saw unhandled exceptions: {described}")


class Databases:
    """Creates one database per test on a server (embedded or configured)."""

    def __init__(self, admin_dsn: str, make_dsn: object) -> None:
        self.admin_dsn = admin_dsn
        self._make_dsn = make_dsn

    def dsn(self, name: str) -> str:
        return self._make_dsn(name)  # type: ignore[operator, no-any-return]

    async def create(self, name: str, template: str | None = None) -> str:
        """A new, empty database (dropped first if a previous run left it), or a clone."""
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            tmpl = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        finally:
            await conn.close()
        return self.dsn(name)


def _dsn_with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    configured = os.environ.get("CITYOPS_DATABASE_URL")
    if configured:
        yield Databases(configured, lambda n: _dsn_with_database(configured, n))
        return
    tmp = Path(tempfile.mkdtemp(prefix="cityops-pg-"))
    pg = EmbeddedPostgres(tmp / "pgdata")
    try:
        yield Databases(pg.admin_dsn, pg.dsn)
    finally:
        pg.stop()


@pytest.fixture(scope="session")
async def template_dsn(databases: Databases) -> str:
    """A migrated database with reference data, cloned by every test."""
    dsn = await databases.create(TEMPLATE)
    await db.migrate(dsn)
    return dsn


@pytest.fixture
def kafka_bootstrap() -> Iterator[str]:
    configured = os.environ.get("CITYOPS_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = EmbeddedKafka()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
async def settings(
    databases: Databases, template_dsn: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings for one test: its own database and broker, bootstrapped like production."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = await databases.create(name, template=TEMPLATE)
    s = replace(
        Settings(),
        database_url=dsn,
        kafka_bootstrap=kafka_bootstrap,
        http_host="127.0.0.1",
        district_port=0,
        street_port=0,
        fetch_max_wait_ms=10,
        session_timeout_ms=2000,
        phone_key="",
        token_rate=0.0,  # no per-token rate limit (the fuzz test is fast); test_tokens.py has it
        phone_key_file=str(tmp_path / "phone.key"),
        group_prefix=f"test-{name}",
        reference_dir=ROOT / "deploy" / "reference",
    )
    await bootstrap(s)
    yield s
    conn = await asyncpg.connect(databases.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
