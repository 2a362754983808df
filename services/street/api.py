"""The street / department desk over HTTP: list my tasks, act on them."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from services.common.auth import UNIT_ROLES, principal, require
from services.street import queries
from services.street.desk import DeskError, act
from services.street.keys import POOL, PUBLISHER, UNITS
from services.street.openapi import ActionRequest

routes = web.RouteTableDef()


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
    body = {
        "items": [_public(r) for r in rows],
        "next": _cursor(rows[-1]) if len(rows) == limit else None,
    }
    return web.json_response(body, dumps=_dumps)


@routes.get("/api/v1/tasks/{task_id}")
async def get_task(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await queries.get_task(conn, request.match_info["task_id"])
    if row is None or row["unit_code"] not in _units(request):
        return error(404, "not_found", "no such task")
    return web.json_response(_public(row), dumps=_dumps)


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


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return dict(row)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=lambda o: o.isoformat())
