"""Open and overdue gauges: exact counters kept by the writers, and index range scans over
the open tasks' deadlines; no scan of the case table. And the outbox's backlog."""

from __future__ import annotations

import asyncio

import asyncpg

from services.common.clock import Clock
from services.common.metrics import Metrics
from services.district.queues.queries import OVERDUE_NOW, OverdueCache

OPEN_BY_UNIT_STATE = """
SELECT unit_code AS unit, state, n FROM case_counts WHERE district_code = $1 AND n <> 0
"""

#: rows the publisher should have sent long ago (it sends right after commit; the sweeper
#: catches up within seconds): a backlog means Kafka or the publisher is stuck
OUTBOX_BACKLOG = (  # messages, not rows (a row holds a transaction's messages of one shard)
    "SELECT coalesce(sum(cardinality(topics)), 0) FROM outbox"
    " WHERE created_at < now() - interval '5 seconds'"
)


async def refresh(
    pool: asyncpg.Pool,
    metrics: Metrics,
    district_code: str,
    overdue: OverdueCache | None = None,
    clock: Clock | None = None,
) -> None:
    """Reread the gauges; with `overdue`, share the queue view's overdue counts (one
    computation per few seconds for both)."""
    async with pool.acquire() as conn:
        open_rows = await conn.fetch(OPEN_BY_UNIT_STATE, district_code)
        if overdue is not None:
            now = (clock or Clock()).now()
            overdue_rows = await overdue.rows(conn, district_code, now)
        else:
            overdue_rows = await conn.fetch(OVERDUE_NOW, district_code)
        metrics.outbox_backlog.set(await conn.fetchval(OUTBOX_BACKLOG))
    metrics.cases_open.clear()
    for r in open_rows:
        metrics.cases_open.labels(r["unit"], r["state"]).set(r["n"])
    metrics.cases_overdue.clear()
    for r in overdue_rows:
        metrics.cases_overdue.labels(r["unit_code"], r["stage"]).set(r["n"])


async def keep_fresh(
    pool: asyncpg.Pool,
    metrics: Metrics,
    district_code: str,
    every_s: float = 5.0,
    overdue: OverdueCache | None = None,
    clock: Clock | None = None,
) -> None:
    while True:
        await refresh(pool, metrics, district_code, overdue, clock)
        await asyncio.sleep(every_s)
