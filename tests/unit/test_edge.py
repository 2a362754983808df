"""Not ours only when sure (routing/edge.py): a point outside the anchor-built boundary by
less than the margin goes to the nearest street (or triage), farther out or with an address
naming another district it is not ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.district.routing.edge import EdgePolicy, Placement, place
from services.district.routing.reference import Reference, load_csv

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
M_PER_DEG_LAT = 111_195.0


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_csv(REFERENCE, "310106")


def north_of_boundary(ref: Reference, metres: float) -> tuple[float, float, str]:
    """A point `metres` north of the district boundary, above the northernmost anchor, and
    the street of that anchor."""
    top = max(ref.anchors, key=lambda a: a.lat)
    lat = top.lat
    while ref.territory.locate(top.lon, lat) is not None:
        lat += 1 / M_PER_DEG_LAT
    return top.lon, lat + metres / M_PER_DEG_LAT, top.unit_code


def test_the_nearest_street_and_the_distance_outside(ref: Reference) -> None:
    lon, lat, street = north_of_boundary(ref, 300)
    assert ref.territory.locate(lon, lat) is None
    nearest = ref.territory.nearest(lon, lat)
    assert nearest is not None and nearest.unit_code == street
    assert 290 < nearest.distance_m < 310


def test_just_outside_goes_to_the_nearest_street(ref: Reference) -> None:
    lon, lat, street = north_of_boundary(ref, 300)
    got = place(ref, EdgePolicy(), lon, lat, "某小区门口", "310106")
    assert got.street_code == street and not got.not_ours
    assert (got.outcome, got.reason) == ("nearest", "near_edge")
    triage = place(ref, EdgePolicy(near_edge="triage"), lon, lat, "某小区门口", "310106")
    assert (triage.street_code, triage.outcome, triage.not_ours) == (None, "triage", False)


def test_far_outside_is_not_ours(ref: Reference) -> None:
    lon, lat, _ = north_of_boundary(ref, 1500)
    got = place(ref, EdgePolicy(), lon, lat, "某小区门口", "310106")
    assert got.not_ours and (got.outcome, got.reason) == ("not_ours", "far_outside")
    kept = place(ref, EdgePolicy(margin_m=2000), lon, lat, "某小区门口", "310106")
    assert not kept.not_ours and kept.outcome == "nearest"


def test_an_address_naming_another_district_is_not_ours(ref: Reference) -> None:
    got = place(ref, EdgePolicy(), None, None, "宝山区共和新路某小区", "310106")
    assert got.not_ours and got.district_code == "310113" and got.reason == "address"
    lon, lat, _ = north_of_boundary(ref, 300)
    near = place(ref, EdgePolicy(), lon, lat, "宝山区某路", "310106")
    assert near.not_ours and near.district_code == "310113"
    both = place(ref, EdgePolicy(), lon, lat, "静安区与宝山区交界处", "310106")
    assert not both.not_ours and both.outcome == "nearest"


def test_inside_is_ours_whatever_the_address(ref: Reference) -> None:
    a = ref.anchors[0]
    assert place(ref, EdgePolicy(), a.lon, a.lat, "宝山区某路", "310106") == Placement(
        street_code=a.unit_code
    )


def test_another_district_code_is_not_ours(ref: Reference) -> None:
    a = ref.anchors[0]
    got = place(ref, EdgePolicy(), a.lon, a.lat, None, "310104")
    assert got.not_ours and got.district_code == "310104" and got.reason == "district_code"


@pytest.mark.parametrize(("margin", "near"), [(-1.0, "nearest"), (1000.0, "bounce")])
def test_a_bad_edge_policy(margin: float, near: str) -> None:
    with pytest.raises(ValueError):
        EdgePolicy(margin, near)  # type: ignore[arg-type]
