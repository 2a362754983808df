"""When a task's deadlines warn (80%) and fall overdue, and which alarms are due now. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from contracts.common import Urgency
from services.district.cases.model import TaskRec
from services.district.deadlines.policy import is_natural, warn_at
from services.district.deadlines.workcal import WorkCalendar

#: stage -> (deadline attribute, "done" timestamp attribute)
STAGES: dict[str, tuple[str, Callable[[TaskRec], datetime | None]]] = {
    "accept": ("accept_by", lambda t: t.accepted_at),
    "first_contact": ("first_contact_by", lambda t: t.contacted_at),
    "resolve": ("resolve_by", lambda t: t.resolved_at),
}


@dataclass(frozen=True, slots=True)
class Alarm:
    stage: str
    kind: str  # warn | overdue
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.stage}:{self.kind}"


def alarms(
    task: TaskRec, urgency: Urgency, calendar: WorkCalendar, warn_fraction: float = 0.8
) -> list[Alarm]:
    """Every alarm of the task's unfinished stages, earliest first."""
    natural = is_natural(urgency)
    out = []
    for stage, (deadline_attr, done) in STAGES.items():
        deadline: datetime | None = getattr(task, deadline_attr)
        if done(task) is not None or deadline is None:  # done, or not owed
            continue
        warn = warn_at(task.started, deadline, calendar, natural, warn_fraction)
        out += [Alarm(stage, "warn", warn), Alarm(stage, "overdue", deadline)]
    return sorted(out, key=lambda a: a.at)


def first_alarm(
    task: TaskRec, urgency: Urgency, calendar: WorkCalendar, warn_fraction: float = 0.8
) -> datetime | None:
    """When the task's first alarm falls, computed once: warnings fall in deadline order (all
    stages start at dispatch), so it is the warning of the earliest unfinished deadline."""
    open_deadlines = [
        getattr(task, attr)
        for attr, done in STAGES.values()
        if done(task) is None and getattr(task, attr) is not None
    ]
    if not open_deadlines:
        return None
    return warn_at(task.started, min(open_deadlines), calendar, is_natural(urgency), warn_fraction)


def due(
    pending: Iterable[Alarm], fired: Iterable[str], now: datetime
) -> tuple[list[Alarm], list[str], datetime | None]:
    """The alarms to fire at `now`, the keys to mark as done, and when the next one falls
    (None: never). A warning whose deadline has passed too is marked but not sent: the
    overdue alarm says more."""
    done = set(fired)
    todo = [a for a in pending if a.key not in done]
    now_due = [a for a in todo if a.at <= now]
    overdue = {a.stage for a in now_due if a.kind == "overdue"}
    fire = [a for a in now_due if not (a.kind == "warn" and a.stage in overdue)]
    later = [a.at for a in todo if a.at > now]
    return fire, [a.key for a in now_due], min(later) if later else None
