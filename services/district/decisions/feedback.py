"""A unit's feedback on its task: accept, contact, progress, resolve, return, escalate, ask
for an extension. Pure. 联勤联动: a co-unit's report is recorded without moving the case; the
case resolves when its lead resolves, the co-units' open tasks then withdrawn (`lead_resolved`),
and their later reports still recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from contracts.hotline import ReplyKind
from contracts.tasks import (
    FeedbackAction,
    ResolveOutcome,
    TaskFeedback,
    TaskKind,
    TaskReason,
    TaskRole,
)
from services.district.cases import messages
from services.district.cases.lifecycle import Event, TaskState
from services.district.cases.model import CaseRec, Changes, EventRec, TaskRec
from services.district.decisions.context import Context, Refused
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.log import CaseLog
from services.district.decisions.returns import Returns

_Handler = Callable[[CaseRec, TaskRec, TaskFeedback, datetime, Changes], None]


class UnitFeedback:
    def __init__(self, ctx: Context, log: CaseLog, dispatch: Dispatch, returns: Returns) -> None:
        self.ctx, self.log, self.dispatch, self.returns = ctx, log, dispatch, returns
        self._handlers: dict[FeedbackAction, _Handler] = {
            FeedbackAction.ACCEPT: self._accept,
            FeedbackAction.CONTACT: self._contact,
            FeedbackAction.PROGRESS: self._progress,
            FeedbackAction.RESOLVE: self._resolve,
            FeedbackAction.RETURN: self._return,
            FeedbackAction.ESCALATE: self._escalate,
            FeedbackAction.REQUEST_EXTENSION: self._request_extension,
        }

    def apply(self, case: CaseRec, fb: TaskFeedback, now: datetime, ch: Changes) -> None:
        """Refused unless the unit holds the task, the task is active and the action complete."""
        task = case.task(fb.task_id)
        if task is None or task.unit_code != fb.unit_code:
            raise Refused(f"unit {fb.unit_code} does not hold task {fb.task_id}")
        missing = fb.missing_field()
        if missing:
            raise Refused(f"action {fb.action} requires {missing}")
        at = min(fb.at, now)
        if _after_lead(case, task):  # 联勤联动: recorded, changes nothing
            self._late_co_report(case, task, fb, at, ch)
            return
        if not task.active:
            raise Refused(f"task {fb.task_id} is {task.state}, no longer active")
        held, ch.token_id = ch.token_id, fb.token_id or ch.token_id
        try:  # the desk's token, when the feedback came through one, goes into each event
            self._handlers[fb.action](case, task, fb, at, ch)
        finally:
            ch.token_id = held
        m, action = self.ctx.metrics, fb.action.value
        self.log.after(ch, lambda: m.task_actions.labels(task.unit_code, action).inc())

    def _accept(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        if task.state != TaskState.ASSIGNED:
            raise Refused(f"task {task.task_id} is already {task.state}")
        task.state, task.accepted_at = TaskState.ACCEPTED, at
        ev = self._unit_event(case, task, Event.ACCEPTED, fb, at, ch)
        self.log.reply(case, ev, ReplyKind.ACCEPTED, task.unit_code, fb.note or "已签收。", ch)
        self.log.stage(ch, "accept", task.dispatched_at, at)

    def _contact(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        first = task.contacted_at is None
        task.accepted_at = task.accepted_at or at
        task.state, task.contacted_at = TaskState.CONTACTED, task.contacted_at or at
        ev = self._unit_event(case, task, Event.CONTACTED, fb, at, ch)
        if first:
            text = fb.note or "已联系市民。"
            self.log.reply(case, ev, ReplyKind.FIRST_CONTACT, task.unit_code, text, ch)
            self.log.stage(ch, "first_contact", task.dispatched_at, at)

    def _progress(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        self._unit_event(case, task, Event.PROGRESSED, fb, at, ch)

    def _resolve(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        assert fb.result is not None
        task.state, task.resolved_at, task.summary = TaskState.RESOLVED, at, fb.result.summary
        data = {
            "resolved": fb.result.resolved,
            "outcome": fb.result.outcome or ResolveOutcome.SOLVED,  # 解决 or 解释说明
            "summary": fb.result.summary,
            "feedback_id": fb.feedback_id,
            "task_id": task.task_id,
        }
        self.log.stage(ch, "resolve", task.dispatched_at, at)
        if task.role == TaskRole.CO:  # 联勤联动: recorded; the case resolves with its lead
            self.log.record(case, "co_reported", at, fb.actor.id, ch, task.unit_code, data, (task,))
            return
        co = [t for t in case.active_tasks() if t.role == TaskRole.CO]
        if co:
            data["co_withdrawn"] = [t.task_id for t in co]
        case.resolved_at = at
        ev = self.log.transition(
            case,
            Event.RESOLVED,
            at,
            fb.actor.id,
            ch,
            unit_code=task.unit_code,
            data=data,
            tasks=(task,),
        )
        self.log.reply(case, ev, ReplyKind.RESULT, task.unit_code, task.summary or "", ch)
        note = "主办单位已办结，协办任务撤回。"
        self.log.tell_units(case, TaskKind.WITHDRAWN, note, ch, TaskReason.LEAD_RESOLVED)

    def _late_co_report(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        """A co-unit's report after its task was withdrawn by the lead's resolution."""
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "feedback_id": fb.feedback_id,
            "action": fb.action.value,
            "note": fb.note,
            "actor_name": fb.actor.name,
        }
        if fb.result is not None:
            data["result"] = fb.result.model_dump(mode="json", exclude_none=True)
        self.log.record(case, "co_reported_late", at, fb.actor.id, ch, task.unit_code, data)

    def _return(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        """退单 waits for the district's decision (`decisions.returns`), unless the case's
        routing rule re-dispatches returns by itself; a co-unit's waits as "replace co-unit"."""
        assert fb.reason is not None
        task.state, task.return_reason = TaskState.RETURNED, fb.reason.value
        lead = task.role == TaskRole.LEAD
        case.returns += lead  # a co-unit's return does not count towards the lead's routing
        self._unit_event(case, task, Event.RETURNED, fb, at, ch, {"reason": fb.reason.value})
        if lead and self.returns.auto(case):
            self.returns.take_automatically(case, task, at, ch)

    def _escalate(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        task.state = TaskState.RETURNED
        data = {"co_units": list(fb.co_units)}
        self._unit_event(case, task, Event.ESCALATED, fb, at, ch, data)
        self._acknowledge(case, task, TaskReason.ESCALATED, "上报已收到，由区城运中心处理", ch)

    @staticmethod
    def _acknowledge(
        case: CaseRec, task: TaskRec, reason: TaskReason, note: str, ch: Changes
    ) -> None:
        """The district has taken the unit's return or escalation: `withdrawn` tells it so."""
        ch.outbox.append(messages.task_message(case, task, TaskKind.WITHDRAWN, note, reason=reason))

    def _request_extension(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        assert fb.requested_until is not None
        data = {"requested_until": fb.requested_until.isoformat()}
        self._unit_event(case, task, Event.EXTENSION_REQUESTED, fb, at, ch, data)
        self.log.waits.extension_asked(case, task, at, ch)

    def _unit_event(
        self,
        case: CaseRec,
        task: TaskRec,
        event: Event,
        fb: TaskFeedback,
        at: datetime,
        ch: Changes,
        data: dict[str, Any] | None = None,
    ) -> EventRec:
        payload = {
            "task_id": task.task_id,
            "feedback_id": fb.feedback_id,
            "note": fb.note,
            "actor_name": fb.actor.name,
            **(data or {}),
        }
        actor, unit = fb.actor.id, task.unit_code
        if task.role != TaskRole.LEAD:  # a co-unit's report does not move the case
            return self.log.record(case, event.value, at, actor, ch, unit, payload, (task,))
        return self.log.transition(
            case, event, at, actor, ch, unit_code=unit, data=payload, tasks=(task,)
        )


def _after_lead(case: CaseRec, task: TaskRec) -> bool:
    """A co-unit's task withdrawn because its lead resolved the case."""
    return (
        task.role == TaskRole.CO
        and task.state == TaskState.WITHDRAWN
        and any(t.role == TaskRole.LEAD and t.state == TaskState.RESOLVED for t in case.tasks)
    )
