"""Not ours only when sure: where a case whose point lies outside the district, or whose
address names another district, goes. Pure.

A point outside the district boundary by more than `EdgePolicy.margin_m`, or an address that
names another district (when the point does not lie inside ours), or a municipal order for
another district: not ours (`not_our_district`). A point outside the boundary within the
margin (a boundary built from anchors, or drawn coarsely, is not sure to the metre): the
nearest street, or manual triage when `near_edge` is "triage".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.district.routing.reference import SHANGHAI_DISTRICTS, Reference

NearEdge = Literal["nearest", "triage"]
NEAR_EDGE_CHOICES: tuple[NearEdge, ...] = ("nearest", "triage")
#: outcome labels of `cityops_district_edge_total`
NOT_OURS, NEAREST, TRIAGE = "not_ours", "nearest", "triage"
_DISTRICT_BY_NAME = {name: code for code, name in SHANGHAI_DISTRICTS.items()}


@dataclass(frozen=True, slots=True)
class EdgePolicy:
    """`CITYOPS_NOT_OURS_MARGIN_M` (metres) and `CITYOPS_NEAR_EDGE` (nearest | triage)."""

    margin_m: float = 1000.0
    near_edge: NearEdge = "nearest"

    def __post_init__(self) -> None:
        if not self.margin_m >= 0:
            raise ValueError(f"the not-ours margin must be >= 0 metres, got {self.margin_m}")
        if self.near_edge not in NEAR_EDGE_CHOICES:
            raise ValueError(
                f"near_edge must be one of {NEAR_EDGE_CHOICES}, got {self.near_edge!r}"
            )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a case lies. `outcome` is None for the plain cases (inside, or no point and no
    other district named); otherwise NOT_OURS, NEAREST or TRIAGE with `reason` (district_code,
    far_outside, address, near_edge) for the metric and the record."""

    street_code: str | None = None
    not_ours: bool = False
    district_code: str | None = None  # the district it belongs to, when it can be told
    outcome: str | None = None
    reason: str | None = None
    outside_m: float | None = None  # how far outside the district boundary the point lies

    def data(self) -> dict[str, object]:
        """What the case record keeps of it."""
        out: dict[str, object] = {"outcome": self.outcome, "reason": self.reason}
        if self.outside_m is not None:
            out["outside_m"] = round(self.outside_m, 1)
        if self.district_code is not None:
            out["district_code"] = self.district_code
        return out


def place(
    ref: Reference,
    edge: EdgePolicy,
    lon: float | None,
    lat: float | None,
    address: str | None,
    district_code: str | None = None,
) -> Placement:
    """Where a case with this WGS-84 point (or none), address and (for a municipal order) the
    district it was sent to lies."""
    if district_code is not None and district_code != ref.district_code:
        return Placement(
            not_ours=True, district_code=district_code, outcome=NOT_OURS, reason="district_code"
        )
    nearest = None if lon is None or lat is None else ref.territory.nearest(lon, lat)
    if nearest is not None and nearest.distance_m == 0.0:
        return Placement(street_code=nearest.unit_code)
    named = ref.gazetteer.foreign_district(address)
    own = SHANGHAI_DISTRICTS.get(ref.district_code)
    if named is not None and own is not None and own in (address or ""):
        named = None  # `静安区与普陀区交界处`: not sure
    named_code = _DISTRICT_BY_NAME.get(named) if named else None
    outside = nearest.distance_m if nearest is not None else None
    if nearest is not None and nearest.distance_m > edge.margin_m:
        return Placement(
            not_ours=True,
            district_code=named_code,
            outcome=NOT_OURS,
            reason="far_outside",
            outside_m=outside,
        )
    if named is not None:
        return Placement(
            not_ours=True,
            district_code=named_code,
            outcome=NOT_OURS,
            reason="address",
            outside_m=outside,
        )
    if nearest is None:  # no point: the street the address names, if it names exactly one
        return Placement(street_code=ref.gazetteer.street_of(address))
    if edge.near_edge == "triage":
        return Placement(outcome=TRIAGE, reason="near_edge", outside_m=outside)
    return Placement(
        street_code=nearest.unit_code, outcome=NEAREST, reason="near_edge", outside_m=outside
    )
