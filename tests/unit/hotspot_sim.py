"""A street simulated in memory for the hotspot detector's tests: Poisson reports per cell and
category (with a day-night rhythm), judged by the service's own detection round
(`services.district.hotspots.plan.decide`) every tick, as the service judges them."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contracts.hotspots import HotspotKind
from services.district.hotspots.areas import AreaKind, cell_of
from services.district.hotspots.detector import Peers, Sent, Step
from services.district.hotspots.plan import AREA_OF, Decision, Key, Spot, decide
from services.district.hotspots.rules import Thresholds, WindowRule
from services.district.hotspots.stats import Series, day_start, hour_start, window_count

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
#: reports by hour of day relative to the mean (Shanghai time: quiet nights, busy days)
RHYTHM = [0.2] * 7 + [
    0.8,
    1.4,
    1.6,
    1.6,
    1.5,
    1.3,
    1.5,
    1.6,
    1.6,
    1.5,
    1.4,
    1.2,
    1.1,
    1.0,
    0.8,
    0.5,
    0.3,
]
#: the feed generator's category weights (scripts/feedgen.py), as in a real district's mix
WEIGHTS = [3, 6, 3, 3, 2, 8, 9, 8, 5, 7, 6, 6, 4, 4, 4, 3, 4, 3, 2, 2, 2, 2, 3, 3, 1, 1, 2]
PLACES_PER_CELL = 400  # ~10 m places in a ~200 m cell
Buckets = tuple[dict[datetime, int], dict[datetime, int]]


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class Street:
    """One street's cells (a `cols` × `rows` grid) and its background: `per_day` reports."""

    per_day: float
    seed: int = 1
    cols: int = 5
    rows: int = 4
    rng: random.Random = field(init=False)
    cells: list[int] = field(init=False)
    cell_weights: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        x0, y0 = cell_of(121.44, 31.22) // 1_000_000, cell_of(121.44, 31.22) % 1_000_000
        self.cells = [
            (x0 + i) * 1_000_000 + y0 + j for i in range(self.cols) for j in range(self.rows)
        ]
        raw = [self.rng.lognormvariate(0, 0.8) for _ in self.cells]  # busy and quiet cells
        self.cell_weights = [w / sum(raw) for w in raw]

    def background(self, at: datetime, minutes: int) -> Iterator[tuple[int, str, str]]:
        """(cell, category, place) of each report in the `minutes` from `at`: a Poisson
        number of reports, each placed and classified by the weights (the same as a Poisson
        count per cell and category)."""
        hour = (at.hour + 8) % 24
        lam = self.per_day / 24 * RHYTHM[hour] / (sum(RHYTHM) / 24) * minutes / 60
        n = _poisson(self.rng, lam)
        cells = self.rng.choices(self.cells, self.cell_weights, k=n)
        kinds = self.rng.choices(range(len(WEIGHTS)), WEIGHTS, k=n)
        for cell, k in zip(cells, kinds, strict=True):
            yield cell, f"C{k:02d}", self._place(cell)

    def _place(self, cell: int) -> str:
        """One of the cell's ~10 m places (`areas.place_of`'s form), at random."""
        x, y = divmod(cell, 1_000_000)
        side = round(math.sqrt(PLACES_PER_CELL))
        return f"p{x * side + self.rng.randrange(side)}:{y * side + self.rng.randrange(side)}"


class Memory:
    """The buckets the service keeps in PostgreSQL, kept in dicts (a `plan.Lookup`)."""

    def __init__(self) -> None:
        #: (area kind, category) -> area -> (hourly, daily) buckets
        self.buckets: dict[tuple[AreaKind, str], dict[str, Buckets]] = defaultdict(dict)
        self.now = START
        self._peers: dict[tuple[WindowRule, str], Peers] = {}

    def add(self, kind: AreaKind, area: str, category: str, at: datetime) -> None:
        hours, days = self.buckets[(kind, category)].setdefault(area, ({}, {}))
        h, d = hour_start(at), day_start(at)
        if kind is not AreaKind.PLACE:  # places are judged by the day only
            hours[h] = hours.get(h, 0) + 1
        days[d] = days.get(d, 0) + 1

    def prune(self, now: datetime) -> None:
        """Hourly buckets are kept three days, as the service keeps them; peer counts are
        recounted every hour (the service recounts them every minute)."""
        self.now = now
        if now.minute:
            return
        self._peers = {}
        for (kind, _), by_area in self.buckets.items():
            if kind is AreaKind.PLACE:
                continue
            for hours, _ in by_area.values():
                for h in [h for h in hours if h < now - timedelta(days=3)]:
                    del hours[h]

    def series(self, kind: AreaKind, area: str, category_code: str) -> Series:
        hours, days = self.buckets[(kind, category_code)].get(area, ({}, {}))
        return Series(hours, days)

    def peers(self, rule: WindowRule, category_code: str) -> Peers:
        key = (rule, category_code)
        if key not in self._peers:
            counts = {
                area: window_count(Series(h, d), rule.hours, self.now, rule.hourly)
                for area, (h, d) in self.buckets[(AREA_OF[rule.kind], category_code)].items()
            }
            self._peers[key] = Peers.of(counts)
        return self._peers[key]


@dataclass
class Run:
    """What a simulation saw: every hotspot opened (when, key) and how long it ran."""

    opened: list[tuple[datetime, Key]] = field(default_factory=list)
    spots: dict[Key, Spot] = field(default_factory=dict)

    def apply(self, decisions: list[Decision], now: datetime) -> None:
        for d in decisions:
            if d.step is Step.OPEN:
                self.opened.append((now, d.key))
                self.spots[d.key] = Spot(
                    f"HS{len(self.opened)}", d.key, Sent(d.verdict.best.count, now)
                )
            elif d.step is Step.UPDATE and d.spot is not None:
                self.spots[d.key] = Spot(d.spot.hotspot_id, d.key, Sent(d.verdict.best.count, now))
            elif d.step is Step.CLOSE:
                self.spots.pop(d.key, None)

    def opened_between(self, start: datetime, end: datetime) -> list[tuple[datetime, Key]]:
        return [(at, k) for at, k in self.opened if start <= at < end]


def simulate(
    streets: list[Street],
    th: Thresholds,
    days: float,
    tick_minutes: int = 10,
    extra: dict[datetime, list[tuple[int, str, str]]] | None = None,
) -> Run:
    """Run `days` of background (plus `extra` reports at given ticks) through the detector."""
    memory, run = Memory(), Run()
    for tick in range(int(days * 24 * 60 / tick_minutes)):
        at = START + timedelta(minutes=tick * tick_minutes)
        now = at + timedelta(minutes=tick_minutes)
        memory.prune(now)
        dirty: list[Key] = []
        for street_no, street in enumerate(streets):
            reports = list(street.background(at, tick_minutes))
            reports += (extra or {}).get(at, []) if street_no == 0 else []
            for cell, category, place in reports:
                seen = at + timedelta(minutes=street.rng.random() * tick_minutes)
                for kind, area in (
                    (AreaKind.CELL, str(cell)),
                    (AreaKind.STREET, f"S{street_no}"),
                    (AreaKind.PLACE, place),
                ):
                    memory.add(kind, area, category, seen)
                dirty += [
                    Key(HotspotKind.CLUSTER, str(cell), category),
                    Key(HotspotKind.SURGE, f"S{street_no}", category),
                    Key(HotspotKind.REPEAT, place, category),
                ]
        spots = list(run.spots.values())
        run.apply(decide(dirty, spots, memory, now, START, th), now)
    return run
