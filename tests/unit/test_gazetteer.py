"""Addresses without coordinates matched to streets (services/district/routing/gazetteer.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.district.routing.gazetteer import Gazetteer
from services.district.routing.geo import to_wgs84
from services.district.routing.reference import load_csv
from tests.support import samples

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
JIANGNING, SHIMEN2, NANJING_W = "310106006000", "310106011000", "310106012000"
CAOJIADU = "310106014000"
BEIZHAN, DANING, PENGPU_XINCUN = "310106016000", "310106019000", "310106020000"


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_csv(REFERENCE, "310106").gazetteer


@pytest.mark.parametrize(
    ("address", "unit"),
    [
        ("静安区南京西路1025弄附近", NANJING_W),
        ("江宁路与新闸路路口东北角", JIANGNING),  # 新闸路 runs in two streets, 江宁路 in one
        ("静安区新闸路与康定路路口", JIANGNING),  # two two-street roads that share one street
        ("静安区大宁路近共和新路", DANING),
        ("静安区长寿路万航渡路路口", CAOJIADU),
        ("静安区北站街道天目东路某超市", BEIZHAN),  # the street's own name agrees with the road
        ("静安区江宁路街道某小区", JIANGNING),
        ("上海市静安区泰兴路１２号", SHIMEN2),  # full-width digits
        ("静安区 泰 兴 路 12 号", SHIMEN2),
        ("静安区彭浦新村街道某小区", PENGPU_XINCUN),
        ("闸北区天目东路85号", BEIZHAN),  # the old name of Jing'an's north is not another district
    ],
)
def test_addresses_naming_one_street(gazetteer: Gazetteer, address: str, unit: str) -> None:
    assert gazetteer.street_of(address) == unit


@pytest.mark.parametrize(
    "address",
    [
        "静安区共和新路某小区12号楼",  # 共和新路 runs through six streets: ambiguous
        "静安区新闸路100号",  # two streets, and no house-number ranges to split them
        "静安区江宁路与泰兴路路口",  # the roads point to different streets
        "静安区彭浦新村临汾路某小区",  # the place and the road disagree
        "静安区某小区",  # no known name
        "",
        None,
    ],
)
def test_unknown_or_ambiguous_addresses_wait_for_triage(
    gazetteer: Gazetteer, address: str | None
) -> None:
    assert gazetteer.match(address) is None


@pytest.mark.parametrize(
    "address",
    [
        "徐汇区漕溪北路某商场",  # another district's road
        "黄浦区福州路100号",
        "漕溪北路1200号",  # a road we do not know, without a district
        "长宁区愚园路1号",  # 愚园路 runs on into Changning: the address says where
        "普陀区长寿路街道某小区",
        "长寿路街道某小区",  # Putuo's 长寿路街道, not Jing'an's 长寿路
        "宝山区宝山路1号",  # 宝山区 is not 宝山路
    ],
)
def test_other_districts_are_never_matched(gazetteer: Gazetteer, address: str) -> None:
    assert gazetteer.match(address) is None


def test_match_names_the_deciding_names(gazetteer: Gazetteer) -> None:
    found = gazetteer.match("静安区江宁路与新闸路路口东北角")
    assert found is not None and found.names == ("江宁路", "新闸路")


def test_longest_name_wins_where_names_overlap() -> None:
    gazetteer = Gazetteer([("A", "武定路"), ("B", "武定西路"), ("C", "西路")])
    assert gazetteer.street_of("武定西路1号") == "B"
    assert gazetteer.street_of("武定路1号") == "A"


def test_every_road_of_one_street_matches_alone(gazetteer: Gazetteer) -> None:
    with (REFERENCE / "jingan_roads.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    streets: dict[str, set[str]] = {}
    for r in rows:
        streets.setdefault(r["road"], set()).add(r["unit_code"])
    assert any(len(units) > 1 for units in streets.values())
    for road, units in streets.items():
        expected = next(iter(units)) if len(units) == 1 else None
        assert gazetteer.street_of(f"静安区{road}8号") == expected, road


def test_sample_addresses_agree_with_their_locations(gazetteer: Gazetteer) -> None:
    territory = load_csv(REFERENCE, "310106").territory
    matched = 0
    for order in samples("hotline12345.workorders"):
        street = gazetteer.street_of(order["address"])
        if street is None or "location" not in order:
            continue
        loc = order["location"]
        located = territory.locate(*to_wgs84(loc["lon"], loc["lat"], loc["crs"]))
        assert located is not None and located.unit_code == street, order["order_no"]
        matched += 1
    assert matched >= 6


def test_an_empty_gazetteer_matches_nothing() -> None:
    assert Gazetteer([]).match("静安区南京西路1号") is None
