"""The KPI reads on a year of record: a day's figures come from range scans over the period
indexes of deploy/migrations/015_kpi_indexes.sql and 043_kpi_record.sql, not from scanning the
record."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from services.common.config import Settings
from services.district.kpis.queries import (
    CASE_KEYS,
    DUE_TO_CLOSE,
    EVENT_KEYS,
    EVENTS,
    REPORT_KEYS,
    ROAD_CHIEF_REPORTS,
    TASK_KEYS,
    TASKS_DISPATCHED,
)

AS_OF = datetime.fromisoformat("2026-12-04T12:00:00+08:00")

#: a year of synthetic history, so the planner sees tables the size of a district's record
HISTORY = """
INSERT INTO cases (case_no, district_code, source, source_ref, state, category_code,
                   category_name, urgency, title, description, address, received_at, opened_at,
                   resolve_by, due_by, resolved_at, closed_at, closed_on_time, last_seq)
SELECT 'H-' || n, '310106',
       CASE WHEN n % 10 = 0 THEN 'roadchief' ELSE 'hotline12345' END, 'H-' || n,
       'closed', '0301', '施工扰民', 'normal', '', '', '', t, t, t + interval '5 days',
       t + interval '5 days', t + interval '2 days', t + interval '3 days', true, 6
FROM generate_series(1, 20000) AS n, LATERAL (SELECT $1 - n * interval '26 minutes' AS t) x;
INSERT INTO tasks (task_id, case_no, district_code, unit_code, role, state, dispatched_at,
                   accept_by, first_contact_by, resolve_by, accepted_at, contacted_at, resolved_at)
SELECT case_no || '-T1', case_no, district_code, '310106-JSGL', 'lead', 'resolved', opened_at,
       opened_at + interval '1 hour', opened_at + interval '1 day', resolve_by,
       opened_at + interval '10 minutes', opened_at + interval '1 hour', resolved_at
FROM cases WHERE case_no LIKE 'H-%';
INSERT INTO case_events (case_no, seq, event_id, district_code, type, at, actor, from_state,
                         to_state, data)
SELECT c.case_no, e.seq, c.case_no || ':' || e.seq, c.district_code, e.type,
       c.opened_at + e.seq * interval '1 hour', 'x', e.from_state, e.to_state, '{}'
FROM cases c, (VALUES (1, 'opened', NULL, 'received'), (2, 'dispatched', 'received', 'dispatched'),
                      (3, 'accepted', 'dispatched', 'accepted'),
                      (4, 'resolved', 'accepted', 'resolved'),
                      (5, 'followed_up', 'resolved', 'resolved'),
                      (6, 'closed', 'resolved', 'closed')) AS e(seq, type, from_state, to_state)
WHERE c.case_no LIKE 'H-%';
ANALYZE cases; ANALYZE tasks; ANALYZE case_events;
"""


async def test_a_days_kpis_read_only_that_day(settings: Settings) -> None:
    """Over a year of record, a day's KPIs are range scans (015, 043) and index
    lookups, never a scan of tasks or case_events (joining the day's rows to their cases by
    number is the planner's choice: probes, or a hash of a small case table)."""
    day = ("310106", AS_OF - timedelta(days=1), AS_OF)
    reads = {
        ("cases_closed_at", "cases_due_by"): (DUE_TO_CLOSE, CASE_KEYS, (*day, AS_OF), "$5"),
        ("tasks_dispatched_at",): (TASKS_DISPATCHED, TASK_KEYS, (*day, AS_OF), "$5"),
        ("case_events_kpi",): (EVENTS, EVENT_KEYS, day, "$4"),
        ("cases_roadchief_opened",): (ROAD_CHIEF_REPORTS, REPORT_KEYS, day, "$4"),
    }
    conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(HISTORY.replace("$1", f"'{AS_OF.isoformat()}'::timestamptz"))
        for indexes, (sql, keys, args, scope) in reads.items():
            # the district's view, and a unit token's (its own unit's rows only)
            for unit, unit_arg in (("NULL::text", None), (keys["unit"], "310106-JSGL")):
                for key in ("c.source", CASE_KEYS["unit"]):
                    text = sql.format(key=key, unit=unit, scope=scope)
                    rows = await conn.fetch("EXPLAIN " + text, *args, unit_arg)
                    plan = "\n".join(r[0] for r in rows)
                    assert all(index in plan for index in indexes), plan
                    assert "Seq Scan on tasks" not in plan, plan
                    assert "Seq Scan on case_events" not in plan, plan
    finally:
        await conn.close()
