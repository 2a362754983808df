"""The outbox publishes what was committed, exactly once per row, even when nobody submitted it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from services.common import db, outbox
from services.common.config import Settings
from services.common.kafka import make_producer
from tests.support import Topics, wait_until

TOPIC = "cityops.case-events"


@asynccontextmanager
async def publishing(
    settings: Settings, pool: asyncpg.Pool, **options: float
) -> AsyncIterator[outbox.Publisher]:
    """A running outbox publisher; stopped (task, producer) on the way out."""
    producer = make_producer(settings)
    await producer.start()
    publisher = outbox.Publisher(pool, producer, **options)
    task = asyncio.create_task(publisher.run())
    try:
        # the first sweep sends at once what is committed; rows written after it are the
        # fast lane's (or, after the grace period, the sweeper's)
        await asyncio.wait_for(publisher.swept.wait(), 10)
        yield publisher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()


async def test_rows_left_behind_are_swept_in_order_and_deleted(settings: Settings) -> None:
    pool = await db.create_pool(settings.database_url, 2)
    messages = [outbox.OutMessage(TOPIC, b"case-1", f'{{"n": {i}}}'.encode()) for i in range(50)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.write(conn, messages)  # committed, never submitted: a crash after commit
    try:
        async with publishing(settings, pool, sweep_every_s=0.1), Topics(settings) as t:
            got = await t.wait_for(TOPIC, lambda m: "n" in m, "swept rows", count=50)
            assert [m["n"] for m in got] == list(range(50))
            async with pool.acquire() as conn:
                await wait_until(lambda: _empty(conn), "outbox emptied")
    finally:
        await pool.close()


async def test_submitted_rows_go_out_once(settings: Settings) -> None:
    pool = await db.create_pool(settings.database_url, 2)
    try:
        async with publishing(settings, pool, sweep_every_s=0.1, grace_s=0.5) as publisher:
            messages = [
                outbox.OutMessage(TOPIC, f"k{i}".encode(), f'{{"m": {i}}}'.encode())
                for i in range(20)
            ]
            async with pool.acquire() as conn, conn.transaction():
                pending = await outbox.write(conn, messages)
            publisher.submit(pending)
            async with Topics(settings) as t:
                await t.wait_for(TOPIC, lambda m: "m" in m, "submitted rows", count=20)
                async with pool.acquire() as conn:  # once deleted, no sweep can send them again
                    await wait_until(lambda: _empty(conn), "published rows deleted")
                assert len([m for m in await t.read(TOPIC) if "m" in m]) == 20
    finally:
        await pool.close()


async def _empty(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_slow_send_is_not_swept_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast lane's send outlasts the sweeper's grace period (a slow broker): the sweeper
    leaves the rows the fast lane holds, so they still go out once."""
    send = outbox.Publisher._send

    async def slow(self: outbox.Publisher, rows: outbox.Pending) -> None:
        await asyncio.sleep(1.0)
        await send(self, rows)

    pool = await db.create_pool(settings.database_url, 2)
    try:
        async with publishing(settings, pool, sweep_every_s=0.05, grace_s=0.1) as publisher:
            monkeypatch.setattr(outbox.Publisher, "_send", slow)
            messages = [
                outbox.OutMessage(TOPIC, b"case-slow", f'{{"s": {i}}}'.encode()) for i in range(5)
            ]
            async with pool.acquire() as conn, conn.transaction():
                pending = await outbox.write(conn, messages)
            publisher.submit(pending)
            async with Topics(settings) as t:
                got = await t.wait_for(TOPIC, lambda m: "s" in m, "the slow rows", count=5)
                assert [m["s"] for m in got] == list(range(5))
                async with pool.acquire() as conn:
                    await wait_until(lambda: _empty(conn), "published rows deleted")
                await asyncio.sleep(0.5)  # any second copy would be out by now
                assert [m["s"] for m in await t.read(TOPIC) if "s" in m] == list(range(5))
    finally:
        await pool.close()
