"""The month's invariants and measures, judged from what the parties saw (the ledger) and the
district's task rows, independently of the code under test. Pure.

- born overdue: a task whose deadline (any stage) is not after its dispatch;
- supervision of a stage not owed: an automatic 督办 naming a stage that no task of the case
  owed at that moment (the domain rule says it is not owed, its deadline had not passed, the
  stage was done, or the task had left its unit);
- overdue shares: per stage, the cases with the stage owed and the share of them where a task
  did it late (or had not done it by the end, its deadline passed); the district's own stages
  (triage, escalation, return and extension decisions) from the case events and the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from contracts.common import Urgency
from contracts.events import CaseEvent
from services.district.cases.lifecycle import CaseState, Event
from services.district.deadlines.policy import DeadlinePolicy
from services.district.deadlines.waits import WAITING, DistrictStage, decide_by
from services.district.deadlines.workcal import WorkCalendar
from simulation.ledger import STAGES, TaskSeen


@dataclass(frozen=True)
class Done:
    """When a task's stages were done, as the district's task row says."""

    accepted_at: datetime | None = None
    contacted_at: datetime | None = None
    resolved_at: datetime | None = None

    def at(self, stage: str) -> datetime | None:
        return {
            "accept": self.accepted_at,
            "first_contact": self.contacted_at,
            "resolve": self.resolved_at,
        }[stage]


@dataclass(frozen=True)
class Finding:
    """One breach of an invariant."""

    kind: str
    case_no: str
    task_id: str | None
    stage: str
    detail: str


@dataclass(frozen=True)
class Share:
    owed: int
    overdue: int

    @property
    def share(self) -> float:
        return self.overdue / self.owed if self.owed else 0.0


def born_overdue(
    tasks: Iterable[tuple[str, str, datetime, Mapping[str, datetime | None]]],
) -> list[Finding]:
    """(task_id, case_no, dispatched_at, stage -> deadline) whose deadline is not after the
    dispatch: the task fell due the moment it was given."""
    found = []
    for task_id, case_no, dispatched_at, deadlines in tasks:
        for stage, deadline in deadlines.items():
            if deadline is not None and deadline <= dispatched_at:
                detail = f"due {deadline.isoformat()}, dispatched {dispatched_at.isoformat()}"
                found.append(Finding("born_overdue", case_no, task_id, stage, detail))
    return found


def seen_births(
    tasks: Iterable[TaskSeen],
) -> list[tuple[str, str, datetime, Mapping[str, datetime | None]]]:
    """The deadlines each task was given, as its `assigned` message carried them."""
    return [(t.task_id, t.case_no, t.dispatched_at, _stages(t, t.dispatched_at)) for t in tasks]


def _stages(task: TaskSeen, at: datetime) -> dict[str, datetime | None]:
    return {stage: task.deadline(stage, at) for stage in STAGES}


def unowed_supervisions(
    events: Iterable[CaseEvent], tasks: Iterable[TaskSeen], done: Mapping[str, Done]
) -> list[Finding]:
    """Every automatic supervision (督办 by the timer) of a stage no task of the case owed."""
    by_case: dict[str, list[TaskSeen]] = {}
    for task in tasks:
        by_case.setdefault(task.case_no, []).append(task)
    found = []
    for ev in events:
        stage = ev.data.get("stage")
        if ev.type != Event.SUPERVISED or ev.data.get("mode") != "auto" or stage is None:
            continue
        owing = [t for t in by_case.get(ev.case_no, []) if _owed(t, str(stage), ev.at, done)]
        if not owing:
            detail = f"supervised at {ev.at.isoformat()}: {ev.data.get('reason', '')}"
            found.append(Finding("unowed_supervision", ev.case_no, None, str(stage), detail))
    return found


def _owed(task: TaskSeen, stage: str, at: datetime, done: Mapping[str, Done]) -> bool:
    """The task owed `stage` at `at`: the rule says so, its deadline had passed, it was not
    done before, and the unit still held it."""
    deadline = task.deadline(stage, at)
    if not task.owes(stage) or deadline is None or deadline > at or not task.active_at(at):
        return False
    finished = done.get(task.task_id, Done()).at(stage)
    return finished is None or finished > at


def stage_shares(
    tasks: Iterable[TaskSeen], done: Mapping[str, Done], end: datetime
) -> dict[str, Share]:
    """Per stage: the cases owing it, and how many of them had a task do it late."""
    owed: dict[str, set[str]] = {stage: set() for stage in STAGES}
    late: dict[str, set[str]] = {stage: set() for stage in STAGES}
    for task in tasks:
        for stage in STAGES:
            if deadline_born(task, stage) is not None:
                owed[stage].add(task.case_no)
                if task_late(task, stage, done.get(task.task_id, Done()), end):
                    late[stage].add(task.case_no)
    return {stage: Share(len(owed[stage]), len(late[stage])) for stage in STAGES}


def deadline_born(task: TaskSeen, stage: str) -> datetime | None:
    return task.deadline(stage, task.dispatched_at)


def task_late(task: TaskSeen, stage: str, done: Done, end: datetime) -> bool:
    """The stage was done after its agreed deadline (as born or moved by an update, not by
    supervision: a supervised case stays late), or not done while the deadline passed."""
    stop = done.at(stage) or task.ended_at or end
    deadline = task.deadline(stage, stop, urged=False)
    if deadline is None:
        return False
    finished = done.at(stage)
    if finished is not None:
        return finished > deadline
    return (task.ended_at is None or task.ended_at > deadline) and end > deadline


def district_shares(
    events: Iterable[CaseEvent],
    urgency: Mapping[str, Urgency],
    policy: DeadlinePolicy,
    calendar: WorkCalendar,
    end: datetime,
) -> dict[str, Share]:
    """The district's own stages: a case waiting in triage, for an escalation's or a return's
    decision, and a unit's extension request, each against the policy's deadline for it."""
    owed = dict.fromkeys((s.value for s in DistrictStage), 0)
    late = dict.fromkeys(owed, 0)
    for stage, case_no, start, stop in _district_waits(events):
        urg = urgency.get(case_no, Urgency.NORMAL)
        deadline = decide_by(policy, calendar, stage, urg, start)
        owed[stage] += 1
        late[stage] += (stop or end) > deadline
    return {stage: Share(owed[stage], late[stage]) for stage in owed}


def _district_waits(
    events: Iterable[CaseEvent],
) -> list[tuple[DistrictStage, str, datetime, datetime | None]]:
    """(stage, case, since, until or None) of every wait for a district decision: a case in
    a state the district decides (the service's `waits.WAITING`) until it leaves that state,
    an extension request until it is decided or its task is done with."""
    waits: list[tuple[DistrictStage, str, datetime, datetime | None]] = []
    open_wait: dict[str, tuple[DistrictStage, datetime]] = {}
    requests: dict[str, tuple[str, datetime]] = {}  # task id -> (case, requested at)
    for ev in sorted(events, key=lambda e: (e.case_no, e.seq)):
        task_id = str(ev.data.get("task_id", ""))
        if ev.type == Event.EXTENSION_REQUESTED:
            requests.setdefault(task_id, (ev.case_no, ev.at))
        elif ev.type in _ENDS_REQUEST and task_id in requests:
            case_no, since = requests.pop(task_id)
            waits.append((DistrictStage.EXTENSION_DECISION, case_no, since, ev.at))
        stage = WAITING.get(CaseState(ev.to_state)) if ev.to_state in _STATES else None
        if ev.case_no in open_wait and open_wait[ev.case_no][0] is not stage:
            was, since = open_wait.pop(ev.case_no)
            waits.append((was, ev.case_no, since, ev.at))
        if stage is not None and ev.case_no not in open_wait:
            open_wait[ev.case_no] = (stage, ev.at)
    waits += [(stage, case_no, since, None) for case_no, (stage, since) in open_wait.items()]
    extension = DistrictStage.EXTENSION_DECISION
    waits += [(extension, c, since, None) for c, since in requests.values()]
    return waits


_STATES = frozenset(s.value for s in CaseState)

#: what ends a wait for an extension decision: the decision, or the task done with
_ENDS_REQUEST = frozenset(
    {
        Event.EXTENSION_APPROVED,
        Event.EXTENSION_REFUSED,
        Event.RESOLVED,
        Event.RETURNED,
        Event.ESCALATED,
        "co_reported",
        "lead_resolved",
    }
)
