"""What each input does to a case: the one place that decides. Pure: no I/O.

Every method mutates in-memory records and appends to `Changes`; the caller persists them in
one transaction per batch and applies the metric updates after commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts.common import mask_phone
from contracts.hotline import Feedback, OrderAction, ReplyKind, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import FeedbackAction, TaskFeedback, TaskKind
from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.cases import messages
from services.district.cases.lifecycle import Event, State, next_state
from services.district.cases.model import CaseRec, Changes, EventRec, ReporterRec, TaskRec
from services.district.deadlines.alarms import first_alarm
from services.district.deadlines.policy import DeadlinePolicy, compute_deadlines
from services.district.deadlines.workcal import WorkCalendar
from services.district.routing.geo import to_wgs84
from services.district.routing.reference import SHANGHAI_DISTRICTS, Reference, Rule
from services.district.routing.rules import classify, effective_urgency, redispatch_target, route

_URGENCIES = ("normal", "urgent", "critical")


class Refused(Exception):
    """The input is well-formed but not acceptable for this case (dead-lettered as refused)."""


@dataclass(frozen=True)
class Context:
    ref: Reference
    calendar: WorkCalendar
    policy: DeadlinePolicy
    vault: PhoneVault
    metrics: Metrics


class Workflow:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.m = ctx.metrics

    def use_rules(self, rules: Mapping[tuple[str, str, str], Rule]) -> None:
        """Routing rules changed at run time: route new decisions by them."""
        self.ctx = replace(self.ctx, ref=replace(self.ctx.ref, rules=rules))

    # -- opening cases -------------------------------------------------------------------------

    def open_order(
        self, order: WorkOrder, case_no: str, now: datetime, origin_ms: int | None, ch: Changes
    ) -> CaseRec:
        ref = self.ctx.ref
        category, matched = classify(order.category_hint, ref)
        lon = lat = None
        if order.location is not None:
            lon, lat = to_wgs84(order.location.lon, order.location.lat, order.location.crs)
        case = CaseRec(
            case_no=case_no,
            district_code=ref.district_code,
            source="hotline12345",
            source_ref=order.order_no,
            state=State.RECEIVED,
            category_code=category.code,
            category_name=category.name,
            urgency=effective_urgency(order.urgency, category),
            title=order.title,
            description=order.content,
            address=order.address,
            received_at=order.received_at,
            opened_at=now,
            request_type=order.request_type,
            lon=lon,
            lat=lat,
            caller_name=order.caller.name,
            caller_phone_sealed=self.ctx.vault.seal(order.caller.phone)
            if order.caller.phone
            else None,
            caller_phone_masked=mask_phone(order.caller.phone),
            caller_anonymous=order.caller.anonymous,
            caller_callback=order.caller.callback,
            revision=order.revision,
            municipal_due=order.due_at,
        )
        self._open(case, now, ch, {"category_matched": matched, "hint": order.category_hint})
        located = None if lon is None or lat is None else ref.territory.locate(lon, lat)
        if order.district_code != ref.district_code or (lon is not None and located is None):
            self._not_ours(case, order.district_code, now, ch)
            return case
        # no coordinates: the street named by the address, if it names exactly one
        case.street_code = located.unit_code if located else ref.gazetteer.street_of(order.address)
        self._route(case, now, origin_ms, ch)
        return case

    def open_report(
        self, report: Report, case_no: str, now: datetime, origin_ms: int | None, ch: Changes
    ) -> CaseRec:
        ref = self.ctx.ref
        category, matched = classify(report.category_hint, ref)
        lon, lat = to_wgs84(report.location.lon, report.location.lat, report.location.crs)
        located = ref.territory.locate(lon, lat)
        case = CaseRec(
            case_no=case_no,
            district_code=ref.district_code,
            source="roadchief",
            source_ref=report.report_id,
            state=State.RECEIVED,
            category_code=category.code,
            category_name=category.name,
            urgency=effective_urgency(report.urgency, category),
            title=f"{report.road} {report.segment}".strip(),
            description=report.description,
            address=f"{report.road} {report.segment}".strip(),
            received_at=report.reported_at,
            opened_at=now,
            lon=lon,
            lat=lat,
            street_code=located.unit_code if located else None,
        )
        self._open(case, now, ch, {"category_matched": matched, "road_chief": report.road_chief.id})
        if report.handled_on_site:
            case.resolved_at = case.closed_at = now
            case.closed_on_time = True
            self._transition(
                case,
                Event.SELF_HANDLED,
                now,
                report.road_chief.id,
                ch,
                unit_code=report.road_chief.unit_code,
            )
            self._after(
                ch, lambda: self.m.cases_closed.labels(report.road_chief.unit_code, "true").inc()
            )
            return case
        self._route(case, now, origin_ms, ch)
        return case

    def _open(self, case: CaseRec, now: datetime, ch: Changes, data: dict[str, Any]) -> None:
        ch.new_cases.append(case)
        self._transition(case, Event.OPENED, now, "intake", ch, data=data)
        self._after(ch, lambda: self.m.cases_opened.labels(case.source).inc())
        stage = (now - case.received_at).total_seconds()
        self._after(ch, lambda: self.m.stage_duration.labels("dispatch").observe(max(stage, 0)))

    def _not_ours(self, case: CaseRec, district: str, now: datetime, ch: Changes) -> None:
        named = SHANGHAI_DISTRICTS.get(district) if district != case.district_code else None
        text = (
            f"非本区事项，请转{named}。" if named else "经核实，事发地点不在本区范围，请重新派发。"
        )
        event = self._transition(
            case,
            Event.NOT_OURS,
            now,
            "intake",
            ch,
            data={"district_code": district, "named": named},
        )
        center = self.ctx.ref.center
        self._reply(case, event, ReplyKind.NOT_OUR_DISTRICT, center.unit_code, text, ch)

    def _route(self, case: CaseRec, now: datetime, origin_ms: int | None, ch: Changes) -> None:
        category = self.ctx.ref.categories[case.category_code]
        decision = route(category, case.street_code, self.ctx.ref, case.urgency, case.source)
        if decision.unit_code is None:
            self._transition(
                case, Event.TO_TRIAGE, now, "routing", ch, data={"reason": decision.reason}
            )
            return
        self._dispatch(case, decision.unit_code, now, ch, origin_ms, reason=decision.reason)

    def _dispatch(
        self,
        case: CaseRec,
        unit: str,
        now: datetime,
        ch: Changes,
        origin_ms: int | None,
        *,
        reason: str,
        reopened: bool = False,
        role: str = "lead",
        event: Event | None = None,
        actor: str = "routing",
    ) -> TaskRec:
        cat = self.ctx.ref.categories[case.category_code]
        d = compute_deadlines(
            dispatched_at=now,
            urgency=case.urgency,
            request_type=case.request_type,
            category_sla=None if case.request_type else cat.handle_sla,
            municipal_due=case.municipal_due,
            calendar=self.ctx.calendar,
            policy=self.ctx.policy,
            reopened=reopened,
        )
        task = TaskRec(
            task_id=f"{case.case_no}-T{len(case.tasks) + 1}",
            case_no=case.case_no,
            district_code=case.district_code,
            unit_code=unit,
            role=role,
            state="assigned",
            dispatched_at=now,
            accept_by=d.accept_by,
            first_contact_by=d.first_contact_by,
            resolve_by=d.resolve_by,
        )
        case.tasks.append(task)
        ch.new_tasks.append(task)
        self._arm(case, task, ch)
        data = {
            "task_id": task.task_id,
            "role": role,
            "reason": reason,
            "deadlines_before": _deadlines(case.resolve_by),
            "deadlines_after": _task_deadlines(task),
        }
        if role == "lead":
            case.resolve_by = d.resolve_by
        if event is None:
            event = Event.REOPENED if reopened else Event.DISPATCHED
        if role == "lead" or event is Event.JOINT_DISPATCHED:
            self._transition(case, event, now, actor, ch, unit_code=unit, data=data, tasks=(task,))
        else:
            self._record(case, "co_dispatched", case.state, now, actor, ch, unit, data, (task,))
        ch.outbox.append(messages.task_message(case, task, TaskKind.ASSIGNED, reason, origin_ms))
        self._after(ch, lambda: self.m.tasks_dispatched.labels(unit, role).inc())
        return task

    def _arm(self, case: CaseRec, task: TaskRec, ch: Changes) -> None:
        """(Re)compute when the task's next warning or deadline falls."""
        first = first_alarm(task, case.urgency, self.ctx.calendar, self.ctx.policy.warn_fraction)
        ch.timers[task.task_id] = (task, first)

    # -- duplicates (并案) -----------------------------------------------------------------------

    def duplicate_key(self, m: WorkOrder | Report) -> tuple[str, float, float] | None:
        """The category and WGS-84 point a new report would open its case with, to look for an
        open duplicate; None without a point or for another district's order."""
        district = self.ctx.ref.district_code
        if m.location is None or (isinstance(m, WorkOrder) and m.district_code != district):
            return None
        category, _ = classify(m.category_hint, self.ctx.ref)
        lon, lat = to_wgs84(m.location.lon, m.location.lat, m.location.crs)
        return category.code, lon, lat

    def join_report(self, case: CaseRec, m: WorkOrder | Report, now: datetime, ch: Changes) -> None:
        """并案: the report joins the open case: one more reporter (kept), the urgency may rise
        to the report's, the units hear of it, a 12345 order is told which case it joined."""
        source, ref = source_of(m)
        phone = m.caller.phone if isinstance(m, WorkOrder) else None
        before = case.urgency
        case.urgency = effective_urgency(m.urgency, self.ctx.ref.categories[case.category_code])
        case.urgency = max(before, case.urgency, key=_URGENCIES.index)
        case.reporters += 1
        ch.reporters.append(
            ReporterRec(
                case.case_no,
                source,
                ref,
                mask_phone(phone) if phone else None,
                self.ctx.vault.seal(phone) if phone else None,
                now,
                m.model_dump(mode="json", by_alias=True),
            )
        )
        data = {
            "source": source,
            "source_ref": ref,
            "reporters": case.reporters,
            "urgency_before": before,
            "urgency_after": case.urgency,
        }
        unit = case.handling_unit()
        ev = self._record(case, "merged_report", case.state, now, "intake", ch, unit, data, ())
        self._tell_units(case, TaskKind.UPDATED, f"并案: {ref}，共{case.reporters}人反映", ch)
        if source == "hotline12345":
            center = self.ctx.ref.center
            text = f"经核实，与已受理案件{case.case_no}为同一问题，已并案办理。"
            ch.outbox.append(
                messages.reply_message(
                    case, ev, ReplyKind.ACCEPTED, center.unit_code, center.name, text, ref
                )
            )

    # -- later inputs about an existing case ----------------------------------------------------

    def order_action(self, case: CaseRec, order: WorkOrder, now: datetime, ch: Changes) -> bool:
        """Apply supplement / urge / reopen / withdraw; False when the revision is stale."""
        if order.revision <= case.revision:
            return False
        case.revision = order.revision
        data = {"order_revision": order.revision, "note": order.note or ""}
        if order.action is OrderAction.REOPEN:
            unit = case.handling_unit() or case.street_code
            if unit is None:
                raise Refused("no unit has handled this case; nothing to reopen")
            self._dispatch(
                case, unit, now, ch, None, reason=order.note or "12345 reopen", reopened=True
            )
            return True
        event = {
            OrderAction.SUPPLEMENT: Event.SUPPLEMENTED,
            OrderAction.URGE: Event.URGED,
            OrderAction.WITHDRAW: Event.WITHDRAWN,
            OrderAction.DISPATCH: Event.SUPPLEMENTED,
        }[order.action]
        lead = case.lead()
        unit = lead.unit_code if lead else None
        self._transition(case, event, now, "hotline12345", ch, data=data, unit_code=unit)
        kind = {Event.WITHDRAWN: TaskKind.WITHDRAWN, Event.URGED: TaskKind.URGED}.get(
            event, TaskKind.UPDATED
        )
        self._tell_units(case, kind, order.note or "", ch)
        return True

    def _tell_units(self, case: CaseRec, kind: TaskKind, note: str, ch: Changes) -> None:
        """Send every active task a message; withdrawing also closes the tasks."""
        for task in case.active_tasks():
            if kind is TaskKind.WITHDRAWN:
                task.state = "withdrawn"
                ch.touch(case, task)
            ch.outbox.append(messages.task_message(case, task, kind, note))

    def followup(self, case: CaseRec, fb: Feedback, now: datetime, ch: Changes) -> None:
        rating = fb.satisfaction.value
        data = {"resolved": fb.resolved, "satisfaction": rating, "comment": fb.comment}
        self._transition(case, Event.FOLLOWED_UP, now, "hotline12345", ch, data=data)
        self._after(ch, lambda: self.m.satisfaction.labels(rating).inc())
        unit = case.handling_unit() or ""
        if fb.reopens:
            self._dispatch(
                case, unit, now, ch, None, reason=f"回访不满意: {fb.comment}", reopened=True
            )
        elif fb.satisfaction.value != "unreachable" and case.state is State.RESOLVED:
            self._close(case, unit, now, ch)

    def _close(
        self,
        case: CaseRec,
        unit: str,
        now: datetime,
        ch: Changes,
        event: Event = Event.CLOSED,
        actor: str = "hotline12345",
    ) -> None:
        on_time = bool(case.resolved_at and case.resolve_by and case.resolved_at <= case.resolve_by)
        case.closed_at, case.closed_on_time = now, on_time
        self._transition(case, event, now, actor, ch, unit_code=unit, data={"on_time": on_time})
        took = (now - case.opened_at).total_seconds()
        self._after(ch, lambda: self.m.cases_closed.labels(unit, str(on_time).lower()).inc())
        self._after(ch, lambda: self.m.stage_duration.labels("close").observe(took))

    def unit_feedback(self, case: CaseRec, fb: TaskFeedback, now: datetime, ch: Changes) -> None:
        task = case.task(fb.task_id)
        if task is None or task.unit_code != fb.unit_code:
            raise Refused(f"unit {fb.unit_code} does not hold task {fb.task_id}")
        if not task.active:
            raise Refused(f"task {fb.task_id} is {task.state}, no longer active")
        missing = fb.missing_field()
        if missing:
            raise Refused(f"action {fb.action} requires {missing}")
        at = min(fb.at, now)
        handler = {
            FeedbackAction.ACCEPT: self._accept,
            FeedbackAction.CONTACT: self._contact,
            FeedbackAction.PROGRESS: self._progress,
            FeedbackAction.RESOLVE: self._resolve,
            FeedbackAction.RETURN: self._return,
            FeedbackAction.ESCALATE: self._escalate,
            FeedbackAction.REQUEST_EXTENSION: self._request_extension,
        }[fb.action]
        held, ch.token_id = ch.token_id, fb.token_id or ch.token_id
        try:  # the desk's token, when the feedback came through one, goes into each event
            handler(case, task, fb, at, ch)
        finally:
            ch.token_id = held
        self._after(ch, lambda: self.m.task_actions.labels(task.unit_code, fb.action.value).inc())

    def _accept(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        if task.state != "assigned":
            raise Refused(f"task {task.task_id} is already {task.state}")
        task.state, task.accepted_at = "accepted", at
        ev = self._unit_event(case, task, Event.ACCEPTED, fb, at, ch)
        self._reply(case, ev, ReplyKind.ACCEPTED, task.unit_code, fb.note or "已签收。", ch)
        self._stage(ch, "accept", task.dispatched_at, at)

    def _contact(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        first = task.contacted_at is None
        task.accepted_at = task.accepted_at or at
        task.state, task.contacted_at = "contacted", task.contacted_at or at
        ev = self._unit_event(case, task, Event.CONTACTED, fb, at, ch)
        if first:
            self._reply(
                case, ev, ReplyKind.FIRST_CONTACT, task.unit_code, fb.note or "已联系市民。", ch
            )
            self._stage(ch, "first_contact", task.dispatched_at, at)

    def _progress(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        self._unit_event(case, task, Event.PROGRESSED, fb, at, ch)

    def _resolve(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        assert fb.result is not None
        task.state, task.resolved_at, task.summary = "resolved", at, fb.result.summary
        data = {
            "resolved": fb.result.resolved,
            "summary": fb.result.summary,
            "feedback_id": fb.feedback_id,
            "task_id": task.task_id,
        }
        self._stage(ch, "resolve", task.dispatched_at, at)
        waiting = [t.unit_code for t in case.active_tasks() if t.role == "co"]
        lead = case.last_lead()
        if task.role == "co" or waiting:
            # 联勤联动: the case resolves when the lead has resolved and every co-unit reported
            kind = "co_reported" if task.role == "co" else "lead_resolved"
            self._record(
                case,
                kind,
                case.state,
                at,
                fb.actor.id,
                ch,
                task.unit_code,
                {**data, "waiting_for": waiting},
                (task,),
            )
            if waiting or lead is None or lead.state != "resolved":
                return
            task = lead
        case.resolved_at = at
        ev = self._transition(
            case,
            Event.RESOLVED,
            at,
            fb.actor.id,
            ch,
            unit_code=task.unit_code,
            data=data,
            tasks=(task,),
        )
        self._reply(case, ev, ReplyKind.RESULT, task.unit_code, task.summary or "", ch)

    def _return(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        assert fb.reason is not None
        task.state = "returned"
        case.returns += 1
        self._unit_event(case, task, Event.RETURNED, fb, at, ch, {"reason": fb.reason.value})
        if task.role == "co":
            return
        target, why = redispatch_target(case, task.unit_code, fb.reason.value, self.ctx.ref)
        if target is None:
            self._transition(case, Event.TO_TRIAGE, at, "routing", ch, data={"reason": why})
            return
        self._dispatch(case, target, at, ch, None, reason=why)

    def _escalate(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        task.state = "returned"
        self._unit_event(case, task, Event.ESCALATED, fb, at, ch, {"co_units": list(fb.co_units)})

    def _request_extension(
        self, case: CaseRec, task: TaskRec, fb: TaskFeedback, at: datetime, ch: Changes
    ) -> None:
        assert fb.requested_until is not None
        data = {"requested_until": fb.requested_until.isoformat()}
        self._unit_event(case, task, Event.EXTENSION_REQUESTED, fb, at, ch, data)

    # -- recording ------------------------------------------------------------------------------

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
        if task.role != "lead":  # a co-unit's report does not move the case
            return self._record(
                case, event.value, case.state, at, fb.actor.id, ch, task.unit_code, payload, (task,)
            )
        return self._transition(
            case, event, at, fb.actor.id, ch, unit_code=task.unit_code, data=payload, tasks=(task,)
        )

    def _transition(
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
        target: State | None = None,
    ) -> EventRec:
        before = None if event is Event.OPENED else case.state
        case.state = next_state(before, event, target)
        return self._record(case, event.value, before, at, actor, ch, unit_code, data or {}, tasks)

    def _record(
        self,
        case: CaseRec,
        type_: str,
        before: State | None,
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

    def _reply(
        self, case: CaseRec, event: EventRec, kind: ReplyKind, unit: str, text: str, ch: Changes
    ) -> None:
        if case.source == "hotline12345":
            ch.outbox.append(
                messages.reply_message(case, event, kind, unit, self.ctx.ref.unit_name(unit), text)
            )

    def _stage(self, ch: Changes, stage: str, start: datetime, end: datetime) -> None:
        seconds = max((end - start).total_seconds(), 0.0)
        self._after(ch, lambda: self.m.stage_duration.labels(stage).observe(seconds))

    @staticmethod
    def _after(ch: Changes, fn: Any) -> None:
        ch.after_commit.append(fn)


def source_of(m: WorkOrder | Report) -> tuple[str, str]:
    return ("hotline12345", m.order_no) if isinstance(m, WorkOrder) else ("roadchief", m.report_id)


def _deadlines(resolve_by: datetime | None) -> dict[str, str] | None:
    return None if resolve_by is None else {"resolve_by": resolve_by.isoformat()}


def _task_deadlines(task: TaskRec) -> dict[str, str]:
    return {
        "accept_by": task.accept_by.isoformat(),
        "first_contact_by": task.first_contact_by.isoformat(),
        "resolve_by": task.resolve_by.isoformat(),
    }
