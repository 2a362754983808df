"""What the one-screen console (一屏观天下) asks the district for, beyond the operator API:
the street territories as GeoJSON, every open case's point in one compact answer, the tasks
nearest their deadline with countdowns in working time, the extension requests awaiting a
decision, and the daily trend. Each answer is scoped like the operator API: a unit's token sees
the cases its unit holds or held."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.common import params
from services.common.auth import principal
from services.common.openapi import Op
from services.district.api.queues import SHANGHAI
from services.district.deadlines.countdown import countdown, next_change
from services.district.keys import CLOCK, DECISIONS, POOL, SETTINGS
from services.district.queues import console as q

routes = web.RouteTableDef()
#: a case number is at most this long (the operator API's limit), and so many fit one request
_CASE_NO_MAX, _CASES_MAX = 64, 200
#: the columns of `GET /api/v1/case-points`, in the order of each row
POINT_COLUMNS = (
    "case_no",
    "lon",
    "lat",
    "urgency",
    "state",
    "street_code",
    "unit_code",
    "resolve_by_ms",
    "running",
    "supervised",
)


class PointsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: str | None = Field(
        default=None,
        max_length=_CASES_MAX * (_CASE_NO_MAX + 1),
        description="comma-separated case numbers: just these cases, whatever their state",
    )


class DeadlinesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=300, ge=1, le=2000)


class TrendQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=14, ge=1, le=92)


class Territories(BaseModel):
    """A GeoJSON FeatureCollection: one (Multi)Polygon per street, WGS-84, with its name."""

    type: str
    features: list[dict[str, Any]]


class CasePoints(BaseModel):
    """Open cases as rows of `columns` (a table, not objects: 10,000 cases stay small)."""

    as_of: datetime
    columns: list[str]
    rows: list[list[Any]]


class DueTask(BaseModel):
    task_id: str
    case_no: str
    unit_code: str
    role: str
    stage: str = Field(description="the step owed next: accept, first_contact or resolve")
    urgency: str
    title: str
    supervised: bool
    due_at: datetime
    remaining_s: int = Field(description="time left (negative: overdue by), counted as below")
    natural: bool = Field(description="natural time (urgent, critical) or office time")
    ticking: bool = Field(description="whether the time left shrinks now (office hours)")


class Deadlines(BaseModel):
    as_of: datetime
    overdue_total: int
    items: list[DueTask]
    next_change_at: datetime | None = Field(description="when office time starts or stops next")


class ExtensionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, le=500)


class ExtensionRequest(BaseModel):
    case_no: str
    task_id: str
    unit_code: str | None
    requested_at: datetime
    requested_until: datetime | None
    note: str | None
    title: str
    urgency: str
    resolve_by: datetime = Field(description="the task's resolve deadline now")


class ExtensionRequests(BaseModel):
    """Extension requests (延期申请) awaiting the district's decision, oldest first."""

    items: list[ExtensionRequest]


class TrendDay(BaseModel):
    day: str
    opened: int
    closed: int
    closed_on_time: int


class Trend(BaseModel):
    days: list[TrendDay]


class Me(BaseModel):
    """The caller as the screen needs it: which actions to offer, whose cases it shows."""

    role: str
    unit_code: str | None
    name: str
    token_id: str


class UnitOut(BaseModel):
    unit_code: str
    name: str
    tier: str


class UnitList(BaseModel):
    units: list[UnitOut]


def operations() -> list[Op]:
    """These routes in the district's OpenAPI document."""
    return [
        Op("GET", "/api/v1/territories", "the streets' territories (GeoJSON)", Territories),
        Op(
            "GET",
            "/api/v1/case-points",
            "every open case's point and status, as a table",
            CasePoints,
            query=PointsQuery,
        ),
        Op(
            "GET",
            "/api/v1/deadlines",
            "active tasks nearest their next deadline, with countdowns",
            Deadlines,
            query=DeadlinesQuery,
        ),
        Op(
            "GET",
            "/api/v1/extension-requests",
            "extension requests awaiting the district's decision",
            ExtensionRequests,
            query=ExtensionsQuery,
        ),
        Op("GET", "/api/v1/trend", "cases opened and closed per day", Trend, query=TrendQuery),
        Op("GET", "/api/v1/me", "the caller's role and unit", Me, errors=(401,)),
        Op("GET", "/api/v1/units", "the district's units (streets, departments)", UnitList),
    ]


def _scope(request: web.Request) -> str | None:
    who = principal(request)
    return who.unit_code if who.unit_scoped else None


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    return _json(caller(request))


def caller(request: web.Request) -> dict[str, Any]:
    who = principal(request)
    return {
        "role": who.role.value,
        "unit_code": who.unit_code,
        "name": who.name,
        "token_id": who.token_id,
    }


@routes.get("/api/v1/units")
async def units(request: web.Request) -> web.Response:
    ref = request.app[DECISIONS].ctx.ref
    found = [{"unit_code": u.unit_code, "name": u.name, "tier": u.tier} for u in ref.units.values()]
    return _json({"units": found})


@routes.get("/api/v1/territories")
async def territories(request: web.Request) -> web.Response:
    """The streets' territories, the map's only geometry (no tile server)."""
    ref = request.app[DECISIONS].ctx.ref
    collection = ref.territory.to_geojson()
    for feature in collection["features"]:
        unit = ref.units.get(feature["properties"]["unit_code"])
        feature["properties"]["name"] = unit.name if unit else feature["properties"]["unit_code"]
    return _json(collection, {"Cache-Control": "private, max-age=300"})


@routes.get("/api/v1/case-points")
async def case_points(request: web.Request) -> web.Response:
    query = params.query(request, PointsQuery)
    cases = _case_list(query.cases)
    district, now = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    async with request.app[POOL].acquire() as conn:
        rows = await q.points(conn, district, _scope(request), cases)
    return _json({"as_of": now, "columns": POINT_COLUMNS, "rows": [_point(r) for r in rows]})


def _case_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    cases = [c for c in text.split(",") if c][:_CASES_MAX]
    return [c for c in cases if len(c) <= _CASE_NO_MAX]


def _point(r: Any) -> list[Any]:
    resolve_by = r["resolve_by"]
    return [
        r["case_no"],
        r["lon"],
        r["lat"],
        r["urgency"],
        r["state"],
        r["street_code"],
        r["unit_code"],
        int(resolve_by.timestamp() * 1000) if resolve_by else None,
        r["state"] not in q.NOT_RUNNING,
        r["supervised"],
    ]


@routes.get("/api/v1/deadlines")
async def deadlines(request: web.Request) -> web.Response:
    """Active tasks, overdue first then nearest due, each with the time left on its clock."""
    limit = params.query(request, DeadlinesQuery).limit
    district, now = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    calendar = request.app[DECISIONS].ctx.calendar
    async with request.app[POOL].acquire() as conn:
        items, overdue = await q.nearest_due(conn, district, _scope(request), now, limit)
    for item in items:
        clock = countdown(calendar, now, item["due_at"], item["urgency"])
        item.update(remaining_s=clock.remaining_s, natural=clock.natural, ticking=clock.ticking)
    body = {
        "as_of": now,
        "overdue_total": overdue,
        "items": items,
        "next_change_at": next_change(calendar, now),
    }
    return _json(body)


@routes.get("/api/v1/extension-requests")
async def extension_requests(request: web.Request) -> web.Response:
    """The district's own pending decisions beside triage: units' extension requests (a unit's
    token sees its own)."""
    limit = params.query(request, ExtensionsQuery).limit
    district, now = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    async with request.app[POOL].acquire() as conn:
        items = await q.extension_requests(conn, district, _scope(request), now, limit)
    return _json({"items": items})


@routes.get("/api/v1/trend")
async def trend(request: web.Request) -> web.Response:
    """Cases opened and closed (on time) per Shanghai day, for the KPI tiles' trend."""
    days = params.query(request, TrendQuery).days
    district, now = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    today = now.astimezone(SHANGHAI).date()
    async with request.app[POOL].acquire() as conn:
        rows = await q.trend(conn, district, _scope(request), today, days)
    return _json({"days": [{**r, "day": r["day"].isoformat()} for r in rows]})


def _json(body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        body,
        dumps=lambda o: json.dumps(o, ensure_ascii=False, default=_default),
        headers=headers,
    )


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, timedelta):
        return o.total_seconds()
    raise TypeError(f"not JSON: {type(o).__name__}")
