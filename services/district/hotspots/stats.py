"""Counting windows and the Poisson test. Pure.

A key's reports are kept in hourly buckets (UTC hours) and daily buckets (Shanghai days). A
trailing window of H hours counts the buckets it covers whole and, of the bucket it covers in
part, the share it covers (the sliding-window counter of rate limiters: exact when reports are
spread evenly within a bucket)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
#: scores are capped here (a p-value below 1e-300 says nothing more)
MAX_SCORE = 300.0


@functools.lru_cache(maxsize=256)
def hour_start(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


@functools.lru_cache(maxsize=256)  # a round asks for the same `now` once per key and window
def day_start(at: datetime) -> datetime:
    """Shanghai midnight starting the day `at` falls in."""
    local = at.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Series:
    """One key's buckets: bucket start -> reports."""

    hours: Mapping[datetime, int]
    days: Mapping[datetime, int]

    @staticmethod
    def empty() -> Series:
        return Series({}, {})

    def plus(self, other: Series) -> Series:
        """The buckets of two keys added up (a block's cells)."""
        return Series(_add(self.hours, other.hours), _add(self.days, other.days))


def _add(a: Mapping[datetime, int], b: Mapping[datetime, int]) -> dict[datetime, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def window_count(s: Series, hours: int, now: datetime, hourly: bool) -> float:
    """Reports in the trailing `hours` before `now`."""
    if hourly:
        return _sliding(s.hours, hour_start(now), HOUR, hours, now)
    return _sliding(s.days, day_start(now), DAY, max(hours // 24, 1), now)


def _sliding(
    buckets: Mapping[datetime, int], current: datetime, size: timedelta, n: int, now: datetime
) -> float:
    covered = 1.0 - min((now - current) / size, 1.0)  # share of the oldest bucket still in
    first = current - (n - 1) * size
    if len(buckets) > n:
        whole = sum(buckets.get(current - i * size, 0) for i in range(n))
    else:
        whole = sum(v for b, v in buckets.items() if first <= b <= current)
    return whole + covered * buckets.get(first - size, 0)


def days_with_reports(s: Series, hours: int, now: datetime) -> int:
    """How many different days of the window saw a report."""
    first = day_start(now) - (max(hours // 24, 1) - 1) * DAY
    return sum(1 for b, v in s.days.items() if b >= first and v > 0)


def own_rate(
    s: Series, hours: int, lookback_days: int, now: datetime, since: datetime | None
) -> tuple[float, float]:
    """The key's reports per hour over the whole days of its lookback before the window, and
    how many hours of counted history that rate rests on (0 before counting began)."""
    end = day_start(now - timedelta(hours=hours))
    start = end - lookback_days * DAY
    if since is not None:
        start = max(start, since)
    history_h = max((end - start) / HOUR, 0.0) if since is not None else 0.0
    if history_h <= 0:
        return 0.0, 0.0
    seen = sum(v for b, v in s.days.items() if start <= b < end)
    return seen / history_h, history_h


def log10_sf(k: int, lam: float) -> float:
    """log10 P(X >= k) for X Poisson with mean `lam` (exact in log space, no underflow)."""
    if k <= 0:
        return 0.0
    if lam <= 0:
        return -math.inf
    if k <= lam:  # the tail is at least about one half: 1 - P(X < k) loses nothing here
        below = sum(math.exp(_log_pmf(i, lam)) for i in range(k))
        return math.log10(max(1.0 - below, 1e-300))
    log_first, total, term, i = _log_pmf(k, lam), 1.0, 1.0, k
    while term > 1e-17 * total:  # the terms fall at least geometrically once i > lam
        i += 1
        term *= lam / i
        total += term
    return (log_first + math.log(total)) / math.log(10)


def _log_pmf(i: int, lam: float) -> float:
    return i * math.log(lam) - lam - math.lgamma(i + 1)


def score(k: int, lam: float) -> float:
    """-log10 of the Poisson tail: 4 means one chance in ten thousand."""
    return min(-log10_sf(k, lam), MAX_SCORE)
