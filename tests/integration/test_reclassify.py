"""Unclassified (9901) waits in district triage; a district operator's `reclassify` gives the
case its category and routes it again: an event, the old task withdrawn, a new task."""

from __future__ import annotations

from contracts import topics
from services.common.auth import Role
from services.common.config import Settings
from services.district.app import create_app as district_app
from tests.integration.test_lifecycle import _replays_exactly
from tests.support import Topics, running, samples, wait_until

ECOLOGY = "310106-STHJ"  # 油烟污染 (0106) is the ecology bureau's


async def test_unclassified_waits_for_triage_and_reclassify_routes_it(settings: Settings) -> None:
    order = {**samples("hotline12345.workorders")[0], "order_no": "RECLASS-1"}
    order["category_hint"] = "垃圾分类"  # not in the taxonomy: 9901
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, order["order_no"], order)
        [triage] = await t.wait_for(
            topics.CASE_EVENTS, lambda m: m["to_state"] == "triage", "the 9901 case in triage"
        )
        no = triage["case_no"]
        assert triage["data"]["reason"].startswith("unclassified (9901)")
        status, body = await district.get(f"/api/v1/cases/{no}")
        assert status == 200 and body["tasks"] == [] and body["category_code"] == "9901"

        operator = await district.as_role(Role.DISTRICT_OPERATOR)
        street = await district.as_role(Role.STREET_OPERATOR, "310106012000")
        path = f"/api/v1/cases/{no}/reclassify"
        move = {"category_code": "0102", "actor": "op-1", "reason": "市民反映暴露垃圾"}
        status, _ = await street.post(path, move)
        assert status in (403, 404), "a unit does not reclassify"
        for bad in ("7777", "9901"):
            status, body = await operator.post(path, {**move, "category_code": bad})
            assert status == 409, body

        # 暴露垃圾 is the street's (属地): a task for the street of the location
        status, body = await operator.post(path, move)
        assert status == 200, body
        assert body["category_code"] == "0102" and body["state"] == "dispatched"
        [first] = body["tasks"]
        [assigned] = await t.wait_for(
            topics.task_topic(first["unit_code"]),
            lambda m: m["case_no"] == no and m["kind"] == "assigned",
            "the street's task after reclassifying",
        )
        assert assigned["case"]["category_code"] == "0102"

        # a dispatched case in the wrong category: the street's task withdrawn, a new owner
        fumes = {"category_code": "0106", "actor": "op-1", "reason": "实为餐饮油烟"}
        status, body = await operator.post(path, fumes)
        assert status == 200, body
        tasks = {task["task_id"]: task for task in body["tasks"]}
        assert tasks[first["task_id"]]["state"] == "withdrawn"
        [second] = [task for task in tasks.values() if task["task_id"] != first["task_id"]]
        assert second["unit_code"] == ECOLOGY and body["category_code"] == "0106"
        [withdrawn] = await t.wait_for(
            topics.task_topic(first["unit_code"]),
            lambda m: m["task_id"] == first["task_id"] and m["kind"] == "withdrawn",
            "the old task withdrawn",
        )
        assert "重新分类" in withdrawn["note"]
        await t.wait_for(
            topics.task_topic(ECOLOGY),
            lambda m: m["task_id"] == second["task_id"] and m["kind"] == "assigned",
            "the new owner's task",
        )
        events = await t.wait_for(
            topics.CASE_EVENTS,
            lambda m: m["case_no"] == no and m["type"] == "reclassified",
            "two reclassified events",
            count=2,
        )
        last = max(events, key=lambda e: e["seq"])
        assert last["data"]["category_before"]["code"] == "0102"
        assert last["data"]["category_after"]["code"] == "0106"
        assert last["data"]["withdrawn"] == [first["task_id"]]
        assert last["actor"] == "op-1"

        async def timeline_replays() -> bool:
            _, case = await district.get(f"/api/v1/cases/{no}")
            kinds = [e["type"] for e in case["timeline"]]
            return kinds.count("reclassified") == 2 and kinds[-1] == "dispatched"

        await wait_until(timeline_replays, "the timeline: reclassified, then dispatched")
        await _replays_exactly(settings, no)  # the record rebuilds the case
