"""The district's operators in the simulation: a pluggable policy. A `Desk` watches the case
events and plans commands, each the decision the district's command route takes (triage to a
unit, reclassify, joint task, extension decision, verification), applied through the case
store like an API call. Pass another desk to `run.simulate(desk=...)` (or wrap `DefaultDesk`)
to try other ways of working: when returns wait for approval, the same events reach the desk
and it decides them here."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from feedgen import PHRASES

from contracts.events import CaseEvent
from contracts.tasks import TaskRole
from services.district.cases.lifecycle import CaseState, Event, TaskState
from services.district.cases.model import CaseRec, Changes
from services.district.decisions import Decisions
from services.district.routing.reference import Reference
from services.district.routing.rules import FALLBACK_CATEGORY
from simulation.world import Decide

ACTOR = "sim-desk"
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Planned:
    """A command the desk will give: when, on which case, which decision (named for the report)."""

    at: datetime
    name: str
    case_no: str
    decide: Decide


class Desk(Protocol):
    def on_event(self, event: CaseEvent) -> list[Planned]: ...


@dataclass(frozen=True)
class Staffing:
    """How fast the desk answers: most within `quick` minutes, a `slow` share within hours."""

    quick: tuple[float, float] = (5.0, 60.0)
    slow_share: float = 0.08
    slow: tuple[float, float] = (120.0, 600.0)
    approve_extensions: float = 0.8
    verify_ok: float = 0.9
    joint_share: float = 0.5
    approve_returns: float = 0.85


class DefaultDesk:
    """Triage (classifying 9901 by what the citizen wrote), escalations sent to another unit
    (half of them as joint tasks), returns reviewed (most approved: re-dispatched where routing
    suggests, a co-unit replaced by another department; the rest refused), extension requests
    approved or refused, road-chief cases verified once resolved."""

    def __init__(self, ref: Reference, rng: random.Random, staffing: Staffing | None = None):
        self.ref, self.rng, self.s = ref, rng, staffing or Staffing()
        self.roadchief: set[str] = set()  # cases opened by a road chief's report
        self.streets = sorted(u for u, unit in ref.units.items() if unit.tier == "street")
        self.departments = sorted(u for u, unit in ref.units.items() if unit.tier == "department")
        by_name = {c.name: c.code for c in ref.categories.values()}
        self.by_title = {
            title: by_name[minor]
            for minor, (_, phrases) in PHRASES.items()
            for title, _ in phrases
            if minor in by_name
        }

    def on_event(self, event: CaseEvent) -> list[Planned]:
        if event.type == Event.OPENED and "road_chief" in event.data:
            self.roadchief.add(event.case_no)
        moved = event.to_state != event.from_state
        if event.type == Event.RETURNED:  # a lead's (the case is returned) or a co-unit's
            return [self._plan(event, "return", self._return(event))]
        if moved and event.to_state == CaseState.ESCALATED:
            return [self._plan(event, "escalation", self._escalation)]
        if moved and event.to_state == CaseState.TRIAGE:
            return [self._plan(event, "triage", self._triage)]
        if event.type == Event.EXTENSION_REQUESTED:
            return [self._plan(event, "extension", self._extension(event))]
        if event.type == Event.RESOLVED and event.case_no in self.roadchief:
            return [self._plan(event, "verify", self._verify)]
        return []

    def _plan(self, event: CaseEvent, name: str, decide: Decide) -> Planned:
        low, high = self.s.slow if self.rng.random() < self.s.slow_share else self.s.quick
        return Planned(event.at + self.rng.uniform(low, high) * MIN, name, event.case_no, decide)

    def _triage(self, d: Decisions, case: CaseRec, now: datetime, ch: Changes) -> None:
        if case.category_code == FALLBACK_CATEGORY:
            code = self.by_title.get(case.title) or self.rng.choice(sorted(self.by_title.values()))
            d.operator.reclassify(case, code, ACTOR, "按诉求内容归类", now, ch)
        else:
            d.dispatch.to_unit(case, self._unit(case), ACTOR, "人工派单", now, ch)

    def _unit(self, case: CaseRec) -> str:
        """The street of the place, unless it has just handed the case back."""
        last = case.handling_unit()
        if case.street_code in self.streets and case.street_code != last:
            return case.street_code
        return self.rng.choice([u for u in self.streets if u != last])

    def _escalation(self, d: Decisions, case: CaseRec, now: datetime, ch: Changes) -> None:
        lead = case.handling_unit() or self._unit(case)
        if self.rng.random() < self.s.joint_share:
            co = self.rng.choice([u for u in self.departments if u != lead])
            d.dispatch.joint(case, lead, [co], ACTOR, "联勤联动", now, ch)
        else:
            d.dispatch.to_unit(case, self._unit(case), ACTOR, "上报改派", now, ch)

    def _return(self, event: CaseEvent) -> Decide:
        """A lead's return (the case is `returned`) or a co-unit's (the case works on)."""
        task_id = str(event.data.get("task_id"))
        approve = self.rng.random() < self.s.approve_returns

        def decide(d: Decisions, case: CaseRec, now: datetime, ch: Changes) -> None:
            task = case.task(task_id)
            lead_taken = (
                task is not None
                and task.role is TaskRole.LEAD
                and (case.state is not CaseState.RETURNED)
            )
            if task is None or task.state is not TaskState.RETURNED or lead_taken:
                return  # decided meanwhile (by a routing rule, a supplement, a closure)
            if not approve:
                d.returns.decide(case, task_id, False, None, ACTOR, "请按职责办理", now, ch)
            elif task.role is TaskRole.CO:
                co = self.rng.choice([u for u in self.departments if u != task.unit_code])
                d.returns.decide(case, task_id, True, co, ACTOR, "更换协办单位", now, ch)
            else:
                d.returns.decide(case, task_id, True, None, ACTOR, "同意退单，改派", now, ch)

        return decide

    def _extension(self, event: CaseEvent) -> Decide:
        task_id = str(event.data.get("task_id"))
        approve = self.rng.random() < self.s.approve_extensions
        until = datetime.fromisoformat(str(event.data.get("requested_until")))

        def decide(d: Decisions, case: CaseRec, now: datetime, ch: Changes) -> None:
            reason = "同意延期" if approve else "不同意延期，请按期办结"
            op = d.operator
            op.decide_extension(case, task_id, approve, until, ACTOR, reason, now, ch)

        return decide

    def _verify(self, d: Decisions, case: CaseRec, now: datetime, ch: Changes) -> None:
        if case.state is not CaseState.RESOLVED:
            return
        ok = self.rng.random() < self.s.verify_ok
        d.operator.verify(case, ok, ACTOR, "现场核查" if ok else "复查未整改到位", now, ch)
