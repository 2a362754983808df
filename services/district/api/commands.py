"""The district's decisions on a case over HTTP: `POST /api/v1/cases/{case_no}/<command>`
(triage, reclassifying, joint tasks and co-units added, decisions on returns (退单) and
extensions, supervision, verification, parking,
rejection, 并案 merge and split, revealing the caller's phone). Each goes through the same
decision code as the consumer (`decisions`), in one transaction, and answers with the case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from services.common import params
from services.common.auth import UNIT_ROLES, Role, principal, problem, require
from services.district.api.cases import case_response
from services.district.api.http import answer, answering
from services.district.api.models import (
    AddCoUnits,
    Command,
    DispatchTo,
    ExtensionDecision,
    JointTask,
    MergeCase,
    PhoneRevealed,
    Reclassify,
    ReturnDecision,
    RevealPhone,
    SplitReport,
    Verification,
)
from services.district.cases.model import CaseRec, Changes, case_number
from services.district.cases.store import Duplicate
from services.district.decisions import Decisions
from services.district.keys import CLOCK, DECISIONS, SETTINGS, STORE

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)
#: who may take the district's decisions (unit operators act through the street desk)
OPERATORS = frozenset({Role.DISTRICT_OPERATOR, Role.DISTRICT_SUPERVISOR})
SUPERVISORS = frozenset({Role.DISTRICT_SUPERVISOR})
#: the roles that may ask for a caller's phone: a unit for its own tasks, a supervisor with a
#: reason (an operator or the auditor, never)
REVEALERS = UNIT_ROLES | SUPERVISORS
#: every command route: path segment -> (body model, roles allowed); the OpenAPI document's source
COMMANDS: dict[str, tuple[type[BaseModel], frozenset[Role]]] = {}


def _command(
    path: str,
    model: type[M],
    decide: Callable[[Decisions, CaseRec, M, datetime, Changes], Any],
    roles: frozenset[Role] = SUPERVISORS,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route applying one decision to the case in the path, once per Idempotency-Key."""

    async def handler(request: web.Request) -> web.Response:
        require(request, *roles)
        body = await params.body(request, model)
        decisions, now = request.app[DECISIONS], request.app[CLOCK].now()
        case_no = request.match_info["case_no"]
        try:
            with answering():
                await request.app[STORE].apply(
                    case_no,
                    lambda case, ch: decide(decisions, case, body, now, ch),
                    request.headers.get("Idempotency-Key"),
                    principal(request).token_id,
                )
        except Duplicate:
            return answer({"case_no": case_no, "status": "already_applied"})
        return await case_response(request, case_no)

    routes.post(f"/api/v1/cases/{{case_no}}/{path}")(handler)
    COMMANDS[path] = (model, roles)
    return handler


_command(
    "dispatch",
    DispatchTo,
    lambda d, c, b, now, ch: d.dispatch.to_unit(c, b.unit, b.actor, b.reason, now, ch),
    OPERATORS,
)
_command(
    "reclassify",
    Reclassify,
    lambda d, c, b, now, ch: d.operator.reclassify(c, b.category_code, b.actor, b.reason, now, ch),
    OPERATORS,
)
_command(
    "joint",
    JointTask,
    lambda d, c, b, now, ch: d.dispatch.joint(c, b.lead, b.co_units, b.actor, b.reason, now, ch),
)
_command(
    "add-co-units",
    AddCoUnits,
    lambda d, c, b, now, ch: d.dispatch.add_co_units(c, b.co_units, b.actor, b.reason, now, ch),
)
_command(
    "return-decision",
    ReturnDecision,
    lambda d, c, b, now, ch: d.returns.decide(
        c, b.task_id, b.approve, b.unit, b.actor, b.reason, now, ch
    ),
)
_command(
    "extension",
    ExtensionDecision,
    lambda d, c, b, now, ch: d.operator.decide_extension(
        c, b.task_id, b.approve, b.until, b.actor, b.reason, now, ch
    ),
)
_command(
    "supervise",
    Command,
    lambda d, c, b, now, ch: d.operator.supervise(c, b.actor, b.reason, now, ch),
    OPERATORS,
)
_command(
    "verify",
    Verification,
    lambda d, c, b, now, ch: d.operator.verify(c, b.ok, b.actor, b.reason, now, ch),
)
_command("park", Command, lambda d, c, b, now, ch: d.operator.park(c, b.actor, b.reason, now, ch))
_command(
    "unpark", Command, lambda d, c, b, now, ch: d.operator.unpark(c, b.actor, b.reason, now, ch)
)
_command(
    "reject", Command, lambda d, c, b, now, ch: d.operator.reject(c, b.actor, b.reason, now, ch)
)


@routes.post("/api/v1/cases/{case_no}/split")
async def split_report(request: web.Request) -> web.Response:
    """Undo a merge (并案): the report `source_ref` leaves the case and opens its own case,
    routed and dispatched like a new report; answers with the new case."""
    require(request, *OPERATORS)
    body = await params.body(request, SplitReport)
    decisions, now = request.app[DECISIONS], request.app[CLOCK].now()
    district = request.app[SETTINGS].district_code

    def decide(case: CaseRec, row: dict[str, Any], serial: int, ch: Changes) -> CaseRec:
        report = decisions.merging.kept_report(row)
        new_no = case_number(district, serial, now)
        return decisions.merging.split(case, report, new_no, body.actor, body.reason, now, ch)

    with answering():
        opened = await request.app[STORE].split(
            request.match_info["case_no"], body.source_ref, decide, principal(request).token_id
        )
    return await case_response(request, opened.case_no)


COMMANDS["split"] = (SplitReport, OPERATORS)


@routes.post("/api/v1/cases/{case_no}/merge")
async def merge_case(request: web.Request) -> web.Response:
    """并案: the case joins `into` (same problem); answers with the case it joined."""
    require(request, *OPERATORS)
    body = await params.body(request, MergeCase)
    merging, now = request.app[DECISIONS].merging, request.app[CLOCK].now()
    with answering():
        await request.app[STORE].apply_pair(
            request.match_info["case_no"],
            body.into,
            lambda case, into, ch: merging.merge_case(case, into, body.actor, body.reason, now, ch),
            principal(request).token_id,
        )
    return await case_response(request, body.into)


COMMANDS["merge"] = (MergeCase, OPERATORS)


@routes.post("/api/v1/cases/{case_no}/reveal-phone")
async def reveal_phone(request: web.Request) -> web.Response:
    """The caller's phone number, to call the citizen back. A unit token reveals it for its
    own unit, holding an active task of the case (403 otherwise); a district supervisor with a
    reason. Never for an anonymous caller or one who asked for no call-back (403 `withheld`).
    Recorded in the case record as `phone_revealed` with the actor, the unit and the reason,
    never the number."""
    who = require(request, *REVEALERS)
    body = await params.body(request, RevealPhone)
    operator, now = request.app[DECISIONS].operator, request.app[CLOCK].now()
    case_no, unit = request.match_info["case_no"], body.unit_code
    if who.unit_scoped:
        if unit is not None and unit != who.unit_code:
            detail = f"this token acts for {who.unit_code}, not {unit}"
            raise problem(403, "forbidden", detail)
        unit = who.unit_code
    with answering():
        phone = await request.app[STORE].apply(
            case_no,
            lambda case, ch: operator.reveal_phone(
                case, unit, body.actor, body.reason, now, ch, supervisor=not who.unit_scoped
            ),
            token_id=who.token_id,
        )
    out = PhoneRevealed(case_no=case_no, unit_code=unit, phone=phone)
    return answer(out.model_dump(), **{"Cache-Control": "no-store"})
