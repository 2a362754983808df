"""Each exception path's share (退单, 延期, 缓办, 作废): the ledger's decisions of a period
[from, to) over the tasks dispatched in it, by kind; refused requests are counted beside, not
in the share. Its SQL (over `exception_ledger` and `tasks`) and the share itself (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from services.district.cases.lifecycle import ExceptionDecision, ExceptionKind

#: $1 district, $2 from, $3 to, $4 one unit or NULL: the ledger's decisions by kind
LEDGER_COUNTS = """
SELECT kind, decision, count(*) AS n FROM exception_ledger
 WHERE district_code = $1 AND decided_at >= $2 AND decided_at < $3
   AND ($4::text IS NULL OR unit_code = $4)
 GROUP BY kind, decision
"""
#: $1 district, $2 from, $3 to, $4 one unit or NULL: the share's denominator
DISPATCHED = """
SELECT count(*) FROM tasks
 WHERE district_code = $1 AND dispatched_at >= $2 AND dispatched_at < $3
   AND ($4::text IS NULL OR unit_code = $4)
"""
#: $1 district, $2 from, $3 to, $4 one unit or NULL, $5 limit: the ledger, newest first
LEDGER = """
SELECT case_no, task_id, unit_code, kind, decision, approver, token_id, reason, decided_at,
       detail
  FROM exception_ledger
 WHERE district_code = $1 AND decided_at >= $2 AND decided_at < $3
   AND ($4::text IS NULL OR unit_code = $4)
 ORDER BY decided_at DESC, id DESC
 LIMIT $5
"""
#: decisions that grant the exception (an operator's approval, or a routing rule's)
GRANTED = frozenset({ExceptionDecision.APPROVED, ExceptionDecision.AUTO})


def shares(counts: Mapping[tuple[str, str], int], dispatched: int) -> list[dict[str, Any]]:
    """Per kind: granted (approved + auto), refused, and granted / tasks dispatched (None
    when nothing was dispatched)."""
    out = []
    for kind in ExceptionKind:
        granted = sum(counts.get((kind, d), 0) for d in GRANTED)
        refused = counts.get((kind, ExceptionDecision.REFUSED), 0)
        share = granted / dispatched if dispatched else None
        out.append({"kind": kind.value, "granted": granted, "refused": refused, "share": share})
    return out


async def gather(
    conn: asyncpg.Connection, district: str, start: datetime, end: datetime, unit: str | None
) -> dict[str, Any]:
    rows = await conn.fetch(LEDGER_COUNTS, district, start, end, unit)
    dispatched = await conn.fetchval(DISPATCHED, district, start, end, unit)
    counts = {(r["kind"], r["decision"]): r["n"] for r in rows}
    return {"dispatched": dispatched, "kinds": shares(counts, dispatched)}


async def ledger(
    conn: asyncpg.Connection,
    district: str,
    start: datetime,
    end: datetime,
    unit: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(LEDGER, district, start, end, unit, limit)
    return [dict(r) for r in rows]
