"""What a district operator decides about a case (besides dispatching and merging it):
extensions, supervision (督办), verification, parking (挂账), rejection, reclassifying (and
routing again), revealing the
caller's phone to a unit. Pure: every decision mutates records and appends to `Changes`."""

from __future__ import annotations

from datetime import datetime

from contracts.hotline import ReplyKind
from contracts.tasks import TaskKind, TaskReason, TaskRole
from services.district.cases import messages
from services.district.cases.lifecycle import (
    RESUMED,
    CaseState,
    Event,
    ExceptionDecision,
    ExceptionKind,
    TaskState,
    next_state,
)
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.alarms import STAGES
from services.district.deadlines.pause import resumed_deadline, resumed_start
from services.district.deadlines.policy import is_natural
from services.district.decisions.context import Context, Forbidden, Refused, Withheld
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.log import CaseLog
from services.district.decisions.upstream import Upstream
from services.district.routing.rules import effective_urgency


class Operator:
    def __init__(self, ctx: Context, log: CaseLog, dispatch: Dispatch, upstream: Upstream) -> None:
        self.ctx, self.log, self.dispatch, self.upstream = ctx, log, dispatch, upstream

    def decide_extension(
        self,
        case: CaseRec,
        task_id: str,
        approve: bool,
        until: datetime | None,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> None:
        """Approve (the deadline moves, at most the policy's maximum after dispatch) or refuse."""
        task = _active_task(case, task_id)
        if not approve:
            self._refuse_extension(case, task, actor, reason, now, ch)
            return
        if until is None or until <= task.resolve_by:
            raise Refused("an approved extension needs `until` later than the current deadline")
        longest = self.ctx.policy.max_extension.after(
            task.dispatched_at, self.ctx.calendar, natural=False
        )
        before = task.deadlines()
        self.log.waits.extension_decided(case, task, ch)
        moved, task.resolve_by = task.resolve_by, min(until, longest)
        if task.role == TaskRole.LEAD:
            case.resolve_by = task.resolve_by
            case.move_due(task.resolve_by - moved)  # the time the extension granted
        self.log.arm(case, task, ch)
        data = {
            "task_id": task_id,
            "reason": reason,
            "deadlines_before": before,
            "deadlines_after": task.deadlines(),
        }
        ev = self.log.transition(
            case,
            Event.EXTENSION_APPROVED,
            now,
            actor,
            ch,
            unit_code=task.unit_code,
            tasks=(task,),
            data=data,
        )
        text = f"延期至{task.resolve_by.astimezone(self.ctx.calendar.tz):%Y-%m-%d %H:%M}。{reason}"
        self.log.reply(case, ev, ReplyKind.EXTENSION, task.unit_code, text, ch)
        ch.outbox.append(messages.task_message(case, task, TaskKind.UPDATED, text))
        self._count_extension(ch, task, "approved")
        detail = {"deadlines_before": before, "deadlines_after": task.deadlines()}
        self.log.exception(
            case,
            ExceptionKind.EXTENSION,
            ExceptionDecision.APPROVED,
            actor,
            reason,
            now,
            ch,
            task=task,
            detail=detail,
        )

    def _refuse_extension(
        self, case: CaseRec, task: TaskRec, actor: str, reason: str, now: datetime, ch: Changes
    ) -> None:
        data = {"task_id": task.task_id, "reason": reason}
        self.log.waits.extension_decided(case, task, ch)
        self.log.transition(
            case, Event.EXTENSION_REFUSED, now, actor, ch, unit_code=task.unit_code, data=data
        )
        note = f"延期申请未批准: {reason}"
        ch.outbox.append(messages.task_message(case, task, TaskKind.UPDATED, note))
        self._count_extension(ch, task, "refused")
        refused = ExceptionDecision.REFUSED
        self.log.exception(
            case, ExceptionKind.EXTENSION, refused, actor, reason, now, ch, task=task
        )

    def _count_extension(self, ch: Changes, task: TaskRec, outcome: str) -> None:
        m, unit = self.ctx.metrics, task.unit_code
        self.log.after(ch, lambda: m.extensions.labels(unit, outcome).inc())

    def supervise(
        self,
        case: CaseRec,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
        *,
        stage: str | None = None,
    ) -> None:
        """督办: flag the case, urge every unit working on it, show it on the district queue."""
        case.supervised = True
        mode = "auto" if stage else "manual"
        unit = case.handling_unit()
        data: dict[str, object] = {"mode": mode, "stage": stage, "reason": reason}
        lead = case.lead()
        if lead is not None and lead.resolve_by <= now:
            # past its deadline: the lead task gets the supervised deadline (3 WD) to work to;
            # the case keeps the one it was given, so it stays late (按期结案率, the queues)
            data["deadlines_before"] = lead.deadlines()
            lead.resolve_by = self.ctx.policy.supervised.after(
                now, self.ctx.calendar, is_natural(case.urgency)
            )
            data["deadlines_after"] = lead.deadlines()
            self.log.arm(case, lead, ch)
            ch.touch(case, lead)
        self.log.transition(case, Event.SUPERVISED, now, actor, ch, unit_code=unit, data=data)
        if "deadlines_after" in data:
            self.log.municipal_missed(case, now, ch)
        why = TaskReason.OVERDUE if stage else TaskReason.SUPERVISION
        self.log.tell_units(case, TaskKind.URGED, f"督办: {reason}", ch, why)
        m = self.ctx.metrics
        self.log.after(ch, lambda: m.supervisions.labels(unit or "none", mode).inc())

    def verify(
        self, case: CaseRec, ok: bool, actor: str, note: str, now: datetime, ch: Changes
    ) -> None:
        """The district checks a resolved case: close it, or send it back (再次处置)."""
        unit = case.handling_unit() or ""
        if ok:
            self.upstream.close(case, unit, now, ch, event=Event.VERIFIED, actor=actor)
            return
        self.dispatch.task(
            case,
            unit,
            now,
            ch,
            reason=f"核查未通过: {note}",
            reopened=True,
            event=Event.VERIFY_FAILED,
            actor=actor,
        )

    def park(self, case: CaseRec, actor: str, reason: str, now: datetime, ch: Changes) -> None:
        """挂账: approved as not solvable now; its tasks' clocks stop and they leave the overdue
        counts."""
        case.parked_at = now
        for task in case.active_tasks():
            task.state = TaskState.PARKED
            self.log.arm(case, task, ch)
            ch.touch(case, task)
        unit, data = case.handling_unit(), {"reason": reason}
        self.log.transition(case, Event.PARKED, now, actor, ch, unit_code=unit, data=data)
        approved = ExceptionDecision.APPROVED
        self.log.exception(case, ExceptionKind.PARKING, approved, actor, reason, now, ch)

    def unpark(self, case: CaseRec, actor: str, reason: str, now: datetime, ch: Changes) -> None:
        """The parked case resumes where its work stood, each task with the time it had left."""
        data: dict[str, object] = {"reason": reason}
        for task in [t for t in case.tasks if t.state == TaskState.PARKED]:
            before, moved = task.deadlines(), task.resolve_by
            task.state = task.resume_state()
            self._resume_clock(case, task, now)
            if task.role is TaskRole.LEAD:
                data.update(deadlines_before=before, deadlines_after=task.deadlines())
                case.resolve_by = task.resolve_by
                case.move_due(task.resolve_by - moved)  # parking stopped the clock
            self.log.arm(case, task, ch)
            ch.touch(case, task)
        case.parked_at = None
        lead = case.lead()
        target = CaseState.TRIAGE if lead is None else RESUMED[lead.state]
        self.log.transition(
            case,
            Event.UNPARKED,
            now,
            actor,
            ch,
            target=target,
            unit_code=lead.unit_code if lead else None,
            data=data,
        )
        for task in case.active_tasks():
            ch.outbox.append(
                messages.task_message(case, task, TaskKind.UPDATED, f"恢复办理: {reason}")
            )

    def _resume_clock(self, case: CaseRec, task: TaskRec, now: datetime) -> None:
        """Every unfinished stage resumes with the time it had left when the case was parked."""
        parked_at = case.parked_at
        if parked_at is None:  # parked before parking kept its time: resumes as it was
            return
        cal, natural = self.ctx.calendar, is_natural(case.urgency)
        for attr, done in STAGES.values():
            deadline = getattr(task, attr)
            if deadline is not None and done(task) is None:
                setattr(task, attr, resumed_deadline(deadline, parked_at, now, cal, natural))
        task.clock_start = resumed_start(task.started, parked_at, now, cal, natural)

    def reclassify(
        self,
        case: CaseRec,
        category_code: str,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> None:
        """A new category (a district operator's): the units' tasks are withdrawn and the case
        is routed again by it (or waits in triage), the urgency rising to the category's."""
        category = self.ctx.ref.categories.get(category_code)
        if category is None:
            raise Refused(f"unknown category {category_code!r}")
        if category.code == case.category_code:
            raise Refused(f"the case is already in category {category_code}")
        next_state(case.state, Event.RECLASSIFIED)  # refused before anything changes
        before = {"code": case.category_code, "name": case.category_name}
        withdrawn = [t.task_id for t in case.active_tasks()]
        note = f"案件重新分类为「{category.name}」，任务撤回。"
        self.log.tell_units(case, TaskKind.WITHDRAWN, note, ch)
        case.category_code, case.category_name = category.code, category.name
        case.urgency = effective_urgency(case.urgency, category)
        data = {
            "category_before": before,
            "category_after": {"code": category.code, "name": category.name},
            "withdrawn": withdrawn,
            "reason": reason,
        }
        unit = case.handling_unit()
        self.log.transition(case, Event.RECLASSIFIED, now, actor, ch, unit_code=unit, data=data)
        self.dispatch.route(case, now, None, ch)

    def reject(self, case: CaseRec, actor: str, reason: str, now: datetime, ch: Changes) -> None:
        """Return the order upstream (退回): not for the district to handle."""
        data = {"reason": reason}
        ev = self.log.transition(case, Event.REJECTED, now, actor, ch, data=data)
        self.log.reply_center(case, ev, ReplyKind.RETURNED, reason, ch)
        approved = ExceptionDecision.APPROVED
        self.log.exception(case, ExceptionKind.CANCELLATION, approved, actor, reason, now, ch)

    def reveal_phone(
        self,
        case: CaseRec,
        unit: str | None,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
        *,
        supervisor: bool = False,
    ) -> str:
        """The caller's phone, to call the citizen back: for a unit holding an active task of
        the case, or for a district supervisor stating a reason; never for an anonymous
        caller or one who asked for no call-back. Recorded as `phone_revealed` with who,
        which unit (none for the district) and why, never the number."""
        if case.caller_anonymous:
            raise Withheld(f"the caller of case {case.case_no} is anonymous")
        if not case.caller_callback:
            raise Withheld(f"the caller of case {case.case_no} asked for no call-back")
        if supervisor:
            if not reason.strip():
                raise Refused("a district supervisor reveals a phone only with a reason")
        elif not any(t.unit_code == unit for t in case.active_tasks()):
            raise Forbidden(f"unit {unit} holds no active task of case {case.case_no}")
        if case.caller_phone_sealed is None:
            raise Refused(f"case {case.case_no} has no caller phone")
        phone = self.ctx.vault.open(case.caller_phone_sealed)
        data = {"actor": actor, "unit_code": unit, "reason": reason}
        if supervisor:
            data["role"] = "district_supervisor"
        self.log.record(case, "phone_revealed", now, actor, ch, unit, data)
        return phone


def _active_task(case: CaseRec, task_id: str) -> TaskRec:
    task = case.task(task_id)
    if task is None or not task.active:
        raise Refused(f"task {task_id} is not an active task of case {case.case_no}")
    return task
