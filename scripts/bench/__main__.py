"""CityOps benchmarks: intake->task throughput and dispatch latency beside the raw loop.

Runs on the embedded broker and database (or CITYOPS_KAFKA_BOOTSTRAP / CITYOPS_DATABASE_URL),
the district service as its own process, exactly as `make run` starts it. Prints a table and
writes bench-results/bench.json. `--orders N` (default 20,000) for the throughput rows and the
two processes against one; `--rate R` (default 1,000/s) for `--seconds S` (default 20) for the
latency; `--day N` (default 100,000) orders offered at once; `--only ROW`: that row alone
(console, latency, loop, day, instances; the day runs once unless it runs alone).
Run as `PYTHONPATH=scripts python -m bench` (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from bench.report import report
from bench.scenarios import run_all
from services.common.config import Settings
from services.devstack import EmbeddedKafka, EmbeddedPostgres
from services.ops.bootstrap import bootstrap


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="latency: orders/s offered")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: for how long")
    parser.add_argument("--day", type=int, default=100_000, help="the day's orders")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instances", type=int, default=1, help="district processes")
    parser.add_argument(
        "--only", choices=["console", "latency", "loop", "day", "instances"], help="these rows"
    )
    args = parser.parse_args()
    base = Settings()
    cleanup: list[Callable[[], None]] = []
    stack: list[Any] = []
    pg: EmbeddedPostgres | None = None
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
        # with both embedded, each latency run gets a broker and database of its own
        args.fresh = functools.partial(fresh_stack, pg, settings) if embedded and pg else None
        results, skipped = await run_all(settings, args)
    finally:
        for dep in reversed(stack):
            dep.stop()
        for fn in cleanup:
            fn()
    report(results, skipped, args)


@contextlib.asynccontextmanager
async def fresh_stack(pg: EmbeddedPostgres, base: Settings) -> AsyncIterator[Settings]:
    """A new database on the bench's PostgreSQL and a new embedded broker, bootstrapped, on a
    quiet cluster: the previous stage's database is dropped when it ends (no autovacuum of
    its rows in this one) and a checkpoint is taken before this one starts (none of its
    writes flushed during it; three raw loops in a row, each after a loop stage, gave 14,974,
    6,476 and 5,276 msg/s without). The embedded broker keeps every message in memory and
    its fetches slow down with what it holds (scripts/broker_probe.py), which Kafka's indexed
    logs do not."""
    broker = EmbeddedKafka()
    name = f"bench_{uuid.uuid4().hex[:6]}"
    try:
        dsn = await pg.create_database(name)
        settings = replace(
            base, database_url=dsn, kafka_bootstrap=broker.bootstrap, group_prefix=name
        )
        await bootstrap(settings)
        await _admin(pg, "CHECKPOINT")
        yield settings
    finally:
        broker.stop()
        await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(pg: EmbeddedPostgres, statement: str) -> None:
    conn = await asyncpg.connect(pg.admin_dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
