"""The district's queues and case search over HTTP, scoped by the caller's role: street and
department operators see only the cases their unit holds or held a task for."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel

from services.common import params
from services.common.auth import principal, problem
from services.district.api.models import CasePage, CaseQuery, Queues
from services.district.keys import CLOCK, POOL, SETTINGS
from services.district.queues import queries as queue_queries

routes = web.RouteTableDef()
#: overdue counts recomputed at most every 5 s, whatever the request rate
OVERDUE_CACHE = web.AppKey("overdue_cache", queue_queries.OverdueCache)


def setup(app: web.Application) -> None:
    app[OVERDUE_CACHE] = queue_queries.OverdueCache(ttl=5.0)


SHANGHAI = ZoneInfo("Asia/Shanghai")


@routes.get("/api/v1/queues")
async def get_queues(request: web.Request) -> web.Response:
    who = principal(request)
    district, now = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    async with request.app[POOL].acquire() as conn:
        found = await queue_queries.queues(
            conn,
            district,
            who.unit_code if who.unit_scoped else None,
            now,
            request.app[OVERDUE_CACHE],
        )
    return _json(Queues.model_validate(found))


@routes.get("/api/v1/cases")
async def search_cases(request: web.Request) -> web.Response:
    who = principal(request)
    q = params.query(request, CaseQuery)
    search = queue_queries.Search(
        scope_unit=who.unit_code if who.unit_scoped else None,
        unit=q.unit,
        street=q.street,
        state=q.state.value if q.state else None,
        category=q.category,
        source=q.source,
        overdue=q.overdue,
        supervised=q.supervised,
        opened_from=_start_of(q.from_),
        opened_to=_start_of(q.to),
        after=_parse_cursor(q.after) if q.after else None,
        limit=q.limit,
    )
    district, now = request.app[SETTINGS].district_code, request.app[CLOCK].now()
    async with request.app[POOL].acquire() as conn:
        rows = await queue_queries.search(conn, district, search, now)
    page = CasePage.model_validate(
        {"items": rows, "next": _cursor(rows[-1]) if len(rows) == q.limit else None}
    )
    return _json(page)


#: the first day whose Shanghai midnight is a representable instant (0001-01-01 +08:00 is not)
_FIRST_DAY = date(1, 1, 2)


def _start_of(day: date | None) -> datetime | None:
    """Shanghai midnight of `day`; days before `_FIRST_DAY` select the same (no) cases."""
    return None if day is None else datetime.combine(max(day, _FIRST_DAY), time(), SHANGHAI)


def _cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["opened_at"].isoformat(), row["case_no"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _parse_cursor(text: str) -> tuple[datetime, str]:
    try:
        at, case_no = json.loads(base64.urlsafe_b64decode(text.encode()))
        opened = datetime.fromisoformat(at)
        if opened.tzinfo is None or not isinstance(case_no, str):
            raise ValueError("not a cursor")
        return opened, case_no
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise problem(400, "bad_cursor", "`after` is not a cursor this API returned") from None


def _json(body: BaseModel) -> web.Response:
    """The model as JSON, encoded in one step by pydantic (no dict in between)."""
    return web.Response(
        body=body.model_dump_json().encode(), content_type="application/json", charset="utf-8"
    )
