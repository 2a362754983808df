"""联勤联动 on the real loop: the district adds co-units to a case a lead works on; the case
resolves when its lead resolves, the co-units' open tasks withdrawn (`lead_resolved`) and their
later reports recorded; a co-unit's return puts "replace co-unit" on the district's queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts import topics
from services.common.auth import Role
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import create_app as district_app
from tests.support import Service, Topics, dispatched, running, task_feedback, wait_until
from tests.support import case_record as case

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
STREET, BIKES = "310106015000", "HL2026112700126"  # 天目西路: shared bikes on the pavement
CGZF, GAJ, LHSR = "310106-CGZF", "310106-GAJ", "310106-LHSR"


async def co_task(t: Topics, unit: str, case_no: str) -> dict[str, Any]:
    [task] = await t.wait_for(
        topics.task_topic(unit),
        lambda m: m["case_no"] == case_no and m["kind"] == "assigned",
        f"a co-unit task on {unit}",
    )
    return task


async def add_co_units(district: Service, case_no: str, units: list[str]) -> None:
    body = {"co_units": units, "actor": "sup-1", "reason": "联勤联动整治"}
    status, reply = await district.post(f"/api/v1/cases/{case_no}/add-co-units", body)
    assert status == 200, reply


async def has_event(district: Service, case_no: str, type_: str) -> bool:
    return any(e["type"] == type_ for e in (await case(district, case_no))["timeline"])


async def test_a_joint_case_resolves_with_its_lead_and_later_reports_are_recorded(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        lead = await dispatched(t, BIKES, STREET)
        no = lead["case_no"]
        # an operator may not add co-units: a supervisor's decision, like a joint task
        operator = await district.as_role(Role.DISTRICT_OPERATOR)
        body = {"co_units": [CGZF], "actor": "op-1"}
        status, _ = await operator.post(f"/api/v1/cases/{no}/add-co-units", body)
        assert status == 403
        await add_co_units(district, no, [CGZF, GAJ])
        co1, co2 = await co_task(t, CGZF, no), await co_task(t, GAJ, no)
        assert (co1["role"], co2["role"]) == ("co", "co")
        assert co1["deadlines"]["first_contact_by"] is None  # co-units owe no first contact
        detail = await case(district, no)
        assert detail["state"] == "dispatched"
        assert [e["type"] for e in detail["timeline"]][-3:] == [
            "co_units_added",
            "co_dispatched",
            "co_dispatched",
        ]
        done = {"resolved": True, "summary": "执法完毕"}
        fb = task_feedback(co1, "resolve", clock.now(), result=done)
        await t.publish(topics.TASK_FEEDBACK, co1["task_id"], fb)
        await wait_until(lambda: has_event(district, no, "co_reported"), "co-unit reported")
        assert (await case(district, no))["state"] == "dispatched"  # waits for its lead
        result = {"resolved": True, "summary": "已清理乱停车辆并设置围栏"}
        fb = task_feedback(lead, "resolve", clock.now(), result=result)
        await t.publish(topics.TASK_FEEDBACK, lead["task_id"], fb)
        [reply] = await t.wait_for(
            topics.REPLIES, lambda m: m["kind"] == "result" and m["case_no"] == no, "result"
        )
        assert reply["unit_code"] == STREET and reply["text"] == result["summary"]
        [gone] = await t.wait_for(
            topics.task_topic(GAJ), lambda m: m["kind"] == "withdrawn", "open co task withdrawn"
        )
        assert gone["task_id"] == co2["task_id"] and gone["reason"] == "lead_resolved"
        withdrawn = [m for m in await t.read(topics.task_topic(CGZF)) if m["kind"] == "withdrawn"]
        assert withdrawn == []  # CGZF had reported: nothing to withdraw
        detail = await case(district, no)
        assert detail["state"] == "resolved"
        states = {x["task_id"]: x["state"] for x in detail["tasks"]}
        assert states[co2["task_id"]] == "withdrawn"
        # GAJ reports after all: recorded, nothing else changes, nothing refused
        late = {"resolved": True, "summary": "交警已处理"}
        fb = task_feedback(co2, "resolve", clock.now(), result=late)
        await t.publish(topics.TASK_FEEDBACK, co2["task_id"], fb)
        await wait_until(lambda: has_event(district, no, "co_reported_late"), "late report")
        after = await case(district, no)
        [event] = [e for e in after["timeline"] if e["type"] == "co_reported_late"]
        assert event["unit_code"] == GAJ and event["data"]["result"] == late
        assert after["state"] == "resolved" and after["tasks"] == detail["tasks"]
        assert await t.read(topics.DEADLETTER) == []


async def test_a_co_units_return_waits_to_be_replaced_or_dismissed(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        lead = await dispatched(t, BIKES, STREET)
        no = lead["case_no"]
        await add_co_units(district, no, [CGZF, GAJ])
        co1, co2 = await co_task(t, CGZF, no), await co_task(t, GAJ, no)
        back = task_feedback(co1, "return", clock.now(), reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, co1["task_id"], back)

        async def queued() -> list[dict[str, Any]]:
            _, body = await district.get("/api/v1/queues")
            return body["decisions"]  # type: ignore[no-any-return]

        [item] = await wait_until(queued, "replace co-unit on the queue")
        assert (item["kind"], item["task_id"], item["unit_code"]) == (
            "replace_co_unit",
            co1["task_id"],
            CGZF,
        )
        assert (await case(district, no))["state"] == "dispatched"  # the lead works on
        replace = {
            "task_id": co1["task_id"],
            "approve": True,
            "unit": LHSR,
            "actor": "sup-1",
            "reason": "改由绿化市容局协办",
        }
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", replace)
        assert status == 200, body
        replacement = await co_task(t, LHSR, no)
        assert replacement["role"] == "co"
        [ack] = await t.wait_for(
            topics.task_topic(CGZF), lambda m: m["kind"] == "withdrawn", "return taken"
        )
        assert ack["task_id"] == co1["task_id"] and ack["reason"] == "returned"
        assert await queued() == []
        # the second co-unit's return is dismissed: no replacement
        back = task_feedback(co2, "return", clock.now(), reason="other")
        await t.publish(topics.TASK_FEEDBACK, co2["task_id"], back)
        [item] = await wait_until(queued, "the second return on the queue")
        assert item["task_id"] == co2["task_id"]
        dismiss = {"task_id": co2["task_id"], "approve": True, "actor": "sup-1", "reason": "无需"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", dismiss)
        assert status == 200, body
        assert await queued() == []
        states = {x["unit_code"]: x["state"] for x in (await case(district, no))["tasks"]}
        assert states == {STREET: "assigned", CGZF: "withdrawn", GAJ: "withdrawn", LHSR: "assigned"}
        _, ledger = await district.get("/api/v1/exceptions?from=2026-11-27&to=2026-11-28")
        assert [(r["unit_code"], r["decision"], r["detail"]) for r in ledger["items"]] == [
            (GAJ, "approved", {"replaced_by": None}),
            (CGZF, "approved", {"replaced_by": LHSR}),
        ]
