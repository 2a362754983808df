"""Ride through database and broker faults under a steady load (issue 12).

Each test: a fresh database and broker, the district and street services as their own processes,
about 100 12345 work orders per second; after 10 s one fault, then a few seconds more of load.
Then: every order offered has exactly one case, nothing was dead-lettered, every dispatched task
is on its unit's topic and stored by the street service, both consumer groups have committed
every partition to its end, due timers fire, and both services' /readyz answered 200 within 10 s
of the fault's end and ever since. `pytest -s` prints one line of figures per fault; with
CITYOPS_FAULT_REPORT set they are appended to that file as JSON lines.

PostgreSQL here is this module's own server (it is restarted and frozen), not the session's.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from services.common import db
from services.devstack import EmbeddedPostgres
from tests.faults import Rig

TEMPLATE = "cityops_faults_template"
#: seconds a frozen PostgreSQL or broker stays frozen, and the broker's connections stay cut
FROZEN_S = 10.0
CUT_S = 5.0
#: per test: load 10 s + fault up to 10 s + 3 s, the drain and the checks; a failing test waits
#: out its checks' timeouts (about two minutes), so the limit leaves room for that
LIMIT_S = 200

pytestmark = pytest.mark.timeout(LIMIT_S + 40)  # pytest-timeout: the last resort


@pytest.fixture(scope="module")
def reap() -> Iterator[list[Callable[[], None]]]:
    """Stops whatever a test left running, even when its own cleanup did not get to run."""
    stops: list[Callable[[], None]] = []
    yield stops
    for stop in reversed(stops):
        try:
            stop()
        except Exception as exc:  # keep stopping the rest
            print(f"cleanup: {stop!r} failed: {exc!r}")


@pytest.fixture(scope="module")
def fault_pg() -> Iterator[EmbeddedPostgres]:
    tmp = Path(tempfile.mkdtemp(prefix="cityops-faults-pg-"))
    pg = EmbeddedPostgres(tmp / "pgdata")
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
async def fault_template(fault_pg: EmbeddedPostgres) -> str:
    """A migrated database each test's database is cloned from (then bootstrapped)."""
    await db.migrate(await fault_pg.create_database(TEMPLATE))
    return TEMPLATE


@pytest.fixture
async def stack(
    fault_pg: EmbeddedPostgres, fault_template: str, tmp_path: Path, reap: list[Callable[[], None]]
) -> AsyncIterator[Rig]:
    """A fresh database and broker; both services running and ready."""
    async with Rig.up(fault_pg, fault_template, tmp_path, reap=reap) as rig:
        yield rig


@pytest.fixture
async def proxied_stack(
    fault_pg: EmbeddedPostgres, fault_template: str, tmp_path: Path, reap: list[Callable[[], None]]
) -> AsyncIterator[Rig]:
    """The same, with every client reaching the broker through a proxy (it advertises it)."""
    async with Rig.up(fault_pg, fault_template, tmp_path, proxied=True, reap=reap) as rig:
        yield rig


async def test_postgres_fast_restart(stack: Rig, fault_pg: EmbeddedPostgres) -> None:
    """`pg_ctl -m fast restart`: every connection dropped, open transactions rolled back."""
    async with asyncio.timeout(LIMIT_S):
        await stack.ride_through(
            "postgres-restart-fast", inject=lambda: asyncio.to_thread(fault_pg.restart, "fast")
        )


async def test_postgres_frozen(stack: Rig, fault_pg: EmbeddedPostgres) -> None:
    """SIGSTOP the postmaster and every backend for 10 s: connections open, nothing answers."""
    async with asyncio.timeout(LIMIT_S):
        await stack.ride_through(
            "postgres-frozen-10s",
            inject=lambda: asyncio.to_thread(fault_pg.freeze),
            end=lambda: asyncio.to_thread(fault_pg.thaw),
            hold_s=FROZEN_S,
            noticed="postgres",
        )


async def test_broker_frozen(stack: Rig) -> None:
    """SIGSTOP the broker for 10 s."""
    async with asyncio.timeout(LIMIT_S):
        await stack.ride_through(
            "broker-frozen-10s",
            inject=lambda: asyncio.to_thread(stack.kafka.freeze),
            end=lambda: asyncio.to_thread(stack.kafka.thaw),
            hold_s=FROZEN_S,
            noticed="kafka",
        )


async def test_broker_connections_cut(proxied_stack: Rig) -> None:
    """Every connection to the broker reset and new ones refused for 5 s (through the proxy the
    broker advertises), then accepted again."""
    proxy = proxied_stack.proxy
    assert proxy is not None
    async with asyncio.timeout(LIMIT_S):
        await proxied_stack.ride_through(
            "broker-connections-cut-5s",
            inject=proxy.cut,
            end=proxy.restore,
            hold_s=CUT_S,
            noticed="kafka",
        )
    assert proxy.cuts == 1 and proxy.accepted > 0


async def test_district_sigkill(stack: Rig) -> None:
    """SIGKILL the district service mid-load and start it again at once."""

    async def kill_and_restart() -> None:
        await asyncio.to_thread(stack.district.kill)
        stack.district.start()

    async with asyncio.timeout(LIMIT_S):
        await stack.ride_through("district-sigkill", inject=kill_and_restart)


async def test_street_sigkill(stack: Rig) -> None:
    """SIGKILL the street service mid-load and start it again at once."""

    async def kill_and_restart() -> None:
        await asyncio.to_thread(stack.street.kill)
        stack.street.start()

    async with asyncio.timeout(LIMIT_S):
        await stack.ride_through("street-sigkill", inject=kill_and_restart)
