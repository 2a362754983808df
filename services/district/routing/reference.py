"""The district's reference data (units, categories, street anchors, territories, roads) held in
memory."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.common import Urgency
from services.district.routing.gazetteer import Gazetteer
from services.district.routing.geo import Anchor, StreetLocator
from services.district.routing.territory import Territory, build_from_anchors, from_geojson


@dataclass(frozen=True, slots=True)
class Unit:
    unit_code: str
    name: str
    tier: str  # district | street | department


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    major: str
    object_type: str
    default_owner: str  # "street" or a department's unit code
    handle_sla: str
    default_urgency: Urgency = Urgency.NORMAL
    #: where a `not_our_duty` return goes: 'street', a unit code, or None (manual triage)
    alt_owner: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """Who handles a category (for an urgency and a source; '*' matches any): a version of a
    routing rule, editable at run time."""

    category_code: str
    owner: str  # 'street' (属地) or a unit code
    alt_owner: str | None = None  # where `not_our_duty` returns go
    urgency: str = "*"
    source: str = "*"
    version: int = 0
    #: a return (退单) is re-dispatched by routing, without the district's decision
    auto_redispatch_returns: bool = False


@dataclass(frozen=True)
class Reference:
    district_code: str
    units: Mapping[str, Unit]
    categories: Mapping[str, Category]
    anchors: tuple[Anchor, ...]
    #: active routing rules by (category, urgency, source)
    rules: Mapping[tuple[str, str, str], Rule] = field(default_factory=dict)
    #: (unit_code, road) pairs: the gazetteer's road table
    roads: tuple[tuple[str, str], ...] = ()
    #: official street polygons (GeoJSON Features with `unit_code`); none: built from anchors
    official_territories: tuple[Mapping[str, Any], ...] = ()
    locator: StreetLocator = field(init=False, repr=False, compare=False)
    territory: Territory = field(init=False, repr=False, compare=False)
    gazetteer: Gazetteer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "locator", StreetLocator(self.anchors))
        object.__setattr__(self, "territory", self._territory())
        streets = [(u.unit_code, u.name) for u in self.units.values() if u.tier == "street"]
        foreign = [n for c, n in SHANGHAI_DISTRICTS.items() if c != self.district_code]
        object.__setattr__(self, "gazetteer", Gazetteer.for_district(self.roads, streets, foreign))

    def _territory(self) -> Territory:
        if not self.official_territories:
            return build_from_anchors(self.anchors)
        territory = from_geojson(_collection(self.official_territories))
        streets = {u.unit_code for u in self.units.values() if u.tier == "street"}
        unknown = sorted(set(territory.units) - streets)
        if unknown:
            raise ValueError(f"territories of units that are not streets: {', '.join(unknown)}")
        return territory

    @property
    def center(self) -> Unit:
        return next(u for u in self.units.values() if u.tier == "district")

    def rule(self, category: Category, urgency: str, source: str) -> Rule:
        """The most specific active rule; the taxonomy's default owner when there is none."""
        c = category.code
        for key in ((c, urgency, source), (c, urgency, "*"), (c, "*", source), (c, "*", "*")):
            if key in self.rules:
                return self.rules[key]
        return Rule(c, category.default_owner, category.alt_owner)

    def unit_name(self, unit_code: str | None) -> str:
        unit = self.units.get(unit_code or "")
        return unit.name if unit else (unit_code or "")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _alt_owner(owner: str, notes: str) -> str | None:
    """A department named in the notes, else the street backstop for department categories."""
    named = re.findall(r"\d{6}-[A-Z]+", notes)
    if named:
        return str(named[0])
    return "street" if owner != "street" else None


def _urgency_from_notes(notes: str) -> Urgency:
    return Urgency.URGENT if "urgent by default" in notes else Urgency.NORMAL


def _collection(features: tuple[Mapping[str, Any], ...]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _official_territories(path: Path | None) -> tuple[Mapping[str, Any], ...]:
    """The features of an official GeoJSON FeatureCollection of street territories, checked."""
    if path is None:
        return ()
    doc = json.loads(path.read_text(encoding="utf-8"))
    from_geojson(doc)  # fails early, naming the bad feature
    return tuple(doc["features"])


def load_csv(
    directory: Path, district_code: str, territory_geojson: Path | None = None
) -> Reference:
    """Reference data from the CSV files shipped in deploy/reference/, and the official street
    territories from `territory_geojson` when the district has them."""
    units = {
        r["unit_code"]: Unit(r["unit_code"], r["name"], r["tier"])
        for name in ("jingan_streets.csv", "jingan_departments.csv")
        for r in _rows(directory / name)
    }
    categories = {
        r["code"]: Category(
            code=r["code"],
            name=r["minor"],
            major=r["major"],
            object_type=r["object_type"],
            default_owner=r["default_owner"],
            handle_sla=r["handle_sla"],
            default_urgency=_urgency_from_notes(r["notes"]),
            alt_owner=_alt_owner(r["default_owner"], r["notes"]),
        )
        for r in _rows(directory / "categories.csv")
    }
    anchors = tuple(
        Anchor(r["unit_code"], float(r["lon"]), float(r["lat"]))
        for r in _rows(directory / "jingan_street_anchors_wgs84.csv")
    )
    roads = tuple((r["unit_code"], r["road"]) for r in _rows(directory / "jingan_roads.csv"))
    return Reference(
        district_code,
        units,
        categories,
        anchors,
        roads=roads,
        official_territories=_official_territories(territory_geojson),
    )


#: Shanghai's districts, to name the right one when an order is not ours.
SHANGHAI_DISTRICTS = {
    "310101": "黄浦区",
    "310104": "徐汇区",
    "310105": "长宁区",
    "310106": "静安区",
    "310107": "普陀区",
    "310109": "虹口区",
    "310110": "杨浦区",
    "310112": "闵行区",
    "310113": "宝山区",
    "310114": "嘉定区",
    "310115": "浦东新区",
    "310116": "金山区",
    "310117": "松江区",
    "310118": "青浦区",
    "310120": "奉贤区",
    "310151": "崇明区",
}
