"""Hotspots end to end: orders in, one `cityops.hotspot/v1` stream out, the API and the gauge
(real broker and database; the district's clock is fake, so quiet days pass at once)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from contracts import topics
from services.common.auth import Role
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.hotspots.service import create_app as hotspots_app
from services.district.keys import POOL
from tests.support import ORDERS, Service, Topics, running, wait_until

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
STREET = "310106015000"  # 天目西路街道: where the sample order's shared bikes block the pavement
CENTRE = (121.45152, 31.25006)  # WGS-84, in that street
BIKES = "0203"  # 非机动车乱停放 (deploy/reference/categories.csv)


def _order(i: int, rng: random.Random) -> dict[str, Any]:
    """The sample order again, within 75 m of CENTRE (any two are within 150 m)."""
    dist, bearing = 75.0 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = CENTRE[1] + dist * math.cos(bearing) / 111_320.0
    lon = CENTRE[0] + dist * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
    return {
        **ORDERS["HL2026112700126"],
        "order_no": f"HL20261127HS{i:04d}",
        "location": {"lon": round(lon, 6), "lat": round(lat, 6), "crs": "wgs84"},
    }


def _hotspots(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("schema") == "cityops.hotspot/v1"]


async def test_thirty_orders_in_ten_minutes_open_one_hotspot_that_closes_when_quiet(
    settings: Settings,
) -> None:
    clock, rng = FakeClock(FRIDAY_10AM), random.Random(17)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        for minute in range(10):  # three orders a minute for ten minutes
            batch = [_order(minute * 3 + k, rng) for k in range(3)]
            for order in batch:
                await t.publish(topics.WORKORDERS, order["order_no"], order)
            clock.advance(timedelta(minutes=1))
            await wait_until(lambda n=3 * minute + 3: _counted(district, n), "orders counted")
            if minute == 2:  # nine orders: a hotspot opens, and the next ones join it
                await t.wait_for(topics.HOTSPOTS, lambda m: m["status"] == "open", "opened")

        async def grown() -> list[dict[str, Any]] | None:
            status, body = await district.get("/api/v1/hotspots")
            assert status == 200, body
            full = [h for h in body["items"] if h["count"] == 30]
            return body["items"] if full else None

        clock.advance(timedelta(minutes=2))  # an update is due: the count has grown
        [item] = await wait_until(grown, "the hotspot to count all 30 orders", timeout=30)
        assert item["kind"] == "cluster" and item["state"] == "open"
        assert item["category_code"] == BIKES and item["street_code"] == STREET
        assert item["radius_m"] <= 150 and len(item["bbox"]) == 4 and item["case_nos"]
        assert await district.metric("cityops_hotspots_open", kind="cluster", street=STREET) == 1

        street = await district.as_role(Role.STREET_OPERATOR, STREET)
        other = await district.as_role(Role.STREET_OPERATOR, "310106012000")
        assert [h["hotspot_id"] for h in (await street.get("/api/v1/hotspots"))[1]["items"]] == [
            item["hotspot_id"]
        ]
        assert (await other.get("/api/v1/hotspots"))[1]["items"] == []
        department = await district.as_role(Role.DEPARTMENT_OPERATOR, "310106-JSGL")
        assert (await department.get("/api/v1/hotspots"))[1]["items"] == []  # streets' category

        clock.advance(timedelta(days=2))  # quiet: every window empties
        closed = await t.wait_for(
            topics.HOTSPOTS, lambda m: m["status"] == "closed", "the hotspot closed", timeout=30
        )
        stream = _hotspots(await t.read(topics.HOTSPOTS))
        assert {m["hotspot_id"] for m in stream} == {item["hotspot_id"]}  # one stream
        assert [m["seq"] for m in stream] == list(range(1, len(stream) + 1))
        assert stream[0]["status"] == "open" and len(stream) < 10, stream
        assert stream[0]["count"] < 30 and "updated" in [m["status"] for m in stream], stream
        assert closed[0]["count"] == 0 and closed[0]["case_nos"]
        assert await district.metric("cityops_hotspots_open", kind="cluster", street=STREET) == 0
        status, body = await district.get("/api/v1/hotspots?state=closed")
        assert status == 200 and [h["state"] for h in body["items"]] == ["closed"]


async def test_the_hotspots_process_finds_what_the_district_no_longer_counts_itself(
    settings: Settings,
) -> None:
    """`cityops run` and compose run the loops in `cityops hotspots`: the district service
    only serves the route, and the hotspot opens all the same."""
    clock, rng = FakeClock(FRIDAY_10AM), random.Random(23)
    alone = replace(settings, hotspots_in_district=False)
    async with (
        running(district_app(alone, clock=clock)) as district,
        running(hotspots_app(alone, clock=clock)) as loops,
        Topics(settings) as t,
    ):
        for i in range(12):
            order = _order(i, rng)
            await t.publish(topics.WORKORDERS, order["order_no"], order)
        await wait_until(lambda: _counted(district, 12), "orders counted")
        clock.advance(timedelta(minutes=5))
        [opened] = await t.wait_for(topics.HOTSPOTS, lambda m: m["status"] == "open", "opened")
        assert opened["category_code"] == BIKES and opened["kind"] == "cluster"
        status, body = await district.get("/api/v1/hotspots")
        assert status == 200 and [h["hotspot_id"] for h in body["items"]] == [opened["hotspot_id"]]
        assert await loops.metric("cityops_hotspots_open", kind="cluster", street=STREET) == 1
        _, text = await district.get("/metrics")
        assert "cityops_hotspots_open" not in text  # no round runs in the district service


async def _counted(district: Service, n: int) -> bool:
    async with district.app[POOL].acquire() as conn:
        got = await conn.fetchval("SELECT count(*) FROM hotspot_reports")
    return bool(got >= n)
