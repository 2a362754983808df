"""Open and overdue gauges, refreshed from the partial indexes of open cases and tasks."""

from __future__ import annotations

import asyncio

import asyncpg

from services.common.metrics import Metrics

OPEN_BY_UNIT_STATE = """
SELECT coalesce(t.unit_code, 'unassigned') AS unit, c.state, count(*) AS n
FROM cases c
LEFT JOIN tasks t ON t.case_no = c.case_no AND t.role = 'lead'
     AND t.state IN ('assigned', 'accepted', 'contacted')
WHERE c.district_code = $1
  AND c.state NOT IN ('closed', 'not_ours', 'withdrawn', 'merged', 'cancelled')
GROUP BY 1, 2
"""

OVERDUE_BY_UNIT = """
SELECT unit_code,
       count(*) FILTER (WHERE state = 'assigned' AND accept_by < now()) AS accept,
       count(*) FILTER (WHERE state IN ('assigned', 'accepted') AND first_contact_by < now())
           AS first_contact,
       count(*) FILTER (WHERE resolve_by < now()) AS resolve
FROM tasks
WHERE district_code = $1 AND state IN ('assigned', 'accepted', 'contacted')
GROUP BY unit_code
"""


async def refresh(pool: asyncpg.Pool, metrics: Metrics, district_code: str) -> None:
    async with pool.acquire() as conn:
        open_rows = await conn.fetch(OPEN_BY_UNIT_STATE, district_code)
        overdue_rows = await conn.fetch(OVERDUE_BY_UNIT, district_code)
    metrics.cases_open.clear()
    for r in open_rows:
        metrics.cases_open.labels(r["unit"], r["state"]).set(r["n"])
    metrics.cases_overdue.clear()
    for r in overdue_rows:
        for stage in ("accept", "first_contact", "resolve"):
            metrics.cases_overdue.labels(r["unit_code"], stage).set(r[stage])


async def keep_fresh(
    pool: asyncpg.Pool, metrics: Metrics, district_code: str, every_s: float = 5.0
) -> None:
    while True:
        await refresh(pool, metrics, district_code)
        await asyncio.sleep(every_s)
