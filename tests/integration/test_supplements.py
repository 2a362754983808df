"""12345 supplements (补充, issue 14) on the real loop with a fake clock: what a supplement carries
reaches the case and its unit, a new due time moves the deadlines, a new place another street
owns re-routes the case, and a supplement to a finished case is only recorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts import topics
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import POOL
from services.district.app import create_app as district_app
from services.district.cases.replay import replay
from tests.support import ORDERS, Service, Topics, dispatched, running, wait_until
from tests.support import case_record as case

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
NIGHT_WORKS, BUILDING = "HL2026112700124", "310106-JSGL"  # 施工扰民: the construction bureau
BIKES = "HL2026112700126"  # 非机动车乱停放: territorial, the street of its place
LINFEN_ROAD, LINFEN_POINT = "310106021000", {"lon": 121.45702, "lat": 31.31176, "crs": "wgs84"}


def _supplement(order_no: str, revision: int, **fields: Any) -> dict[str, Any]:
    return {**ORDERS[order_no], "action": "supplement", "revision": revision, **fields}


async def _event(district: Service, case_no: str, type_: str) -> dict[str, Any] | None:
    timeline = (await case(district, case_no))["timeline"]
    return next((e for e in timeline if e["type"] == type_), None)


def _instants(deadlines: dict[str, str | None]) -> dict[str, datetime]:
    return {k: datetime.fromisoformat(v) for k, v in deadlines.items() if v}


async def _replayed_state(district: Service, case_no: str) -> str:
    async with district.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            "SELECT case_no, seq, type, to_state, unit_code, data FROM case_events"
            " WHERE case_no = $1 ORDER BY seq",
            case_no,
        )
    return str(replay([dict(r) for r in rows]).state)


async def test_new_content_reaches_the_unit_as_updated_and_is_recorded_before_and_after(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, NIGHT_WORKS, BUILDING)
        more = "补充：施工方每晚使用打桩机，噪声持续到凌晨两点。"
        sup = _supplement(NIGHT_WORKS, 2, content=more, note="市民补充施工时间")
        await t.publish(topics.WORKORDERS, NIGHT_WORKS, sup)
        [updated] = await t.wait_for(
            topics.task_topic(BUILDING), lambda m: m["kind"] == "updated", "the updated task"
        )
        assert updated["task_id"] == task["task_id"]
        assert updated["case"]["description"] == more and updated["note"] == "市民补充施工时间"
        no = task["case_no"]
        event = await wait_until(lambda: _event(district, no, "supplemented"), "supplemented")
        before = ORDERS[NIGHT_WORKS]["content"]
        assert event["data"]["changes"] == {"content": {"before": before, "after": more}}
        detail = await case(district, no)
        assert detail["description"] == more and detail["state"] == "dispatched"
        assert await _replayed_state(district, no) == "dispatched"


async def test_a_new_due_time_moves_the_deadlines(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, NIGHT_WORKS, BUILDING)
        policy = _instants(task["deadlines"])
        assert policy["resolve_by"] == FRIDAY_10AM + timedelta(days=7)  # 5 WD, no municipal due
        clock.advance(timedelta(minutes=30))
        due = FRIDAY_10AM + timedelta(hours=5)  # Friday 15:00
        await t.publish(
            topics.WORKORDERS, NIGHT_WORKS, _supplement(NIGHT_WORKS, 2, due_at=due.isoformat())
        )
        [updated] = await t.wait_for(
            topics.task_topic(BUILDING), lambda m: m["kind"] == "updated", "the updated task"
        )
        after = _instants(updated["deadlines"])
        assert after["resolve_by"] == due, "the municipal due time caps the task while ahead"
        assert after["accept_by"] == FRIDAY_10AM + timedelta(hours=1), "from its dispatch"
        assert after["first_contact_by"] == due
        no = task["case_no"]
        event = await wait_until(lambda: _event(district, no, "supplemented"), "supplemented")
        assert event["data"]["changes"]["due_at"] == {"before": None, "after": due.isoformat()}
        [moved] = event["data"]["deadlines"].values()
        assert _instants(moved["before"]) == _instants(task["deadlines"])
        assert datetime.fromisoformat(moved["after"]["resolve_by"]) == due
        detail = await case(district, no)
        assert datetime.fromisoformat(detail["resolve_by"]) == due
        # a due time already passed: the policy's deadlines, and the case records the miss
        clock.advance(timedelta(hours=1))  # 11:30
        past = (FRIDAY_10AM + timedelta(hours=1)).isoformat()
        await t.publish(topics.WORKORDERS, NIGHT_WORKS, _supplement(NIGHT_WORKS, 3, due_at=past))
        missed = await wait_until(
            lambda: _event(district, no, "municipal_due_missed"), "the municipal due time missed"
        )
        assert missed["data"]["municipal_due"] == datetime.fromisoformat(past).isoformat()
        [_, again] = await t.wait_for(
            topics.task_topic(BUILDING), lambda m: m["kind"] == "updated", "updated again", 2
        )
        assert _instants(again["deadlines"]) == policy


async def test_a_place_in_another_street_re_routes_the_case(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, BIKES, ORDERS[BIKES])
        no = (await wait_until(lambda: _dispatched_case(district, BIKES), "dispatched"))["case_no"]
        first = (await case(district, no))["tasks"][0]
        assert first["unit_code"] != LINFEN_ROAD
        moved = _supplement(BIKES, 2, address="静安区临汾路375号", location=LINFEN_POINT)
        await t.publish(topics.WORKORDERS, BIKES, moved)
        [withdrawn] = await t.wait_for(
            topics.task_topic(first["unit_code"]),
            lambda m: m["kind"] == "withdrawn",
            "the first street's task withdrawn",
        )
        assert withdrawn["task_id"] == first["task_id"] and withdrawn["reason"] == "rerouted"
        [assigned] = await t.wait_for(
            topics.task_topic(LINFEN_ROAD), lambda m: m["kind"] == "assigned", "the new street's"
        )
        assert assigned["case_no"] == no and assigned["case"]["address"] == "静安区临汾路375号"
        rerouted = await wait_until(lambda: _event(district, no, "rerouted"), "rerouted")
        assert rerouted["data"]["street_before"] == first["unit_code"]
        assert rerouted["data"]["street_after"] == LINFEN_ROAD
        assert rerouted["data"]["withdrawn"] == [first["task_id"]]
        supplemented = await _event(district, no, "supplemented")
        assert supplemented is not None
        assert set(supplemented["data"]["changes"]) == {"address", "location"}
        assert supplemented["data"]["changes"]["location"]["after"] == {
            "lon": LINFEN_POINT["lon"],
            "lat": LINFEN_POINT["lat"],
        }
        detail = await case(district, no)
        assert detail["street_code"] == LINFEN_ROAD and detail["state"] == "dispatched"
        assert [x["state"] for x in detail["tasks"]] == ["withdrawn", "assigned"]
        assert await _replayed_state(district, no) == "dispatched"


async def _dispatched_case(district: Service, order_no: str) -> dict[str, Any] | None:
    _, page = await district.get("/api/v1/cases?limit=50")
    hits = [c for c in page["items"] if c["source_ref"] == order_no and c["unit_code"]]
    return hits[0] if hits else None


async def test_a_supplement_to_a_finished_case_is_only_recorded(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    order = ORDERS["HL2026112700127"]  # unclassified: waits in triage
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, order["order_no"], order)

        async def in_triage() -> dict[str, Any] | None:
            _, page = await district.get("/api/v1/cases?state=triage")
            return page["items"][0] if page["items"] else None

        no = (await wait_until(in_triage, "the case in triage"))["case_no"]
        body = {"actor": "operator-1", "reason": "非政务服务事项"}
        status, reply = await district.post(f"/api/v1/cases/{no}/reject", body)
        assert status == 200, reply
        late = _supplement(
            order["order_no"], 2, content="补充内容", due_at="2026-11-30T10:00:00+08:00"
        )
        await t.publish(topics.WORKORDERS, order["order_no"], late)
        event = await wait_until(
            lambda: _event(district, no, "supplement_not_applied"), "the supplement recorded"
        )
        assert event["data"]["state"] == "rejected" and event["data"]["order_revision"] == 2
        detail = await case(district, no)
        assert detail["state"] == "rejected" and detail["description"] == order["content"]
        assert detail["municipal_due"] is None
        letters = await t.read(topics.DEADLETTER)
        assert not [m for m in letters if order["order_no"] in str(m)], letters
        assert await _replayed_state(district, no) == "rejected"
