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

from services.district.cases.lifecycle import OPEN, CaseState
from services.district.cases.model import CaseRec
from services.district.routing.geo import EARTH_RADIUS_M, haversine_m

_M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180
#: states in which a case still takes new reporters (a resolved case is about to close).
JOINABLE = OPEN - {CaseState.RESOLVED}


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
        d = haversine_m(lon, lat, case.lon, case.lat)
        if d <= policy.radius_m and (best is None or d < best[0]):
            best = (d, case)
    return best[1] if best else None
