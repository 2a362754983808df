"""Transactional outbox: messages are written in the transaction that decides them and
published to Kafka after commit, by whichever instance holds the shard's advisory lock."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import BaseModel

log = logging.getLogger(__name__)

SHARDS = 8
NOTIFY_CHANNEL = "cityops_outbox"


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    key: bytes | None
    value: bytes
    origin_ms: int | None = None

    @classmethod
    def of(
        cls, topic: str, key: str, message: BaseModel, origin_ms: int | None = None
    ) -> OutMessage:
        value = message.model_dump_json(by_alias=True).encode()
        return cls(topic, key.encode(), value, origin_ms)

    @property
    def shard(self) -> int:
        return zlib.crc32(self.key or b"") % SHARDS


async def write(
    conn: asyncpg.Connection, messages: Sequence[OutMessage], table: str = "outbox"
) -> None:
    """Queue messages inside the caller's transaction and wake the publishers on commit."""
    if not messages:
        return
    await conn.copy_records_to_table(
        table.split(".")[-1],
        schema_name=table.split(".")[0] if "." in table else None,
        columns=("shard", "topic", "key", "value", "origin_ms"),
        records=[(m.shard, m.topic, m.key, m.value, m.origin_ms) for m in messages],
    )
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, table)


class Publisher:
    """Drains one outbox table to Kafka; `on_published(topic, origin_ms)` sees each message sent."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        table: str = "outbox",
        batch: int = 2000,
        poll_s: float = 1.0,
        on_published: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self._pool, self._producer, self._table = pool, producer, table
        self._batch, self._poll_s = batch, poll_s
        self._on_published = on_published
        self._lock_namespace = zlib.crc32(table.encode()) & 0x7FFFFFFF
        self._claim_sql = (
            f"WITH mine AS (SELECT s FROM generate_series(0, {SHARDS - 1}) AS s"
            "               WHERE pg_try_advisory_xact_lock($1, s))"
            f" SELECT id, topic, key, value, origin_ms FROM {self._table}"
            " WHERE shard IN (SELECT s FROM mine) ORDER BY id LIMIT $2"
        )
        self._wake = asyncio.Event()

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        listener = await self._pool.acquire()
        await listener.add_listener(NOTIFY_CHANNEL, self.wake)
        try:
            while True:
                self._wake.clear()
                try:
                    sent = await self.publish_pending()
                except (OSError, KafkaError, asyncpg.PostgresError) as exc:
                    log.warning("outbox publish failed, will retry", extra={"error": repr(exc)})
                    await asyncio.sleep(self._poll_s)
                    continue
                if sent == 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._poll_s)
                    except TimeoutError:
                        pass
        finally:
            await listener.remove_listener(NOTIFY_CHANNEL, self.wake)
            await self._pool.release(listener)

    async def publish_pending(self) -> int:
        """One pass: lock every shard no other instance holds, send their oldest rows in id
        order (so each key's messages stay in order), delete them, commit. Returns rows sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            # losing this commit only means publishing again (consumers dedupe): no fsync wait
            await conn.execute("SET LOCAL synchronous_commit = off")
            rows = await conn.fetch(self._claim_sql, self._lock_namespace, self._batch)
            if not rows:
                return 0
            pending = [await self._producer.send(r["topic"], r["value"], key=r["key"]) for r in rows]
            await asyncio.gather(*pending)
            await conn.execute(
                f"DELETE FROM {self._table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        if self._on_published is not None:
            for r in rows:
                self._on_published(r["topic"], r["origin_ms"])
        return len(rows)


def now_ms() -> int:
    return int(time.time() * 1000)
