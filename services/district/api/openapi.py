"""The district's OpenAPI document, `GET /api/v1/openapi.json`, built from the handlers' models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.common.auth import Role
from services.common.openapi import Object, Op, document, with_undocumented
from services.district.api import commands, console
from services.district.api.models import (
    CaseDetail,
    CasePage,
    CaseQuery,
    EventsQuery,
    KpiQuery,
    KpiRankingQuery,
    KpiTrendQuery,
    LedgerQuery,
    PeriodQuery,
    PhoneRevealed,
    Queues,
    RevealPhone,
    RuleChange,
    RuleHistory,
    RuleList,
    RuleOut,
)
from services.district.hotspots.models import HotspotList, HotspotQuery

routes = web.RouteTableDef()
IDEMPOTENCY = {"Idempotency-Key": "applying the same key twice changes nothing the second time"}


def _roles(roles: frozenset[Role]) -> str:
    return "roles: " + ", ".join(sorted(roles))


def _decisions() -> list[Op]:
    """One operation per decision route (`api.commands.COMMANDS`)."""
    return [
        Op(
            "POST",
            f"/api/v1/cases/{{case_no}}/{path}",
            f"{path} the case ({_roles(roles)})",
            ok=CaseDetail,
            body=model,
            errors=(401, 403, 404, 409),
            headers=IDEMPOTENCY,
        )
        for path, (model, roles) in commands.COMMANDS.items()
    ]


def _rules() -> list[Op]:
    """The routing rules, as versioned data."""
    return [
        Op("GET", "/api/v1/routing-rules", "the active routing rules", RuleList, errors=(401,)),
        Op(
            "PUT",
            "/api/v1/routing-rules",
            "change a routing rule (supervisor)",
            RuleOut,
            body=RuleChange,
            errors=(401, 403),
        ),
        Op(
            "GET",
            "/api/v1/routing-rules/{category_code}/history",
            "every version of a rule",
            RuleHistory,
            errors=(401,),
        ),
    ]


def operations() -> list[Op]:
    return [
        Op("GET", "/api/v1/queues", "open cases per unit and state, overdue tasks, triage", Queues),
        Op("GET", "/api/v1/cases", "search cases, newest first", CasePage, query=CaseQuery),
        Op(
            "GET",
            "/api/v1/cases/{case_no}",
            "one case with tasks and timeline",
            CaseDetail,
            errors=(401, 404),
        ),
        *_decisions(),
        Op(
            "POST",
            "/api/v1/cases/{case_no}/reveal-phone",
            "the caller's phone: a unit token for its own active task, a district supervisor"
            " with a reason; never an anonymous or no-call-back caller's (403 withheld);"
            " recorded (not the number)",
            PhoneRevealed,
            body=RevealPhone,
            errors=(401, 403, 404, 409),
        ),
        *_rules(),
        Op(
            "GET",
            "/api/v1/kpis",
            "closed-loop KPIs of a period",
            Object,
            query=KpiQuery,
            errors=(400, 401),
        ),
        Op(
            "GET",
            "/api/v1/kpis/exceptions",
            "each exception path's share of a period: granted returns, extensions, parkings,"
            " cancellations over the tasks dispatched",
            Object,
            query=PeriodQuery,
            errors=(400, 401),
        ),
        Op(
            "GET",
            "/api/v1/kpis/trend",
            "each KPI per day, week or month of a period (a unit token: its own, and the"
            " district's totals)",
            Object,
            query=KpiTrendQuery,
            errors=(400, 401),
        ),
        Op(
            "GET",
            "/api/v1/exceptions",
            "the exception ledger of a period, newest first: kind, decision, approver, reason",
            Object,
            query=LedgerQuery,
            errors=(400, 401),
        ),
        Op(
            "GET",
            "/api/v1/kpis/ranking",
            "streets or departments ranked on the weighted score (kpi_weights.csv; a unit"
            " token: its own row)",
            Object,
            query=KpiRankingQuery,
            errors=(400, 401),
        ),
        Op(
            "GET",
            "/api/v1/events",
            "server-sent case events in the caller's scope",
            query=EventsQuery,
            errors=(401,),
            stream="text/event-stream",
        ),
        Op(
            "GET",
            "/api/v1/hotspots",
            "hotspots (cluster, surge, repeat), newest first: a map layer and a list",
            HotspotList,
            query=HotspotQuery,
            errors=(401, 422),
        ),
        Op("GET", "/api/v1/openapi.json", "this document", Object, errors=(), public=True),
        *console.operations(),  # the console's reads
    ]


def spec(router: web.UrlDispatcher) -> dict[str, Any]:
    return document(
        "CityOps district operations centre",
        "Queues, case search and record, the district's decisions, routing rules, KPIs, "
        "hotspots and live events. Every route but this document needs a bearer token "
        "(`cityops token create`); street and department tokens see their unit's cases only.",
        with_undocumented(operations(), router),
    )


@routes.get("/api/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(spec(request.app.router))
