"""Transactional outbox: messages are written in the transaction that decides them and
published to Kafka after commit.

A row is a frame: the messages one transaction wrote for one shard, in order (so an order's
three messages cost a fraction of a row, not three rows inserted and deleted). Two lanes
publish them. The fast lane gets the committed rows from the process that wrote
them (`submit`), sends them at once in commit order and deletes them. The sweeper publishes
whatever the fast lane did not (a crash between commit and send, a full queue, another
process's rows): rows older than a grace period, under per-shard advisory locks so that one
instance at a time sweeps a shard and each key's messages stay in order. Delivery is
at-least-once; every consumer deduplicates by the message's own id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2
from pydantic import BaseModel

from services.common import faults
from services.common.sql import Batch, Table

log = logging.getLogger(__name__)

SHARDS = 8
#: at most this many committed messages wait in memory; beyond it the sweeper takes over.
QUEUE_LIMIT = 100_000
_PARTITIONER = DefaultPartitioner()


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


@dataclass(frozen=True, slots=True)
class Pending:
    """Committed outbox rows: their ids (to delete once sent) and the messages, in order."""

    ids: list[int]
    messages: list[OutMessage]


@dataclass(frozen=True, slots=True)
class Frame:
    """One outbox row: the messages of one shard a transaction wrote, in order."""

    shard: int
    topics: list[str]
    keys: list[bytes | None]
    payloads: list[bytes]
    origins_ms: list[int | None]

    @classmethod
    def of(cls, messages: Sequence[OutMessage]) -> list[Frame]:
        """The messages in one frame per shard (each keeps its messages' order)."""
        frames: dict[int, Frame] = {}
        for m in messages:
            shard = m.shard
            f = frames.get(shard)
            if f is None:
                f = frames[shard] = Frame(shard, [], [], [], [])
            f.topics.append(m.topic)
            f.keys.append(m.key)
            f.payloads.append(m.value)
            f.origins_ms.append(m.origin_ms)
        return list(frames.values())

    @staticmethod
    def messages(row: asyncpg.Record) -> list[OutMessage]:
        """A stored frame's messages, in order."""
        parts = (row["topics"], row["keys"], row["payloads"], row["origins_ms"])
        return [OutMessage(*m) for m in zip(*parts, strict=True)]


def table(name: str) -> Table:
    return Table(
        name,
        {
            "shard": "int2",
            "topics": "text[]",
            "keys": "bytea[]",
            "payloads": "bytea[]",
            "origins_ms": "int8[]",
        },
        "outbox_row",  # every outbox table has these columns
    )


def insert(batch: Batch, messages: Sequence[OutMessage], name: str = "outbox") -> str:
    """The statement part that stores messages (a frame per shard) and returns the rows' ids
    (see `Pending`)."""
    if not messages:
        return "SELECT NULL::bigint AS id WHERE false"
    return batch.insert(table(name), Frame.of(messages), returning="id")


async def write(
    conn: asyncpg.Connection, messages: Sequence[OutMessage], name: str = "outbox"
) -> Pending:
    """Store messages inside the caller's transaction; hand the result to `Publisher.submit`
    once the transaction has committed."""
    batch = Batch()
    rows = await conn.fetch(batch.statement(insert(batch, messages, name)), *batch.args)
    return Pending([r["id"] for r in rows], list(messages))


def partition(key: bytes | None, parts: Sequence[int]) -> int:
    """The partition Kafka's default partitioner gives `key` among `parts` (sorted)."""
    if key is None:
        return int(_PARTITIONER(key, parts, parts))
    return parts[(_key_hash(key) & 0x7FFFFFFF) % len(parts)]


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    """Kafka's murmur2 of a key (pure Python in aiokafka, so remembered: a case's task and
    events share its key)."""
    return int(murmur2(key))


def now_ms() -> int:
    return int(time.time() * 1000)


_NO_ID = 2**63 - 1  # above every row id (bigserial)


class Publisher:
    """Publishes one outbox table; `on_published(topic, origin_ms)` sees each message sent."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        table: str = "outbox",
        batch: int = 2000,
        sweep_every_s: float = 1.0,
        grace_s: float = 5.0,
        on_published: Callable[[str, int | None], None] | None = None,
        retries: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._pool, self._producer, self._table = pool, producer, table
        self._batch, self._sweep_every_s, self._grace_s = batch, sweep_every_s, grace_s
        self._on_published, self._retries = on_published, retries
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._sent: list[int] = []  # published by the fast lane, to delete
        #: rows the fast lane holds (queued, sending, sent and not yet deleted): the sweeper
        #: leaves them, and every row after the first of them, so a slow send is not sent twice
        #: and each key's messages keep their order
        self._held: set[int] = set()
        #: set once a sweep has gone through: what an earlier process left behind is out
        self.swept = asyncio.Event()
        self._sent_some = asyncio.Event()
        self._partitions: dict[str, tuple[float, list[int]]] = {}
        self._queued = 0
        lock_namespace = zlib.crc32(table.encode()) & 0x7FFFFFFF
        self._sweep_sql = (  # frames in order until they hold `$2` messages (at least one)
            f"WITH mine AS (SELECT s FROM generate_series(0, {SHARDS - 1}) AS s"
            f"              WHERE pg_try_advisory_xact_lock({lock_namespace}, s))"
            " SELECT id, topics, keys, payloads, origins_ms FROM ("
            "  SELECT *, sum(cardinality(topics)) OVER (ORDER BY id) AS upto"
            f" FROM {table}"
            "  WHERE shard IN (SELECT s FROM mine) AND created_at < now() - $1::interval"
            "    AND id < $3"
            "  ORDER BY id LIMIT $2) AS f"
            " WHERE upto - cardinality(topics) < $2 ORDER BY id"
        )

    async def _partitions_of(self, topic: str) -> list[int]:
        cached = self._partitions.get(topic)
        if cached is None or cached[0] < time.monotonic():
            parts = sorted(await self._producer.partitions_for(topic))
            cached = self._partitions[topic] = (time.monotonic() + 60.0, parts)
        return cached[1]

    def submit(self, pending: Pending) -> None:
        """Committed rows to send now (dropped when the queue is full: the sweeper has them)."""
        size = len(pending.messages)
        if size and self._queued + size <= QUEUE_LIMIT:
            self._queued += size
            self._held.update(pending.ids)
            self._queue.put_nowait(pending)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._fast_lane())
            group.create_task(self._deleter())
            group.create_task(self._sweeper())

    async def _fast_lane(self) -> None:
        while True:
            first = await self._queue.get()
            rows = Pending(list(first.ids), list(first.messages))
            while not self._queue.empty() and len(rows.messages) < self._batch:
                more = self._queue.get_nowait()
                rows.ids.extend(more.ids)
                rows.messages.extend(more.messages)
            self._queued -= len(rows.messages)
            try:
                await self._send(rows)
            except Exception as exc:  # the rows stay in the table: the sweeper publishes them
                self._held.difference_update(rows.ids)
                self._failed("fast lane failed; the sweeper will publish", exc)
                continue
            self._sent.extend(rows.ids)  # deleted alongside: the next send need not wait
            self._sent_some.set()

    async def _deleter(self) -> None:
        """Delete what the fast lane published, everything sent meanwhile in one statement
        (rows a failure leaves behind are published again by the sweeper: at-least-once)."""
        while True:
            await self._sent_some.wait()
            self._sent_some.clear()
            ids, self._sent = self._sent, []
            try:
                async with self._pool.acquire() as conn:
                    await self._delete(conn, ids)
            except Exception as exc:  # published again by the sweeper: at-least-once
                self._failed("outbox delete failed", exc)
            finally:
                self._held.difference_update(ids)

    async def _sweeper(self) -> None:
        grace = 0.0  # at start, whatever a previous process left behind goes out at once
        while True:
            try:
                while await self.sweep(grace) >= self._batch:
                    pass
                self.swept.set()
            except Exception as exc:  # nothing is lost: the rows wait for the next sweep
                self._failed("outbox sweep failed, will retry", exc)
            grace = self._grace_s
            await asyncio.sleep(self._sweep_every_s)

    def _failed(self, what: str, exc: Exception) -> None:
        """The lanes never stop: a failure leaves the rows in the table for the sweeper. A
        transient one is counted as a retry; anything else is logged with its traceback."""
        kind = faults.kind(exc)
        if kind is None:
            log.exception(what, extra={"error": repr(exc)})
            return
        self._retries(kind)
        log.warning(what, extra={"error": repr(exc), "kind": kind})

    async def sweep(self, grace_s: float = 0.0) -> int:
        """Publish rows older than `grace_s` from every shard no other instance is sweeping;
        return how many messages (a full batch: there may be more)."""
        async with self._pool.acquire() as conn, conn.transaction():
            below = min(self._held, default=_NO_ID)
            found = await conn.fetch(
                self._sweep_sql, timedelta(seconds=grace_s), self._batch, below
            )
            rows = Pending([r["id"] for r in found], [m for r in found for m in Frame.messages(r)])
            if found:
                await self._send(rows)
                await self._delete(conn, rows.ids)
        return len(rows.messages)

    async def _send(self, rows: Pending) -> None:
        """Send in per-partition batches (far cheaper than one `send` per message); keys map
        to partitions exactly as Kafka's default partitioner does, so order per key holds."""
        groups: dict[tuple[str, int], list[OutMessage]] = {}
        parts = {t: await self._partitions_of(t) for t in {m.topic for m in rows.messages}}
        for m in rows.messages:
            part = partition(m.key, parts[m.topic])
            groups.setdefault((m.topic, part), []).append(m)
        futures = []
        for (topic, part), messages in groups.items():
            batch = self._producer.create_batch()
            for m in messages:
                if batch.append(key=m.key, value=m.value, timestamp=None) is None:
                    futures.append(await self._producer.send_batch(batch, topic, partition=part))
                    batch = self._producer.create_batch()
                    batch.append(key=m.key, value=m.value, timestamp=None)
            futures.append(await self._producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*futures)
        if self._on_published is not None:
            for m in rows.messages:
                self._on_published(m.topic, m.origin_ms)

    async def _delete(self, conn: asyncpg.Connection, row_ids: Sequence[int]) -> None:
        # one round trip; losing this commit only means publishing again, so no fsync wait
        ids = ",".join(str(int(i)) for i in row_ids)
        await conn.execute(
            "SET LOCAL synchronous_commit = off;"
            f" DELETE FROM {self._table} WHERE id = ANY('{{{ids}}}'::bigint[])"
        )
