"""Where a case belongs (属地) end to end: addresses without coordinates, official territories."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from shapely.geometry import box, mapping

from contracts import topics
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.routing import queries
from services.district.routing.geo import Located
from services.ops.bootstrap import bootstrap
from tests.support import Topics, running, samples

SHIMEN2, NANJING_W, JINGAN_TEMPLE = "310106011000", "310106012000", "310106013000"


def _order(
    order_no: str, address: str, hint: str, location: dict[str, Any] | None
) -> dict[str, Any]:
    """A sample 12345 order with another number, address, category and location."""
    order = {**samples("hotline12345.workorders")[0], "order_no": order_no, "address": address}
    order["category_hint"] = hint  # street-owned categories: the street handles them (属地)
    order.pop("location")
    return {**order, "location": location} if location else order


async def test_orders_without_coordinates_are_placed_by_their_address(settings: Settings) -> None:
    orders = [
        _order("GEO-KNOWN", "静安区泰兴路某小区门口", "暴露垃圾", None),
        _order("GEO-UNKNOWN", "静安区某小区", "道路不洁", None),
        _order("GEO-AMBIGUOUS", "静安区共和新路某小区", "占道经营", None),
    ]
    async with running(district_app(settings)) as district, Topics(settings) as t:
        for order in orders:
            await t.publish(topics.WORKORDERS, order["order_no"], order)
        [task] = await t.wait_for(
            topics.task_topic(SHIMEN2),
            lambda m: m["case"]["source_ref"] == "GEO-KNOWN",
            "the 泰兴路 order dispatched to 石门二路街道",
        )
        assert task["kind"] == "assigned" and task["case"]["location"] is None
        assert task["case"]["address"] == "静安区泰兴路某小区门口"

        opened = await t.wait_for(
            topics.CASE_EVENTS, lambda m: m["type"] == "opened", "three cases opened", count=3
        )
        case_of = {e["data"]["hint"]: e["case_no"] for e in opened}
        triage = await t.wait_for(
            topics.CASE_EVENTS,
            lambda m: m["to_state"] == "triage",
            "the unknown and the ambiguous address in triage",
            count=2,
        )
        assert {e["case_no"] for e in triage} == {case_of["道路不洁"], case_of["占道经营"]}
        assert {e["data"]["reason"] for e in triage} == {"location unknown: manual triage"}
        assert (
            await district.metric("cityops_tasks_dispatched_total", unit=SHIMEN2, role="lead") == 1
        )


async def test_official_territories_replace_the_generated_ones(
    settings: Settings, tmp_path: Path
) -> None:
    """A district's GeoJSON (CITYOPS_TERRITORY_GEOJSON) is loaded by bootstrap, kept in the
    database, and decides the street: here it gives 静安寺 a block 南京西路 would otherwise own."""
    point = (121.45309, 31.22692)  # a 南京西路街道 anchor (the sample HL2026112700123)
    block = box(point[0] - 0.002, point[1] - 0.002, point[0] + 0.002, point[1] + 0.002)
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"unit_code": JINGAN_TEMPLE, "name": "静安寺街道"},
                "geometry": mapping(block),
            }
        ],
    }
    path = tmp_path / "jingan_streets.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    await bootstrap(replace(settings, territory_geojson=path))

    located = {"lon": point[0], "lat": point[1], "crs": "wgs84"}
    inside = _order("GEO-OFFICIAL", "静安区南京西路1025弄附近", "暴露垃圾", located)
    away = {"lon": 121.4561, "lat": 31.23711, "crs": "wgs84"}  # 石门二路 by the anchors only
    outside = _order("GEO-OUTSIDE", "静安区泰兴路某小区门口", "暴露垃圾", away)
    # 900 m outside the (tiny) official polygon: not ours with a margin of 500 m
    strict = replace(settings, not_ours_margin_m=500)
    async with running(district_app(strict)), Topics(settings) as t:
        for order in (inside, outside):
            await t.publish(topics.WORKORDERS, order["order_no"], order)
        [task] = await t.wait_for(
            topics.task_topic(JINGAN_TEMPLE),
            lambda m: m["case"]["source_ref"] == "GEO-OFFICIAL",
            "the order inside the official 静安寺 polygon dispatched there",
        )
        assert task["kind"] == "assigned"
        [reply] = await t.wait_for(
            topics.REPLIES,
            lambda m: m["order_no"] == "GEO-OUTSIDE",
            "not_our_district reply for a point outside every official polygon",
        )
        assert reply["kind"] == "not_our_district"

    await bootstrap(settings)  # without the file: back to the territories built from anchors
    conn = await asyncpg.connect(settings.database_url)
    try:
        ref = await queries.load_reference(conn, settings.district_code)
    finally:
        await conn.close()
    assert ref.official_territories == ()
    assert ref.territory.locate(*point) == Located(NANJING_W, 0.0)
    # the road table, read back from the database
    assert ref.gazetteer.street_of("静安区泰兴路8号") == SHIMEN2
