"""SIGKILL the district service mid-load, restart it: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from contracts import topics
from services.common.config import Settings
from services.devstack import free_port
from tests.support import Topics, lagging_partitions, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from feedgen import FeedGenerator

ORDERS = 3000


def start_district(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CITYOPS_DATABASE_URL": settings.database_url,
        "CITYOPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CITYOPS_DISTRICT_PORT": str(free_port()),
        "CITYOPS_FETCH_MAX_WAIT_MS": "10",
        "CITYOPS_SESSION_TIMEOUT_MS": "2000",
        "CITYOPS_GROUP_PREFIX": settings.group_prefix,
        "CITYOPS_PHONE_KEY_FILE": settings.phone_key_file,
        "CITYOPS_BATCH_MAX_RECORDS": "200",
        "CITYOPS_MERGE_RADIUS_M": "0",  # one case per order: generated orders cluster
        "CITYOPS_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "district"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_sigkill_mid_batch_then_restart_gives_exactly_one_case_per_order(
    settings: Settings,
) -> None:
    gen, now = FeedGenerator(7, prefix="777"), datetime.now(UTC)
    orders = [gen.work_order(now) for _ in range(ORDERS)]
    conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
    proc = start_district(settings)
    try:
        async with Topics(settings) as t:
            await t.publish_all(
                topics.WORKORDERS, [(o["order_no"], json.dumps(o).encode()) for o in orders]
            )

            async def some_cases() -> bool:
                return await conn.fetchval("SELECT count(*) FROM cases") > 300

            await wait_until(some_cases, "the first batches applied", timeout=60)
            proc.send_signal(signal.SIGKILL)  # mid-load: batches in flight, offsets uncommitted
            proc.wait(10)
            partial = await conn.fetchval("SELECT count(*) FROM cases")
            assert partial < ORDERS, "killed too late to prove anything"
            proc = start_district(settings)

            async def all_cases() -> bool:
                return await conn.fetchval("SELECT count(*) FROM cases") >= ORDERS

            await wait_until(all_cases, "every order applied after the restart", timeout=120)
            group = f"{settings.group_prefix}-district"

            async def all_committed() -> bool:  # nothing left to redeliver, even after a crash
                return not await lagging_partitions(t.bootstrap, group, [topics.WORKORDERS])

            await wait_until(all_committed, "every order's offset committed", timeout=30)
            rows = await conn.fetch(
                "SELECT source_ref, count(*) AS n FROM cases"
                " GROUP BY source_ref HAVING count(*) > 1"
            )
            assert rows == [], f"duplicated cases: {rows[:5]}"
            assert await conn.fetchval("SELECT count(*) FROM cases") == ORDERS
            refs = await conn.fetchval("SELECT count(DISTINCT source_ref) FROM cases")
            assert refs == ORDERS

            dispatched = await conn.fetchval("SELECT count(*) FROM tasks")

            async def tasks_published() -> bool:
                published = {
                    m["task_id"]
                    for unit in await _units(conn)
                    for m in await t.read(topics.task_topic(unit))
                }
                return len(published) == dispatched

            await wait_until(
                tasks_published, "every dispatched task on its unit's topic", timeout=60
            )
    finally:
        proc.kill()
        proc.wait(10)
        await conn.close()


async def _units(conn: asyncpg.Connection) -> list[str]:
    return [r["unit_code"] for r in await conn.fetch("SELECT DISTINCT unit_code FROM tasks")]
