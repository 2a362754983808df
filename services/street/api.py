"""The street / department desk over HTTP: list my tasks, act on them."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from services.street import queries
from services.street.desk import DeskError, act
from services.street.keys import POOL, PUBLISHER, UNITS

routes = web.RouteTableDef()


def error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=status)


def _cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["dispatched_at"].isoformat(), row["task_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _parse_cursor(text: str) -> tuple[datetime, str]:
    at, task_id = json.loads(base64.urlsafe_b64decode(text.encode()))
    return datetime.fromisoformat(at), str(task_id)


@routes.get("/api/v1/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    units = request.app[UNITS]
    unit = request.query.get("unit")
    if unit is not None:
        if unit not in units:
            return error(404, "unknown_unit", f"this desk does not serve {unit}")
        units = [unit]
    try:
        limit = min(int(request.query.get("limit", "50")), 500)
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
    if row is None or row["unit_code"] not in request.app[UNITS]:
        return error(404, "not_found", "no such task")
    return web.json_response(_public(row), dumps=_dumps)


@routes.post("/api/v1/tasks/{task_id}/actions")
async def post_action(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "not_json", "the body must be a JSON object")
    if not isinstance(body, dict):
        return error(400, "not_object", "the body must be a JSON object")
    try:
        fb = await act(
            request.app[POOL],
            request.match_info["task_id"],
            body,
            request.app[UNITS],
            request.app[PUBLISHER].submit,
            request.headers.get("Idempotency-Key"),
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
