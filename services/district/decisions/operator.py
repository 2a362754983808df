"""What the district decides about a case: manual triage, joint tasks, extensions, supervision
(by hand or when a deadline falls due), verification, parking, rejection. Pure, like the
workflow it extends: every decision mutates records and appends to `Changes`."""

from __future__ import annotations

from datetime import datetime

from contracts.hotline import ReplyKind, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import TaskKind
from services.district.cases import messages
from services.district.cases.lifecycle import TERMINAL, Event, State
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.alarms import Alarm
from services.district.deadlines.policy import is_natural
from services.district.decisions.workflow import Refused, Workflow, _task_deadlines, source_of


class Forbidden(Exception):
    """The acting unit may not do this to the case (HTTP 403)."""


class DistrictDesk(Workflow):
    """The workflow plus the district operators' and timers' decisions."""

    def dispatch_to(
        self, case: CaseRec, unit: str, actor: str, reason: str, now: datetime, ch: Changes
    ) -> TaskRec:
        """Manual triage or re-dispatch of a case waiting at the district."""
        self._known_unit(unit)
        return self._dispatch(
            case, unit, now, ch, None, reason=reason or "manual triage", actor=actor
        )

    def joint_dispatch(
        self,
        case: CaseRec,
        lead: str,
        co_units: list[str],
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> list[TaskRec]:
        """联勤联动: one lead unit and co-units, each with its own task."""
        if not co_units or lead in co_units or len(set(co_units)) != len(co_units):
            raise Refused("a joint task needs a lead and distinct co-units other than the lead")
        for unit in (lead, *co_units):
            self._known_unit(unit)
        first = self._dispatch(
            case,
            lead,
            now,
            ch,
            None,
            reason=reason or "联勤联动",
            event=Event.JOINT_DISPATCHED,
            actor=actor,
        )
        return [first] + [
            self._dispatch(
                case, unit, now, ch, None, reason=reason or "联勤联动 协办", role="co", actor=actor
            )
            for unit in co_units
        ]

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
        task = self._active_task(case, task_id)
        if not approve:
            self._transition(
                case,
                Event.EXTENSION_REFUSED,
                now,
                actor,
                ch,
                unit_code=task.unit_code,
                data={"task_id": task_id, "reason": reason},
            )
            ch.outbox.append(
                messages.task_message(case, task, TaskKind.UPDATED, f"延期申请未批准: {reason}")
            )
            self._after(ch, lambda: self.m.extensions.labels(task.unit_code, "refused").inc())
            return
        if until is None or until <= task.resolve_by:
            raise Refused("an approved extension needs `until` later than the current deadline")
        longest = self.ctx.policy.max_extension.after(
            task.dispatched_at, self.ctx.calendar, natural=False
        )
        before = _task_deadlines(task)
        task.resolve_by = min(until, longest)
        if task.role == "lead":
            case.resolve_by = task.resolve_by
        self._arm(case, task, ch)
        ev = self._transition(
            case,
            Event.EXTENSION_APPROVED,
            now,
            actor,
            ch,
            unit_code=task.unit_code,
            tasks=(task,),
            data={
                "task_id": task_id,
                "reason": reason,
                "deadlines_before": before,
                "deadlines_after": _task_deadlines(task),
            },
        )
        text = f"延期至{task.resolve_by.astimezone(self.ctx.calendar.tz):%Y-%m-%d %H:%M}。{reason}"
        self._reply(case, ev, ReplyKind.EXTENSION, task.unit_code, text, ch)
        ch.outbox.append(messages.task_message(case, task, TaskKind.UPDATED, text))
        self._after(ch, lambda: self.m.extensions.labels(task.unit_code, "approved").inc())

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
            # past its deadline: a supervised case gets the supervised deadline (3 WD)
            data["deadlines_before"] = _task_deadlines(lead)
            lead.resolve_by = case.resolve_by = self.ctx.policy.supervised.after(
                now, self.ctx.calendar, is_natural(case.urgency)
            )
            data["deadlines_after"] = _task_deadlines(lead)
            self._arm(case, lead, ch)
            ch.touch(case, lead)
        self._transition(case, Event.SUPERVISED, now, actor, ch, unit_code=unit, data=data)
        self._tell_units(case, TaskKind.URGED, f"督办: {reason}", ch)
        self._after(ch, lambda: self.m.supervisions.labels(unit or "none", mode).inc())

    def alarm(self, case: CaseRec, task: TaskRec, alarm: Alarm, now: datetime, ch: Changes) -> None:
        """A task's deadline warned (80%) or fell overdue (then: supervised automatically)."""
        if not task.active or case.state is State.PARKED:
            return
        deadline = getattr(
            task,
            {"accept": "accept_by", "first_contact": "first_contact_by", "resolve": "resolve_by"}[
                alarm.stage
            ],
        )
        if alarm.kind == "warn":
            self._transition(
                case,
                Event.DEADLINE_WARNING,
                now,
                "timer",
                ch,
                unit_code=task.unit_code,
                data={
                    "task_id": task.task_id,
                    "stage": alarm.stage,
                    "deadline": deadline.isoformat(),
                },
            )
            return
        self.supervise(
            case,
            "timer",
            f"{alarm.stage} overdue ({deadline.isoformat()})",
            now,
            ch,
            stage=alarm.stage,
        )

    def verify(
        self, case: CaseRec, ok: bool, actor: str, note: str, now: datetime, ch: Changes
    ) -> None:
        """The district checks a resolved case: close it, or send it back (再次处置)."""
        unit = case.handling_unit() or ""
        if ok:
            self._close(case, unit, now, ch, event=Event.VERIFIED, actor=actor)
            return
        self._dispatch(
            case,
            unit,
            now,
            ch,
            None,
            reason=f"核查未通过: {note}",
            reopened=True,
            event=Event.VERIFY_FAILED,
            actor=actor,
        )

    def park(self, case: CaseRec, actor: str, reason: str, now: datetime, ch: Changes) -> None:
        """挂账: approved as not solvable now; its tasks leave the overdue counts."""
        for task in case.active_tasks():
            task.state = "parked"
            self._arm(case, task, ch)
            ch.touch(case, task)
        self._transition(
            case,
            Event.PARKED,
            now,
            actor,
            ch,
            unit_code=case.handling_unit(),
            data={"reason": reason},
        )

    def unpark(self, case: CaseRec, actor: str, reason: str, now: datetime, ch: Changes) -> None:
        parked = [t for t in case.tasks if t.state == "parked"]
        for task in parked:
            task.state = task.resume_state()
            self._arm(case, task, ch)
            ch.touch(case, task)
        lead = case.lead()
        target = (
            State.TRIAGE
            if lead is None
            else {
                "assigned": State.DISPATCHED,
                "accepted": State.ACCEPTED,
                "contacted": State.IN_PROGRESS,
            }[lead.state]
        )
        self._transition(
            case,
            Event.UNPARKED,
            now,
            actor,
            ch,
            target=target,
            unit_code=lead.unit_code if lead else None,
            data={"reason": reason},
        )

    def reject(self, case: CaseRec, actor: str, reason: str, now: datetime, ch: Changes) -> None:
        """Return the order upstream (退回): not for the district to handle."""
        ev = self._transition(case, Event.REJECTED, now, actor, ch, data={"reason": reason})
        self._reply(case, ev, ReplyKind.RETURNED, self.ctx.ref.center.unit_code, reason, ch)

    def reveal_phone(
        self, case: CaseRec, unit: str, actor: str, reason: str, now: datetime, ch: Changes
    ) -> str:
        """The caller's phone, for a unit holding an active task of the case (to call back);
        recorded as `phone_revealed` with who, which unit and why, never the number."""
        if not any(t.unit_code == unit for t in case.active_tasks()):
            raise Forbidden(f"unit {unit} holds no active task of case {case.case_no}")
        if case.caller_phone_sealed is None:
            raise Refused(f"case {case.case_no} has no caller phone")
        phone = self.ctx.vault.open(case.caller_phone_sealed)
        data = {"actor": actor, "unit_code": unit, "reason": reason}
        self._record(case, "phone_revealed", case.state, now, actor, ch, unit, data, ())
        return phone

    def split(
        self,
        case: CaseRec,
        report: WorkOrder | Report,
        new_case_no: str,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> CaseRec:
        """Undo a merge (并案): the report leaves the case and opens its own, routed and
        dispatched like any new report."""
        source, ref = source_of(report)
        case.reporters = max(case.reporters - 1, 1)
        ch.split.append((source, ref))
        data = {"source": source, "source_ref": ref, "new_case_no": new_case_no, "reason": reason}
        unit = case.handling_unit()
        self._record(case, "report_split", case.state, now, actor, ch, unit, data, ())
        if isinstance(report, WorkOrder):
            return self.open_order(report, new_case_no, now, None, ch)
        return self.open_report(report, new_case_no, now, None, ch)

    def merge_case(
        self, case: CaseRec, into: CaseRec, actor: str, reason: str, now: datetime, ch: Changes
    ) -> None:
        """并案 by an operator: `case` reports the same problem as `into`; it ends as merged,
        its units' tasks are withdrawn, and `into` carries its reporters."""
        if case.case_no == into.case_no or into.state in TERMINAL:
            raise Refused(f"cannot merge {case.case_no} into {into.case_no} ({into.state})")
        note = f"并入{into.case_no}: {reason}"
        self._tell_units(case, TaskKind.WITHDRAWN, note, ch)
        ev = self._transition(
            case, Event.MERGED, now, actor, ch, data={"into": into.case_no, "reason": reason}
        )
        self._reply(
            case,
            ev,
            ReplyKind.ACCEPTED,
            self.ctx.ref.center.unit_code,
            f"已并入工单{into.case_no}办理。",
            ch,
        )
        into.reporters += case.reporters
        self._record(
            into,
            "merged_case",
            into.state,
            now,
            actor,
            ch,
            into.handling_unit(),
            {"case_no": case.case_no, "reporters": into.reporters, "reason": reason},
            (),
        )
        self._tell_units(into, TaskKind.UPDATED, f"并案: {case.case_no}", ch)

    def _active_task(self, case: CaseRec, task_id: str) -> TaskRec:
        task = case.task(task_id)
        if task is None or not task.active:
            raise Refused(f"task {task_id} is not an active task of case {case.case_no}")
        return task

    def _known_unit(self, unit: str) -> None:
        known = self.ctx.ref.units.get(unit)
        if known is None or known.tier == "district":
            raise Refused(f"{unit} is not a street or department of this district")
