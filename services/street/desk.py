"""The street operator's actions: each becomes one `cityops.task-feedback/v1` message."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from contracts import topics
from contracts.tasks import FeedbackAction, TaskFeedback
from services.common import outbox
from services.street import queries

OUTBOX = "street.outbox"
#: the local state a task shows after the operator's action (the district decides for real).
STATE_AFTER = {
    FeedbackAction.ACCEPT: "accepted",
    FeedbackAction.CONTACT: "contacted",
    FeedbackAction.RESOLVE: "resolved",
    FeedbackAction.RETURN: "returned",
    FeedbackAction.ESCALATE: "escalated",
}
CLOSED_STATES = {"resolved", "returned", "escalated", "withdrawn"}


class DeskError(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


async def act(
    pool: asyncpg.Pool,
    task_id: str,
    body: dict[str, Any],
    units: list[str],
    submit: Callable[[outbox.Pending], None],
    feedback_id: str | None = None,
    token_id: str | None = None,
) -> TaskFeedback:
    """Validate the action against the local task and queue its feedback message, which
    carries the operator's token id (`token_id`) beside the actor the body names."""
    async with pool.acquire() as conn, conn.transaction():
        task = await queries.get_task(conn, task_id, lock=True)
        if task is None or task["unit_code"] not in units:
            raise DeskError(404, "not_found", f"no task {task_id}")
        if task["state"] in CLOSED_STATES:
            raise DeskError(409, "task_closed", f"task {task_id} is {task['state']}")
        try:
            fb = TaskFeedback.model_validate(
                {
                    **body,
                    "schema": "cityops.task-feedback/v1",
                    "feedback_id": feedback_id or str(uuid.uuid4()),
                    "task_id": task_id,
                    "case_no": task["case_no"],
                    "unit_code": task["unit_code"],
                    "at": datetime.now(UTC).isoformat(),
                    "token_id": token_id,
                }
            )
        except ValidationError as exc:
            raise DeskError(422, "invalid_action", str(exc.errors(include_url=False))) from None
        missing = fb.missing_field()
        if missing:
            raise DeskError(422, "missing_field", f"action {fb.action} requires {missing}")
        if fb.action in STATE_AFTER:
            await queries.set_state(conn, task_id, STATE_AFTER[fb.action])
        pending = await outbox.write(
            conn, [outbox.OutMessage.of(topics.TASK_FEEDBACK, task_id, fb)], OUTBOX
        )
    submit(pending)
    return fb
