"""One detection round: which keys to judge, and what happens to their hotspots. Pure: the
buckets and peer counts come through a `Lookup` (the database in the service, memory in the
simulations of the tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contracts.hotspots import HotspotKind
from services.district.hotspots import areas
from services.district.hotspots.areas import AreaKind
from services.district.hotspots.detector import (
    Candidate,
    Judged,
    Peers,
    Sent,
    Step,
    Verdict,
    judge,
    new_clusters,
    step,
    verdict,
)
from services.district.hotspots.rules import Thresholds, WindowRule
from services.district.hotspots.stats import Series, window_count

#: the areas each kind counts in
AREA_OF = {
    HotspotKind.CLUSTER: AreaKind.CELL,
    HotspotKind.SURGE: AreaKind.STREET,
    HotspotKind.REPEAT: AreaKind.PLACE,
}


@dataclass(frozen=True, slots=True)
class Key:
    """What a hotspot is about: for a cluster, `area` is the cell its block is centred on."""

    kind: HotspotKind
    area: str
    category_code: str

    @property
    def area_kind(self) -> AreaKind:
        return AREA_OF[self.kind]

    def areas(self) -> list[str]:
        """The areas whose buckets the key adds up: a cluster's block, else the area."""
        if self.kind is HotspotKind.CLUSTER:
            return [str(c) for c in areas.block(int(self.area))]
        return [self.area]


@dataclass(frozen=True, slots=True)
class Spot:
    """An open hotspot."""

    hotspot_id: str
    key: Key
    last: Sent


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    key: Key
    verdict: Verdict
    spot: Spot | None  # None when it opens one


class Lookup(Protocol):
    def series(self, kind: AreaKind, area: str, category_code: str) -> Series: ...
    def peers(self, rule: WindowRule, category_code: str) -> Peers: ...


def candidates(dirty: Iterable[Key], spots: Sequence[Spot]) -> list[Key]:
    """The keys that saw reports and have no open hotspot: for a cluster, none of its
    category within reach (a report there joins that one, judged with the open ones)."""
    held = {s.key for s in spots}
    clusters = [s.key for s in spots if s.key.kind is HotspotKind.CLUSTER]
    out = []
    for key in dict.fromkeys(dirty):
        if key in held:
            continue
        if key.kind is HotspotKind.CLUSTER and any(
            c.category_code == key.category_code and areas.near(int(c.area), int(key.area))
            for c in clusters
        ):
            continue
        out.append(key)
    return out


def assess(
    key: Key, lookup: Lookup, now: datetime, since: datetime | None, th: Thresholds
) -> Verdict:
    """Judge every window of the key's kind on the key's buckets."""
    parts = {a: lookup.series(key.area_kind, a, key.category_code) for a in key.areas()}
    total = Series.empty()
    for s in parts.values():
        total = total.plus(s)
    judged: list[Judged] = []
    around = _around(key, lookup)
    for rule in th.of(key.kind):
        peer = 0.0
        if rule.peer and around is not None:  # a place: its share of its cell's reports
            peer = window_count(around, rule.hours, now, rule.hourly) * areas.PLACE_SHARE
        elif rule.peer:
            counts = {a: window_count(s, rule.hours, now, rule.hourly) for a, s in parts.items()}
            peer = lookup.peers(rule, key.category_code).expected(counts)
        judged.append(judge(rule, total, now, since, peer))
    return verdict(judged)


def may_open(key: Key, lookup: Lookup, now: datetime, th: Thresholds) -> bool:
    """Whether a window of the key's kind counts the reports a hotspot needs to open
    (`min_count`; `judge` rounds the count, so a half below is enough here). Most keys that
    saw reports in a round have one or two: they are judged no further, and cannot open."""
    parts = [lookup.series(key.area_kind, a, key.category_code) for a in key.areas()]
    return any(
        sum(window_count(s, rule.hours, now, rule.hourly) for s in parts) >= rule.min_count - 0.5
        for rule in th.of(key.kind)
    )


def _around(key: Key, lookup: Lookup) -> Series | None:
    """The buckets of the cell a point place lies in (None for other keys)."""
    cell = _cell_around(key)
    return None if cell is None else lookup.series(AreaKind.CELL, cell, key.category_code)


def _cell_around(key: Key) -> str | None:
    point = areas.place_point(key.area) if key.kind is HotspotKind.REPEAT else None
    return None if point is None else str(areas.cell_of(*point))


def needed(key: Key) -> list[tuple[AreaKind, str]]:
    """The areas whose buckets judging `key` reads."""
    out = [(key.area_kind, a) for a in key.areas()]
    cell = _cell_around(key)
    return out if cell is None else [*out, (AreaKind.CELL, cell)]


def decide(
    dirty: Iterable[Key],
    spots: Sequence[Spot],
    lookup: Lookup,
    now: datetime,
    since: datetime | None,
    th: Thresholds,
) -> list[Decision]:
    """Every open hotspot is judged again (updated, kept or closed); the keys that saw reports
    and have none open may open one, a cluster only where no stronger one is near."""
    out = []
    for spot in spots:
        v = assess(spot.key, lookup, now, since, th)
        s = step(spot.last, v, now, th)
        if s is not Step.NONE:
            out.append(Decision(s, spot.key, v, spot))
    judged = [
        (k, assess(k, lookup, now, since, th))
        for k in candidates(dirty, spots)
        if may_open(k, lookup, now, th)
    ]
    clusters = [
        Candidate(k.category_code, int(k.area), v)
        for k, v in judged
        if k.kind is HotspotKind.CLUSTER
    ]
    open_cells = [
        (s.key.category_code, int(s.key.area)) for s in spots if s.key.kind is HotspotKind.CLUSTER
    ]
    chosen = {(c.category_code, str(c.cell)) for c in new_clusters(clusters, open_cells)}
    for k, v in judged:
        if k.kind is HotspotKind.CLUSTER and (k.category_code, k.area) not in chosen:
            continue
        if step(None, v, now, th) is Step.OPEN:
            out.append(Decision(Step.OPEN, k, v, None))
    return out
