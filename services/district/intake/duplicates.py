"""并案: is a new report a duplicate of an open case nearby? Pure: no I/O.

A report of the same category within `radius_m` of an open case of the district, opened less
than `window` ago, joins that case (the nearest, when several qualify). Candidates come from
the database by a bounding box (`Probe`), the exact distance is decided here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.district.cases.lifecycle import OPEN, State
from services.district.cases.model import CaseRec

EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180
#: states in which a case still takes new reporters (a resolved case is about to close).
JOINABLE = OPEN - {State.RESOLVED}


@dataclass(frozen=True)
class DuplicatePolicy:
    radius_m: float = 100.0
    window: timedelta = timedelta(hours=24)

    @property
    def enabled(self) -> bool:
        return self.radius_m > 0 and self.window > timedelta(0)


@dataclass(frozen=True, slots=True)
class Probe:
    """What one new report looks for: its category and a lon/lat box around its point."""

    category_code: str
    lon: float
    lat: float
    min_lon: float
    max_lon: float
    min_lat: float
    max_lat: float


def probe(category_code: str, lon: float, lat: float, radius_m: float) -> Probe:
    """A box a little larger than the circle (the exact distance is checked afterwards)."""
    radius_m *= 1.01
    dlat = radius_m / _M_PER_DEG_LAT
    dlon = radius_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 1e-6))
    return Probe(category_code, lon, lat, lon - dlon, lon + dlon, lat - dlat, lat + dlat)


#: the grid cell of `cases.geo_cell`, in degrees (deploy/migrations/025_nearby_cells.sql)
CELL_DEG = 0.002


def cell_of(lon: float, lat: float) -> int:
    """The grid cell id `cases.geo_cell` gives a point (the same formula as the column)."""
    return math.floor(lon / CELL_DEG) * 1_000_000 + math.floor(lat / CELL_DEG)


def cells(p: Probe) -> list[int]:
    """The grid cells the probe's box overlaps: where its candidates can be."""
    xs = range(math.floor(p.min_lon / CELL_DEG), math.floor(p.max_lon / CELL_DEG) + 1)
    ys = range(math.floor(p.min_lat / CELL_DEG), math.floor(p.max_lat / CELL_DEG) + 1)
    return [x * 1_000_000 + y for x in xs for y in ys]


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine), in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def find_duplicate(
    candidates: Iterable[CaseRec],
    district_code: str,
    category_code: str,
    lon: float,
    lat: float,
    now: datetime,
    policy: DuplicatePolicy,
) -> CaseRec | None:
    """The nearest open case the new report duplicates, or None."""
    best: tuple[float, CaseRec] | None = None
    for case in candidates:
        if (
            case.district_code != district_code
            or case.category_code != category_code
            or case.state not in JOINABLE
            or case.lon is None
            or case.lat is None
            or case.opened_at < now - policy.window
        ):
            continue
        d = distance_m(lon, lat, case.lon, case.lat)
        if d <= policy.radius_m and (best is None or d < best[0]):
            best = (d, case)
    return best[1] if best else None
