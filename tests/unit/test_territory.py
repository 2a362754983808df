"""Street territories as polygons (services/district/routing/territory.py), used in Reference."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point, box, mapping

from services.district.routing.geo import (
    Anchor,
    Located,
    gcj02_to_wgs84,
    haversine_m,
    to_wgs84,
    wgs84_to_gcj02,
)
from services.district.routing.reference import load_csv
from services.district.routing.territory import Territory, build_from_anchors, from_geojson
from tests.support import samples

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
M_PER_DEG = 111_195.0  # metres per degree of latitude (spherical Earth)
NANJING_W, JINGAN_TEMPLE = "310106012000", "310106013000"
EXPECTED = {
    "HL2026112700123": NANJING_W,
    "HL2026112700124": "310106019000",  # GCJ-02
    "HL2026112700125": "310106006000",
    "HL2026112700126": "310106015000",  # GCJ-02
    "HL2026112700128": "310106018000",
    "HL2026112700129": "310106014000",
    "HL2026112700130": "310106016000",  # GCJ-02
    "HL2026112700131": "310106022000",
    "HL2026112700132": None,  # Xuhui
}


@pytest.fixture(scope="module")
def anchors() -> tuple[Anchor, ...]:
    return load_csv(REFERENCE, "310106").anchors


@pytest.fixture(scope="module")
def territory(anchors: tuple[Anchor, ...]) -> Territory:
    return build_from_anchors(anchors)


def _centroids(anchors: tuple[Anchor, ...]) -> dict[str, tuple[float, float]]:
    by_unit: dict[str, list[Anchor]] = {}
    for a in anchors:
        by_unit.setdefault(a.unit_code, []).append(a)
    return {
        unit: (sum(a.lon for a in own) / len(own), sum(a.lat for a in own) / len(own))
        for unit, own in by_unit.items()
    }


def _towards(a: Anchor, target: tuple[float, float], metres: float) -> tuple[float, float]:
    fraction = metres / haversine_m(a.lon, a.lat, *target)
    return a.lon + (target[0] - a.lon) * fraction, a.lat + (target[1] - a.lat) * fraction


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))), lat + north_m / M_PER_DEG


def _unit(territory: Territory, lon: float, lat: float) -> str | None:
    found = territory.locate(lon, lat)
    return found.unit_code if found else None


# --- generated from the Jing'an anchors --------------------------------------------------


def test_every_anchor_locates_to_its_own_street(
    territory: Territory, anchors: tuple[Anchor, ...]
) -> None:
    for a in anchors:
        assert territory.locate(a.lon, a.lat) == Located(a.unit_code, 0.0), a
    assert set(territory.units) == {a.unit_code for a in anchors}


def test_points_well_inside_a_street_go_to_that_street(
    territory: Territory, anchors: tuple[Anchor, ...]
) -> None:
    centroids = _centroids(anchors)
    for unit, centre in centroids.items():
        assert _unit(territory, *centre) == unit
    for a in anchors:
        assert _unit(territory, *_towards(a, centroids[a.unit_code], 100.0)) == a.unit_code, a


def test_streets_follow_the_nearest_anchor(
    territory: Territory, anchors: tuple[Anchor, ...]
) -> None:
    """Inside the district the cells are the nearest-anchor cells (up to the projection, which
    moves a border by well under a metre)."""
    rng = random.Random(3)
    for _ in range(3000):
        lon, lat = rng.uniform(121.41, 121.48), rng.uniform(31.21, 31.33)
        found = _unit(territory, lon, lat)
        if found is None:
            continue
        nearest = min(anchors, key=lambda a: haversine_m(lon, lat, a.lon, a.lat))
        if found != nearest.unit_code:
            own = min(haversine_m(lon, lat, a.lon, a.lat) for a in anchors if a.unit_code == found)
            assert own - haversine_m(lon, lat, nearest.lon, nearest.lat) < 1.0


def test_sample_orders_land_on_their_streets(territory: Territory) -> None:
    orders = {o["order_no"]: o for o in samples("hotline12345.workorders") if "location" in o}
    assert set(orders) == set(EXPECTED)
    for order_no, unit in EXPECTED.items():
        loc = orders[order_no]["location"]
        assert _unit(territory, *to_wgs84(loc["lon"], loc["lat"], loc["crs"])) == unit, order_no


def test_gcj02_and_wgs84_of_one_place_land_on_the_same_street(
    territory: Territory, anchors: tuple[Anchor, ...]
) -> None:
    centroids = _centroids(anchors)
    for a in anchors:
        wgs = _towards(a, centroids[a.unit_code], 100.0)
        gcj = wgs84_to_gcj02(*wgs)
        assert _unit(territory, *to_wgs84(*gcj, "gcj02")) == _unit(territory, *wgs) == a.unit_code
        # the raw GCJ-02 point is ~500 m off: it must not be used as WGS-84
        assert haversine_m(*wgs, *gcj) > 400.0
    daning = to_wgs84(121.452012, 31.285735, "gcj02")  # HL2026112700124
    assert _unit(territory, *gcj02_to_wgs84(*wgs84_to_gcj02(*daning))) == "310106019000"


def test_the_district_ends_half_a_kilometre_beyond_its_outermost_anchors(
    territory: Territory, anchors: tuple[Anchor, ...]
) -> None:
    south = min(anchors, key=lambda a: a.lat)
    assert _unit(territory, *_offset(south.lon, south.lat, 0, -400)) == south.unit_code
    assert territory.locate(*_offset(south.lon, south.lat, 0, -700)) is None
    north = max(anchors, key=lambda a: a.lat)
    assert _unit(territory, *_offset(north.lon, north.lat, 0, 400)) == north.unit_code
    assert territory.locate(*_offset(north.lon, north.lat, 0, 700)) is None
    for lon, lat in [(121.4452, 31.2075), (121.4177, 31.2197), (121.4831, 31.2342)]:
        assert territory.locate(lon, lat) is None  # 衡山路, 长宁路, 福州路
    assert territory.locate(2.3522, 48.8566) is None
    assert territory.locate(math.nan, 31.25) is None and territory.locate(121.45, math.inf) is None


def test_build_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        build_from_anchors([])
    with pytest.raises(ValueError):
        build_from_anchors([Anchor("A", 121.4, 31.2)], margin_m=2000.0, gap_m=1000.0)


def test_anchors_at_one_point_go_to_the_first() -> None:
    twins = [Anchor("A", 121.45, 31.25), Anchor("B", 121.45, 31.25), Anchor("C", 121.46, 31.25)]
    territory = build_from_anchors(twins)
    assert _unit(territory, 121.451, 31.251) == "A"
    assert _unit(territory, 121.459, 31.25) == "C"
    assert territory.area("B") is None


# --- official GeoJSON ------------------------------------------------------------------------


def _feature(unit_code: str, geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"unit_code": unit_code}, "geometry": geometry}


def _square(lon: float, lat: float, half_m: float) -> Any:
    (w, s), (e, n) = _offset(lon, lat, -half_m, -half_m), _offset(lon, lat, half_m, half_m)
    return box(w, s, e, n)


def _official(anchors: tuple[Anchor, ...]) -> dict[str, Any]:
    """The 南京西路 street's first anchor drawn into 静安寺: what official data may well say."""
    nanjing = next(a for a in anchors if a.unit_code == NANJING_W)
    temple = next(a for a in anchors if a.unit_code == JINGAN_TEMPLE)
    shared = _square(nanjing.lon, nanjing.lat, 200.0)
    return {
        "type": "FeatureCollection",
        "features": [
            _feature(JINGAN_TEMPLE, mapping(_square(temple.lon, temple.lat, 300.0))),
            _feature(JINGAN_TEMPLE, mapping(shared)),
            _feature(
                NANJING_W, mapping(_square(nanjing.lon, nanjing.lat, 600.0).difference(shared))
            ),
        ],
    }


def test_geojson_override_is_honoured(anchors: tuple[Anchor, ...]) -> None:
    official = from_geojson(_official(anchors))
    nanjing = next(a for a in anchors if a.unit_code == NANJING_W)
    assert _unit(official, nanjing.lon, nanjing.lat) == JINGAN_TEMPLE
    assert _unit(official, *_offset(nanjing.lon, nanjing.lat, 400, 0)) == NANJING_W
    far = next(a for a in anchors if a.unit_code == "310106021000")
    assert official.locate(far.lon, far.lat) is None  # not in any official polygon
    assert official.units == (JINGAN_TEMPLE, NANJING_W)


def test_reference_uses_the_official_territories(
    anchors: tuple[Anchor, ...], tmp_path: Path
) -> None:
    path = tmp_path / "territories.geojson"
    path.write_text(json.dumps(_official(anchors)), encoding="utf-8")
    ref = load_csv(REFERENCE, "310106", territory_geojson=path)
    nanjing = next(a for a in anchors if a.unit_code == NANJING_W)
    assert _unit(ref.territory, nanjing.lon, nanjing.lat) == JINGAN_TEMPLE
    assert _unit(load_csv(REFERENCE, "310106").territory, nanjing.lon, nanjing.lat) == NANJING_W

    unknown = _official(anchors)
    unknown["features"][0]["properties"]["unit_code"] = "310106-JSGL"
    path.write_text(json.dumps(unknown), encoding="utf-8")
    with pytest.raises(ValueError, match="310106-JSGL"):
        load_csv(REFERENCE, "310106", territory_geojson=path)


def test_generated_territories_round_trip_through_geojson(
    territory: Territory, anchors: tuple[Anchor, ...]
) -> None:
    again = from_geojson(json.loads(json.dumps(territory.to_geojson())))
    assert again.units == territory.units
    for a in anchors:
        for east, north in ((0, 0), (250, 0), (0, -250), (-180, 180)):
            point = _offset(a.lon, a.lat, east, north)
            assert _unit(again, *point) == _unit(territory, *point)


@pytest.mark.parametrize(
    ("doc", "word"),
    [
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": []}, "at least one"),
        (
            {"type": "FeatureCollection", "features": [_feature("", mapping(box(0, 0, 1, 1)))]},
            "unit_code",
        ),
        (
            {"type": "FeatureCollection", "features": [_feature("X", mapping(Point(1, 1)))]},
            "Polygon",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [_feature("X", mapping(box(350000, 3450000, 351000, 3451000)))],
            },
            "degrees",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [_feature("X", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})],
            },
            "malformed",
        ),
    ],
)
def test_bad_geojson_is_refused(doc: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        from_geojson(doc)


def test_self_intersecting_official_ring_is_repaired() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    territory = from_geojson({"type": "FeatureCollection", "features": [_feature("X", bowtie)]})
    assert _unit(territory, 0.1, 0.5) == "X" and _unit(territory, 0.5, 0.9) is None


# --- a whole city ------------------------------------------------------------------------------


def _synthetic_city(streets: int = 200, per_street: int = 10) -> list[Anchor]:
    """Streets on a jittered 1.6 km grid across Shanghai, anchors within 500 m of their seed."""
    rng = random.Random(11)
    side = math.ceil(math.sqrt(streets))
    out = []
    for n in range(streets):
        seed = _offset(121.2, 31.0, (n % side) * 1600.0, (n // side) * 1600.0)
        seed = _offset(*seed, rng.uniform(-300, 300), rng.uniform(-300, 300))
        out.extend(
            Anchor(f"S{n:03d}", *_offset(*seed, rng.uniform(-500, 500), rng.uniform(-500, 500)))
            for _ in range(per_street)
        )
    return out


@pytest.fixture(scope="module")
def city() -> Territory:
    return build_from_anchors(_synthetic_city())


def _brute_force(areas: list[tuple[str, Any]], lon: float, lat: float) -> str | None:
    point = Point(lon, lat)
    return next((unit for unit, area in areas if area.covers(point)), None)


def _city_points(rng: random.Random, n: int) -> Iterator[tuple[float, float]]:
    for _ in range(n):
        yield rng.uniform(121.19, 121.45), rng.uniform(30.99, 31.24)


def test_city_of_200_streets_matches_a_brute_force_scan(city: Territory) -> None:
    assert len(city.units) == 200
    areas = [(unit, city.area(unit)) for unit in city.units]
    points = list(_city_points(random.Random(5), 5000))
    found = [_unit(city, *p) for p in points]
    assert found == [_brute_force(areas, *p) for p in points]
    assert 0 < found.count(None) < len(points) // 2, "the sample must cover inside and outside"


def _border_points(territory: Territory, rng: random.Random, n: int) -> list[tuple[float, float]]:
    """Vertices of the street borders and points a hair either side of them."""
    out = []
    for unit in territory.units:
        area = territory.area(unit)
        assert area is not None
        for ring in (getattr(p, "exterior", p) for p in getattr(area, "geoms", [area])):
            coords = list(ring.coords)
            for lon, lat in rng.sample(coords, min(n, len(coords))):
                out.append((lon, lat))
                out.append((lon + rng.uniform(-1e-6, 1e-6), lat + rng.uniform(-1e-6, 1e-6)))
    return out


def test_lookups_through_the_grid_match_a_brute_force_scan(
    territory: Territory, city: Territory
) -> None:
    rng = random.Random(8)
    for t in (territory, city):
        areas = [(unit, t.area(unit)) for unit in t.units]
        points = _border_points(t, rng, 12)
        points += [(p[0] + 0.0002, p[1] - 0.0002) for p in points]  # cells beside the border
        expected = [_brute_force(areas, *p) for p in points]
        assert [_unit(t, *p) for p in points] == expected


def test_a_wide_territory_gets_coarser_cells_and_the_same_answers(
    territory: Territory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.district.routing.territory as module

    monkeypatch.setattr(module, "_GRID_MAX_CELLS", 2000)
    coarse = build_from_anchors(load_csv(REFERENCE, "310106").anchors)
    assert coarse.grid_cells <= 2000 < territory.grid_cells
    points = _border_points(territory, random.Random(9), 12)
    assert [_unit(coarse, *p) for p in points] == [_unit(territory, *p) for p in points]
