"""The simulator's own SQL: the outbox rows it handed out, and the record it reads at the end."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

DELETE_SENT = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

TASKS = """
SELECT t.task_id, t.case_no, t.role, t.state, t.dispatched_at, t.accept_by,
       t.first_contact_by, t.resolve_by, t.accepted_at, t.contacted_at, t.resolved_at
FROM tasks t WHERE t.district_code = $1
"""

CASES = """
SELECT case_no, source, state, urgency FROM cases WHERE district_code = $1
"""


async def delete_sent(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute(DELETE_SENT, list(ids))


async def tasks(conn: asyncpg.Connection, district_code: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(TASKS, district_code))


async def cases(conn: asyncpg.Connection, district_code: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(CASES, district_code))
