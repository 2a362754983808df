"""The street / department desk over HTTP: list my tasks, act on them. Each active task carries
its countdown to the deadline its holder owes next, counted as the district counts it (office
time on the government calendar for normal cases, natural time for urgent ones:
`services.district.deadlines.countdown`, a pure function)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from contracts.common import Urgency
from services.common.auth import UNIT_ROLES, principal, require
from services.district.deadlines.countdown import countdown, next_change
from services.district.deadlines.workcal import WorkCalendar
from services.street import queries
from services.street.desk import DeskError, act
from services.street.keys import CALENDAR, POOL, PUBLISHER, UNITS
from services.street.openapi import ActionRequest

routes = web.RouteTableDef()
URGENCIES = frozenset(u.value for u in Urgency)
#: an active task's state -> the step its holder owes next, and that step's deadline
NEXT_DUE = {
    "open": ("accept", "accept_by"),
    "accepted": ("first_contact", "first_contact_by"),
    "contacted": ("resolve", "resolve_by"),
}


def error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=status)


def _units(request: web.Request) -> list[str]:
    """The units the caller sees here: a unit token's own unit (if this desk serves it),
    every unit of the desk for the district's roles (read-only)."""
    who, served = principal(request), request.app[UNITS]
    if who.unit_scoped:
        return [u for u in served if u == who.unit_code]
    return served


def _cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["dispatched_at"].isoformat(), row["task_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _parse_cursor(text: str) -> tuple[datetime, str]:
    at, task_id = json.loads(base64.urlsafe_b64decode(text.encode()))
    return datetime.fromisoformat(at), str(task_id)


@routes.get("/api/v1/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    units = _units(request)
    unit = request.query.get("unit")
    if unit is not None:
        if unit not in units:
            return error(404, "unknown_unit", f"this desk does not serve {unit}")
        units = [unit]
    try:
        limit = min(int(request.query.get("limit", "50")), 500)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        after = _parse_cursor(request.query["after"]) if "after" in request.query else None
    except (ValueError, TypeError) as exc:
        return error(400, "bad_query", str(exc))
    async with request.app[POOL].acquire() as conn:
        rows = await queries.list_tasks(conn, units, request.query.get("state"), limit, after)
    calendar, now = request.app[CALENDAR], datetime.now(UTC)
    body = {
        "as_of": now,
        "items": [_public(r, calendar, now) for r in rows],
        "next": _cursor(rows[-1]) if len(rows) == limit else None,
        "next_change_at": next_change(calendar, now),
    }
    return web.json_response(body, dumps=_dumps)


@routes.get("/api/v1/tasks/{task_id}")
async def get_task(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await queries.get_task(conn, request.match_info["task_id"])
    if row is None or row["unit_code"] not in _units(request):
        return error(404, "not_found", "no such task")
    public = _public(row, request.app[CALENDAR], datetime.now(UTC))
    return web.json_response(public, dumps=_dumps)


@routes.post("/api/v1/tasks/{task_id}/actions")
async def post_action(request: web.Request) -> web.Response:
    require(request, *UNIT_ROLES)  # the district's roles read the desk, the unit acts
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "not_json", "the body must be a JSON object")
    if not isinstance(body, dict):
        return error(400, "not_object", "the body must be a JSON object")
    try:
        ActionRequest.model_validate(body)
    except ValidationError as exc:
        return error(422, "invalid_action", str(exc.errors(include_url=False)))
    try:
        fb = await act(
            request.app[POOL],
            request.match_info["task_id"],
            body,
            _units(request),
            request.app[PUBLISHER].submit,
            request.headers.get("Idempotency-Key"),
            principal(request).token_id,
        )
    except DeskError as exc:
        return error(exc.status, exc.reason, exc.detail)
    return web.json_response(
        {"feedback_id": fb.feedback_id, "action": fb.action.value, "status": "sent"}, status=202
    )


def _public(row: dict[str, Any], calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    return {**row, "countdown": task_countdown(row, calendar, now)}


def task_countdown(
    row: dict[str, Any], calendar: WorkCalendar, now: datetime
) -> dict[str, Any] | None:
    """The time left to the deadline an active task's holder owes next (None when it owes
    none), in the time that counts for it, and whether that time runs now."""
    stage, deadlines = NEXT_DUE.get(row["state"]), row.get("deadlines") or {}
    if stage and not deadlines.get(stage[1]) and stage[0] == "first_contact":
        stage = NEXT_DUE["contacted"]  # no first contact owed: the resolution is next
    due = deadlines.get(stage[1]) if stage else None
    if stage is None or not due:
        return None
    due_at = datetime.fromisoformat(due)
    urgency = (row.get("snapshot") or {}).get("urgency")
    left = countdown(calendar, now, due_at, urgency if urgency in URGENCIES else "normal")
    return {
        "stage": stage[0],
        "due_at": due_at,
        "remaining_s": left.remaining_s,
        "natural": left.natural,
        "ticking": left.ticking,
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=lambda o: o.isoformat())
