"""Countdowns to a task's next deadline, in the time that counts for it. Pure.

Normal cases count office time on the government calendar (`WorkCalendar`), urgent and
critical ones natural time (`deadlines.is_natural`). The console shows the time left and lets
it tick in the browser only while that time counts; `next_change` says when the clock starts or
stops next, so the screen asks again then instead of polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from contracts.common import Urgency
from services.district.deadlines.policy import is_natural
from services.district.deadlines.workcal import WorkCalendar

#: a working-time clock stops or starts at an office period's edge within this many days
_LOOKAHEAD_DAYS = 40


@dataclass(frozen=True, slots=True)
class Countdown:
    remaining_s: int  # negative once the deadline has passed (overdue by that much)
    natural: bool  # natural time (urgent, critical) or office time
    ticking: bool  # whether the time left shrinks right now


def countdown(
    calendar: WorkCalendar, now: datetime, due: datetime, urgency: Urgency | str
) -> Countdown:
    """How much time the task has left before `due`, counted as its urgency says."""
    if is_natural(Urgency(urgency)):
        return Countdown(int((due - now).total_seconds()), natural=True, ticking=True)
    left = calendar.working_time_between(now, due)
    return Countdown(int(left.total_seconds()), natural=False, ticking=in_office(calendar, now))


def in_office(
    calendar: WorkCalendar,
    now: datetime,
    hours: Sequence[tuple[time, time]] | None = None,
) -> bool:
    """Whether `now` lies in an office period of a working day (the calendar's by default)."""
    hours = calendar.office_hours if hours is None else hours
    local = calendar.to_local(now)
    if not calendar.is_workday(local.date()):
        return False
    return any(begin <= local.time() < end for begin, end in hours)


def next_change(
    calendar: WorkCalendar,
    now: datetime,
    hours: Sequence[tuple[time, time]] | None = None,
) -> datetime | None:
    """The next instant after `now` at which office time starts or stops counting."""
    hours = calendar.office_hours if hours is None else hours
    local = calendar.to_local(now)
    for offset in range(_LOOKAHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        if not calendar.is_workday(day):
            continue
        for begin, end in hours:
            for edge in (begin, end):
                at = datetime.combine(day, edge, calendar.tz)
                if at > local:
                    return at
    return None
