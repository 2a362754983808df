"""The bench's scale rows: dispatch latency from Kafka's own timestamps (order produced -> its
task's timestamp), a whole day offered at once and cleared end to end, two district processes
against one, and what an order costs in writes and messages (`Footprint`)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.harness import (
    District,
    RecordAges,
    TaskCounter,
    dispatchable_orders,
    publish,
)
from contracts import topics
from services.common.config import Settings


async def publish_stamped(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], rate: float
) -> dict[bytes, int]:
    """Publish at `rate` per second; each key's Kafka timestamp (as the broker stored it)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    try:
        start, pending = time.perf_counter(), []
        for i, (key, value) in enumerate(messages):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(await producer.send(topic, value, key=key))
        sent = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return {key: meta.timestamp for (key, _), meta in zip(messages, sent, strict=True)}


class TaskStamps(TaskCounter):
    """The Kafka timestamp of the first task each order of a set got on a unit's topic."""

    async def stamps(self, n: int, timeout: float) -> dict[bytes, int]:
        seen: dict[bytes, int] = {}
        deadline = time.monotonic() + timeout
        try:
            while len(seen) < n and time.monotonic() < deadline:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
                for part in batch.values():
                    for r in part:
                        ref = self.order_no(r.value)
                        if ref is not None and ref not in seen:
                            seen[ref] = r.timestamp
        finally:
            await self.consumer.stop()
        return seen


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def bench_latency(
    settings: Settings, rate: float, seconds: float, seed: int
) -> tuple[float, float, float, float]:
    """p50 and p99 (s) from each order's Kafka timestamp to its task's, at a fixed offered
    rate, and p50 and p99 of the same orders' age when a plain consumer receives them (the
    broker's own share; an order crosses the broker twice: in, and its task out)."""
    paced = dispatchable_orders(int(rate * seconds), seed)
    keys = {key for key, _ in paced}
    ages = RecordAges(settings, topics.WORKORDERS, keys)
    tasks = TaskStamps(settings, keys)
    await ages.start()
    await tasks.start()
    broker = asyncio.create_task(ages.collect(timeout=600))
    out = asyncio.create_task(tasks.stamps(len(paced), timeout=600))
    produced = await publish_stamped(settings.kafka_bootstrap, topics.WORKORDERS, paced, rate)
    got = await out
    if len(got) != len(paced):
        raise RuntimeError(f"only {len(got)} of {len(paced)} tasks dispatched")
    lags = [(got[key] - produced[key]) / 1000 for key in got]
    return percentile(lags, 0.5), percentile(lags, 0.99), *await broker


async def bench_day(settings: Settings, n: int, seed: int) -> tuple[float, int]:
    """A day's orders offered at once: all `n` produced first, with no district running; then
    one district process starts. Seconds from its start until the last order's task is on its
    unit's topic (the process's start-up included), and how many orders had none once no task
    came for a minute (each named on stderr, up to five)."""
    orders = dispatchable_orders(n, seed)
    counter = TaskCounter(settings, {key for key, _ in orders})
    await counter.start()
    await publish(settings.kafka_bootstrap, topics.WORKORDERS, orders)
    started = time.time()
    district = District(settings)
    try:
        seen = await counter.count(n, timeout=900, idle=60)
    finally:
        district.stop()
    missing = sorted({key for key, _ in orders} - counter.seen)
    if missing:
        names = ", ".join(m.decode() for m in missing[:5])
        print(f"bench: the day left {n - seen} orders without a task: {names}", file=sys.stderr)
    return counter.last - started, n - seen


@contextlib.asynccontextmanager
async def running_districts(settings: Settings, k: int) -> AsyncIterator[list[District]]:
    """`k` district processes (one consumer group; one hotspots process beside them), all of
    them ready; each starts once the one before is ready (the embedded broker's group
    coordinator sometimes leaves a member not polling when several join at once)."""
    districts: list[District] = []
    try:
        for i in range(k):
            districts.append(District(settings, hotspots=i == 0))
            await districts[-1].wait_ready()
        yield districts
    finally:
        for d in districts:
            d.stop()


# -- what an order costs ------------------------------------------------------------------------


@dataclass
class Footprint:
    """Rows written (inserted, updated, deleted: pg_stat_user_tables) and messages published
    (the topics' end offsets, the order topic left out) between `start` and `stop`."""

    settings: Settings
    #: whose `cityops_outbox_published_total` to read as well (the broker's offsets are
    #: approximate)
    districts: list[District] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    published: float = 0.0

    async def start(self) -> None:
        self.rows, self.messages = await self._rows(), await self._offsets()
        self.published = await self._published()

    async def stop(
        self, orders: int, outbox_empty: Callable[[], Awaitable[bool]]
    ) -> dict[str, float]:
        """Per order, once what the run wrote is published and the counters have settled."""
        for _ in range(100):
            if await outbox_empty():
                break
            await asyncio.sleep(0.2)
        rows = await self._settled(self._rows)
        msgs = await self._settled(self._offsets)
        row_d = {t: n - self.rows.get(t, 0) for t, n in rows.items() if n != self.rows.get(t, 0)}
        msg_d = {
            t: n - self.messages.get(t, 0) for t, n in msgs.items() if n != self.messages.get(t, 0)
        }
        published = await self._published() - self.published
        return {
            "rows_per_order": sum(row_d.values()) / orders,
            "messages_per_order": sum(msg_d.values()) / orders,
            "published_per_order": published / orders,
            **{f"rows.{t}": n / orders for t, n in sorted(row_d.items())},
            **{f"messages.{t}": n / orders for t, n in sorted(msg_d.items())},
        }

    async def _published(self) -> float:
        return sum([await d.metric("cityops_outbox_published_total") for d in self.districts])

    @staticmethod
    async def _settled(read: Callable[[], Awaitable[dict[str, int]]]) -> dict[str, int]:
        """Counters a backend reports at most once a second, and consumers behind the intake
        (the hotspot counting) may pause: read until two reads 3 s apart agree."""
        last = await read()
        for _ in range(20):
            await asyncio.sleep(3.0)
            now = await read()
            if now == last:
                break
            last = now
        return last

    async def _rows(self) -> dict[str, int]:
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            rows = await conn.fetch(
                "SELECT schemaname || '.' || relname AS t, n_tup_ins + n_tup_upd + n_tup_del AS n"
                " FROM pg_stat_user_tables"
            )
        finally:
            await conn.close()
        return {r["t"]: r["n"] for r in rows}

    async def _offsets(self) -> dict[str, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await consumer.start()
        try:
            names = [  # what CityOps publishes: not its inbound feeds, not the bench's own
                t
                for t in await consumer.topics()
                if t not in topics.INBOUND and not t.startswith(("__", "bench."))
            ]
            parts = [
                TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
            ]
            ends = await consumer.end_offsets(parts) if parts else {}
        finally:
            await consumer.stop()
        out: dict[str, int] = {}
        for tp, end in ends.items():
            out[tp.topic] = out.get(tp.topic, 0) + end
        return out
