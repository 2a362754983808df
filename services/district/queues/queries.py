"""SQL of the district's queues and case search (the operator API), scoped by unit when asked."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from contracts.tasks import TaskRole
from services.common.sql import literals
from services.district.cases.lifecycle import (
    ACTIVE_TASK,
    AT_DISTRICT,
    TERMINAL,
    WORKING,
    CaseState,
    Event,
    TaskState,
)
from services.district.deadlines.waits import DistrictStage

#: states in which a case is not waiting on anyone's deadline
NOT_RUNNING = TERMINAL | {CaseState.PARKED, CaseState.RESOLVED}

OPEN_COUNTS = """
SELECT unit_code, state, n FROM case_counts
 WHERE district_code = $1 AND n <> 0 AND ($2::text IS NULL OR unit_code = $2)
 ORDER BY unit_code, state
"""


def _overdue(now: str) -> str:
    """Open tasks past each stage's deadline, per unit ($1 district), then the district's own
    decisions past theirs, under its centre. The task states are constants (from the enum) so
    that the partial indexes tasks_*_due serve each part."""
    return f"""
  SELECT 'accept' AS stage, unit_code, count(*) AS n FROM tasks
   WHERE district_code = $1 AND state = {literals({TaskState.ASSIGNED})} AND accept_by < {now}
   GROUP BY unit_code
  UNION ALL
  SELECT 'first_contact', unit_code, count(*) FROM tasks
   WHERE district_code = $1 AND state IN ({literals({TaskState.ASSIGNED, TaskState.ACCEPTED})})
     AND first_contact_by < {now} GROUP BY unit_code
  UNION ALL
  SELECT 'resolve', unit_code, count(*) FROM tasks
   WHERE district_code = $1 AND state IN ({literals(ACTIVE_TASK)}) AND resolve_by < {now}
   GROUP BY unit_code
  UNION ALL
  SELECT waiting_stage, ({_CENTER}), count(*) FROM cases
   WHERE district_code = $1 AND waiting_due < {now} GROUP BY waiting_stage
  UNION ALL
  SELECT {literals({DistrictStage.EXTENSION_DECISION})}, ({_CENTER}), count(*) FROM tasks
   WHERE district_code = $1 AND state IN ({literals(ACTIVE_TASK)}) AND extension_due < {now}
  HAVING count(*) > 0
"""


#: the district's centre, which the district's own stages count against
_CENTER = f"""
SELECT unit_code FROM units WHERE district_code = $1 AND tier = {literals(["district"])}"""

#: $1 district, $2 one unit or NULL (then: its extension requests only), $3 the active task
#: states, $4 limit, $5 the extension stage: the decisions the district owes, nearest due first
#: (each part read in due order from its index, cases_waiting_due and tasks_extension_due)
WAITING = """
SELECT * FROM (
  (SELECT c.case_no, NULL::text AS task_id, NULL::text AS unit_code, c.waiting_stage AS stage,
          c.title, c.urgency, c.waiting_since AS since, c.waiting_due AS due_at
     FROM cases c
    WHERE c.district_code = $1 AND c.waiting_due IS NOT NULL AND $2::text IS NULL
    ORDER BY c.waiting_due LIMIT $4)
  UNION ALL
  (SELECT t.case_no, t.task_id, t.unit_code, $5, c.title, c.urgency, t.extension_requested_at,
          t.extension_due
     FROM tasks t JOIN cases c ON c.case_no = t.case_no
    WHERE t.district_code = $1 AND t.extension_due IS NOT NULL AND t.state = ANY($3::text[])
      AND ($2::text IS NULL OR t.unit_code = $2)
    ORDER BY t.extension_due LIMIT $4)
) w
ORDER BY due_at, case_no, task_id
LIMIT $4
"""


#: $1 district, $2 one unit or NULL, $3 the terminal states: open cases that missed the
#: municipal due time (index cases_municipal_missed), by the unit holding them
MUNICIPAL_MISSED = """
SELECT count(*) FROM cases c
 WHERE c.district_code = $1 AND c.municipal_missed_at IS NOT NULL AND c.state <> ALL($3::text[])
   AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM tasks t WHERE t.case_no = c.case_no
                                       AND t.unit_code = $2))
"""

#: $1 district, $2 now, $3 one unit or NULL
OVERDUE = f"""
SELECT unit_code, stage, n FROM ({_overdue("$2")}) o WHERE $3::text IS NULL OR unit_code = $3
ORDER BY unit_code, stage
"""
#: $1 district, at the database's clock (the gauges without the queue view's cache)
OVERDUE_NOW = _overdue("now()")

SEARCH = """
SELECT c.case_no, c.source, c.source_ref, c.state, c.category_code, c.category_name, c.urgency,
       c.title, c.address, c.street_code, c.opened_at, c.resolve_by, c.closed_at, c.supervised,
       (SELECT t.unit_code FROM tasks t
         WHERE t.case_no = c.case_no AND t.role = $16 AND t.state = ANY($17::text[])
         ORDER BY t.dispatched_at DESC LIMIT 1) AS unit_code
  FROM cases c
 WHERE c.district_code = $1
   AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM tasks t WHERE t.district_code = $1
                                       AND t.unit_code = $2 AND t.case_no = c.case_no))
   AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM tasks t WHERE t.district_code = $1
                                       AND t.unit_code = $3 AND t.case_no = c.case_no))
   AND ($4::text IS NULL OR c.street_code = $4)
   AND ($5::text IS NULL OR c.state = $5)
   AND ($6::text IS NULL OR c.category_code = $6)
   AND ($7::text IS NULL OR c.source = $7)
   AND ($8::bool IS NULL OR coalesce(c.resolve_by < $9 AND c.state <> ALL($18::text[]), false)
                            = $8)
   AND ($10::bool IS NULL OR c.supervised = $10)
   AND ($11::timestamptz IS NULL OR c.opened_at >= $11)
   AND ($12::timestamptz IS NULL OR c.opened_at < $12)
   AND ($13::timestamptz IS NULL OR (c.opened_at, c.case_no) < ($13, $14))
 ORDER BY c.opened_at DESC, c.case_no DESC
 LIMIT $15
"""


@dataclass(frozen=True)
class Search:
    scope_unit: str | None
    unit: str | None = None
    street: str | None = None
    state: str | None = None
    category: str | None = None
    source: str | None = None
    overdue: bool | None = None
    supervised: bool | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 50


async def search(
    conn: asyncpg.Connection, district: str, s: Search, now: datetime
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        SEARCH,
        district,
        s.scope_unit,
        s.unit,
        s.street,
        s.state,
        s.category,
        s.source,
        s.overdue,
        now,
        s.supervised,
        s.opened_from,
        s.opened_to,
        s.after[0] if s.after else None,
        s.after[1] if s.after else "",
        s.limit,
        TaskRole.LEAD,
        sorted(ACTIVE_TASK),
        sorted(NOT_RUNNING),
    )
    return [dict(r) for r in rows]


class OverdueCache:
    """Overdue counts per unit and stage for the whole district, recomputed at most every
    `ttl` seconds by one query at a time. Readers never wait for a refresh once there is a
    value: they get the last one (at most `ttl` plus one query old) while it is renewed."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._rows: list[dict[str, Any]] | None = None
        self._at: datetime | None = None
        self._lock = asyncio.Lock()

    async def rows(
        self, conn: asyncpg.Connection, district: str, now: datetime
    ) -> list[dict[str, Any]]:
        if self._rows is not None and (self._fresh(now) or self._lock.locked()):
            return self._rows  # fresh, or being renewed by another request right now
        async with self._lock:
            if self._rows is None or not self._fresh(now):
                self._rows = [dict(r) for r in await conn.fetch(OVERDUE, district, now, None)]
                self._at = now
            return self._rows

    def _fresh(self, now: datetime) -> bool:
        return self._at is not None and 0 <= (now - self._at).total_seconds() < self.ttl


async def queues(
    conn: asyncpg.Connection,
    district: str,
    unit: str | None,
    now: datetime,
    overdue_cache: OverdueCache | None = None,
) -> dict[str, Any]:
    open_rows = [dict(r) for r in await conn.fetch(OPEN_COUNTS, district, unit)]
    cache = overdue_cache or OverdueCache(ttl=0)
    overdue = [
        r for r in await cache.rows(conn, district, now) if unit is None or r["unit_code"] == unit
    ]
    at_district = sum(r["n"] for r in open_rows if r["state"] in AT_DISTRICT)
    missed = await conn.fetchval(MUNICIPAL_MISSED, district, unit, sorted(TERMINAL))
    return {
        "open": open_rows,
        "overdue": overdue,
        "waiting": await waiting(conn, district, unit, now),
        "waiting_for_triage": at_district,
        "municipal_due_missed": missed,
        "decisions": await pending_decisions(conn, district, unit),
        "as_of": now,
    }


async def waiting(
    conn: asyncpg.Connection, district: str, unit: str | None, now: datetime, limit: int = 200
) -> list[dict[str, Any]]:
    """The district's pending decisions with when each is due and whether it is overdue."""
    stage = DistrictStage.EXTENSION_DECISION.value
    rows = await conn.fetch(WAITING, district, unit, sorted(ACTIVE_TASK), limit, stage)
    return [{**dict(r), "overdue": r["due_at"] < now} for r in rows]


async def unit_held(conn: asyncpg.Connection, district: str, case_no: str, unit: str) -> bool:
    """Whether the unit holds or held a task of the case."""
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE district_code = $1 AND unit_code = $2"
        " AND case_no = $3)",
        district,
        unit,
        case_no,
    )
    return bool(found)


_RETURNED = literals({TaskState.RETURNED})  # the task state and the case state
#: $1 district, $2 one unit or NULL, $3 the working case states, $4 the `returned` event: the
#: returns waiting for the district's decision. A lead's: its case is `returned` (the latest
#: lead task); a co-unit's ("replace co-unit"): its task handed back while the case is worked
#: on. States and roles are constants, so that a generic plan finds the few returned cases in
#: cases_open and tasks_co_returned instead of filtering every open case of the district.
PENDING_DECISIONS = f"""
SELECT kind, case_no, task_id, unit_code, return_reason,
       (SELECT max(e.at) FROM case_events e WHERE e.case_no = p.case_no AND e.type = $4
           AND e.data->>'task_id' = p.task_id) AS since
  FROM (
    SELECT 'return' AS kind, t.case_no, t.task_id, t.unit_code, t.return_reason
      FROM cases c
      JOIN LATERAL (SELECT * FROM tasks t
                     WHERE t.case_no = c.case_no AND t.role = {literals({TaskRole.LEAD})}
                     ORDER BY t.dispatched_at DESC, t.task_id DESC LIMIT 1) t ON true
     WHERE c.district_code = $1 AND c.state = {_RETURNED} AND t.state = {_RETURNED}
    UNION ALL
    SELECT 'replace_co_unit', t.case_no, t.task_id, t.unit_code, t.return_reason
      FROM tasks t JOIN cases c ON c.case_no = t.case_no
     WHERE t.district_code = $1 AND t.role = {literals({TaskRole.CO})}
       AND t.state = {_RETURNED} AND c.state = ANY($3::text[])
  ) p
 WHERE $2::text IS NULL OR p.unit_code = $2
 ORDER BY since NULLS LAST, task_id
 LIMIT 500
"""


async def pending_decisions(
    conn: asyncpg.Connection, district: str, unit: str | None
) -> list[dict[str, Any]]:
    """What waits on the district's decision besides triage: returns (退单) and co-units to
    replace, oldest first."""
    rows = await conn.fetch(PENDING_DECISIONS, district, unit, sorted(WORKING), Event.RETURNED)
    return [dict(r) for r in rows]
