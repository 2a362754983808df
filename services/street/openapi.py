"""The street desk's OpenAPI document, `GET /api/v1/openapi.json`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.common import Actor
from contracts.tasks import FeedbackAction, ResolveResult, ReturnReason
from services.common.openapi import Object, Op, document, with_undocumented
from services.street.desk_kpis import operations as desk_operations

routes = web.RouteTableDef()


class TaskQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str | None = Field(default=None, description="one of the caller's units")
    state: (
        Literal["open", "accepted", "contacted", "resolved", "returned", "escalated", "withdrawn"]
        | None
    ) = None
    limit: int = Field(default=50, ge=1, le=500)
    after: str | None = Field(default=None, description="the `next` cursor")


class Countdown(BaseModel):
    stage: Literal["accept", "first_contact", "resolve"] = Field(description="the step owed")
    due_at: datetime
    remaining_s: int = Field(description="time left (negative: overdue by), counted as below")
    natural: bool = Field(description="natural time (urgent, critical) or office time")
    ticking: bool = Field(description="whether the time left shrinks now (office hours)")


class DeskTask(BaseModel):
    model_config = ConfigDict(extra="allow")
    task_id: str
    case_no: str
    unit_code: str
    kind: str
    role: str
    state: str
    deadlines: dict[str, Any]
    snapshot: dict[str, Any] = Field(description="the case, the caller's phone masked")
    dispatched_at: datetime
    updated_at: datetime
    countdown: Countdown | None = Field(description="to the next deadline; none when inactive")


class TaskPage(BaseModel):
    as_of: datetime
    items: list[DeskTask]
    next: str | None
    next_change_at: datetime | None = Field(description="when office time starts or stops next")


class ActionRequest(BaseModel):
    """One action on a task; becomes a `cityops.task-feedback/v1` message."""

    action: FeedbackAction
    actor: Actor
    note: str = Field(default="", max_length=4000)
    reason: ReturnReason | None = Field(default=None, description="required to return")
    requested_until: AwareDatetime | None = Field(default=None, description="for an extension")
    result: ResolveResult | None = Field(default=None, description="required to resolve")
    co_units: list[str] = Field(default_factory=list, max_length=20)


class ActionSent(BaseModel):
    feedback_id: str
    action: FeedbackAction
    status: Literal["sent"]


def operations() -> list[Op]:
    return [
        Op(
            "GET",
            "/api/v1/tasks",
            "the caller's tasks, oldest first",
            TaskPage,
            query=TaskQuery,
            errors=(401, 404),
        ),
        Op("GET", "/api/v1/tasks/{task_id}", "one task", DeskTask, errors=(401, 404)),
        Op(
            "POST",
            "/api/v1/tasks/{task_id}/actions",
            "act on one of the unit's tasks (street and department operators)",
            ActionSent,
            ok_status=202,
            body=ActionRequest,
            errors=(401, 403, 404, 409),
            headers={"Idempotency-Key": "becomes the feedback_id"},
        ),
        Op("GET", "/api/v1/openapi.json", "this document", Object, errors=(), public=True),
        *desk_operations(),  # the desk screen's reads
    ]


def spec(router: web.UrlDispatcher) -> dict[str, Any]:
    return document(
        "CityOps street desk",
        "A street's or department's tasks and the operator's actions. A unit token sees and "
        "acts on its unit's tasks only; district tokens may read every unit's.",
        with_undocumented(operations(), router),
    )


@routes.get("/api/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(spec(request.app.router))
