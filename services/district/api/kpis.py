"""The closed-loop KPIs of a period [from, to) (`from`/`to`: YYYY-MM-DD or ISO datetimes):

- `GET /api/v1/kpis?by=unit|street|category|source`: per group, each KPI with its numerator
  and denominator;
- `GET /api/v1/kpis/trend?by=day|week|month`: the totals per Shanghai day, ISO week or month;
- `GET /api/v1/kpis/ranking?kind=street|department`: the streets or departments ranked on the
  weighted score (deploy/reference/kpi_weights.csv).

A unit token sees its own unit's figures (grouped as asked) and the district's totals beside
them, its own row of the ranking, no other unit's rows. `GET /api/v1/kpis/exceptions` (each
exception path's share) and `GET /api/v1/exceptions` (the exception ledger) take the same
period, scoped the same way."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from services.common.auth import principal
from services.district.keys import CLOCK, KPI_WEIGHTS, POOL, SETTINGS
from services.district.kpis import exceptions as exception_queries
from services.district.kpis import queries as kpi_queries
from services.district.kpis import service
from services.district.kpis.boards import ranking_json, trend_json
from services.district.kpis.formulas import total
from services.district.kpis.ranking import RankKind
from services.district.kpis.report import BadPeriod, parse_period, to_json
from services.district.kpis.trend import Step, TooManyBuckets

routes = web.RouteTableDef()
_dumps = functools.partial(json.dumps, ensure_ascii=False)


class _BadQuery(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@routes.get("/api/v1/kpis")
async def get_kpis(request: web.Request) -> web.Response:
    try:
        by = _choice(request, "by", kpi_queries.DIMENSIONS, "unit")
        start, end = _period(request)
    except _BadQuery as bad:
        return _error(bad)
    district, as_of, unit = _context(request)
    async with request.app[POOL].acquire() as conn:
        result = await kpi_queries.gather(conn, district, by, start, end, as_of, unit)
        whole = None
        if unit is not None:  # a unit sees its own figures, and the district's totals
            everything = await kpi_queries.gather(conn, district, "source", start, end, as_of)
            whole = total(everything.groups)
    return _json(to_json(result, by, start, end, unit, whole))


@routes.get("/api/v1/kpis/exceptions")
async def get_exception_shares(request: web.Request) -> web.Response:
    """Each exception path's share of a period: granted 退单, 延期, 缓办, 作废 over the tasks
    dispatched in it (a unit token: its own unit's)."""
    try:
        start, end = _period(request)
    except _BadQuery as bad:
        return _error(bad)
    district, _, unit = _context(request)
    async with request.app[POOL].acquire() as conn:
        found = await exception_queries.gather(conn, district, start, end, unit)
    return _json({"from": start.isoformat(), "to": end.isoformat(), "unit": unit, **found})


@routes.get("/api/v1/exceptions")
async def get_exception_ledger(request: web.Request) -> web.Response:
    """The exception ledger of a period, newest first: who approved what, why."""
    try:
        start, end = _period(request)
        limit = _limit(request)
    except _BadQuery as bad:
        return _error(bad)
    district, _, unit = _context(request)
    async with request.app[POOL].acquire() as conn:
        rows = await exception_queries.ledger(conn, district, start, end, unit, limit)
    return _json({"items": [{**r, "decided_at": r["decided_at"].isoformat()} for r in rows]})


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise _BadQuery("bad_query", "limit must be 1..1000")
    return limit


@routes.get("/api/v1/kpis/trend")
async def get_trend(request: web.Request) -> web.Response:
    try:
        step = Step(_choice(request, "by", [s.value for s in Step], "day"))
        start, end = _period(request)
    except _BadQuery as bad:
        return _error(bad)
    district, as_of, unit = _context(request)
    try:
        async with request.app[POOL].acquire() as conn:
            rows, whole = await service.trend(conn, district, step, start, end, as_of, unit)
    except TooManyBuckets as exc:
        return _error(_BadQuery("bad_period", str(exc)))
    return _json(trend_json(step, start, end, as_of, rows, unit, whole))


@routes.get("/api/v1/kpis/ranking")
async def get_ranking(request: web.Request) -> web.Response:
    try:
        kind = RankKind(_choice(request, "kind", [k.value for k in RankKind], "street"))
        start, end = _period(request)
    except _BadQuery as bad:
        return _error(bad)
    district, as_of, unit = _context(request)
    weights = request.app[KPI_WEIGHTS]
    async with request.app[POOL].acquire() as conn:
        ranked = await service.ranking(conn, district, kind, start, end, as_of, weights)
    return _json(ranking_json(kind, start, end, as_of, ranked, weights, unit))


def _choice(request: web.Request, name: str, allowed: Sequence[str], default: str) -> str:
    value = request.query.get(name, default)
    if value not in allowed:
        raise _BadQuery("bad_query", f"{name} must be one of {', '.join(allowed)}")
    return value


def _period(request: web.Request) -> tuple[datetime, datetime]:
    q = request.query
    if "from" not in q or "to" not in q:
        raise _BadQuery("bad_query", "from and to are required (YYYY-MM-DD)")
    try:
        return parse_period(q["from"], q["to"])
    except BadPeriod as exc:
        raise _BadQuery("bad_period", str(exc)) from None


def _context(request: web.Request) -> tuple[str, datetime, str | None]:
    """The district, the service's clock, and the unit a unit token is limited to."""
    who = principal(request)
    unit = who.unit_code if who.unit_scoped else None
    return request.app[SETTINGS].district_code, request.app[CLOCK].now(), unit


def _json(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, dumps=_dumps)


def _error(bad: _BadQuery) -> web.Response:
    return web.json_response({"error": bad.reason, "detail": bad.detail}, status=400)
