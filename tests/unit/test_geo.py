"""Datum conversion, plausibility checks and street lookup (services/district/routing/geo.py)."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pytest

from services.district.routing.geo import (
    Anchor,
    Located,
    StreetLocator,
    gcj02_to_wgs84,
    haversine_m,
    plausibility_error,
    to_wgs84,
    wgs84_to_gcj02,
)

ANCHORS_CSV = (
    Path(__file__).resolve().parents[2] / "deploy/reference/jingan_street_anchors_wgs84.csv"
)
DANING_ROAD = "310106019000"


def _anchor_rows() -> list[dict[str, str]]:
    with ANCHORS_CSV.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def anchors() -> list[Anchor]:
    return [Anchor(r["unit_code"], float(r["lon"]), float(r["lat"])) for r in _anchor_rows()]


@pytest.fixture(scope="module")
def locator() -> StreetLocator:
    return StreetLocator.from_csv_rows(_anchor_rows())


def brute_force(anchors: list[Anchor], lon: float, lat: float, limit: float) -> Located | None:
    dist, code = min(
        ((haversine_m(lon, lat, a.lon, a.lat), a.unit_code) for a in anchors),
        key=lambda pair: pair[0],  # min() keeps the first of equal distances
    )
    return Located(code, dist) if dist <= limit else None


def _shanghai_grid(n: int = 25) -> list[tuple[float, float]]:
    return [
        (120.86 + i * (121.98 - 120.86) / n, 30.68 + j * (31.87 - 30.68) / n)
        for i in range(n + 1)
        for j in range(n + 1)
    ]


# --- datum conversion --------------------------------------------------------------------


def test_gcj02_round_trip_error_below_half_metre_across_shanghai() -> None:
    for lon, lat in _shanghai_grid():
        back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
        assert haversine_m(lon, lat, *back) < 0.5
        fwd = wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))
        assert haversine_m(lon, lat, *fwd) < 0.5


def test_gcj02_offset_in_shanghai_is_about_half_a_kilometre() -> None:
    for lon, lat in _shanghai_grid():
        assert 400.0 < haversine_m(lon, lat, *wgs84_to_gcj02(lon, lat)) < 700.0


def test_no_offset_outside_china() -> None:
    assert wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)
    assert gcj02_to_wgs84(-74.006, 40.7128) == (-74.006, 40.7128)


def test_to_wgs84_dispatches_on_crs() -> None:
    assert to_wgs84(121.45, 31.23, "wgs84") == (121.45, 31.23)
    assert to_wgs84(121.45, 31.23, "gcj02") == gcj02_to_wgs84(121.45, 31.23)
    with pytest.raises(ValueError, match="bd09"):
        to_wgs84(121.45, 31.23, "bd09")


def test_haversine_known_distance() -> None:
    # One degree of latitude on the sphere used here.
    assert haversine_m(121.0, 31.0, 121.0, 32.0) == pytest.approx(111_195.0, abs=1.0)
    assert haversine_m(121.4, 31.2, 121.4, 31.2) == 0.0


# --- plausibility ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "word"),
    [
        (0.0, 0.0, "(0, 0)"),
        (31.2, 121.4, "swapped"),
        (200.0, 10.0, "out of range"),
        (math.nan, 31.2, "not finite"),
        (121.4, math.inf, "not finite"),
        (2.3522, 48.8566, "outside mainland China"),
    ],
)
def test_plausibility_reasons(lon: float, lat: float, word: str) -> None:
    reason = plausibility_error(lon, lat)
    assert reason is not None and word in reason


def test_plausible_shanghai_point() -> None:
    assert plausibility_error(121.452012, 31.285735) is None


# --- street locator ----------------------------------------------------------------------


def test_every_anchor_locates_to_its_own_street(
    locator: StreetLocator, anchors: list[Anchor]
) -> None:
    for a in anchors:
        assert locator.locate(a.lon, a.lat) == Located(a.unit_code, 0.0)


def test_random_points_match_brute_force(locator: StreetLocator, anchors: list[Anchor]) -> None:
    rng = random.Random(20261127)
    found = 0
    for _ in range(3000):
        lon, lat = rng.uniform(121.40, 121.50), rng.uniform(31.20, 31.35)
        got = locator.locate(lon, lat)
        assert got == brute_force(anchors, lon, lat, 1500.0)
        found += got is not None
    assert 0 < found < 3000  # both inside and outside the district were exercised


@pytest.mark.parametrize("limit", [200.0, 1500.0, 50_000.0])
def test_city_scale_anchor_set_matches_brute_force(limit: float) -> None:
    rng = random.Random(int(limit))
    city = [
        Anchor(f"U{i % 215:03d}", rng.uniform(121.0, 121.9), rng.uniform(30.7, 31.8))
        for i in range(2000)
    ]
    locator = StreetLocator(city, max_distance_m=limit)
    for _ in range(200):
        lon, lat = rng.uniform(120.9, 122.0), rng.uniform(30.6, 31.9)
        assert locator.locate(lon, lat) == brute_force(city, lon, lat, limit)


def test_equidistant_anchors_resolve_like_brute_force() -> None:
    twins = [Anchor("A", 121.45, 31.25), Anchor("B", 121.45, 31.25), Anchor("C", 121.46, 31.25)]
    assert StreetLocator(twins).locate(121.451, 31.251) == brute_force(
        twins, 121.451, 31.251, 1500.0
    )


def test_grid_wraps_around_the_antimeridian() -> None:
    pair = [Anchor("EAST", 179.999, -17.0), Anchor("WEST", -179.9995, -17.0)]
    locator = StreetLocator(pair)
    for lon in (179.9999, 180.0, -180.0, -179.999):
        assert locator.locate(lon, -17.0) == brute_force(pair, lon, -17.0, 1500.0)


def test_sample_order_lands_on_same_street_in_both_datums(locator: StreetLocator) -> None:
    # HL2026112700124: "静安区大宁路近共和新路", reported by an app in GCJ-02.
    wgs = to_wgs84(121.452012, 31.285735, "gcj02")
    from_gcj = locator.locate(*wgs)
    from_wgs = locator.locate(*gcj02_to_wgs84(*wgs84_to_gcj02(*wgs)))
    assert from_gcj is not None and from_wgs is not None
    assert from_gcj.unit_code == from_wgs.unit_code == DANING_ROAD


def test_point_in_xuhui_is_outside_the_district(locator: StreetLocator) -> None:
    assert locator.locate(121.43676, 31.19478) is None


def test_far_away_and_non_finite_points_are_outside(locator: StreetLocator) -> None:
    assert locator.locate(2.3522, 48.8566) is None
    assert locator.locate(-58.5, -31.2) is None  # the antipode region
    assert locator.locate(math.nan, 31.25) is None


def test_constructor_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        StreetLocator([])
    with pytest.raises(ValueError):
        StreetLocator([Anchor("A", 121.4, 31.2)], max_distance_m=0.0)
    with pytest.raises(ValueError):
        StreetLocator([Anchor("A", 31.2, 121.4)])


def test_ten_thousand_lookups(locator: StreetLocator, anchors: list[Anchor]) -> None:
    rng = random.Random(7)
    points = [(rng.uniform(121.42, 121.48), rng.uniform(31.22, 31.33)) for _ in range(10_000)]
    results = [locator.locate(lon, lat) for lon, lat in points]
    assert len(results) == 10_000
    codes = {a.unit_code for a in anchors}
    assert all(r is None or r.unit_code in codes for r in results)
    sample = rng.sample(range(10_000), 200)
    assert all(results[i] == brute_force(anchors, *points[i], 1500.0) for i in sample)
