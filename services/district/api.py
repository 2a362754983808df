"""The district's operator commands over HTTP: case detail, triage, joint tasks, extension
decisions, supervision, verification, parking, rejection, routing rules. Each command goes
through the same decision code as the consumer (DistrictDesk) in one transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from services.district import queries
from services.district.decisions import DistrictDesk
from services.district.keys import CLOCK, POOL, SETTINGS, STORE, WORKFLOW
from services.district.lifecycle import IllegalTransition
from services.district.model import CaseRec, Changes
from services.district.reference import Rule
from services.district.store import Duplicate, NotFound
from services.district.workflow import Refused

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)


class Command(BaseModel):
    actor: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=2000)


class DispatchTo(Command):
    unit: str


class JointTask(Command):
    lead: str
    co_units: list[str] = Field(min_length=1, max_length=10)


class ExtensionDecision(Command):
    task_id: str
    approve: bool
    until: datetime | None = None


class Verification(Command):
    ok: bool


class RuleChange(Command):
    category_code: str
    owner: str
    alt_owner: str | None = None
    urgency: str = "*"
    source: str = "*"


def error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=status)


async def _body(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "not_json", "detail": "the body must be JSON"}),
            content_type="application/json",
        ) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise web.HTTPUnprocessableEntity(
            text=json.dumps(
                {"error": "invalid", "detail": exc.errors(include_url=False)}, default=str
            ),
            content_type="application/json",
        ) from None


async def _decide(
    request: web.Request, decide: Callable[[DistrictDesk, CaseRec, Changes], Any]
) -> web.Response:
    """Apply one decision to the case in the path; 404 / 409 with the reason when refused."""
    desk = request.app[WORKFLOW]
    case_no = request.match_info["case_no"]
    try:
        await request.app[STORE].apply(
            case_no,
            lambda case, ch: decide(desk, case, ch),
            request.headers.get("Idempotency-Key"),
        )
    except NotFound:
        return error(404, "not_found", f"no case {case_no}")
    except (Refused, IllegalTransition) as exc:
        return error(409, "refused", str(exc))
    except Duplicate:
        return web.json_response({"case_no": case_no, "status": "already_applied"})
    return await _case_response(request, case_no)


def _command(
    path: str, model: type[M], decide: Callable[[DistrictDesk, CaseRec, M, datetime, Changes], Any]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        body = await _body(request, model)
        now = request.app[CLOCK].now()
        return await _decide(request, lambda desk, case, ch: decide(desk, case, body, now, ch))

    routes.post(f"/api/v1/cases/{{case_no}}/{path}")(handler)
    return handler


_command(
    "dispatch",
    DispatchTo,
    lambda d, c, b, now, ch: d.dispatch_to(c, b.unit, b.actor, b.reason, now, ch),
)
_command(
    "joint",
    JointTask,
    lambda d, c, b, now, ch: d.joint_dispatch(c, b.lead, b.co_units, b.actor, b.reason, now, ch),
)
_command(
    "extension",
    ExtensionDecision,
    lambda d, c, b, now, ch: d.decide_extension(
        c, b.task_id, b.approve, b.until, b.actor, b.reason, now, ch
    ),
)
_command("supervise", Command, lambda d, c, b, now, ch: d.supervise(c, b.actor, b.reason, now, ch))
_command(
    "verify", Verification, lambda d, c, b, now, ch: d.verify(c, b.ok, b.actor, b.reason, now, ch)
)
_command("park", Command, lambda d, c, b, now, ch: d.park(c, b.actor, b.reason, now, ch))
_command("unpark", Command, lambda d, c, b, now, ch: d.unpark(c, b.actor, b.reason, now, ch))
_command("reject", Command, lambda d, c, b, now, ch: d.reject(c, b.actor, b.reason, now, ch))


@routes.get("/api/v1/cases/{case_no}")
async def get_case(request: web.Request) -> web.Response:
    return await _case_response(request, request.match_info["case_no"])


async def _case_response(request: web.Request, case_no: str) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        detail = await queries.case_detail(conn, case_no)
    if detail is None:
        return error(404, "not_found", f"no case {case_no}")
    return web.json_response(detail, dumps=_dumps)


@routes.get("/api/v1/routing-rules")
async def list_rules(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rules = await queries.load_rules(conn, request.app[SETTINGS].district_code)
    return web.json_response([_rule(r) for r in rules.values()])


@routes.put("/api/v1/routing-rules")
async def change_rule(request: web.Request) -> web.Response:
    body = await _body(request, RuleChange)
    desk, district = request.app[WORKFLOW], request.app[SETTINGS].district_code
    if body.category_code not in desk.ctx.ref.categories:
        return error(422, "unknown_category", body.category_code)
    for owner in (body.owner, body.alt_owner):
        if owner not in (None, "street") and owner not in desk.ctx.ref.units:
            return error(422, "unknown_unit", str(owner))
    rule = Rule(body.category_code, body.owner, body.alt_owner, body.urgency, body.source)
    async with request.app[POOL].acquire() as conn:
        saved = await queries.change_rule(conn, district, rule, body.actor, body.reason)
        desk.use_rules(await queries.load_rules(conn, district))
    return web.json_response(_rule(saved))


@routes.get("/api/v1/routing-rules/{category_code}/history")
async def rule_history(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        history = await queries.rule_history(
            conn, request.app[SETTINGS].district_code, request.match_info["category_code"]
        )
    return web.json_response(history, dumps=_dumps)


def _rule(r: Rule) -> dict[str, Any]:
    return {
        "category_code": r.category_code,
        "urgency": r.urgency,
        "source": r.source,
        "owner": r.owner,
        "alt_owner": r.alt_owner,
        "version": r.version,
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=lambda o: o.isoformat())
