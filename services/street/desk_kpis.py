"""`GET /api/v1/desk/summary`: the desk's own figures per unit, from its tasks (schema
`street`): what waits now and what is overdue per stage, what came and went today and this
month (Shanghai days). The district's closed-loop KPIs stay `GET /api/v1/kpis` there."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from pydantic import BaseModel

from services.common.auth import principal
from services.common.openapi import Op
from services.street.keys import POOL, UNITS

SHANGHAI = ZoneInfo("Asia/Shanghai")
routes = web.RouteTableDef()

SUMMARY = """
SELECT unit_code,
  count(*) FILTER (WHERE state = 'open') AS waiting,
  count(*) FILTER (WHERE state IN ('accepted', 'contacted')) AS in_hand,
  count(*) FILTER (WHERE state = 'open' AND (deadlines->>'accept_by')::timestamptz < $2)
    AS overdue_accept,
  count(*) FILTER (WHERE state IN ('open', 'accepted')
                     AND (deadlines->>'first_contact_by')::timestamptz < $2) AS overdue_contact,
  count(*) FILTER (WHERE state IN ('open', 'accepted', 'contacted')
                     AND (deadlines->>'resolve_by')::timestamptz < $2) AS overdue_resolve,
  count(*) FILTER (WHERE dispatched_at >= $3) AS received_today,
  count(*) FILTER (WHERE state = 'resolved' AND updated_at >= $3) AS resolved_today,
  count(*) FILTER (WHERE dispatched_at >= $4) AS received_month,
  count(*) FILTER (WHERE state = 'resolved' AND updated_at >= $4) AS resolved_month,
  count(*) FILTER (WHERE state = 'returned' AND updated_at >= $4) AS returned_month,
  count(*) FILTER (WHERE state = 'escalated' AND updated_at >= $4) AS escalated_month
  FROM street.tasks
 WHERE unit_code = ANY($1::text[])
   AND (state IN ('open', 'accepted', 'contacted') OR updated_at >= $4 OR dispatched_at >= $4)
 GROUP BY unit_code ORDER BY unit_code
"""

NAMES = "SELECT unit_code, name FROM units WHERE unit_code = ANY($1::text[])"


class UnitFigures(BaseModel):
    unit_code: str
    name: str
    waiting: int
    in_hand: int
    overdue_accept: int
    overdue_contact: int
    overdue_resolve: int
    received_today: int
    resolved_today: int
    received_month: int
    resolved_month: int
    returned_month: int
    escalated_month: int


class DeskSummary(BaseModel):
    as_of: datetime
    units: list[UnitFigures]


class Me(BaseModel):
    role: str
    unit_code: str | None
    name: str
    token_id: str


def operations() -> list[Op]:
    """These routes in the street service's OpenAPI document."""
    return [
        Op("GET", "/api/v1/desk/summary", "the desk's figures per unit", DeskSummary),
        Op("GET", "/api/v1/me", "the caller's role and unit", Me, errors=(401,)),
        Op(
            "GET",
            "/api/v1/desk/events",
            "server-sent notices of the caller's tasks changing",
            stream="text/event-stream",
        ),
    ]


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    body = {"role": who.role.value, "unit_code": who.unit_code, "name": who.name}
    return web.json_response({**body, "token_id": who.token_id})


@routes.get("/api/v1/desk/summary")
async def desk_summary(request: web.Request) -> web.Response:
    who, served = principal(request), request.app[UNITS]
    units = [u for u in served if u == who.unit_code] if who.unit_scoped else served
    now = datetime.now(SHANGHAI)
    today = datetime.combine(now.date(), time(), SHANGHAI)
    month = today.replace(day=1)
    async with request.app[POOL].acquire() as conn:
        rows = await _summary(conn, units, now, today, month)
    body = {"as_of": now.isoformat(), "units": rows}
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def _summary(
    conn: asyncpg.Connection, units: list[str], now: datetime, today: datetime, month: datetime
) -> list[dict[str, Any]]:
    found = {r["unit_code"]: dict(r) for r in await conn.fetch(SUMMARY, units, now, today, month)}
    names = dict(await conn.fetch(NAMES, units))
    zero = {k: 0 for k in UnitFigures.model_fields if k not in ("unit_code", "name")}
    return [{**found.get(u, {"unit_code": u, **zero}), "name": names.get(u, u)} for u in units]
