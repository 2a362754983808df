"""A 12345 supplement (补充): a later revision of the order carrying new content, address,
location or municipal due time. Pure.

What it carries is applied to the case, each changed field recorded before and after in one
`supplemented` event; the units working on it get the new content as `updated`. A new due time
recomputes the active tasks' unfinished deadlines by the dispatch rule (the municipal cap only
while it lies ahead). A place another unit owns re-routes the case: the old tasks `withdrawn`
(reason `rerouted`), a `rerouted` event, a task for the new owner (or triage); a place outside
the district follows "not ours only when sure" (`routing/edge.py`). A supplement to a finished
case is recorded (`supplement_not_applied`) and changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.hotline import WorkOrder
from contracts.tasks import TaskKind, TaskReason
from services.district.cases.lifecycle import TERMINAL, WORKING, CaseState, Event
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.policy import Deadlines
from services.district.decisions.context import Context
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.log import CaseLog
from services.district.decisions.opening import Opening
from services.district.routing.edge import Placement, place
from services.district.routing.geo import to_wgs84
from services.district.routing.rules import route

ACTOR = "hotline12345"
#: the record of a supplement to a finished case (closed, withdrawn, not ours, merged, rejected)
NOT_APPLIED = "supplement_not_applied"
#: the states from which a supplement's new place re-routes the case (elsewhere: recorded)
REROUTABLE = frozenset({CaseState.TRIAGE, *WORKING})
_MOVES = frozenset({"address", "location"})


def changes(case: CaseRec, order: WorkOrder) -> dict[str, tuple[Any, Any]]:
    """field -> (before, after) for what the supplement carries and the case does not hold;
    a location or due time it does not carry stays as it is."""
    out: dict[str, tuple[Any, Any]] = {}
    for name, before, after in (
        ("title", case.title, order.title),
        ("content", case.description, order.content),
        ("address", case.address, order.address),
    ):
        if after != before:
            out[name] = (before, after)
    if order.location is not None:
        lon, lat = to_wgs84(order.location.lon, order.location.lat, order.location.crs)
        if (lon, lat) != (case.lon, case.lat):
            out["location"] = (_point(case.lon, case.lat), _point(lon, lat))
    if order.due_at is not None and order.due_at != case.municipal_due:
        out["due_at"] = (case.municipal_due, order.due_at)
    return out


def _point(lon: float | None, lat: float | None) -> dict[str, float] | None:
    return None if lon is None or lat is None else {"lon": lon, "lat": lat}


def _apply(case: CaseRec, changed: dict[str, tuple[Any, Any]]) -> None:
    if "title" in changed:
        case.title = changed["title"][1]
    if "content" in changed:
        case.description = changed["content"][1]
    if "address" in changed:
        case.address = changed["address"][1]
    if "location" in changed:
        point = changed["location"][1]
        case.lon, case.lat = point["lon"], point["lat"]
    if "due_at" in changed:
        case.municipal_due = changed["due_at"][1]


def _kept(
    current: datetime, given: datetime | None, new: datetime, cap: datetime | None
) -> datetime:
    """A stage's deadline under a new municipal due time: the new rule's where the deadline
    is still the one it was given; a moved one (extended, supervised, parked) keeps its move,
    capped by the new due time while that lies ahead."""
    if current == given:
        return new
    return min(current, cap) if cap else current


def _recorded(changed: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    def plain(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else v

    return {k: {"before": plain(b), "after": plain(a)} for k, (b, a) in changed.items()}


class Supplement:
    def __init__(self, ctx: Context, log: CaseLog, dispatch: Dispatch) -> None:
        self.ctx, self.log, self.dispatch = ctx, log, dispatch
        self.opening = Opening(ctx, log, dispatch)

    def apply(self, case: CaseRec, order: WorkOrder, now: datetime, ch: Changes) -> None:
        """Apply the case's own order's supplement (see the module's note)."""
        data: dict[str, Any] = {"order_revision": order.revision, "note": order.note or ""}
        if case.state in TERMINAL:  # recorded, nothing else (the case's state machine is done)
            data["state"] = case.state.value
            self.log.record(case, NOT_APPLIED, now, ACTOR, ch, None, data)
            return
        changed = changes(case, order)
        given = {t.task_id: self._given(case, t) for t in case.active_tasks()}
        _apply(case, changed)
        data["changes"] = _recorded(changed)
        if "due_at" in changed:
            data["deadlines"] = self._redue(case, given, now, ch)
        lead = case.lead()
        unit = lead.unit_code if lead else None
        self.log.transition(case, Event.SUPPLEMENTED, now, ACTOR, ch, unit_code=unit, data=data)
        if "due_at" in changed:
            self.log.municipal_missed(case, now, ch)
        if _MOVES & changed.keys() and self._moved(case, order, now, ch):
            return
        self.log.tell_units(case, TaskKind.UPDATED, order.note or "12345补充信息", ch)

    def _given(self, case: CaseRec, task: TaskRec) -> Deadlines:
        """The deadlines the task was given when it was dispatched, under the municipal due
        time then: a deadline that differs from these was moved since (an approved extension,
        a supervision, parking)."""
        return self.dispatch.recomputed(case, task, task.dispatched_at, case.municipal_due)

    def _redue(
        self, case: CaseRec, given: dict[str, Deadlines], now: datetime, ch: Changes
    ) -> dict[str, Any]:
        """The active tasks' unfinished deadlines again under the new municipal due time. A
        deadline moved since dispatch keeps its move, capped by the new due time while it lies
        ahead."""
        cap = case.municipal_due if case.municipal_due and case.municipal_due > now else None
        out: dict[str, Any] = {}
        for task in case.active_tasks():
            before = task.deadlines()
            new = self.dispatch.recomputed(case, task, now, case.municipal_due)
            old = given[task.task_id]
            if task.accepted_at is None:
                task.accept_by = _kept(task.accept_by, old.accept_by, new.accept_by, cap)
            if task.contacted_at is None and task.first_contact_by and new.first_contact_by:
                first = task.first_contact_by
                task.first_contact_by = _kept(
                    first, old.first_contact_by, new.first_contact_by, cap
                )
            task.resolve_by = _kept(task.resolve_by, old.resolve_by, new.resolve_by, cap)
            if task is case.lead():
                case.resolve_by = task.resolve_by
            self.log.arm(case, task, ch)
            ch.touch(case, task)
            out[task.task_id] = {"before": before, "after": task.deadlines()}
        return out

    def _moved(self, case: CaseRec, order: WorkOrder, now: datetime, ch: Changes) -> bool:
        """Re-route the case when its new place has another owner; True when it did."""
        placed = place(
            self.ctx.ref, self.ctx.edge, case.lon, case.lat, case.address, order.district_code
        )
        street = None if placed.not_ours else placed.street_code
        if case.state not in REROUTABLE or not (placed.not_ours or self._new_owner(case, street)):
            if not placed.not_ours:
                case.street_code = street
            return False
        self._reroute(case, placed, street, now, ch)
        return True

    def _new_owner(self, case: CaseRec, street: str | None) -> bool:
        category = self.ctx.ref.categories[case.category_code]
        target = route(category, street, self.ctx.ref, case.urgency, case.source).unit_code
        if case.state is CaseState.TRIAGE:
            return target is not None
        lead = case.lead()
        return target != (lead.unit_code if lead else None)

    def _reroute(
        self, case: CaseRec, placed: Placement, street: str | None, now: datetime, ch: Changes
    ) -> None:
        withdrawn = [t.task_id for t in case.active_tasks()]
        note = "12345补充：事发地点变更，任务改派。"
        self.log.tell_units(case, TaskKind.WITHDRAWN, note, ch, TaskReason.REROUTED)
        data = {
            "street_before": case.street_code,
            "street_after": street,
            "withdrawn": withdrawn,
            "placement": placed.data(),
        }
        case.street_code = street
        unit = case.handling_unit()
        self.log.transition(case, Event.REROUTED, now, ACTOR, ch, unit_code=unit, data=data)
        self.opening.record_edge(case, placed, now, ch)
        if placed.not_ours:
            self.opening.not_ours(case, placed.district_code or "", now, ch)
        else:
            self.dispatch.route(case, now, None, ch)
