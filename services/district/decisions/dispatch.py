"""Where a case is dispatched: a task for a unit, by routing or by an operator. Pure.

Routing a new case (the unit `routing.rules.route` picks, or manual triage), a task with its
deadlines and alarms and its message to the unit, manual triage (派单) and joint tasks
(联勤联动: a lead unit and co-units)."""

from __future__ import annotations

from datetime import datetime

from contracts.tasks import TaskKind, TaskRole
from services.district.cases import messages
from services.district.cases.lifecycle import Event, TaskState
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.policy import Deadlines, compute_deadlines
from services.district.decisions.context import Context, Refused
from services.district.decisions.log import CaseLog
from services.district.routing.rules import route


class Dispatch:
    def __init__(self, ctx: Context, log: CaseLog) -> None:
        self.ctx, self.log = ctx, log

    def route(self, case: CaseRec, now: datetime, origin_ms: int | None, ch: Changes) -> None:
        """A new case goes to the unit its category and place name, or to manual triage."""
        category = self.ctx.ref.categories[case.category_code]
        decision = route(category, case.street_code, self.ctx.ref, case.urgency, case.source)
        if decision.unit_code is None:
            data = {"reason": decision.reason}
            self.log.transition(case, Event.TO_TRIAGE, now, "routing", ch, data=data)
            return
        self.task(case, decision.unit_code, now, ch, origin_ms, reason=decision.reason)

    def task(
        self,
        case: CaseRec,
        unit: str,
        now: datetime,
        ch: Changes,
        origin_ms: int | None = None,
        *,
        reason: str,
        reopened: bool = False,
        role: TaskRole = TaskRole.LEAD,
        event: Event | None = None,
        actor: str = "routing",
    ) -> TaskRec:
        """A new task for `unit`, with its deadlines and alarms, and its message to the unit."""
        d = self._deadlines(case, now, case.municipal_due, reopened, case.first_contact_owed(role))
        task = TaskRec(
            task_id=f"{case.case_no}-T{len(case.tasks) + 1}",
            case_no=case.case_no,
            district_code=case.district_code,
            unit_code=unit,
            role=role,
            state=TaskState.ASSIGNED,
            dispatched_at=now,
            accept_by=d.accept_by,
            first_contact_by=d.first_contact_by,
            resolve_by=d.resolve_by,
        )
        case.tasks.append(task)
        ch.new_tasks.append(task)
        self.log.arm(case, task, ch)
        data = {
            "task_id": task.task_id,
            "role": role,
            "reason": reason,
            "deadlines_before": _deadlines(case.resolve_by),
            "deadlines_after": task.deadlines(),
        }
        if role is TaskRole.LEAD:
            case.resolve_by = d.resolve_by
            # a re-dispatch or reopen gets its own deadline; the KPIs keep the first one
            case.due_by = case.due_by or d.resolve_by
        if event is None:
            event = Event.REOPENED if reopened else Event.DISPATCHED
        if role is TaskRole.LEAD or event is Event.JOINT_DISPATCHED:
            self.log.transition(
                case, event, now, actor, ch, unit_code=unit, data=data, tasks=(task,)
            )
        else:
            self.log.record(case, "co_dispatched", now, actor, ch, unit, data, (task,))
        self.log.municipal_missed(case, now, ch)
        ch.outbox.append(messages.task_message(case, task, TaskKind.ASSIGNED, reason, origin_ms))
        m = self.ctx.metrics
        self.log.after(ch, lambda: m.tasks_dispatched.labels(unit, role).inc())
        return task

    def recomputed(
        self, case: CaseRec, task: TaskRec, now: datetime, municipal_due: datetime | None
    ) -> Deadlines:
        """The task's deadlines again, from where its clock started, under a municipal due
        time as at `now` (a cap only while it lies ahead of now: once it has passed, the
        policy's deadlines)."""
        due = municipal_due if municipal_due and municipal_due > now else None
        earlier = case.tasks[: case.tasks.index(task)]
        # a lead task after a resolved one is a reopen (its own resolve rule)
        reopened = task.role is TaskRole.LEAD and any(
            t.role is TaskRole.LEAD and t.resolved_at is not None for t in earlier
        )
        owed = case.first_contact_owed(task.role)
        return self._deadlines(case, task.started, due, reopened, owed)

    def _deadlines(
        self,
        case: CaseRec,
        start: datetime,
        municipal_due: datetime | None,
        reopened: bool,
        owed: bool,
    ) -> Deadlines:
        cat = self.ctx.ref.categories[case.category_code]
        return compute_deadlines(
            dispatched_at=start,
            urgency=case.urgency,
            request_type=case.request_type,
            category_sla=None if case.request_type else cat.handle_sla,
            municipal_due=municipal_due,
            calendar=self.ctx.calendar,
            policy=self.ctx.policy,
            reopened=reopened,
            first_contact_owed=owed,
            category_code=case.category_code,
        )

    def to_unit(
        self, case: CaseRec, unit: str, actor: str, reason: str, now: datetime, ch: Changes
    ) -> TaskRec:
        """Manual triage or re-dispatch of a case waiting at the district."""
        self.known_unit(unit)
        return self.task(case, unit, now, ch, reason=reason or "manual triage", actor=actor)

    def joint(
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
            self.known_unit(unit)
        first = self.task(
            case,
            lead,
            now,
            ch,
            reason=reason or "联勤联动",
            event=Event.JOINT_DISPATCHED,
            actor=actor,
        )
        co_reason = reason or "联勤联动 协办"
        return [first] + [
            self.task(case, unit, now, ch, reason=co_reason, role=TaskRole.CO, actor=actor)
            for unit in co_units
        ]

    def add_co_units(
        self,
        case: CaseRec,
        co_units: list[str],
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> list[TaskRec]:
        """联勤联动 on a case a lead already works on: a co-unit task for each unit (no first
        contact owed), recorded as `co_units_added`."""
        holding = {t.unit_code for t in case.active_tasks()}
        if not co_units or len(set(co_units)) != len(co_units) or holding & set(co_units):
            raise Refused("co-units must be distinct and not already hold a task of the case")
        for unit in co_units:
            self.known_unit(unit)
        data = {"co_units": co_units, "reason": reason}
        lead = case.handling_unit()
        self.log.transition(case, Event.CO_UNITS_ADDED, now, actor, ch, unit_code=lead, data=data)
        co_reason = reason or "联勤联动 协办"
        return [
            self.task(case, u, now, ch, reason=co_reason, role=TaskRole.CO, actor=actor)
            for u in co_units
        ]

    def known_unit(self, unit: str) -> None:
        known = self.ctx.ref.units.get(unit)
        if known is None or known.tier == "district":
            raise Refused(f"{unit} is not a street or department of this district")


def _deadlines(resolve_by: datetime | None) -> dict[str, str] | None:
    return None if resolve_by is None else {"resolve_by": resolve_by.isoformat()}
