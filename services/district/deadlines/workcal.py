"""Working-time arithmetic on the Chinese government calendar (pure, no I/O).

Working days come from `chinese_calendar` (weekends, statutory holidays, make-up working
days 调休). For a year the package has no data for, the calendar falls back to Monday–Friday
and reports the year once through `on_fallback`. Office periods are half-open: with the
default hours 12:00 is already the lunch break and 17:30 is after work.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import chinese_calendar

DEFAULT_OFFICE_HOURS: tuple[tuple[time, time], ...] = (
    (time(9, 0), time(12, 0)),
    (time(13, 0), time(17, 30)),
)
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
#: answers remembered before the memo starts over; a batch decided at one instant asks the
#: same few questions thousands of times (the deadlines of each urgency from `now`)
_MEMO_MAX = 4096
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _check_periods(periods: Sequence[tuple[timedelta, timedelta]]) -> None:
    if not periods:
        raise ValueError("office_hours must contain at least one period")
    previous_end = _ZERO
    for begin, end in periods:
        if not previous_end <= begin < end:
            raise ValueError("office_hours must be ordered, non-overlapping (start, end) pairs")
        previous_end = end


class WorkCalendar:
    """Office-hours calendar; all results are aware datetimes in `tz`."""

    def __init__(
        self,
        office_hours: Sequence[tuple[time, time]] = DEFAULT_OFFICE_HOURS,
        tz: str = "Asia/Shanghai",
        on_fallback: Callable[[int], None] | None = None,
    ) -> None:
        periods = tuple((_since_midnight(a), _since_midnight(b)) for a, b in office_hours)
        _check_periods(periods)
        self.tz = ZoneInfo(tz)
        self.fallback_years: set[int] = set()
        self._periods = periods
        self.office_hours = tuple(office_hours)
        self._day_length = sum((end - begin for begin, end in periods), _ZERO)
        self._on_fallback = on_fallback
        self._workdays: dict[date, bool] = {}
        self._added: dict[tuple[datetime, timedelta], datetime] = {}
        self._between: dict[tuple[datetime, datetime], timedelta] = {}

    @property
    def workday_length(self) -> timedelta:
        """Working time in one working day (7.5 h with the default office hours)."""
        return self._day_length

    def is_workday(self, d: date) -> bool:
        cached = self._workdays.get(d)
        if cached is None:
            cached = self._workdays[d] = self._lookup_workday(d)
        return cached

    def _lookup_workday(self, d: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            if d.year not in self.fallback_years:
                self.fallback_years.add(d.year)
                if self._on_fallback is not None:
                    self._on_fallback(d.year)
            return d.weekday() < 5

    def to_local(self, moment: datetime) -> datetime:
        """`moment` in the calendar's zone; ValueError for a naive datetime."""
        if moment.tzinfo is self.tz:
            return moment
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"timezone-aware datetime required, got naive {moment!r}")
        return moment.astimezone(self.tz)

    def _split(self, moment: datetime) -> tuple[date, timedelta]:
        local = self.to_local(moment)
        return local.date(), _since_midnight(local.time())

    def _join(self, day: date, offset: timedelta) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.tz) + offset

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """The instant `delta` of office time after `start`.

        A start outside office hours begins at the next office period, so a zero delta
        returns that period's start.
        """
        if delta < _ZERO:
            raise ValueError(f"delta must not be negative, got {delta}")
        key = (start, delta)
        found = self._added.get(key)
        if found is None:
            found = _remember(self._added, key, self._add_working_time(start, delta))
        return found

    def _add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        day, pos = self._split(start)
        remaining = delta
        while True:
            if self.is_workday(day):
                finish, remaining = self._spend_day(pos, remaining)
                if finish is not None:
                    return self._join(day, finish)
            day, pos = day + _ONE_DAY, _ZERO

    def _spend_day(
        self, pos: timedelta, remaining: timedelta
    ) -> tuple[timedelta | None, timedelta]:
        """Spend `remaining` in one workday from `pos`: (finish offset or None, time left)."""
        if pos == _ZERO and remaining > self._day_length:
            return None, remaining - self._day_length  # the whole day at once
        for begin, end in self._periods:
            if pos >= end:
                continue
            pos = max(pos, begin)
            if remaining <= end - pos:
                return pos + remaining, _ZERO
            remaining -= end - pos
        return None, remaining

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """`n` working days (n × `workday_length` of office time) after `start`."""
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        return self.add_working_time(start, n * self._day_length)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Office time from `a` to `b`; negative when `b` is before `a`."""
        a, b = self.to_local(a), self.to_local(b)
        if b < a:
            return -self.working_time_between(b, a)
        found = self._between.get((a, b))
        if found is None:
            found = _remember(self._between, (a, b), self._working_time_between(a, b))
        return found

    def _working_time_between(self, a: datetime, b: datetime) -> timedelta:
        day, pos = self._split(a)
        last_day, last_pos = self._split(b)
        total = _ZERO
        while day <= last_day:
            if self.is_workday(day):
                stop = last_pos if day == last_day else _ONE_DAY
                total += self._overlap(pos, stop)
            day, pos = day + _ONE_DAY, _ZERO
        return total

    def _overlap(self, lo: timedelta, hi: timedelta) -> timedelta:
        if lo == _ZERO and hi == _ONE_DAY:
            return self._day_length
        total = _ZERO
        for begin, end in self._periods:
            total += max(_ZERO, min(end, hi) - max(begin, lo))
        return total


def _remember(memo: dict[_K, _V], key: _K, value: _V) -> _V:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value
    return value
