"""Street territories (属地) as polygons, looked up through an STRtree spatial index. Pure.

Polygons are WGS-84 longitude/latitude. They come from an official GeoJSON FeatureCollection
when the district has one (`from_geojson`), otherwise they are generated from the street
anchors (`build_from_anchors`):

- the anchors are projected onto a local plane in metres (equirectangular about their mean;
  the scale error is well under 1% across a city), so cell edges are true bisectors;
- every anchor gets its Voronoi cell, and a street is the union of its anchors' cells: a point
  belongs to the street of its nearest anchor, as with `geo.StreetLocator`;
- the streets are clipped to the district boundary, the morphological closing of the anchors:
  the disks of `gap_m` (1 km) around them, shrunk by `gap_m - margin_m`, holes filled. It
  reaches `margin_m` (500 m, about one anchor spacing: the median nearest-anchor distance in
  Jing'an is 420 m) beyond the outermost anchors and bridges anchors less than 2 × `gap_m`
  apart, so it has no notches or holes between them. For Jing'an it covers 47 km² (the
  district's official area is 36.9 km²): official polygons should replace it when available.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely
import shapely.errors
from shapely import affinity
from shapely.geometry import MultiPoint, Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from services.district.routing.geo import EARTH_RADIUS_M, Anchor, Located, haversine_m

_POLYGONAL = ("Polygon", "MultiPolygon")
#: the lookup cache's cell: 0.0005 degrees, about 55 m by 47 m at Shanghai's latitude
#: the lookup grid's cell: 0.0005 degrees (about 55 m by 47 m at Shanghai's latitude), larger
#: when the territory is so wide that the grid would exceed `_GRID_MAX_CELLS`
_CELL_DEG = 0.0005
_GRID_MAX_CELLS = 400_000  # 1.6 MB of grid; a district needs about 35,000
_CELL_PAD = 1e-9  # a cell's box is padded by this much so rounding cannot leave a point out
_OUTSIDE, _BORDER = -1, -2
_QUAD_SEGS = 16  # a disk is a 64-gon: at 1 km its edge lies within 1.2 m of the circle


class Territory:
    """Which street's polygon contains a point. Parts are kept in the order given, and a point
    on a border shared by several streets goes to the first of them.

    Lookups go through a grid of small cells over the territory, computed up front: a cell
    that lies wholly inside one part (or touches none) answers without any geometry; in a cell
    that a border crosses, only the parts touching it are tested exactly.
    """

    def __init__(self, areas: Iterable[tuple[str, BaseGeometry]]) -> None:
        codes: list[str] = []
        parts: list[BaseGeometry] = []
        for unit_code, geometry in areas:
            for part in _polygons(geometry):
                codes.append(unit_code)
                parts.append(part)
        if not parts:
            raise ValueError("a territory needs at least one polygon")
        self._codes = tuple(codes)
        self._parts = parts
        shapely.prepare(parts)
        self._tree = shapely.STRtree(parts)
        self._grid = _Grid(parts, self._tree)

    @property
    def units(self) -> tuple[str, ...]:
        """The streets, in the order given."""
        return tuple(dict.fromkeys(self._codes))

    def area(self, unit_code: str) -> BaseGeometry | None:
        """The street's territory (one polygon or several), or None for an unknown street."""
        own = [p for c, p in zip(self._codes, self._parts, strict=True) if c == unit_code]
        return shapely.union_all(own) if own else None

    @property
    def grid_cells(self) -> int:
        """How many cells the lookup grid has (coarser for a wide territory)."""
        return len(self._grid.cells)

    def locate(self, lon: float, lat: float) -> Located | None:
        """The street whose territory contains the WGS-84 point, or None: outside the district."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        found = self._grid.cell(lon, lat)
        if found >= 0:
            return Located(unit_code=self._codes[found], distance_m=0.0)
        if found == _BORDER:
            for i in self._grid.touching(lon, lat):
                if shapely.intersects_xy(self._parts[i], lon, lat):
                    return Located(unit_code=self._codes[i], distance_m=0.0)
        return None

    def nearest(self, lon: float, lat: float) -> Located | None:
        """The street whose territory is nearest the WGS-84 point, with the distance to it in
        metres (0 inside): for a point outside the district, how far outside it lies."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        inside = self.locate(lon, lat)
        if inside is not None:
            return inside
        point = Point(lon, lat)
        best: Located | None = None
        for code, part in zip(self._codes, self._parts, strict=True):
            near = nearest_points(part, point)[0]
            distance = haversine_m(lon, lat, near.x, near.y)
            if best is None or distance < best.distance_m:
                best = Located(unit_code=code, distance_m=distance)
        return best

    def to_geojson(self) -> dict[str, Any]:
        """A FeatureCollection with one feature per street, e.g. to review generated territories
        in a GIS tool; `from_geojson` reads it back."""
        features = [
            {"type": "Feature", "properties": {"unit_code": code}, "geometry": mapping(area)}
            for code in self.units
            if (area := self.area(code)) is not None
        ]
        return {"type": "FeatureCollection", "features": features}


class _Grid:
    """Cells over the parts' bounds, each holding the one part that covers the whole (padded)
    cell while no other part touches it, `_OUTSIDE` when no part touches it, or `_BORDER`
    with the parts that touch it, in order."""

    def __init__(self, parts: Sequence[BaseGeometry], tree: shapely.STRtree) -> None:
        min_x, min_y, max_x, max_y = (float(v) for v in shapely.total_bounds(parts))
        width, height = max_x - min_x, max_y - min_y
        self.d = _CELL_DEG
        while (int(width / self.d) + 3) * (int(height / self.d) + 3) > _GRID_MAX_CELLS:
            self.d *= 1.05
        self.x0, self.y0 = min_x - self.d, min_y - self.d
        self.nx, self.ny = int(width / self.d) + 3, int(height / self.d) + 3
        self.cells = array("i", [_OUTSIDE]) * (self.nx * self.ny)
        self.border: dict[int, tuple[int, ...]] = {}
        owners = np.asarray(parts, dtype=object)
        rows = max(1, 20_000 // self.nx)  # boxes built per step
        for y in range(0, self.ny, rows):
            self._fill(tree, owners, y, min(y + rows, self.ny))

    def _fill(self, tree: shapely.STRtree, parts: Any, y_from: int, y_to: int) -> None:
        grid_x, grid_y = np.meshgrid(np.arange(self.nx), np.arange(y_from, y_to))
        ix, iy = grid_x.ravel(), grid_y.ravel()
        x, y = self.x0 + ix * self.d, self.y0 + iy * self.d
        pad = _CELL_PAD
        boxes = shapely.box(x - pad, y - pad, x + self.d + pad, y + self.d + pad)
        box_i, part_i = tree.query(boxes, predicate="intersects")
        touching: dict[int, list[int]] = {}
        for b, p in zip(box_i.tolist(), part_i.tolist(), strict=True):
            touching.setdefault(b, []).append(p)
        alone = [(b, ps[0]) for b, ps in touching.items() if len(ps) == 1]
        covered = shapely.covers(parts[[p for _, p in alone]], boxes[[b for b, _ in alone]])
        whole = {b: p for (b, p), c in zip(alone, covered.tolist(), strict=True) if c}
        for b, ps in touching.items():
            cell = int(iy[b]) * self.nx + int(ix[b])
            if b in whole:
                self.cells[cell] = whole[b]
            else:
                self.cells[cell] = _BORDER
                self.border[cell] = tuple(sorted(ps))

    def _index(self, lon: float, lat: float) -> int | None:
        x, y = math.floor((lon - self.x0) / self.d), math.floor((lat - self.y0) / self.d)
        return y * self.nx + x if 0 <= x < self.nx and 0 <= y < self.ny else None

    def cell(self, lon: float, lat: float) -> int:
        """The part covering the point's cell, `_OUTSIDE`, or `_BORDER`."""
        i = self._index(lon, lat)
        return _OUTSIDE if i is None else self.cells[i]

    def touching(self, lon: float, lat: float) -> tuple[int, ...]:
        i = self._index(lon, lat)
        return () if i is None else self.border.get(i, ())


def build_from_anchors(
    anchors: Sequence[Anchor], margin_m: float = 500.0, gap_m: float = 1000.0
) -> Territory:
    """Street territories from anchors: Voronoi cells per street, clipped to the district
    boundary (see the module's docstring). Anchors at the same point: the first one counts."""
    if not anchors:
        raise ValueError("territories need at least one anchor")
    if not (0.0 < margin_m <= gap_m and math.isfinite(gap_m)):
        raise ValueError("need 0 < margin_m <= gap_m, finite")
    plane = _Plane(anchors)
    unique: dict[tuple[float, float], Anchor] = {}
    for anchor in anchors:
        unique.setdefault(plane.xy(anchor), anchor)
    points = MultiPoint(list(unique))
    disks = shapely.buffer(shapely.get_parts(points), gap_m, quad_segs=_QUAD_SEGS)
    closed = shapely.union_all(disks).buffer(margin_m - gap_m, quad_segs=_QUAD_SEGS)
    boundary = _fill_holes(closed)
    extent = boundary.envelope.buffer(gap_m)
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=extent, ordered=True))
    if len(cells) != len(unique):
        raise ValueError("anchors too close together to separate")
    by_unit: dict[str, list[BaseGeometry]] = {}
    for anchor, cell in zip(unique.values(), cells, strict=True):
        by_unit.setdefault(anchor.unit_code, []).append(cell)
    return Territory(
        (code, plane.to_lonlat(shapely.union_all(own).intersection(boundary)))
        for code, own in by_unit.items()
    )


def from_geojson(doc: Mapping[str, Any]) -> Territory:
    """Official territories: a GeoJSON FeatureCollection of Polygon / MultiPolygon features in
    WGS-84 (or CGCS2000) longitude/latitude, each with the property `unit_code`. Several
    features of one street are its parts; invalid rings are repaired."""
    return Territory(geojson_areas(doc))


def geojson_areas(doc: Mapping[str, Any]) -> list[tuple[str, BaseGeometry]]:
    """(unit_code, geometry) of every feature of the FeatureCollection, checked."""
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValueError("territories must be a GeoJSON FeatureCollection")
    return [_feature_area(n, feature) for n, feature in enumerate(doc["features"])]


def _feature_area(n: int, feature: Any) -> tuple[str, BaseGeometry]:
    properties = feature.get("properties") if isinstance(feature, dict) else None
    unit_code = (properties or {}).get("unit_code")
    geometry = feature.get("geometry") if isinstance(feature, dict) else None
    if not isinstance(unit_code, str) or not unit_code:
        raise ValueError(f"feature {n} has no `unit_code` property")
    if not isinstance(geometry, dict) or geometry.get("type") not in _POLYGONAL:
        raise ValueError(f"feature {n} ({unit_code}) is not a Polygon or MultiPolygon")
    try:
        area = shape(geometry)
    except (ValueError, TypeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        raise ValueError(f"feature {n} ({unit_code}) has malformed coordinates: {exc}") from exc
    if not area.is_valid:
        area = shapely.make_valid(area)
    min_lon, min_lat, max_lon, max_lat = area.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ValueError(f"feature {n} ({unit_code}) is not in longitude/latitude degrees")
    return unit_code, area


class _Plane:
    """A local equirectangular projection in metres about the anchors' mean position."""

    def __init__(self, anchors: Sequence[Anchor]) -> None:
        self.lon0 = sum(a.lon for a in anchors) / len(anchors)
        self.lat0 = sum(a.lat for a in anchors) / len(anchors)
        self.ky = EARTH_RADIUS_M * math.pi / 180.0  # metres per degree of latitude
        self.kx = self.ky * math.cos(math.radians(self.lat0))

    def xy(self, anchor: Anchor) -> tuple[float, float]:
        return (anchor.lon - self.lon0) * self.kx, (anchor.lat - self.lat0) * self.ky

    def to_lonlat(self, geometry: BaseGeometry) -> BaseGeometry:
        matrix = [1.0 / self.kx, 0.0, 0.0, 1.0 / self.ky, self.lon0, self.lat0]
        return affinity.affine_transform(geometry, matrix)


def _polygons(geometry: BaseGeometry) -> list[BaseGeometry]:
    """The non-empty polygons of a geometry (lines and points left by clipping are dropped)."""
    parts = [geometry]
    while any(
        p.geom_type.startswith("Multi") or p.geom_type == "GeometryCollection" for p in parts
    ):
        parts = list(shapely.get_parts(parts))
    return [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]


def _fill_holes(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.union_all([shapely.Polygon(p.exterior) for p in _polygons(geometry)])
