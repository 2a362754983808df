"""Parking (挂账) stops a task's clock; unparking resumes it with the time that was left. Pure.

Working time for normal cases, natural time for urgent and critical ones (`policy.is_natural`).
A deadline that had passed when the case was parked has no time left: it falls due on resuming.
The stage's start moves too, so that warnings fall at 80% of the time actually spent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.district.deadlines.workcal import WorkCalendar

_ZERO, _SECOND = timedelta(0), timedelta(seconds=1)


def time_left(
    deadline: datetime, parked_at: datetime, cal: WorkCalendar, natural: bool
) -> timedelta:
    """The (working or natural) time from parking to the deadline; zero once it had passed."""
    if deadline <= parked_at:
        return _ZERO
    return deadline - parked_at if natural else cal.working_time_between(parked_at, deadline)


def resumed_deadline(
    deadline: datetime, parked_at: datetime, now: datetime, cal: WorkCalendar, natural: bool
) -> datetime:
    """The deadline on resuming at `now` with the time that was left at `parked_at`."""
    left = time_left(deadline, parked_at, cal, natural)
    if left == _ZERO:
        return now
    return cal.to_local(now + left) if natural else cal.add_working_time(now, left)


def resumed_start(
    start: datetime, parked_at: datetime, now: datetime, cal: WorkCalendar, natural: bool
) -> datetime:
    """Where the stage's clock starts after resuming at `now`: the latest instant with as much
    (working or natural) time before `now` as the task had spent before it was parked."""
    if natural:
        return now - (parked_at - start)
    spent = cal.working_time_between(start, parked_at)

    def enough(seconds: int) -> bool:
        return cal.working_time_between(start + seconds * _SECOND, now) >= spent

    lo, hi = 0, int((now - start).total_seconds())  # enough(lo); the latest such second
    if enough(hi):
        return now
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if enough(mid) else (lo, mid)
    return start + lo * _SECOND
