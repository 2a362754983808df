"""KPI trends: a period cut into Shanghai calendar days, ISO weeks or months. Pure.

Each bucket is the calendar day (midnight to midnight, Asia/Shanghai), ISO week (Monday to
Monday) or month (the 1st to the 1st) that holds part of the period, clipped to the period,
so the buckets of [from, to) tile it exactly and their figures add up to the period's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from services.district.kpis.report import SHANGHAI

#: the most buckets one trend answers (a year and a month of days)
MAX_BUCKETS = 400


class Step(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class TooManyBuckets(ValueError):
    """The period holds more than MAX_BUCKETS buckets of the step asked for."""


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str  # 2026-11-27, 2026-W48, 2026-11
    start: datetime
    end: datetime


def buckets(start: datetime, end: datetime, step: Step) -> list[Bucket]:
    """The calendar buckets of `step` that tile [start, end), in order."""
    out: list[Bucket] = []
    day = start.astimezone(SHANGHAI).date()
    while (begin := _midnight(_first(day, step))) < end:
        if len(out) == MAX_BUCKETS:
            raise TooManyBuckets(f"more than {MAX_BUCKETS} {step}s; ask for a shorter period")
        following = _next(_first(day, step), step)
        until = _midnight(following)
        out.append(Bucket(_label(day, step), max(begin, start), min(until, end)))
        day = following
    return out


def _first(day: date, step: Step) -> date:
    if step is Step.DAY:
        return day
    if step is Step.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(first: date, step: Step) -> date:
    if step is Step.DAY:
        return first + timedelta(days=1)
    if step is Step.WEEK:
        return first + timedelta(days=7)
    return (first + timedelta(days=32)).replace(day=1)


def _label(day: date, step: Step) -> str:
    if step is Step.DAY:
        return day.isoformat()
    if step is Step.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day:%Y-%m}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), SHANGHAI)
