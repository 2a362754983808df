"""CityOps benchmarks: intake->task throughput and dispatch latency beside the raw loop.

Runs on the embedded broker and database (or CITYOPS_KAFKA_BOOTSTRAP / CITYOPS_DATABASE_URL),
the district service as its own process, exactly as `make run` starts it. Prints a table and
writes bench-results/bench.json. `--orders N` (default 20,000), `--rate R` (default 500/s).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from feedgen import FeedGenerator

from contracts import topics
from services.common import db
from services.common.config import ROOT, Settings
from services.common.consumer import BatchConsumer, Lanes, Offsets
from services.common.crypto import load_vault
from services.common.http import GC_THRESHOLD
from services.common.kafka import PARTITIONS, make_consumer, make_producer
from services.common.metrics import Metrics
from services.common.outbox import Pending, Publisher, partition
from services.devstack import EmbeddedKafka, EmbeddedPostgres, free_port
from services.district.cases import queries
from services.district.cases.model import Changes, case_number, lookup_key
from services.district.deadlines.policy import DeadlinePolicy
from services.district.deadlines.workcal import WorkCalendar
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.intake import queries as iq
from services.district.intake.duplicates import DuplicatePolicy
from services.district.intake.handler import Intake, _Batch
from services.district.intake.parse import Command, parse
from services.district.routing import queries as routing_queries
from services.ops.bootstrap import bootstrap

OUT = ROOT / "bench-results"


def dispatchable_orders(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """N generated orders that all dispatch one task (located, inside the district)."""
    gen, out, now = FeedGenerator(seed, prefix=f"{seed:03d}"), [], datetime.now(UTC)
    while len(out) < n:
        order = gen.work_order(now)
        if order.get("location") and order["district_code"] == "310106":
            raw = json.dumps(order, ensure_ascii=False).encode()
            out.append((order["order_no"].encode(), raw))
    return out


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
    """Counts the task messages for a set of orders on every unit's topic (the embedded
    broker's end offsets are not exact, so each message is matched to its order)."""

    def __init__(self, settings: Settings, order_nos: set[bytes]) -> None:
        self.order_nos = order_nos
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
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

    async def count(self, n: int, timeout: float) -> int:
        seen, deadline = 0, time.monotonic() + timeout
        try:
            while seen < n and time.monotonic() < deadline:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
                for part in batch.values():
                    for r in part:
                        ref = _SOURCE_REF.search(r.value or b"")
                        seen += bool(ref and ref.group(1) in self.order_nos)
        finally:
            await self.consumer.stop()
        return seen


class District:
    """The district service as its own process, as `make run` starts it."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "CITYOPS_DATABASE_URL": settings.database_url,
            "CITYOPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "CITYOPS_DISTRICT_PORT": str(self.port),
            "CITYOPS_FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms),
            "CITYOPS_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
            "CITYOPS_GROUP_PREFIX": settings.group_prefix,
            "CITYOPS_PHONE_KEY_FILE": settings.phone_key_file,
            "CITYOPS_MERGE_RADIUS_M": "0",  # one task per order: generated orders cluster
            "CITYOPS_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.ops.cli", "district"],
            env=env,
            stdout=subprocess.DEVNULL,
        )

    async def metric(self, name: str) -> float:
        import aiohttp

        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{self.port}/metrics") as r,
        ):
            text = await r.text()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    async def wait_ready(self) -> None:
        import aiohttp

        for _ in range(300):
            try:
                async with (
                    aiohttp.ClientSession() as s,
                    s.get(f"http://127.0.0.1:{self.port}/readyz") as r,
                ):
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError("district service not ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


async def bench_throughput(settings: Settings, n: int, seed: int) -> float:
    """Offer n orders at once; orders/s from the first publish until the n-th task is out."""
    orders = dispatchable_orders(n, seed)
    counter = TaskCounter(settings, {key for key, _ in orders})
    await counter.start()
    started = time.perf_counter()
    collector = asyncio.create_task(counter.count(n, timeout=600))
    await publish(settings.kafka_bootstrap, topics.WORKORDERS, orders)
    seen = await collector
    elapsed = time.perf_counter() - started
    if seen != n:
        raise RuntimeError(f"only {seen} of {n} tasks dispatched")
    return n / elapsed


async def bench_latency(
    settings: Settings, districts: list[District], rate: float, seconds: float, seed: int
) -> tuple[float, float, float, float]:
    """p50 and p99 dispatch latency (the districts' own histograms, summed) at a fixed rate,
    and p50 and p99 of the same orders' age when a plain consumer receives them (the broker's
    own share; an order crosses the broker twice: in, and its task out)."""
    paced = dispatchable_orders(int(rate * seconds), seed)
    ages = RecordAges(settings, topics.WORKORDERS, {key for key, _ in paced})
    await ages.start()
    collector = asyncio.create_task(ages.collect(timeout=600))
    before = await _histograms(districts)
    count = before.get(float("inf"), 0.0)
    await publish(settings.kafka_bootstrap, topics.WORKORDERS, paced, rate=rate)
    for _ in range(6000):  # until every paced order has been dispatched (at most 10 min)
        if (await _histograms(districts)).get(float("inf"), 0.0) >= count + len(paced):
            break
        await asyncio.sleep(0.1)
    return (*_quantiles(before, await _histograms(districts)), *await collector)


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


async def _histograms(districts: list[District]) -> dict[float, float]:
    total: dict[float, float] = {}
    for d in districts:
        for le, n in (await _histogram(d)).items():
            total[le] = total.get(le, 0.0) + n
    return total


async def _histogram(district: District) -> dict[float, float]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{district.port}/metrics") as r,
    ):
        text = await r.text()
    out = {}
    for line in text.splitlines():
        if line.startswith("cityops_dispatch_latency_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def _quantiles(before: dict[float, float], after: dict[float, float]) -> tuple[float, float]:
    """p50 and p99 from histogram bucket deltas, interpolated linearly inside a bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1]

    def q(p: float) -> float:
        rank, lower, prev = p * total, 0.0, 0.0
        for b, c in zip(bounds, counts, strict=True):
            if c >= rank:
                if b == float("inf"):
                    return lower
                return lower + (b - lower) * ((rank - prev) / max(c - prev, 1e-9))
            lower, prev = b, c
        return lower

    return q(0.5), q(0.99)


async def bench_timers(settings: Settings) -> float:
    """Deadline alarms processed per second: every open task's deadlines fall due at once
    (a clock 30 days ahead) and one timer worker fires them (events, urged tasks, outbox)."""
    from services.common import db
    from services.common.clock import FakeClock
    from services.common.crypto import load_vault
    from services.common.metrics import Metrics
    from services.district.deadlines.policy import DeadlinePolicy
    from services.district.deadlines.timers import TimerWorker
    from services.district.deadlines.workcal import WorkCalendar
    from services.district.decisions import Decisions
    from services.district.decisions.context import Context

    pool = await db.create_pool(settings.database_url, 2)
    try:
        async with pool.acquire() as conn:
            ref = await routing_queries.load_reference(conn, settings.district_code)
            due = await conn.fetchval("SELECT count(*) FROM task_timers")
        desk = Decisions(
            Context(ref, WorkCalendar(), DeadlinePolicy(), load_vault(settings), Metrics())
        )
        clock = FakeClock(datetime.now(UTC) + timedelta(days=30))
        worker = TimerWorker(pool, desk, lambda _: None, clock, settings.district_code)
        started, fired = time.perf_counter(), 0
        while n := await worker.fire_due():
            fired += n
        return fired / (time.perf_counter() - started) if fired else 0.0
    finally:
        await pool.close()
        _ = due


def _records(orders: list[tuple[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
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


async def _intake(
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
    desk = Decisions(Context(ref, WorkCalendar(), DeadlinePolicy(), load_vault(settings), metrics))
    return Intake(
        pool,
        desk,
        metrics,
        settings.district_code,
        duplicates=DuplicatePolicy(merge_radius_m, timedelta(hours=settings.merge_window_h)),
        on_commit=on_commit,
    )


async def _nothing(_: Offsets) -> None:
    """No offsets to commit: the records were not fetched from the broker."""


async def bench_intake(settings: Settings, n: int, seed: int, merge_radius_m: float = 0.0) -> float:
    """Intake alone: orders/s through the district consumer's parse + one-transaction-per-batch
    path (`Intake.handle` in the consumer's `Lanes`, on records built beforehand and handed over
    in fetch-sized batches, against the real database; duplicate merging off unless
    `merge_radius_m` is given), with publishing excluded (the outbox rows are removed
    afterwards, untimed)."""
    records = _records(dispatchable_orders(n, seed))
    pool = await db.create_pool(settings.database_url, 2)
    try:
        written: list[int] = []
        intake = await _intake(
            settings, pool, lambda pending: written.extend(pending.ids), merge_radius_m
        )
        gc.set_threshold(*GC_THRESHOLD)  # as the service runs (services/common/http.py)
        gc.freeze()
        size = settings.batch_max_records
        lanes = Lanes(intake, settings.intake_lanes, _nothing, max_records=size)
        running = asyncio.create_task(lanes.run())
        started = time.perf_counter()
        for i in range(0, n, size):  # handed to the lanes as the district consumer's fetches are
            by_part: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
            for r in records[i : i + size]:
                by_part.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
            await lanes.put(by_part)
        await lanes.idle()
        elapsed = time.perf_counter() - started
        running.cancel()
        async with pool.acquire() as conn:  # untimed: leave nothing for the sweepers
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", written)
        return n / elapsed
    finally:
        await pool.close()


class Replay(Intake):
    """The district's intake with every decision made beforehand: per batch it runs the same
    reads, the same one-statement write and the same after-commit publishing as
    `Intake.handle`, and computes nothing (no parsing, routing, deadlines or messages)."""

    def __init__(self, intake: Intake, decided: dict[bytes, tuple[Command, Changes]]) -> None:
        super().__init__(
            intake.pool,
            intake.decisions,
            intake.metrics,
            intake.district_code,
            on_commit=intake.on_commit,
            duplicates=intake.duplicates,
        )
        self.decided = decided
        self.started = 0.0  # when the first batch arrived

    @classmethod
    def decide(cls, intake: Intake, orders: list[tuple[bytes, bytes]], first_no: int) -> Replay:
        """Each order's decision, made alone as the intake makes it (untimed)."""
        now, decided = intake.clock.now(), {}
        for i, record in enumerate(_records(orders)):
            cmd, batch = parse(record, now), _Batch()
            intake._apply(batch, record, cmd, now, iter([first_no + i]))
            decided[record.key or b""] = (cmd, batch.changes)
        return cls(intake, decided)

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        self.started = self.started or time.perf_counter()
        now, changes = self.clock.now(), Changes()
        cmds = []
        for r in records:
            cmd, decided = self.decided[r.key or b""]
            cmds.append(cmd)
            for f in fields(Changes):
                mine, theirs = getattr(changes, f.name), getattr(decided, f.name)
                if isinstance(mine, dict):
                    mine.update(theirs)
                elif isinstance(mine, list):
                    mine.extend(theirs)
        async with self.pool.acquire() as conn, conn.transaction():
            await queries.claim_new_keys(conn, [c.key for c in cmds])
            await self._load(conn, _Batch(), cmds, now)
            reserved = await queries.next_case_numbers(conn, len(cmds))
            await iq.parked_for(
                conn,
                [lookup_key(c.case_lookup()) for c in cmds]
                + [case_number(self.district_code, n, now) for n in reserved],
            )
            pending = await queries.save(conn, changes)
        for fn in changes.after_commit:
            fn()
        self.on_commit(pending)


async def bench_floor(settings: Settings, n: int, seed: int) -> float:
    """The loop's I/O floor: the district consumer, in this process, with every decision made
    beforehand (`Replay`): the same lanes, reads, write statement, outbox publishing and offset
    commits, nothing computed. Timed like the raw loop, from the first batch consumed (the
    orders published beforehand) until the n-th task is acknowledged by the broker."""
    orders = dispatchable_orders(n, seed)
    src = f"bench.floor.in.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(src, PARTITIONS, 1)])
    await admin.close()
    await publish(settings.kafka_bootstrap, src, orders)
    tasks, all_out = [0], asyncio.Event()

    def published(topic: str, _origin_ms: int | None) -> None:
        tasks[0] += topic.startswith(topics.TASKS_PREFIX)
        if tasks[0] >= n:
            all_out.set()

    pool = await db.create_pool(settings.database_url, 4)
    producer = make_producer(settings)
    await producer.start()
    publisher = Publisher(pool, producer, batch=settings.outbox_batch, on_published=published)
    intake = await _intake(settings, pool, publisher.submit)
    replay = Replay.decide(intake, orders, first_no=8_000_000 + (seed % 10) * 100_000)
    consumer = BatchConsumer(
        make_consumer(settings, f"floor-{uuid.uuid4().hex[:6]}", src),
        replay,
        intake.metrics,
        "floor",
        max_records=settings.batch_max_records,
        lanes=settings.intake_lanes,
    )
    running = [asyncio.create_task(publisher.run()), asyncio.create_task(consumer.run())]
    try:
        await asyncio.wait_for(all_out.wait(), 600)
        return n / (time.perf_counter() - replay.started)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await producer.stop()
        await pool.close()


async def bench_api(settings: Settings, district: District) -> dict[str, dict[str, float]]:
    """Queue view and case detail, 100,000 cases in the database, 16 concurrent clients in a
    separate process on loopback, 10 s each."""
    from bench_api import seed

    from services.common.auth import Role, TokenStore

    case_nos = await seed(settings.database_url, settings.district_code, 100_000)
    conn = await asyncpg.connect(settings.database_url)
    try:
        token = await TokenStore(conn, settings.district_code).mint(
            Role.DISTRICT_SUPERVISOR, None, "bench"
        )
    finally:
        await conn.close()
    url = f"http://127.0.0.1:{district.port}"
    out = {}
    for name, paths in (
        ("queues", ["/api/v1/queues"]),
        ("case_detail", [f"/api/v1/cases/{no}" for no in case_nos]),
    ):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("bench_api.py")),
            "load",
            url,
            token,
            "16",
            "10",
            *paths,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await proc.communicate()
        out[name] = json.loads(stdout)
    return out


async def bench_raw(settings: Settings, n: int, seed: int) -> float:
    """The same data through a consume-upsert-produce loop with no logic: the ceiling."""
    src, dst = f"bench.raw.in.{uuid.uuid4().hex[:6]}", f"bench.raw.out.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(src, 6, 1), NewTopic(dst, 6, 1)])
    await admin.close()
    await publish(settings.kafka_bootstrap, src, dispatchable_orders(n, seed))
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (key text PRIMARY KEY, value bytea)")
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        session_timeout_ms=settings.session_timeout_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
    await consumer.start()
    await producer.start()
    done, started = 0, None
    try:
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            records = [r for part in batch.values() for r in part]
            if not records:
                continue
            started = started or time.perf_counter()
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO bench_raw SELECT * FROM unnest($1::text[], $2::bytea[])"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [r.key.decode() for r in records],
                    [r.value for r in records],
                )
            await asyncio.gather(*[await producer.send(dst, r.value, key=r.key) for r in records])
            await consumer.commit()
            done += len(records)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instances", type=int, default=1, help="district processes")
    args = parser.parse_args()
    base = Settings()
    cleanup: list[Callable[[], None]] = []
    stack: list[Any] = []
    try:
        dsn, kafka = base.database_url, base.kafka_bootstrap
        if not dsn:  # a throwaway cluster: nothing left behind to vacuum in the next run
            scratch = Path(tempfile.mkdtemp(prefix="cityops-bench-"))
            pg = EmbeddedPostgres(scratch / "pgdata")
            stack.append(pg)
            cleanup.append(lambda: shutil.rmtree(scratch, ignore_errors=True))
            dsn = await pg.create_database("bench")
        if not kafka:
            broker = EmbeddedKafka()
            stack.append(broker)
            kafka = broker.bootstrap
        embedded = not base.kafka_bootstrap
        settings = replace(
            base,
            database_url=dsn,
            kafka_bootstrap=kafka,
            fetch_max_wait_ms=10 if embedded else base.fetch_max_wait_ms,
            session_timeout_ms=2000 if embedded else base.session_timeout_ms,
            group_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        )
        await bootstrap(settings)
        results = await run_all(settings, args)
    finally:
        for dep in reversed(stack):
            dep.stop()
        for fn in cleanup:
            fn()
    report(results, args)


async def run_all(settings: Settings, args: argparse.Namespace) -> dict[str, list[float]]:
    """Each measurement `--repeat` times, alternating raw and loop so both see the same box.

    Latency comes first: the embedded broker keeps every message in memory and its fetch
    latency grows with what it holds (scripts/broker_probe.py: a plain produce-consume at 500/s
    gives p99 13, 19, 24, 48 ms in four consecutive 10 s runs), which Kafka's does not; each
    run also measures
    the broker's own share for the same orders (`broker_p50`, `broker_p99`)."""
    out: dict[str, list[float]] = {
        "raw": [],
        "loop": [],
        "floor": [],
        "p50": [],
        "p99": [],
        "broker_p50": [],
        "broker_p99": [],
        "timers": [],
        "intake": [],
        "intake_merging": [],
    }
    districts = [District(settings) for _ in range(args.instances)]
    try:
        for d in districts:
            await d.wait_ready()
        for i in range(args.repeat):
            p50, p99, b50, b99 = await bench_latency(
                settings, districts, args.rate, 10.0, seed=200 + i
            )
            out["broker_p50"].append(b50 * 1000)
            out["broker_p99"].append(b99 * 1000)
            out["p50"].append(p50 * 1000)
            out["p99"].append(p99 * 1000)
        for i in range(args.repeat):
            out["raw"].append(await bench_raw(settings, args.orders, seed=100 + i))
            out["loop"].append(await bench_throughput(settings, args.orders, seed=i))
            out["floor"].append(await bench_floor(settings, args.orders, seed=400 + i))
        out["timers"] = [await bench_timers(settings)]
        api = await bench_api(settings, districts[0])
        for name, figures in api.items():
            out[f"{name}_per_s"] = [figures["per_s"]]
            out[f"{name}_p99"] = [figures["p99_ms"]]
    finally:
        for d in districts:
            d.stop()
    for i in range(args.repeat):  # no service running: nothing publishes what it writes
        out["intake"].append(await bench_intake(settings, args.orders, seed=300 + i))
    for i in range(args.repeat):  # the configured 并案 radius, on orders that mostly merge
        out["intake_merging"].append(
            await bench_intake(settings, args.orders, 500 + i, settings.merge_radius_m)
        )
    return out


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    med = {k: statistics.median(v) for k, v in results.items()}
    ratio = med["loop"] / med["raw"]
    rows = [
        ("raw consume-upsert-produce loop", f"{med['raw']:,.0f} msg/s", ""),
        ("intake -> task (sustained)", f"{med['loop']:,.0f} orders/s", f"{ratio:.2f} x raw"),
        (
            "  the same, decisions precomputed",
            f"{med['floor']:,.0f} orders/s",
            f"{med['floor'] / med['raw']:.2f} x raw: the loop's I/O alone (its floor)",
        ),
        (
            "intake only (parse + transaction)",
            f"{med['intake']:,.0f} orders/s",
            "publishing excluded",
        ),
        (
            "  the same, 并案 on",
            f"{med['intake_merging']:,.0f} orders/s",
            "most generated orders join an open case (they cluster at the anchors)",
        ),
        (f"dispatch latency p50 @ {args.rate:.0f}/s", f"{med['p50']:.1f} ms", ""),
        (f"dispatch latency p99 @ {args.rate:.0f}/s", f"{med['p99']:.1f} ms", ""),
        (
            "  of which the broker, inbound only",
            f"{med['broker_p99']:.1f} ms",
            f"p99 (p50 {med['broker_p50']:.1f} ms) of the same orders' age at a plain consumer",
        ),
        ("deadline timers fired", f"{med['timers']:,.0f} tasks/s", "all open tasks due at once"),
        (
            "GET /api/v1/queues (16 clients)",
            f"{med['queues_per_s']:,.0f} req/s",
            f"p99 {med['queues_p99']:.1f} ms, 100,000 cases",
        ),
        (
            "GET /api/v1/cases/{no} (16 clients)",
            f"{med['case_detail_per_s']:,.0f} req/s",
            f"p99 {med['case_detail_p99']:.1f} ms",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"\nCityOps bench: {args.orders:,} orders, medians of {args.repeat} runs, "
        f"{os.cpu_count()} cores, broker and database on this machine"
    )
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>16}  {note}")
    OUT.mkdir(exist_ok=True)
    doc = {
        "at": datetime.now(UTC).isoformat(),
        "orders": args.orders,
        "rate": args.rate,
        "runs": results,
        "median": med,
        "ratio_to_raw": ratio,
    }
    (OUT / "bench.json").write_text(json.dumps(doc, indent=2))
    print(f"  written to {OUT / 'bench.json'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    asyncio.run(main())
