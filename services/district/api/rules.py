"""The routing rules over HTTP: the active rules, a change (a new version; supervisors), and
every version of a category's rules."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.common import params
from services.common.auth import principal, problem, require
from services.district.api.commands import SUPERVISORS
from services.district.api.http import answer
from services.district.api.models import RuleChange
from services.district.keys import DECISIONS, POOL, SETTINGS
from services.district.routing import queries
from services.district.routing.reference import Rule

routes = web.RouteTableDef()


@routes.get("/api/v1/routing-rules")
async def list_rules(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rules = await queries.load_rules(conn, request.app[SETTINGS].district_code)
    return answer([_rule(r) for r in rules.values()])


@routes.put("/api/v1/routing-rules")
async def change_rule(request: web.Request) -> web.Response:
    require(request, *SUPERVISORS)
    body = await params.body(request, RuleChange)
    decisions, district = request.app[DECISIONS], request.app[SETTINGS].district_code
    ref = decisions.ctx.ref
    if body.category_code not in ref.categories:
        raise problem(422, "unknown_category", body.category_code)
    for owner in (body.owner, body.alt_owner):
        if owner not in (None, "street") and owner not in ref.units:
            raise problem(422, "unknown_unit", str(owner))
    rule = Rule(
        body.category_code,
        body.owner,
        body.alt_owner,
        body.urgency,
        body.source,
        auto_redispatch_returns=body.auto_redispatch_returns,
    )
    async with request.app[POOL].acquire() as conn:
        saved = await queries.change_rule(
            conn, district, rule, body.actor, body.reason, principal(request).token_id
        )
        decisions.use_rules(await queries.load_rules(conn, district))
    return answer(_rule(saved))


@routes.get("/api/v1/routing-rules/{category_code}/history")
async def rule_history(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        history = await queries.rule_history(
            conn, request.app[SETTINGS].district_code, request.match_info["category_code"]
        )
    return answer(history)


def _rule(r: Rule) -> dict[str, Any]:
    return {
        "category_code": r.category_code,
        "urgency": r.urgency,
        "source": r.source,
        "owner": r.owner,
        "alt_owner": r.alt_owner,
        "version": r.version,
        "auto_redispatch_returns": r.auto_redispatch_returns,
    }
