"""`GET /api/v1/kpis?by=unit|street|category|source&from=YYYY-MM-DD&to=YYYY-MM-DD`: the
closed-loop KPIs of a period [from, to), each with its numerator and denominator. A unit
token sees its own unit's figures (grouped as asked) and the district's totals, no other
unit's rows. `GET /api/v1/kpis/exceptions` (each exception path's share) and
`GET /api/v1/exceptions` (the exception ledger) take the same period, scoped the same way."""

from __future__ import annotations

import functools
import json
from datetime import datetime

from aiohttp import web

from services.common.auth import principal
from services.district.keys import CLOCK, POOL, SETTINGS
from services.district.kpis import exceptions as exception_queries
from services.district.kpis import queries as kpi_queries
from services.district.kpis.formulas import total
from services.district.kpis.report import BadPeriod, parse_period, to_json

routes = web.RouteTableDef()
_dumps = functools.partial(json.dumps, ensure_ascii=False)


@routes.get("/api/v1/kpis")
async def get_kpis(request: web.Request) -> web.Response:
    q = request.query
    by = q.get("by", "unit")
    if by not in kpi_queries.DIMENSIONS:
        return _error("bad_query", f"by must be one of {', '.join(kpi_queries.DIMENSIONS)}")
    if "from" not in q or "to" not in q:
        return _error("bad_query", "from and to are required (YYYY-MM-DD)")
    try:
        start, end = parse_period(q["from"], q["to"])
    except BadPeriod as exc:
        return _error("bad_period", str(exc))
    district, as_of = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    who = principal(request)
    unit = who.unit_code if who.unit_scoped else None
    async with request.app[POOL].acquire() as conn:
        result = await kpi_queries.gather(conn, district, by, start, end, as_of, unit)
        whole = None
        if unit is not None:  # a unit sees its own figures, and the district's totals
            everything = await kpi_queries.gather(conn, district, "source", start, end, as_of)
            whole = total(everything.groups)
    return web.json_response(to_json(result, by, start, end, unit, whole), dumps=_dumps)


@routes.get("/api/v1/kpis/exceptions")
async def get_exception_shares(request: web.Request) -> web.Response:
    """Each exception path's share of a period: granted 退单, 延期, 缓办, 作废 over the tasks
    dispatched in it (a unit token: its own unit's)."""
    period = _period(request)
    if isinstance(period, web.Response):
        return period
    start, end = period
    district, unit = request.app[SETTINGS].district_code, _scope(request)
    async with request.app[POOL].acquire() as conn:
        found = await exception_queries.gather(conn, district, start, end, unit)
    body = {"from": start.isoformat(), "to": end.isoformat(), "unit": unit, **found}
    return web.json_response(body, dumps=_dumps)


@routes.get("/api/v1/exceptions")
async def get_exception_ledger(request: web.Request) -> web.Response:
    """The exception ledger of a period, newest first: who approved what, why."""
    period = _period(request)
    if isinstance(period, web.Response):
        return period
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return _error("bad_query", "limit must be 1..1000")
    district, unit = request.app[SETTINGS].district_code, _scope(request)
    async with request.app[POOL].acquire() as conn:
        rows = await exception_queries.ledger(conn, district, *period, unit, limit)
    items = [{**r, "decided_at": r["decided_at"].isoformat()} for r in rows]
    return web.json_response({"items": items}, dumps=_dumps)


def _period(request: web.Request) -> tuple[datetime, datetime] | web.Response:
    q = request.query
    if "from" not in q or "to" not in q:
        return _error("bad_query", "from and to are required (YYYY-MM-DD)")
    try:
        return parse_period(q["from"], q["to"])
    except BadPeriod as exc:
        return _error("bad_period", str(exc))


def _scope(request: web.Request) -> str | None:
    who = principal(request)
    return who.unit_code if who.unit_scoped else None


def _error(reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=400)
