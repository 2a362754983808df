"""Is a key hot? Should its hotspot open, be updated, close? Pure: counts in, decisions out.

A key is an area × category (`areas.py`); its kind's windows (`rules.py`) are judged one by
one on its buckets (`stats.py`), and the key's verdict takes the strongest of them."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from services.district.hotspots import areas
from services.district.hotspots.rules import Thresholds, WindowRule
from services.district.hotspots.stats import (
    Series,
    days_with_reports,
    own_rate,
    score,
    window_count,
)

#: peers suggest the count of a busy area of the kind: this quantile of the active ones
PEER_QUANTILE = 0.9


@dataclass(frozen=True, slots=True)
class Peers:
    """One window's counts of one kind × category across the district: area -> count, for
    the areas that had one report or more (counted a little earlier than the key itself)."""

    counts: Mapping[str, float] = field(default_factory=dict)
    #: the counts in ascending order (sorted once: every key of the round asks)
    ranked: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranked", tuple(sorted(self.counts.values())))

    @staticmethod
    def of(counts: Mapping[str, float]) -> Peers:
        return Peers({a: c for a, c in counts.items() if c > 0})

    def expected(self, own: Mapping[str, float]) -> float:
        """The count the key's active areas (`own`: area -> count) would have as busy peers:
        the `PEER_QUANTILE` of the other active areas, per active area of the key."""
        mine = sorted(c for a in own if (c := self.counts.get(a)) is not None)
        n = len(self.ranked) - len(mine)
        active = sum(1 for c in own.values() if c > 0)
        if n <= 0 or not active:
            return 0.0
        i = min(int(PEER_QUANTILE * n), n - 1)  # the i-th of the others: step over the key's
        for j, c in enumerate(mine):  # own counts, equal ones at consecutive ranks
            if bisect.bisect_left(self.ranked, c) + _equal_before(mine, j) > i:
                break
            i += 1
        return self.ranked[i] * active


def _equal_before(ordered: Sequence[float], j: int) -> int:
    """How many of `ordered[:j]` equal `ordered[j]`."""
    n = 0
    while n < j and ordered[j - 1 - n] == ordered[j]:
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class Judged:
    """One window judged: its count, the count expected (λ), the score, and whether it is
    hot enough to open a hotspot or to keep one open."""

    rule: WindowRule
    count: int
    baseline: float
    score: float
    opens: bool
    keeps: bool
    start: datetime
    end: datetime


def judge(
    rule: WindowRule,
    s: Series,
    now: datetime,
    since: datetime | None,
    peer: float = 0.0,
) -> Judged:
    """Judge `rule`'s window ending at `now` on the key's buckets; `since` is when the district
    began counting (None: never), `peer` the count its peers suggest."""
    k = math.floor(window_count(s, rule.hours, now, rule.hourly) + 0.5)
    lam, known = rule.floor, True
    if rule.lookback_days:
        rate, history_h = own_rate(s, rule.hours, rule.lookback_days, now, since)
        known = history_h >= rule.min_history_h
        lam = max(lam, rate * rule.hours) if known else lam
    if rule.peer:
        lam = max(lam, peer)
    # judged against its own history alone, a key opens nothing until it has that history
    known = known or rule.peer
    sc = score(k, lam) if k > 0 else 0.0
    recurring = rule.min_days <= 1 or days_with_reports(s, rule.hours, now) >= rule.min_days
    opens = (
        known
        and recurring
        and k >= rule.min_count
        and k >= rule.min_ratio * lam
        and sc >= -math.log10(rule.p_open)
    )
    keeps = k >= rule.keep_min_count and sc >= -math.log10(rule.p_keep)
    start = now - timedelta(hours=rule.hours)
    return Judged(rule, k, round(lam, 3), round(sc, 2), opens, keeps, start, now)


@dataclass(frozen=True, slots=True)
class Verdict:
    best: Judged  # the window reported: the strongest that opens, else that keeps, else any
    opens: bool
    keeps: bool


def verdict(judged: Sequence[Judged]) -> Verdict:
    """A key's verdict from its kind's windows: hot when any window is."""
    opening = [j for j in judged if j.opens]
    keeping = [j for j in judged if j.keeps]
    best = max(opening or keeping or judged, key=lambda j: j.score)
    return Verdict(best, bool(opening), bool(keeping))


class Step(StrEnum):
    OPEN = "open"
    UPDATE = "update"
    CLOSE = "close"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Sent:
    """What the last message of an open hotspot said, and when."""

    count: int
    at: datetime


def step(last: Sent | None, v: Verdict, now: datetime, th: Thresholds) -> Step:
    """The next step of a key's hotspot: `last` is None while it has none open. An open one
    is updated when reports joined since its last message — at most every `min_update_s`,
    unless its count has doubled — and closes when no window keeps it open."""
    if last is None:
        return Step.OPEN if v.opens else Step.NONE
    if not v.keeps:
        return Step.CLOSE
    grew = v.best.count > last.count
    due = now - last.at >= timedelta(seconds=th.min_update_s) or v.best.count >= 2 * last.count
    return Step.UPDATE if grew and due else Step.NONE


@dataclass(frozen=True, slots=True)
class Candidate:
    category_code: str
    cell: int
    verdict: Verdict


def new_clusters(
    candidates: Iterable[Candidate], open_cells: Iterable[tuple[str, int]]
) -> list[Candidate]:
    """The candidate clusters that open a hotspot: the strongest first, none within reach of
    an open cluster of its category or of a stronger candidate (one problem, one hotspot)."""
    taken = list(open_cells)
    chosen: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: -c.verdict.best.score):
        if not c.verdict.opens:
            continue
        if any(cat == c.category_code and areas.near(cell, c.cell) for cat, cell in taken):
            continue
        taken.append((c.category_code, c.cell))
        chosen.append(c)
    return chosen
