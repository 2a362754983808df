"""Operator-API benchmark: the queue view and case detail under concurrent load, with at least
100,000 cases in the database. `seed` fills the database; `load` (run as its own process by
bench.py, on loopback) drives one endpoint and prints requests/s and latency percentiles."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time

import aiohttp
import asyncpg

SEED_SQL = """
WITH units AS (SELECT array_agg(unit_code ORDER BY unit_code) AS u FROM units
               WHERE district_code = $1 AND tier <> 'district'),
     states AS (SELECT ARRAY['dispatched','accepted','in_progress','resolved','closed',
                             'closed','closed','triage'] AS s)
INSERT INTO cases (case_no, district_code, street_code, source, source_ref, state,
                   category_code, category_name, urgency, title, description, address,
                   received_at, opened_at, resolve_by, last_seq)
SELECT $1 || '-BENCH-' || g, $1, u[1 + g % array_length(u, 1)], 'hotline12345',
       'BENCH' || g, s[1 + g % 8], '0102', '暴露垃圾', 'normal', '基准测试', '基准测试工单',
       '静安区南京西路', now() - (g || ' seconds')::interval,
       now() - (g || ' seconds')::interval, now() + interval '2 days', 2
FROM generate_series(1, $2) AS g, units, states
"""
TASKS_SQL = """
INSERT INTO tasks (task_id, case_no, district_code, unit_code, role, state, dispatched_at,
                   accept_by, first_contact_by, resolve_by)
SELECT case_no || '-T1', case_no, district_code, street_code, 'lead',
       CASE state WHEN 'dispatched' THEN 'assigned' WHEN 'accepted' THEN 'accepted'
                  WHEN 'in_progress' THEN 'contacted' ELSE 'resolved' END,
       opened_at, opened_at + interval '1 hour', opened_at + interval '1 day', resolve_by
FROM cases WHERE source_ref LIKE 'BENCH%' AND state <> 'triage'
"""
RECOUNT_SQL = """
DELETE FROM case_counts WHERE district_code = $1;
INSERT INTO case_counts (district_code, unit_code, state, n)
SELECT c.district_code, coalesce(t.unit_code, 'unassigned'), c.state, count(*)
FROM cases c LEFT JOIN tasks t ON t.case_no = c.case_no AND t.role = 'lead'
     AND t.state IN ('assigned', 'accepted', 'contacted')
WHERE c.district_code = $1 AND c.state NOT IN ('closed', 'withdrawn', 'not_ours', 'rejected',
                                               'merged')
GROUP BY 1, 2, 3;
"""


async def seed(dsn: str, district: str, total: int) -> list[str]:
    """Add synthetic cases (with tasks) until the district has `total`; return case numbers."""
    conn = await asyncpg.connect(dsn)
    try:
        have = await conn.fetchval("SELECT count(*) FROM cases WHERE district_code = $1", district)
        if have < total:
            async with conn.transaction():
                await conn.execute(SEED_SQL, district, total - have)
                await conn.execute(TASKS_SQL)
                await conn.execute(RECOUNT_SQL.replace("$1", f"'{int(district)}'"))
            await conn.execute("ANALYZE cases; ANALYZE tasks; ANALYZE case_counts")
        rows = await conn.fetch(
            "SELECT case_no FROM cases WHERE district_code = $1 ORDER BY random() LIMIT 2000",
            district,
        )
        return [r["case_no"] for r in rows]
    finally:
        await conn.close()


async def load(
    url: str, token: str, paths: list[str], concurrency: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url + random.choice(paths), headers=headers) as r:
                await r.read()
                errors += r.status != 200
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


if __name__ == "__main__":
    # load URL TOKEN CONCURRENCY SECONDS PATH...
    url, token, concurrency, seconds, *paths = sys.argv[2:]
    print(json.dumps(asyncio.run(load(url, token, paths, int(concurrency), float(seconds)))))
