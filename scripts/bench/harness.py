"""The bench's harness: generated orders, publishing, the district as its own process, what
what the broker alone adds, and the intake built as the service builds it
(with `Replay`, its decisions made beforehand)."""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from feedgen import REFERENCE_DIR, FeedGenerator

from contracts import topics
from services.common.config import Settings
from services.common.consumer import BatchHandler, Offsets
from services.common.crypto import load_vault
from services.common.kafka import PARTITIONS
from services.common.metrics import Metrics
from services.common.outbox import Pending, partition
from services.devstack import free_port
from services.district.cases.model import Changes
from services.district.deadlines.policy_file import load_policy
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.intake.batch import WorkingSet
from services.district.intake.duplicates import DuplicatePolicy
from services.district.intake.handler import Intake
from services.district.intake.parse import Command
from services.district.routing import queries as routing_queries
from services.district.routing.rules import FALLBACK_CATEGORY


def dispatchable_orders(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """N generated orders that all dispatch one task (located, inside the district, of a
    category its hint names: an unclassified one waits in triage, dispatching nothing)."""
    gen, now = FeedGenerator(seed, prefix=f"{seed:03d}"), datetime.now(UTC)
    out: list[tuple[bytes, bytes]] = []
    while len(out) < n:
        order = gen.work_order(now)
        if (
            order.get("location")
            and order["district_code"] == "310106"
            and _classified(order.get("category_hint"))
        ):
            raw = json.dumps(order, ensure_ascii=False).encode()
            out.append((order["order_no"].encode(), raw))
    return out


@functools.cache
def _category_names() -> tuple[str, ...]:
    with (REFERENCE_DIR / "categories.csv").open(encoding="utf-8") as f:
        return tuple(r["minor"] for r in csv.DictReader(f) if r["code"] != FALLBACK_CATEGORY)


def _classified(hint: str | None) -> bool:
    """Whether the district's `classify` finds a category for the hint (not 9901)."""
    text = (hint or "").strip()
    return bool(text) and any(
        text == name or name in text or (len(text) >= 2 and text in name)
        for name in _category_names()
    )


async def publish(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], rate: float | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    try:
        start, pending = time.perf_counter(), []
        for i, (key, value) in enumerate(messages):
            if rate is not None:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


_SOURCE_REF = re.compile(rb'"source_ref":"([^"]+)"')


class TaskCounter:
    """Counts the orders of a set whose task reached a unit's topic (the embedded broker's end
    offsets are not exact, so each message is matched to its order; delivery is at-least-once,
    so an order whose task went out twice counts once)."""

    def __init__(self, settings: Settings, order_nos: set[bytes]) -> None:
        self.order_nos = order_nos
        self.seen: set[bytes] = set()
        self.last = 0.0
        # long fetches: the times counted are the tasks' Kafka timestamps, not when the bench
        # reads them, and a fetch every 10 ms over every unit's topic loads the broker measured
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=max(settings.fetch_max_wait_ms, 250),
        )

    async def start(self) -> None:
        await self.consumer.start()
        names = [t for t in await self.consumer.topics() if t.startswith(topics.TASKS_PREFIX)]
        parts = [
            TopicPartition(t, p) for t in names for p in self.consumer.partitions_for_topic(t) or ()
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the positions now, before anything is published
            await self.consumer.position(tp)

    async def count(self, n: int, timeout: float, idle: float | None = None) -> int:
        """How many of the set had their task out, waiting until all `n` did, `timeout` passed
        or, with `idle`, that long went by without a new one; `self.last` is the latest Kafka
        timestamp of their first tasks (s since the epoch), `self.seen` which ones."""
        deadline = time.monotonic() + timeout
        quiet_until = time.monotonic() + (idle or timeout)
        try:
            while len(self.seen) < n and time.monotonic() < min(deadline, quiet_until):
                batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
                before = len(self.seen)
                for part in batch.values():
                    for r in part:
                        ref = self.order_no(r.value)
                        if ref is not None and ref not in self.seen:
                            self.seen.add(ref)
                            self.last = max(self.last, r.timestamp / 1000)
                if len(self.seen) > before:
                    quiet_until = time.monotonic() + (idle or timeout)
        finally:
            await self.consumer.stop()
        return len(self.seen)

    def order_no(self, task: bytes | None) -> bytes | None:
        """The order of the set a task message answers, if any."""
        ref = _SOURCE_REF.search(task or b"")
        return ref.group(1) if ref and ref.group(1) in self.order_nos else None


class District:
    """The district service as its own process, as `make run` starts it: with the hotspot
    loops in a `cityops hotspots` process beside it (`hotspots=False`: none, when another
    District's serves the same database)."""

    def __init__(self, settings: Settings, hotspots: bool = True) -> None:
        self.ports = [free_port()] + ([free_port()] if hotspots else [])
        env = {
            **os.environ,
            "CITYOPS_DATABASE_URL": settings.database_url,
            "CITYOPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "CITYOPS_DISTRICT_PORT": str(self.ports[0]),
            "CITYOPS_HOTSPOTS_PORT": str(self.ports[-1]),
            "CITYOPS_HOTSPOTS_IN_DISTRICT": "0",
            "CITYOPS_FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms),
            "CITYOPS_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
            "CITYOPS_GROUP_PREFIX": settings.group_prefix,
            "CITYOPS_PHONE_KEY_FILE": settings.phone_key_file,
            "CITYOPS_MERGE_RADIUS_M": "0",  # one task per order: generated orders cluster
            "CITYOPS_LOG_LEVEL": "WARNING",
            "CITYOPS_TOKEN_RATE": "0",  # the API rows load one token from 16 clients
        }
        commands = ["district", "hotspots"][: len(self.ports)]
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "services.ops.cli", c], env=env, stdout=subprocess.DEVNULL
            )
            for c in commands
        ]

    @property
    def port(self) -> int:
        """The district service's."""
        return self.ports[0]

    async def metric(self, name: str) -> float:
        """The sum of a metric's samples over the processes."""
        import aiohttp

        total = 0.0
        async with aiohttp.ClientSession() as s:
            for port in self.ports:
                async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                total += sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith(name) and not line.startswith("#")
                )
        return total

    async def wait_ready(self) -> None:
        for port, proc in zip(self.ports, self.procs, strict=True):
            await _ready(port, proc)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(20)


async def _ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    import aiohttp

    last = "no answer"
    for _ in range(600):
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"http://127.0.0.1:{port}/readyz") as r,
            ):
                if r.status == 200:
                    return
                last = await r.text()
        except aiohttp.ClientError as exc:
            last = repr(exc)
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited ({proc.returncode})")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{proc.args!r} not ready: {last}")


class RecordAges:
    """What the broker alone adds: the age (from its producer timestamp) at which a plain
    consumer of its own receives each of the given records, read alongside the district."""

    def __init__(self, settings: Settings, topic: str, keys: set[bytes]) -> None:
        self.topic, self.keys, self.ages = topic, keys, list[float]()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )

    async def start(self) -> None:
        await self.consumer.start()
        parts = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the positions now, before anything is published
            await self.consumer.position(tp)

    async def collect(self, timeout: float) -> tuple[float, float]:
        deadline = time.monotonic() + timeout
        try:
            while len(self.ages) < len(self.keys) and time.monotonic() < deadline:
                batch = await self.consumer.getmany(timeout_ms=200)
                now = time.time() * 1000
                self.ages.extend(
                    now - r.timestamp for part in batch.values() for r in part if r.key in self.keys
                )
        finally:
            await self.consumer.stop()
        ages = sorted(self.ages)
        return ages[len(ages) // 2] / 1000, ages[int(len(ages) * 0.99)] / 1000


def as_records(orders: list[tuple[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
    """The orders as the district consumer receives them from the work-order topic, on the
    partitions Kafka's producer would pick for their keys."""
    stamp, parts = int(time.time() * 1000), list(range(PARTITIONS))
    return [
        ConsumerRecord(
            topics.WORKORDERS,
            partition(key, parts),
            i,
            stamp,
            0,
            key,
            value,
            None,
            len(key),
            len(value),
            (),
        )
        for i, (key, value) in enumerate(orders)
    ]


async def build_intake(
    settings: Settings,
    pool: asyncpg.Pool,
    on_commit: Callable[[Pending], None],
    merge_radius_m: float = 0.0,
) -> Intake:
    """The district's intake as the service builds it; duplicate merging off unless a radius
    is given (the generated orders cluster around the anchors: with merging on, most merge)."""
    async with pool.acquire() as conn:
        ref = await routing_queries.load_reference(conn, settings.district_code)
    metrics = Metrics()
    policy = load_policy(settings.deadline_policy_path, ref.categories)
    desk = Decisions(Context(ref, policy.calendar(), policy, load_vault(settings), metrics))
    return Intake(
        pool,
        desk,
        metrics,
        settings.district_code,
        duplicates=DuplicatePolicy(merge_radius_m, timedelta(hours=settings.merge_window_h)),
        on_commit=on_commit,
    )


async def no_commit(_: Offsets) -> None:
    """No offsets to commit: the records were not fetched from the broker."""


class Replay(BatchHandler):
    """The district's intake with every decision made beforehand: per batch it drives the
    intake's own steps but one (`Intake.prepare`: the same reads; `Intake.write`: the same
    one-statement write; `Intake.committed`: the same after-commit publishing) and computes
    nothing (no parsing, routing, deadlines or messages: `Intake.decide` ran beforehand)."""

    def __init__(self, intake: Intake, decided: dict[bytes, tuple[Command, Changes]]) -> None:
        self.intake, self.decided = intake, decided
        self.started = 0.0  # when the first batch arrived

    @classmethod
    def decide(cls, intake: Intake, orders: list[tuple[bytes, bytes]], first_no: int) -> Replay:
        """Each order's decision, made alone as the intake makes it (untimed)."""
        now, decided = intake.clock.now(), {}
        for i, record in enumerate(as_records(orders)):
            batch = WorkingSet(numbers=iter([first_no + i]))
            todo = intake.parse(batch, [record], now)
            intake.decide(batch, todo, now)
            decided[record.key or b""] = (todo[0][1], batch.changes)
        return cls(intake, decided)

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        self.started = self.started or time.perf_counter()
        intake, now, batch = self.intake, self.intake.clock.now(), WorkingSet()
        todo = []
        for r in records:
            cmd, changes = self.decided[r.key or b""]
            todo.append((r, cmd))
            batch.changes.extend(changes)
        async with intake.pool.acquire() as conn, conn.transaction():
            await intake.prepare(conn, WorkingSet(), todo, now)  # the reads; nothing to decide
            pending = await intake.write(conn, batch)
        intake.committed(batch, pending)

    async def poison(self, record: ConsumerRecord[bytes, bytes], error: BaseException) -> None:
        raise error
