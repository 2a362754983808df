"""SQL of the console's screens (`console_api.py`): every open case's point in one compact
answer, the tasks nearest their next deadline, the extension requests awaiting a decision, and
the daily trend. Scoped by unit when asked:
a unit sees the cases it holds or held a task of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.district.cases.lifecycle import TERMINAL, CaseState

#: states whose cases are not on the map (terminal: nothing more will happen to them)
OFF_MAP = sorted(s.value for s in TERMINAL)
#: task states whose holder still owes a step (the stage it settles: `NEAREST_DUE`)
ACTIVE_TASK = ["assigned", "accepted", "contacted"]
#: states in which the resolve deadline does not run (as the queue's overdue search counts)
NOT_RUNNING = frozenset(s.value for s in (*TERMINAL, CaseState.PARKED, CaseState.RESOLVED))

_SCOPE = """($2::text IS NULL OR EXISTS (SELECT 1 FROM tasks t WHERE t.district_code = $1
                                         AND t.unit_code = $2 AND t.case_no = c.case_no))"""

POINTS = f"""
SELECT c.case_no, c.lon, c.lat, c.urgency, c.state, c.street_code, c.resolve_by, c.supervised,
       (SELECT t.unit_code FROM tasks t
         WHERE t.case_no = c.case_no AND t.role = 'lead'
           AND t.state IN ('assigned', 'accepted', 'contacted')
         ORDER BY t.dispatched_at DESC LIMIT 1) AS unit_code
  FROM cases c
 WHERE c.district_code = $1 AND {_SCOPE}
   AND ($3::text[] IS NULL AND c.state <> ALL($4::text[]) OR c.case_no = ANY($3::text[]))
"""

#: an accepted task owes its first contact, or (where none is owed) its resolution
NEAREST_DUE = """
SELECT t.task_id, t.case_no, t.unit_code, t.role, t.state, c.urgency, c.title, c.supervised,
       CASE t.state WHEN 'assigned' THEN 'accept'
                    WHEN 'accepted' THEN CASE WHEN t.first_contact_by IS NULL THEN 'resolve'
                                              ELSE 'first_contact' END
                    ELSE 'resolve' END AS stage,
       CASE t.state WHEN 'assigned' THEN t.accept_by
                    WHEN 'accepted' THEN coalesce(t.first_contact_by, t.resolve_by)
                    ELSE t.resolve_by END AS due_at
  FROM tasks t JOIN cases c ON c.case_no = t.case_no
 WHERE t.district_code = $1 AND ($2::text IS NULL OR t.unit_code = $2)
   AND t.state = ANY($3::text[])
 ORDER BY due_at, t.task_id
 LIMIT $4
"""

OVERDUE_TOTAL = """
SELECT count(*) FROM tasks t
 WHERE t.district_code = $1 AND ($2::text IS NULL OR t.unit_code = $2)
   AND t.state = ANY($3::text[])
   AND CASE t.state WHEN 'assigned' THEN t.accept_by
                    WHEN 'accepted' THEN coalesce(t.first_contact_by, t.resolve_by)
                    ELSE t.resolve_by END < $4
"""

#: extension requests (延期申请) the district has not decided yet: a lead or co-unit's latest
#: request for a task still active, with no approval or refusal for that task after it
EXTENSION_REQUESTS = """
SELECT * FROM (
  SELECT DISTINCT ON (e.data->>'task_id')
         e.case_no, e.data->>'task_id' AS task_id, e.unit_code, e.at AS requested_at,
         (e.data->>'requested_until')::timestamptz AS requested_until, e.data->>'note' AS note,
         c.title, c.urgency, t.resolve_by, t.extension_due AS decide_by
    FROM case_events e
    JOIN cases c ON c.case_no = e.case_no
    JOIN tasks t ON t.task_id = e.data->>'task_id'
                AND t.state IN ('assigned', 'accepted', 'contacted')
   WHERE e.district_code = $1 AND e.type = 'extension_requested'
     AND c.state <> ALL($3::text[]) AND ($2::text IS NULL OR t.unit_code = $2)
     AND NOT EXISTS (SELECT 1 FROM case_events d
                      WHERE d.case_no = e.case_no AND d.seq > e.seq
                        AND d.type IN ('extension_approved', 'extension_refused')
                        AND d.data->>'task_id' = e.data->>'task_id')
   ORDER BY e.data->>'task_id', e.seq DESC
) pending
ORDER BY requested_at, task_id
LIMIT $4
"""

TREND = f"""
WITH days AS (
  SELECT generate_series($3::date - ($4::int - 1), $3::date, interval '1 day')::date AS day
), opened AS (
  SELECT (c.opened_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS n
    FROM cases c
   WHERE c.district_code = $1 AND {_SCOPE}
     AND c.opened_at >= ($3::date - ($4::int - 1))::timestamp AT TIME ZONE 'Asia/Shanghai'
   GROUP BY 1
), closed AS (
  SELECT (c.closed_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS n,
         count(*) FILTER (WHERE c.closed_on_time) AS on_time
    FROM cases c
   WHERE c.district_code = $1 AND {_SCOPE} AND c.state = 'closed'
     AND c.closed_at >= ($3::date - ($4::int - 1))::timestamp AT TIME ZONE 'Asia/Shanghai'
   GROUP BY 1
)
SELECT d.day, coalesce(o.n, 0) AS opened, coalesce(k.n, 0) AS closed,
       coalesce(k.on_time, 0) AS closed_on_time
  FROM days d LEFT JOIN opened o USING (day) LEFT JOIN closed k USING (day)
 ORDER BY d.day
"""


async def points(
    conn: asyncpg.Connection, district: str, unit: str | None, cases: list[str] | None
) -> list[asyncpg.Record]:
    """Every open case (or just `cases`, whatever their state) with its point and status."""
    rows: list[asyncpg.Record] = await conn.fetch(POINTS, district, unit, cases, OFF_MAP)
    return rows


async def nearest_due(
    conn: asyncpg.Connection, district: str, unit: str | None, now: datetime, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The active tasks nearest their next deadline (overdue first), and how many are overdue."""
    states = ACTIVE_TASK
    rows = await conn.fetch(NEAREST_DUE, district, unit, states, limit)
    total = await conn.fetchval(OVERDUE_TOTAL, district, unit, states, now)
    items = [dict(r) for r in rows]
    return items, int(total or 0)


async def trend(
    conn: asyncpg.Connection, district: str, unit: str | None, today: Any, days: int
) -> list[dict[str, Any]]:
    """Cases opened, closed and closed on time per Shanghai day, the last `days` to `today`."""
    return [dict(r) for r in await conn.fetch(TREND, district, unit, today, days)]


async def extension_requests(
    conn: asyncpg.Connection, district: str, unit: str | None, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The extension requests waiting for the district's decision, oldest first, each with
    when the decision is due (the policy's extension_decision) and whether it is overdue."""
    rows = await conn.fetch(EXTENSION_REQUESTS, district, unit, OFF_MAP, limit)
    return [{**dict(r), "overdue": bool(r["decide_by"] and r["decide_by"] < now)} for r in rows]
