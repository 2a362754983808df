"""并案 decisions: which open case a new report duplicates, by category, distance and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.district.cases.lifecycle import CaseState
from services.district.cases.model import CaseRec
from services.district.intake.duplicates import DuplicatePolicy, find_duplicate, probe
from services.district.routing.geo import haversine_m

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LON, LAT = 121.45309, 31.22692
NORTH_PER_M = 1 / 111_320.0


def case(no: str, metres_north: float, **extra: Any) -> CaseRec:
    fields: dict[str, Any] = {
        "case_no": no,
        "district_code": "310106",
        "source": "hotline12345",
        "source_ref": no,
        "state": CaseState.DISPATCHED,
        "category_code": "0101",
        "category_name": "油烟污染",
        "urgency": "normal",
        "title": "",
        "description": "",
        "address": "",
        "received_at": NOW - timedelta(hours=1),
        "opened_at": NOW - timedelta(hours=1),
        "lon": LON,
        "lat": LAT + metres_north * NORTH_PER_M,
        **extra,
    }
    return CaseRec(**fields)


def find(*cases: CaseRec, category: str = "0101") -> CaseRec | None:
    return find_duplicate(cases, "310106", category, LON, LAT, NOW, DuplicatePolicy())


def test_the_nearest_open_case_within_the_radius_is_the_duplicate() -> None:
    found = find(case("far", 300), case("near", 80), case("nearer", 30))
    assert found is not None and found.case_no == "nearer"
    assert find(case("far", 300)) is None


def test_category_state_age_and_district_keep_cases_apart() -> None:
    assert find(case("a", 10), category="0202") is None
    assert find(case("a", 10, state=CaseState.CLOSED)) is None
    assert find(case("a", 10, state=CaseState.RESOLVED)) is None
    assert find(case("a", 10, opened_at=NOW - timedelta(hours=25))) is None
    assert find(case("a", 10, district_code="310104")) is None
    assert find(case("a", 10, lon=None, lat=None)) is None
    assert not DuplicatePolicy(radius_m=0).enabled


def test_the_probe_box_holds_the_whole_radius() -> None:
    p = probe("0101", LON, LAT, 100)
    assert haversine_m(LON, LAT, p.max_lon, LAT) >= 99.9
    assert haversine_m(LON, LAT, LON, p.max_lat) >= 99.9
    assert p.min_lon < LON < p.max_lon and p.min_lat < LAT < p.max_lat


def test_the_cells_of_a_probe_hold_every_point_of_its_box() -> None:
    import random

    from services.district.intake.duplicates import cell_of, cells

    rng = random.Random(4)
    for _ in range(500):
        lon, lat = rng.uniform(-179, 179), rng.uniform(-80, 80)
        p = probe("c", lon, lat, rng.choice([10.0, 100.0, 250.0, 1000.0]))
        found = set(cells(p))
        for _ in range(20):
            x, y = rng.uniform(p.min_lon, p.max_lon), rng.uniform(p.min_lat, p.max_lat)
            assert cell_of(x, y) in found
        for x, y in ((p.min_lon, p.min_lat), (p.max_lon, p.max_lat)):
            assert cell_of(x, y) in found
