"""The case log: how a decision leaves its trace in the batch's `Changes`. Pure.

A transition of the state machine and its event in the case record (with the event's outbox
message), an event that does not move the case, a reply upstream, the units told, a task's
alarms (re)armed, and the work done after commit (metrics)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from contracts.hotline import ReplyKind
from contracts.tasks import TaskKind, TaskReason
from services.district.cases import messages
from services.district.cases.lifecycle import (
    CaseState,
    Event,
    ExceptionDecision,
    ExceptionKind,
    TaskState,
    next_state,
)
from services.district.cases.model import CaseRec, Changes, EventRec, ExceptionRec, TaskRec
from services.district.deadlines.alarms import first_alarm
from services.district.decisions.context import Context
from services.district.decisions.waits import DistrictWaits

#: the replies every order merged into a case gets too (each answered as its own order)
ANSWERS_MERGED = frozenset({ReplyKind.RESULT, ReplyKind.RETURNED})


class CaseLog:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        #: the district's own stages on the clock (triage, escalation and extension decisions)
        self.waits = DistrictWaits(ctx)

    def transition(
        self,
        case: CaseRec,
        event: Event,
        at: datetime,
        actor: str,
        ch: Changes,
        *,
        unit_code: str | None = None,
        data: dict[str, Any] | None = None,
        tasks: tuple[TaskRec, ...] = (),
        target: CaseState | None = None,
    ) -> EventRec:
        """Move the case by `event` (IllegalTransition when it cannot) and record it; a
        district stage it enters or leaves starts or ends its clock."""
        before = None if event is Event.OPENED else case.state
        case.state = next_state(before, event, target)
        rec = self._append(case, event.value, before, at, actor, ch, unit_code, data or {}, tasks)
        self.waits.sync(case, at, ch)
        return rec

    def record(
        self,
        case: CaseRec,
        type_: str,
        at: datetime,
        actor: str,
        ch: Changes,
        unit_code: str | None,
        data: dict[str, Any],
        tasks: tuple[TaskRec, ...] = (),
    ) -> EventRec:
        """Record an event that leaves the case in its state (a co-unit's report, a merge)."""
        return self._append(case, type_, case.state, at, actor, ch, unit_code, data, tasks)

    def _append(
        self,
        case: CaseRec,
        type_: str,
        before: CaseState | None,
        at: datetime,
        actor: str,
        ch: Changes,
        unit_code: str | None,
        data: dict[str, Any],
        tasks: tuple[TaskRec, ...],
    ) -> EventRec:
        case.last_seq += 1
        if ch.token_id is not None:  # the credential behind an operator's stated actor
            data = {**data, "token_id": ch.token_id}
        rec = EventRec(
            case.case_no,
            case.last_seq,
            case.district_code,
            type_,
            at,
            actor,
            before.value if before else None,
            case.state.value,
            unit_code,
            data,
        )
        ch.events.append(rec)
        ch.outbox.append(messages.event_message(rec))
        ch.touch(case, *tasks)
        return rec

    def reply(
        self,
        case: CaseRec,
        event: EventRec,
        kind: ReplyKind,
        unit: str,
        text: str,
        ch: Changes,
        *,
        merged_only: bool = False,
    ) -> None:
        """Reply to the 12345 order the case came from (road-chief reports get none) and, for a
        result or a return, to every order merged into it: each is answered as its own order."""
        name = self.ctx.ref.unit_name(unit)
        if case.source == "hotline12345" and not merged_only:
            ch.outbox.append(messages.reply_message(case, event, kind, unit, name, text))
        if kind in ANSWERS_MERGED:
            for order_no in case.merged_orders:
                ch.outbox.append(
                    messages.reply_message(case, event, kind, unit, name, text, order_no)
                )

    def reply_center(
        self, case: CaseRec, event: EventRec, kind: ReplyKind, text: str, ch: Changes
    ) -> None:
        """Reply upstream in the name of the district's centre."""
        self.reply(case, event, kind, self.ctx.ref.center.unit_code, text, ch)

    def tell_units(
        self,
        case: CaseRec,
        kind: TaskKind,
        note: str,
        ch: Changes,
        reason: TaskReason | None = None,
    ) -> None:
        """Send every active task a message; withdrawing also closes the tasks."""
        for task in case.active_tasks():
            if kind is TaskKind.WITHDRAWN:
                task.state = TaskState.WITHDRAWN
                ch.touch(case, task)
            ch.outbox.append(messages.task_message(case, task, kind, note, reason=reason))

    def exception(
        self,
        case: CaseRec,
        kind: ExceptionKind,
        decision: ExceptionDecision,
        approver: str,
        reason: str,
        at: datetime,
        ch: Changes,
        *,
        task: TaskRec | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """A decision on an exception path, into the ledger: who approved it (the stated
        actor and the API token behind it), why, for which unit; counted after commit."""
        unit = task.unit_code if task else case.handling_unit()
        token = None if decision is ExceptionDecision.AUTO else ch.token_id
        rec = ExceptionRec(
            case.district_code,
            case.case_no,
            task.task_id if task else None,
            unit,
            kind,
            decision,
            approver,
            token,
            reason,
            at,
            detail or {},
        )
        ch.exceptions.append(rec)
        m = self.ctx.metrics
        self.after(ch, lambda: m.exceptions.labels(kind.value, decision.value).inc())

    def arm(self, case: CaseRec, task: TaskRec, ch: Changes) -> None:
        """(Re)compute when the task's next warning or deadline falls."""
        first = first_alarm(task, case.urgency, self.ctx.calendar, self.ctx.policy.warn_fraction)
        ch.timers[task.task_id] = (task, first)

    def municipal_missed(self, case: CaseRec, now: datetime, ch: Changes) -> None:
        """A task is due after the municipal due time, which has passed: the case records,
        once, that it missed it (the task keeps the policy's own deadlines)."""
        due = case.municipal_due
        if due is None or due > now or case.municipal_missed_at is not None:
            return
        case.municipal_missed_at = now
        unit = case.handling_unit() or "none"
        data = {"municipal_due": due.isoformat()}
        self.record(case, "municipal_due_missed", now, "deadlines", ch, case.handling_unit(), data)
        m = self.ctx.metrics
        self.after(ch, lambda: m.municipal_missed.labels(unit).inc())

    @staticmethod
    def after(ch: Changes, fn: Callable[[], None]) -> None:
        """Work for after the batch commits (metrics move only for what is durable)."""
        ch.after_commit.append(fn)

    def stage(self, ch: Changes, stage: str, start: datetime, end: datetime) -> None:
        """Observe how long a stage of the case took, after commit."""
        seconds = max((end - start).total_seconds(), 0.0)
        self.after(ch, lambda: self.ctx.metrics.stage_duration.labels(stage).observe(seconds))
