"""The district's operator commands over HTTP: case detail, triage, joint tasks, extension
decisions, supervision, verification, parking, rejection, routing rules. Each command goes
through the same decision code as the consumer (DistrictDesk) in one transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from contracts.hotline import WorkOrder
from contracts.roadchief import Report
from services.common.auth import Role, principal, problem, require
from services.district.cases import queries
from services.district.cases.lifecycle import IllegalTransition
from services.district.cases.model import CaseRec, Changes, case_number
from services.district.cases.store import Duplicate, NotFound
from services.district.decisions.operator import DistrictDesk, Forbidden
from services.district.decisions.workflow import Refused
from services.district.keys import CLOCK, POOL, SETTINGS, STORE, WORKFLOW
from services.district.queues import queries as queue_queries
from services.district.routing.reference import Rule

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)
#: who may take the district's decisions (unit operators act through the street desk)
OPERATORS = frozenset({Role.DISTRICT_OPERATOR, Role.DISTRICT_SUPERVISOR})
SUPERVISORS = frozenset({Role.DISTRICT_SUPERVISOR})
#: every command route: path segment -> (body model, roles allowed); the OpenAPI document's source
COMMANDS: dict[str, tuple[type[BaseModel], frozenset[Role]]] = {}


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
    until: AwareDatetime | None = None


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
            principal(request).token_id,
        )
    except NotFound:
        return error(404, "not_found", f"no case {case_no}")
    except (Refused, IllegalTransition) as exc:
        return error(409, "refused", str(exc))
    except Duplicate:
        return web.json_response({"case_no": case_no, "status": "already_applied"})
    return await _case_response(request, case_no)


def _command(
    path: str,
    model: type[M],
    decide: Callable[[DistrictDesk, CaseRec, M, datetime, Changes], Any],
    roles: frozenset[Role] = SUPERVISORS,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        require(request, *roles)
        body = await _body(request, model)
        now = request.app[CLOCK].now()
        return await _decide(request, lambda desk, case, ch: decide(desk, case, body, now, ch))

    routes.post(f"/api/v1/cases/{{case_no}}/{path}")(handler)
    COMMANDS[path] = (model, roles)
    return handler


_command(
    "dispatch",
    DispatchTo,
    lambda d, c, b, now, ch: d.dispatch_to(c, b.unit, b.actor, b.reason, now, ch),
    OPERATORS,
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
_command(
    "supervise",
    Command,
    lambda d, c, b, now, ch: d.supervise(c, b.actor, b.reason, now, ch),
    OPERATORS,
)
_command(
    "verify", Verification, lambda d, c, b, now, ch: d.verify(c, b.ok, b.actor, b.reason, now, ch)
)
_command("park", Command, lambda d, c, b, now, ch: d.park(c, b.actor, b.reason, now, ch))
_command("unpark", Command, lambda d, c, b, now, ch: d.unpark(c, b.actor, b.reason, now, ch))
_command("reject", Command, lambda d, c, b, now, ch: d.reject(c, b.actor, b.reason, now, ch))


class SplitReport(Command):
    source_ref: str = Field(min_length=1, max_length=200)


class RevealPhone(Command):
    unit_code: str = Field(min_length=1, max_length=40)


class PhoneRevealed(BaseModel):
    case_no: str
    unit_code: str
    phone: str


#: the roles that may ask for a caller's phone (the auditor only reads the record)
REVEALERS = frozenset(Role) - {Role.AUDITOR}


@routes.post("/api/v1/cases/{case_no}/split")
async def split_report(request: web.Request) -> web.Response:
    """Undo a merge (并案): the report `source_ref` leaves the case and opens its own case,
    routed and dispatched like a new report; answers with the new case."""
    require(request, *OPERATORS)
    body = await _body(request, SplitReport)
    desk, now = request.app[WORKFLOW], request.app[CLOCK].now()
    district = request.app[SETTINGS].district_code

    def decide(case: CaseRec, row: dict[str, Any], serial: int, ch: Changes) -> CaseRec:
        model = WorkOrder if row["source"] == "hotline12345" else Report
        report = model.model_validate(row["message"])
        new_no = case_number(district, serial, now)
        return desk.split(case, report, new_no, body.actor, body.reason, now, ch)

    try:
        opened = await request.app[STORE].split(
            request.match_info["case_no"], body.source_ref, decide, principal(request).token_id
        )
    except NotFound as exc:
        return error(404, "not_found", str(exc))
    except (Refused, IllegalTransition) as exc:
        return error(409, "refused", str(exc))
    return await _case_response(request, opened.case_no)


COMMANDS["split"] = (SplitReport, OPERATORS)


class MergeCase(Command):
    into: str = Field(min_length=1, max_length=64)


@routes.post("/api/v1/cases/{case_no}/merge")
async def merge_case(request: web.Request) -> web.Response:
    """并案: the case joins `into` (same problem); answers with the case it joined."""
    require(request, *OPERATORS)
    body = await _body(request, MergeCase)
    desk, now = request.app[WORKFLOW], request.app[CLOCK].now()
    try:
        await request.app[STORE].apply_pair(
            request.match_info["case_no"],
            body.into,
            lambda case, into, ch: desk.merge_case(case, into, body.actor, body.reason, now, ch),
            principal(request).token_id,
        )
    except NotFound as exc:
        return error(404, "not_found", f"no case {exc}")
    except (Refused, IllegalTransition) as exc:
        return error(409, "refused", str(exc))
    return await _case_response(request, body.into)


COMMANDS["merge"] = (MergeCase, OPERATORS)


@routes.post("/api/v1/cases/{case_no}/reveal-phone")
async def reveal_phone(request: web.Request) -> web.Response:
    """The caller's phone number, to call the citizen back: only for `unit_code` holding an
    active task of the case (403 otherwise), recorded in the case record as `phone_revealed`
    with the actor, the unit and the reason, never the number. The unit is named in the body;
    a unit-scoped bearer token may name only its own unit, and once every unit desk acts with
    its own token the unit will be taken from the token alone."""
    who = require(request, *REVEALERS)
    body = await _body(request, RevealPhone)
    case_no, desk = request.match_info["case_no"], request.app[WORKFLOW]
    now = request.app[CLOCK].now()
    if who.unit_scoped and who.unit_code != body.unit_code:
        return error(403, "forbidden", f"this token acts for {who.unit_code}, not {body.unit_code}")
    try:
        phone = await request.app[STORE].apply(
            case_no,
            lambda case, ch: desk.reveal_phone(
                case, body.unit_code, body.actor, body.reason, now, ch
            ),
            token_id=who.token_id,
        )
    except NotFound:
        return error(404, "not_found", f"no case {case_no}")
    except Forbidden as exc:
        return error(403, "not_holding", str(exc))
    except Refused as exc:
        return error(409, "refused", str(exc))
    out = PhoneRevealed(case_no=case_no, unit_code=body.unit_code, phone=phone)
    return web.json_response(out.model_dump(), headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/cases/{case_no}")
async def get_case(request: web.Request) -> web.Response:
    who, case_no = principal(request), request.match_info["case_no"]
    if who.unit_scoped:
        district = request.app[SETTINGS].district_code
        async with request.app[POOL].acquire() as conn:
            held = await queue_queries.unit_held(conn, district, case_no, str(who.unit_code))
        if not held:  # another unit's case: as if it did not exist
            raise problem(404, "not_found", f"no case {case_no}")
    return await _case_response(request, case_no)


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
    require(request, *SUPERVISORS)
    body = await _body(request, RuleChange)
    desk, district = request.app[WORKFLOW], request.app[SETTINGS].district_code
    if body.category_code not in desk.ctx.ref.categories:
        return error(422, "unknown_category", body.category_code)
    for owner in (body.owner, body.alt_owner):
        if owner not in (None, "street") and owner not in desk.ctx.ref.units:
            return error(422, "unknown_unit", str(owner))
    rule = Rule(body.category_code, body.owner, body.alt_owner, body.urgency, body.source)
    async with request.app[POOL].acquire() as conn:
        saved = await queries.change_rule(
            conn, district, rule, body.actor, body.reason, principal(request).token_id
        )
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
