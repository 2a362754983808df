"""The reference street platform's SQL (schema `street`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from contracts.tasks import Task

UPSERT_TASK = """
INSERT INTO street.tasks (task_id, case_no, unit_code, kind, role, state, deadlines, snapshot,
                          dispatched_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (task_id) DO UPDATE SET
    kind = EXCLUDED.kind,
    deadlines = EXCLUDED.deadlines,
    snapshot = EXCLUDED.snapshot,
    -- a withdrawn that acknowledges the desk's own return or escalation keeps its state;
    -- a return the district refused ($10 `return_refused`) is the desk's to work on again
    state = CASE WHEN EXCLUDED.kind = 'withdrawn'
                  AND street.tasks.state NOT IN ('returned', 'escalated') THEN 'withdrawn'
                 WHEN $10::text = 'return_refused' AND street.tasks.state = 'returned' THEN 'open'
                 ELSE street.tasks.state END,
    updated_at = now()
"""


async def upsert_tasks(conn: asyncpg.Connection, tasks: list[Task]) -> None:
    await conn.executemany(
        UPSERT_TASK,
        [
            (
                t.task_id,
                t.case_no,
                t.unit_code,
                t.kind.value,
                t.role.value,
                "withdrawn" if t.kind == "withdrawn" else "open",
                t.deadlines.model_dump(mode="json"),
                t.case.model_dump(mode="json"),
                t.dispatched_at,
                t.reason.value if t.reason else None,
            )
            for t in tasks
        ],
    )


async def list_tasks(
    conn: asyncpg.Connection,
    units: list[str],
    state: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT task_id, case_no, unit_code, kind, role, state, deadlines, snapshot,"
        " dispatched_at, updated_at FROM street.tasks"
        " WHERE unit_code = ANY($1::text[]) AND ($2::text IS NULL OR state = $2)"
        "   AND ($3::timestamptz IS NULL OR (dispatched_at, task_id) > ($3, $4))"
        " ORDER BY dispatched_at, task_id LIMIT $5",
        units,
        state,
        after[0] if after else None,
        after[1] if after else "",
        limit,
    )
    return [dict(r) for r in rows]


async def get_task(
    conn: asyncpg.Connection, task_id: str, lock: bool = False
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT task_id, case_no, unit_code, kind, role, state, deadlines, snapshot,"
        " dispatched_at, updated_at FROM street.tasks WHERE task_id = $1"
        + (" FOR UPDATE" if lock else ""),
        task_id,
    )
    return dict(row) if row else None


async def set_state(conn: asyncpg.Connection, task_id: str, state: str) -> None:
    await conn.execute(
        "UPDATE street.tasks SET state = $2, updated_at = now() WHERE task_id = $1", task_id, state
    )


async def desk_units(conn: asyncpg.Connection, district_code: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT unit_code FROM units WHERE district_code = $1 AND tier <> 'district'"
        " ORDER BY unit_code",
        district_code,
    )
    return [r["unit_code"] for r in rows]
