"""Not ours only when sure, end to end: a point just outside the anchor-built boundary goes to
the nearest street, one far outside and an address naming another district are answered
`not_our_district`; both outcomes are counted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from contracts import topics
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.routing.reference import load_csv
from tests.support import Topics, running, samples
from tests.unit.test_edge import north_of_boundary

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
EDGE = "cityops_district_edge_total"


def _order(order_no: str, address: str, location: dict[str, Any] | None) -> dict[str, Any]:
    order = {**samples("hotline12345.workorders")[0], "order_no": order_no, "address": address}
    order["category_hint"] = "暴露垃圾"  # street-owned: the street of the place handles it
    order.pop("location")
    return {**order, "location": location} if location else order


async def test_not_ours_only_when_sure(settings: Settings) -> None:
    ref = load_csv(REFERENCE, settings.district_code)
    lon, lat, street = north_of_boundary(ref, 300)
    near = _order("EDGE-NEAR", "某小区门口", {"lon": lon, "lat": lat, "crs": "wgs84"})
    lon, lat, _ = north_of_boundary(ref, 2000)
    far = _order("EDGE-FAR", "某小区门口", {"lon": lon, "lat": lat, "crs": "wgs84"})
    named = _order("EDGE-NAMED", "宝山区共和新路某小区门口", None)
    async with running(district_app(settings)) as district, Topics(settings) as t:
        for order in (near, far, named):
            await t.publish(topics.WORKORDERS, order["order_no"], order)
        [task] = await t.wait_for(
            topics.task_topic(street),
            lambda m: m["case"]["source_ref"] == "EDGE-NEAR",
            "the point 300 m outside dispatched to the nearest street",
        )
        assert task["kind"] == "assigned"
        replies = await t.wait_for(
            topics.REPLIES,
            lambda m: m["order_no"] in ("EDGE-FAR", "EDGE-NAMED"),
            "not_our_district for the far point and the other district's address",
            count=2,
        )
        by_order = {r["order_no"]: r for r in replies}
        assert {r["kind"] for r in replies} == {"not_our_district"}
        assert "宝山区" in by_order["EDGE-NAMED"]["text"]
        [edge] = await t.wait_for(
            topics.CASE_EVENTS, lambda m: m["type"] == "near_edge", "the near-edge record"
        )
        assert edge["unit_code"] == street and 250 < edge["data"]["outside_m"] < 350
        labels = {"source": "hotline12345"}
        assert await district.metric(EDGE, **labels, outcome="nearest", reason="near_edge") == 1
        assert await district.metric(EDGE, **labels, outcome="not_ours", reason="far_outside") == 1
        assert await district.metric(EDGE, **labels, outcome="not_ours", reason="address") == 1


async def test_near_the_edge_an_operator_decides_when_so_configured(settings: Settings) -> None:
    ref = load_csv(REFERENCE, settings.district_code)
    lon, lat, _ = north_of_boundary(ref, 300)
    near = _order("EDGE-TRIAGE", "某小区门口", {"lon": lon, "lat": lat, "crs": "wgs84"})
    app = district_app(replace(settings, near_edge="triage"))
    async with running(app) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, near["order_no"], near)
        await t.wait_for(
            topics.CASE_EVENTS,
            lambda m: m["to_state"] == "triage",
            "the point 300 m outside waiting for a district operator",
        )
        labels = {"source": "hotline12345", "outcome": "triage", "reason": "near_edge"}
        assert await district.metric(EDGE, **labels) == 1
