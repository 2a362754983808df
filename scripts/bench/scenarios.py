"""The measurements: loop throughput and latency, the raw loop, the I/O floor, intake alone,
timers, the operator API, the console (`console.py`); `run_all` runs each `--repeat` times."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from bench import console, scale
from bench.harness import (
    District,
    Replay,
    TaskCounter,
    as_records,
    build_intake,
    dispatchable_orders,
    no_commit,
    publish,
)
from contracts import topics
from services.common import db
from services.common.config import Settings
from services.common.consumer import BatchConsumer, Lanes
from services.common.crypto import load_vault
from services.common.http import GC_THRESHOLD
from services.common.kafka import PARTITIONS, make_consumer, make_producer
from services.common.metrics import Metrics
from services.common.outbox import Publisher
from services.district.deadlines.policy_file import load_policy
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.routing import queries as routing_queries


async def bench_throughput(settings: Settings, n: int, seed: int) -> float:
    """Offer n orders at once; orders/s from the first publish until the n-th task is out."""
    orders = dispatchable_orders(n, seed)
    counter = TaskCounter(settings, {key for key, _ in orders})
    await counter.start()
    started = time.time()
    collector = asyncio.create_task(counter.count(n, timeout=600))
    await publish(settings.kafka_bootstrap, topics.WORKORDERS, orders)
    seen = await collector
    elapsed = counter.last - started  # until the n-th task's Kafka timestamp
    if seen != n:
        raise RuntimeError(f"only {seen} of {n} tasks dispatched")
    return n / elapsed


async def bench_timers(settings: Settings) -> float:
    """Deadline alarms processed per second: every open task's deadlines fall due at once
    (a clock 30 days ahead) and one timer worker fires them (events, urged tasks, outbox)."""
    from services.common import db
    from services.common.clock import FakeClock
    from services.district.deadlines.timers import TimerWorker

    pool = await db.create_pool(settings.database_url, 2)
    try:
        async with pool.acquire() as conn:
            ref = await routing_queries.load_reference(conn, settings.district_code)
            due = await conn.fetchval("SELECT count(*) FROM task_timers")
        policy = load_policy(settings.deadline_policy_path, ref.categories)
        desk = Decisions(Context(ref, policy.calendar(), policy, load_vault(settings), Metrics()))
        clock = FakeClock(datetime.now(UTC) + timedelta(days=30))
        worker = TimerWorker(pool, desk, lambda _: None, clock, settings.district_code)
        started, fired = time.perf_counter(), 0
        while n := await worker.fire_due():
            fired += n
        return fired / (time.perf_counter() - started) if fired else 0.0
    finally:
        await pool.close()
        _ = due


async def bench_intake(settings: Settings, n: int, seed: int, merge_radius_m: float = 0.0) -> float:
    """Intake alone: orders/s through the district consumer's parse + one-transaction-per-batch
    path (`Intake.handle` in the consumer's `Lanes`, on records built beforehand and handed over
    in fetch-sized batches, against the real database; duplicate merging off unless
    `merge_radius_m` is given), with publishing excluded (the outbox rows are removed
    afterwards, untimed)."""
    records = as_records(dispatchable_orders(n, seed))
    pool = await db.create_pool(settings.database_url, 2)
    try:
        written: list[int] = []
        intake = await build_intake(
            settings, pool, lambda pending: written.extend(pending.ids), merge_radius_m
        )
        gc.set_threshold(*GC_THRESHOLD)  # as the service runs (services/common/http.py)
        gc.freeze()
        size = settings.batch_max_records
        lanes = Lanes(intake, settings.intake_lanes, no_commit, max_records=size)
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
    intake = await build_intake(settings, pool, publisher.submit)
    replay = Replay.decide(intake, orders, first_no=8_000_000 + (seed % 10) * 100_000)
    group = f"floor-{uuid.uuid4().hex[:6]}"
    consumer = BatchConsumer(
        lambda: make_consumer(settings, group, src),
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
            str(Path(__file__).parents[1] / "bench_api.py"),
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


async def run_all(
    settings: Settings, args: argparse.Namespace
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Each measurement `--repeat` times, alternating raw and loop so both see the same box;
    with the rows skipped, and why (`--only ROW`: that row alone).

    The console comes first, on a database holding its 10,000 open cases and little else (the
    other rows open tens of thousands more).

    The embedded broker keeps every message in memory and its fetches slow down with what it
    holds (scripts/broker_probe.py: a plain produce-consume at 500/s gives p99 13, 19, 24,
    48 ms in four consecutive 10 s runs), which Kafka's do not: with both embedded, each
    latency run, each round of raw, loop and floor, each process count and the day get a
    broker and database of their own (`args.fresh`), with district processes of their own.
    Each latency run also measures the broker's own share for the same orders (`broker_p50`,
    `broker_p99`)."""
    out: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    districts = [District(settings, hotspots=i == 0) for i in range(args.instances)]
    try:
        for d in districts:
            await d.wait_ready()
        if args.only in (None, "console"):
            if why := console.unavailable():
                skipped["console"] = why
            else:
                out.update(await console.bench_console(settings, districts[0], args.repeat))
        if args.only in (None, "latency"):
            await _latency(settings, args, out, districts)
        if args.only in (None, "loop"):
            await _loop(settings, args, out, districts)
    finally:
        for d in districts:
            d.stop()
    if args.only in (None, "day"):  # once by default: it is the longest row
        for i in range(args.repeat if args.only else 1):
            async with _fresh(settings, args) as s:
                seconds, missing = await scale.bench_day(s, args.day, seed=600 + i)
            _add(out, "day_s", seconds)
            _add(out, "day_missing", missing)
    if args.only in (None, "instances"):
        await _instances(settings, args, out)
    if args.only in (None, "loop"):
        await _intake(settings, args, out)
    return out, skipped


def _add(out: dict[str, list[float]], name: str, value: float) -> None:
    out.setdefault(name, []).append(value)


async def _latency(
    settings: Settings,
    args: argparse.Namespace,
    out: dict[str, list[float]],
    districts: list[District],
) -> None:
    """Each run on a fresh broker and database with a district of its own when the bench
    started them (`args.fresh`), else on the configured ones and the running district."""
    for i in range(args.repeat):
        async with _fresh(settings, args) as s, _serving(s, args, districts):
            figures = await scale.bench_latency(s, args.rate, args.seconds, 200 + i)
        p50, p99, b50, b99 = figures
        for name, value in (("p50", p50), ("p99", p99), ("broker_p50", b50), ("broker_p99", b99)):
            _add(out, name, value * 1000)


async def _loop(
    settings: Settings,
    args: argparse.Namespace,
    out: dict[str, list[float]],
    districts: list[District],
) -> None:
    """Raw, loop and floor alternating, each round on a broker and database of its own when
    the bench started them (`args.fresh`), the raw loop before the round's services start
    (the ceiling, on a box that runs nothing else); the first loop run also counts what an
    order costs, the last round's tasks serve the timers row."""
    for i in range(args.repeat):
        async with _fresh(settings, args) as s:
            _add(out, "raw", await bench_raw(s, args.orders, seed=100 + i))
            async with _serving(s, args, districts) as ds:
                await _round(s, args, out, ds, i)
    api = await bench_api(settings, districts[0])
    for name, figures in api.items():
        out[f"{name}_per_s"] = [figures["per_s"]]
        out[f"{name}_p99"] = [figures["p99_ms"]]


async def _round(
    s: Settings, args: argparse.Namespace, out: dict[str, list[float]], ds: list[District], i: int
) -> None:
    """Round `i` with its districts `ds`: the loop, what an order costs (the first round), the
    floor, the timers (the last round)."""
    footprint = scale.Footprint(s, ds)
    await footprint.start()
    _add(out, "loop", await bench_throughput(s, args.orders, seed=i))
    if i == 0:
        for name, value in (await footprint.stop(args.orders, _outbox_empty(s))).items():
            _add(out, name, value)
    _add(out, "floor", await bench_floor(s, args.orders, seed=400 + i))
    if i == args.repeat - 1:
        out["timers"] = [await bench_timers(s)]


@contextlib.asynccontextmanager
async def _fresh(settings: Settings, args: argparse.Namespace) -> AsyncIterator[Settings]:
    """A fresh broker and database (`args.fresh`), else the configured ones."""
    if args.fresh is None:
        yield settings
        return
    async with args.fresh() as fresh:
        yield fresh


@contextlib.asynccontextmanager
async def _serving(
    settings: Settings, args: argparse.Namespace, districts: list[District]
) -> AsyncIterator[list[District]]:
    """On a fresh broker and database (`args.fresh`), a district process of their own;
    else the running districts."""
    if args.fresh is None:
        yield districts
        return
    async with scale.running_districts(settings, 1) as fresh:
        yield fresh


def _outbox_empty(settings: Settings) -> Callable[[], Awaitable[bool]]:
    async def empty() -> bool:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return bool(await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM outbox)"))
        finally:
            await conn.close()

    return empty


async def _instances(
    settings: Settings, args: argparse.Namespace, out: dict[str, list[float]]
) -> None:
    """The same orders through one district process, then two (one consumer group)."""
    for i in range(args.repeat):
        for k, name in ((1, "one_process"), (2, "two_processes")):
            async with _fresh(settings, args) as s, scale.running_districts(s, k):
                _add(out, name, await bench_throughput(s, args.orders, 700 + 10 * i + k))


async def _intake(
    settings: Settings, args: argparse.Namespace, out: dict[str, list[float]]
) -> None:
    for i in range(args.repeat):  # no service running: nothing publishes what it writes
        _add(out, "intake", await bench_intake(settings, args.orders, seed=300 + i))
    for i in range(args.repeat):  # the configured 并案 radius, on orders that mostly merge
        _add(
            out,
            "intake_merging",
            await bench_intake(settings, args.orders, 500 + i, settings.merge_radius_m),
        )
