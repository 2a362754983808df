"""退单 / 改派: a unit's return waits for the district's decision (国办函〔2025〕66号: 派单异议 are
reviewed, not re-dispatched blindly). Pure.

- A lead unit's return leaves the case `returned`, on the district's queue; an operator
  approves it (the case goes to the unit named, or the one routing suggests, or to triage) or
  refuses it (the task goes back to the unit, told why with `updated`, reason
  `return_refused`). Where the case's routing rule says `auto_redispatch_returns`, routing
  approves it at once.
- A co-unit's return (联勤联动) puts "replace co-unit" on the queue: approved with a
  replacement unit, approved without one (dismissed), or refused.
Every decision is a row of the exception ledger; a taken return is acknowledged to the unit
with `withdrawn`, reason `returned`."""

from __future__ import annotations

from datetime import datetime

from contracts.tasks import TaskKind, TaskReason, TaskRole
from services.district.cases import messages
from services.district.cases.lifecycle import (
    RESUMED,
    CaseState,
    Event,
    ExceptionDecision,
    ExceptionKind,
    TaskState,
)
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.decisions.context import Context, Refused
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.log import CaseLog
from services.district.routing.rules import redispatch_target

_TAKEN = "退单已收到"


class Returns:
    def __init__(self, ctx: Context, log: CaseLog, dispatch: Dispatch) -> None:
        self.ctx, self.log, self.dispatch = ctx, log, dispatch

    def auto(self, case: CaseRec) -> bool:
        """Whether the case's routing rule re-dispatches a return without a decision."""
        category = self.ctx.ref.categories[case.category_code]
        return self.ctx.ref.rule(category, case.urgency, case.source).auto_redispatch_returns

    def take_automatically(self, case: CaseRec, task: TaskRec, at: datetime, ch: Changes) -> None:
        """The routing rule approves the lead's return: where routing suggests, or triage."""
        self._take_lead(case, task, None, "routing", "", ExceptionDecision.AUTO, at, ch)

    def decide(
        self,
        case: CaseRec,
        task_id: str | None,
        approve: bool,
        unit: str | None,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> None:
        """An operator's decision on the return waiting on the queue: the lead's (the case is
        `returned`; `task_id` may be left out) or a co-unit's (`task_id` names it)."""
        task = self._pending(case, task_id)
        if not reason.strip():
            raise Refused("a decision on a return needs a reason")
        if unit is not None:
            self.dispatch.known_unit(unit)
        if not approve:
            self._refuse(case, task, actor, reason, now, ch)
        elif task.role is TaskRole.CO:
            self._take_co(case, task, unit, actor, reason, now, ch)
        else:
            self._take_lead(case, task, unit, actor, reason, ExceptionDecision.APPROVED, now, ch)

    def _pending(self, case: CaseRec, task_id: str | None) -> TaskRec:
        if task_id is None:
            task = case.last_lead()
            if case.state is not CaseState.RETURNED or task is None:
                raise Refused(f"case {case.case_no} has no return waiting for a decision")
            return task
        task = case.task(task_id)
        if task is None or task.state is not TaskState.RETURNED:
            raise Refused(f"task {task_id} is not a return waiting for a decision")
        if task.role is TaskRole.LEAD and case.state is not CaseState.RETURNED:
            raise Refused(f"the return of task {task_id} was decided already")
        return task

    def _take_lead(
        self,
        case: CaseRec,
        task: TaskRec,
        unit: str | None,
        actor: str,
        reason: str,
        decision: ExceptionDecision,
        now: datetime,
        ch: Changes,
    ) -> None:
        returned = task.return_reason or "other"
        suggested, why = redispatch_target(case, task.unit_code, returned, self.ctx.ref)
        target = unit or suggested
        data = {"task_id": task.task_id, "decision": decision, "reason": reason or why}
        self.log.transition(
            case, Event.RETURN_APPROVED, now, actor, ch, unit_code=task.unit_code, data=data
        )
        detail = {"redispatch_to": target, "routing": why}
        self.log.exception(
            case,
            ExceptionKind.RETURN,
            decision,
            actor,
            reason or why,
            now,
            ch,
            task=task,
            detail=detail,
        )
        self._acknowledge(case, task, ch)
        if target is None:
            self.log.transition(case, Event.TO_TRIAGE, now, actor, ch, data={"reason": why})
        elif unit is not None:
            self.dispatch.to_unit(case, unit, actor, f"退单改派: {reason}", now, ch)
        else:
            self.dispatch.task(case, target, now, ch, reason=why, actor=actor)

    def _take_co(
        self,
        case: CaseRec,
        task: TaskRec,
        unit: str | None,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> None:
        """The co-unit's return taken: replaced by `unit`, or dismissed (None)."""
        task.state = TaskState.WITHDRAWN
        data = {"task_id": task.task_id, "replaced_by": unit, "reason": reason}
        self.log.record(case, "co_return_approved", now, actor, ch, task.unit_code, data, (task,))
        detail = {"replaced_by": unit}
        self.log.exception(
            case,
            ExceptionKind.RETURN,
            ExceptionDecision.APPROVED,
            actor,
            reason,
            now,
            ch,
            task=task,
            detail=detail,
        )
        self._acknowledge(case, task, ch)
        if unit is not None:
            self.dispatch.add_co_units(case, [unit], actor, f"替换协办单位: {reason}", now, ch)

    def _refuse(
        self, case: CaseRec, task: TaskRec, actor: str, reason: str, now: datetime, ch: Changes
    ) -> None:
        """The return refused: the task is the unit's again, where its work stood, with the
        deadlines it had; the unit is told why."""
        task.state = task.resume_state()
        data = {"task_id": task.task_id, "reason": reason}
        if task.role is TaskRole.LEAD:
            target = RESUMED[task.state]
            self.log.transition(
                case,
                Event.RETURN_REFUSED,
                now,
                actor,
                ch,
                target=target,
                unit_code=task.unit_code,
                data=data,
                tasks=(task,),
            )
        else:
            self.log.record(
                case, "co_return_refused", now, actor, ch, task.unit_code, data, (task,)
            )
        self.log.exception(
            case, ExceptionKind.RETURN, ExceptionDecision.REFUSED, actor, reason, now, ch, task=task
        )
        self.log.arm(case, task, ch)
        note = f"退单未批准: {reason}"
        ch.outbox.append(
            messages.task_message(
                case, task, TaskKind.UPDATED, note, reason=TaskReason.RETURN_REFUSED
            )
        )

    @staticmethod
    def _acknowledge(case: CaseRec, task: TaskRec, ch: Changes) -> None:
        """The district has taken the unit's return: `withdrawn` tells it so."""
        msg = messages.task_message(
            case, task, TaskKind.WITHDRAWN, _TAKEN, reason=TaskReason.RETURNED
        )
        ch.outbox.append(msg)
