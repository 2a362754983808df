"""Coordinates: datum conversion, sanity checks and street lookup (属地) by nearest anchor.

Pure functions, no I/O. Longitudes and latitudes are decimal degrees, distances are metres.
GCJ-02 is China's obfuscated datum used by consumer map apps; reference data is WGS-84.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

EARTH_RADIUS_M = 6_371_008.8

# GCJ-02 parameters: Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.00669342162296594323
_GCJ_REGION = (72.004, 137.8347, 0.8293, 55.8271)  # lon_min, lon_max, lat_min, lat_max
_MAINLAND_BOX = (73.4, 135.1, 18.1, 53.6)  # rough box used for plausibility checks


def _in_box(lon: float, lat: float, box: tuple[float, float, float, float]) -> bool:
    return box[0] <= lon <= box[1] and box[2] <= lat <= box[3]


def _shift_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    return ret


def _shift_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Apply the GCJ-02 offset; points outside China's region are returned unchanged."""
    if not _in_box(lon, lat, _GCJ_REGION):
        return lon, lat
    x, y = lon - 105.0, lat - 35.0
    rad_lat = math.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    m_per_rad_lat = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (magic * sqrt_magic)
    m_per_rad_lon = _KRASOVSKY_A / sqrt_magic * math.cos(rad_lat)
    d_lat = math.degrees(_shift_lat(x, y) / m_per_rad_lat)
    d_lon = math.degrees(_shift_lon(x, y) / m_per_rad_lon)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert the GCJ-02 offset by fixed-point iteration (error far below 1 cm)."""
    w_lon, w_lat = lon, lat
    for _ in range(30):
        g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
        err_lon, err_lat = g_lon - lon, g_lat - lat
        w_lon, w_lat = w_lon - err_lon, w_lat - err_lat
        if abs(err_lon) < 1e-10 and abs(err_lat) < 1e-10:
            break
    return w_lon, w_lat


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a point given in `crs` ("wgs84" or "gcj02") to WGS-84."""
    if crs == "wgs84":
        return lon, lat
    if crs == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    raise ValueError(f"unsupported coordinate reference system: {crs!r}")


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres on a spherical Earth."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2.0) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def plausibility_error(lon: float, lat: float) -> str | None:
    """Why a coordinate pair is absurd for a Chinese city, or None if it is plausible."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return "coordinates are not finite numbers"
    if lon == 0.0 and lat == 0.0:
        return "coordinates are (0, 0): probably a missing value"
    if not _in_box(lon, lat, _MAINLAND_BOX) and _in_box(lat, lon, _MAINLAND_BOX):
        return "longitude and latitude look swapped"
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return "coordinates out of range (lon -180..180, lat -90..90)"
    if not _in_box(lon, lat, _MAINLAND_BOX):
        return "coordinates outside mainland China"
    return None


class Anchor(NamedTuple):
    """A WGS-84 reference point inside the territory of a street (unit)."""

    unit_code: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class Located:
    unit_code: str
    distance_m: float


_Cell = tuple[int, int]


class StreetLocator:
    """Nearest-anchor (Voronoi) street lookup over a uniform grid of ~`cell_m` cells.

    Rings of cells around the query are searched until no unvisited cell can hold an anchor
    nearer than the best one so far (or than `max_distance_m`). Ties go to the anchor given
    first, so the answer is exactly the brute-force nearest anchor. Grid columns wrap around
    the antimeridian.
    """

    def __init__(
        self, anchors: Sequence[Anchor], max_distance_m: float = 1500.0, cell_m: float = 500.0
    ) -> None:
        if not anchors:
            raise ValueError("a street locator needs at least one anchor")
        if not (max_distance_m > 0 and math.isfinite(max_distance_m) and cell_m > 0):
            raise ValueError("max_distance_m and cell_m must be positive and finite")
        if any(not (abs(a.lon) <= 180.0 and abs(a.lat) <= 90.0) for a in anchors):
            raise ValueError("anchor coordinates out of range")
        self.max_distance_m = max_distance_m
        lats = [a.lat for a in anchors]
        self._cell_lat = min(math.degrees(cell_m / EARTH_RADIUS_M), 180.0)
        mid_cos = max(math.cos(math.radians((min(lats) + max(lats)) / 2.0)), 0.01)
        self._n_cols = max(1, math.floor(360.0 / (self._cell_lat / mid_cos)))
        self._cell_lon = 360.0 / self._n_cols
        # Any point within max_distance_m of an anchor has |lat| <= _lat_limit.
        self._lat_limit = max(map(abs, lats)) + math.degrees(max_distance_m / EARTH_RADIUS_M)
        self._cos_limit = math.cos(math.radians(min(self._lat_limit, 90.0)))
        self._grid: dict[_Cell, list[tuple[int, Anchor]]] = {}
        for order, a in enumerate(anchors):
            self._grid.setdefault(self._cell(a.lon, a.lat), []).append((order, a))
        cols, rows = [i for i, _ in self._grid], [j for _, j in self._grid]
        self._bounds = (min(cols), max(cols), min(rows), max(rows))

    @classmethod
    def from_csv_rows(
        cls, rows: Iterable[Mapping[str, str]], max_distance_m: float = 1500.0
    ) -> StreetLocator:
        """Build from rows with `unit_code`, `lon`, `lat` (e.g. csv.DictReader)."""
        anchors = [Anchor(r["unit_code"], float(r["lon"]), float(r["lat"])) for r in rows]
        return cls(anchors, max_distance_m=max_distance_m)

    def locate(self, lon: float, lat: float) -> Located | None:
        """The street of the nearest anchor, or None if none is within max_distance_m."""
        if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lat) > self._lat_limit:
            return None
        ci, cj = self._cell(lon, lat)
        best: tuple[float, int, str] | None = None
        r = 0
        while True:
            for order, a in self._ring(ci, cj, r):
                cand = (haversine_m(lon, lat, a.lon, a.lat), order, a.unit_code)
                if best is None or cand[:2] < best[:2]:
                    best = cand
            bound = min(best[0], self.max_distance_m) if best else self.max_distance_m
            if self._unseen_lower_bound_m(r) > bound or self._covers_all(ci, cj, r):
                break
            r += 1
        if best is None or best[0] > self.max_distance_m:
            return None
        return Located(unit_code=best[2], distance_m=best[0])

    def _cell(self, lon: float, lat: float) -> _Cell:
        col = math.floor((lon + 180.0) / self._cell_lon) % self._n_cols
        return col, math.floor(lat / self._cell_lat)

    def _ring(self, ci: int, cj: int, r: int) -> Iterator[tuple[int, Anchor]]:
        """Anchors in the cells at Chebyshev distance exactly r from (ci, cj)."""
        if r == 0:
            cells: Iterable[_Cell] = [(ci, cj)]
        else:
            top_bottom = ((ci + d, cj + s) for d in range(-r, r + 1) for s in (-r, r))
            sides = ((ci + s, cj + d) for d in range(-r + 1, r) for s in (-r, r))
            cells = (*top_bottom, *sides)
        for i, j in cells:
            yield from self._grid.get((i % self._n_cols, j), ())

    def _unseen_lower_bound_m(self, r: int) -> float:
        """Lower bound on the distance to any anchor outside rings 0..r.

        Such an anchor differs from the query by more than r cells in latitude or longitude.
        hav(d) >= hav(d_lat) and hav(d) >= cos(lat_limit)^2 * hav(d_lon) give the bound.
        """
        d_lat = min(math.radians(r * self._cell_lat), math.pi)
        if 2 * r + 1 >= self._n_cols:  # every column visited: only latitude can separate
            return EARTH_RADIUS_M * d_lat
        d_lon = math.radians(min(r * self._cell_lon, 180.0))
        lon_bound = 2.0 * math.asin(self._cos_limit * math.sin(d_lon / 2.0))
        return EARTH_RADIUS_M * min(d_lat, lon_bound)

    def _covers_all(self, ci: int, cj: int, r: int) -> bool:
        """Every occupied cell has been visited."""
        i_min, i_max, j_min, j_max = self._bounds
        cols = 2 * r + 1 >= self._n_cols or (ci - r <= i_min and ci + r >= i_max)
        return cols and cj - r <= j_min and cj + r >= j_max
