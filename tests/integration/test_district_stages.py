"""The district's own stages on the clock (issue 14), on the real loop with a fake clock: a case
in manual triage, an escalation waiting for a decision and an extension request waiting for
approval each have the policy's deadline, warn and fall overdue against the district's centre
(the queue view, the gauges), and leave the counts when the district decides."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts import topics
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import DECISIONS, POOL
from services.district.app import create_app as district_app
from services.district.deadlines.timers import TimerWorker
from services.district.keys import PUBLISHER
from tests.support import ORDERS, Service, Topics, dispatched, running, task_feedback, wait_until
from tests.support import case_record as case

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
CENTER, BUREAU, STREET = "310106-CENTER", "310106-STHJ", "310106012000"
NIGHT_WORKS, STREET_LAMPS = "HL2026112700124", "310106-JSGL"


async def _timer_pass(district: Service, clock: FakeClock, settings: Settings) -> None:
    """One pass of a timer worker now (besides the service's own, which runs every second)."""
    app = district.app
    worker = TimerWorker(
        app[POOL], app[DECISIONS], app[PUBLISHER].submit, clock, settings.district_code
    )
    await worker.fire_due()


async def _queues(district: Service) -> dict[str, Any]:
    status, body = await district.get("/api/v1/queues")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def _center(queues: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in queues["overdue"] if o["unit_code"] == CENTER]


async def _alarms(district: Service, case_no: str, kind: str) -> list[dict[str, Any]]:
    timeline = (await case(district, case_no))["timeline"]
    return [e for e in timeline if e["type"] == f"district_deadline_{kind}"]


async def _overdue_against_center(
    district: Service, clock: FakeClock, settings: Settings, case_no: str, stage: str
) -> dict[str, Any]:
    """A timer pass now: the stage's overdue alarm is in the case record against the centre,
    and the queue view and the gauge count it; answers the queue view's waiting item."""
    await _timer_pass(district, clock, settings)
    [overdue] = await wait_until(lambda: _alarms(district, case_no, "overdue"), "overdue alarm")
    assert overdue["unit_code"] == CENTER and overdue["data"]["stage"] == stage, overdue
    queues = await _queues(district)
    assert _center(queues) == [{"unit_code": CENTER, "stage": stage, "n": 1}], queues
    [item] = [w for w in queues["waiting"] if w["case_no"] == case_no]
    assert item["stage"] == stage and item["overdue"] is True, item

    async def gauge() -> float:
        return await district.metric("cityops_cases_overdue", unit=CENTER, stage=stage)

    assert await wait_until(gauge, "the centre's overdue gauge") == 1
    kind = {"stage": stage, "kind": "overdue"}
    assert await district.metric("cityops_timer_alarms_total", **kind) == 1
    return item  # type: ignore[no-any-return]


async def _decided(district: Service, clock: FakeClock, settings: Settings, case_no: str) -> None:
    """Once decided, the wait leaves the queue view and no alarm of it fires any more."""
    clock.advance(timedelta(seconds=10))  # past the overdue counts' 5 s cache
    queues = await _queues(district)
    assert _center(queues) == [] and queues["waiting"] == [], queues
    before = len(await _alarms(district, case_no, "overdue"))
    clock.advance(timedelta(days=7))
    await _timer_pass(district, clock, settings)
    assert len(await _alarms(district, case_no, "overdue")) == before


async def test_a_case_in_triage_is_due_in_two_working_hours(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    order = ORDERS["HL2026112700127"]  # 垃圾分类 without a location: unclassified, triage
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, order["order_no"], order)
        queues = await wait_until(
            lambda: _waiting(district), "the case waiting in triage on the queue view"
        )
        [item] = queues["waiting"]
        no = item["case_no"]
        assert item["stage"] == "triage" and item["overdue"] is False, item
        assert datetime.fromisoformat(item["due_at"]) == FRIDAY_10AM + timedelta(hours=2)
        clock.advance(timedelta(minutes=100))  # 11:40, past 80% of the two hours
        await _timer_pass(district, clock, settings)
        [warning] = await wait_until(lambda: _alarms(district, no, "warning"), "the warning")
        assert warning["unit_code"] == CENTER and warning["data"]["stage"] == "triage"
        assert _center(await _queues(district)) == []
        clock.advance(timedelta(minutes=25))  # 12:05
        await _overdue_against_center(district, clock, settings, no, "triage")
        body = {"unit": STREET, "actor": "operator-1", "reason": "人工派单"}
        status, reply = await district.post(f"/api/v1/cases/{no}/dispatch", body)
        assert status == 200, reply
        await _decided(district, clock, settings, no)


async def _waiting(district: Service) -> dict[str, Any] | None:
    queues = await _queues(district)
    return queues if queues["waiting"] else None


async def test_an_escalation_waits_four_working_hours_for_a_decision(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, "HL2026112700123", BUREAU)  # 油烟: the ecology bureau
        up = task_feedback(task, "escalate", clock.now(), note="需街道配合")
        await t.publish(topics.TASK_FEEDBACK, task["task_id"], up)
        queues = await wait_until(lambda: _waiting(district), "the escalation waiting")
        [item] = queues["waiting"]
        assert item["stage"] == "escalation_decision" and item["case_no"] == task["case_no"]
        # 4 WH from Friday 10:00: two before lunch, two after (office hours 09-12, 13-17:30)
        assert datetime.fromisoformat(item["due_at"]) == FRIDAY_10AM + timedelta(hours=5)
        clock.advance(timedelta(hours=5, minutes=1))
        no = task["case_no"]
        await _overdue_against_center(district, clock, settings, no, "escalation_decision")
        body = {"unit": STREET, "actor": "operator-1", "reason": "改派街道"}
        status, reply = await district.post(f"/api/v1/cases/{no}/dispatch", body)
        assert status == 200, reply
        await _decided(district, clock, settings, no)


async def test_an_extension_request_waits_one_working_day_for_approval(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, NIGHT_WORKS, STREET_LAMPS)
        until = (FRIDAY_10AM + timedelta(days=14)).isoformat()
        ask = task_feedback(task, "request_extension", clock.now(), requested_until=until)
        await t.publish(topics.TASK_FEEDBACK, task["task_id"], ask)
        queues = await wait_until(lambda: _waiting(district), "the extension request waiting")
        [item] = queues["waiting"]
        assert item["stage"] == "extension_decision" and item["task_id"] == task["task_id"]
        monday_10am = FRIDAY_10AM + timedelta(days=3)  # 1 WD after Friday 10:00
        assert datetime.fromisoformat(item["due_at"]) == monday_10am
        clock.advance(timedelta(days=3, minutes=1))
        no = task["case_no"]
        await _overdue_against_center(district, clock, settings, no, "extension_decision")
        [overdue] = await _alarms(district, no, "overdue")
        assert overdue["data"]["task_id"] == task["task_id"]
        status, pending = await district.get("/api/v1/extension-requests")
        assert status == 200 and [p["overdue"] for p in pending["items"]] == [True], pending
        assert datetime.fromisoformat(pending["items"][0]["decide_by"]) == monday_10am
        body = {"task_id": task["task_id"], "approve": False, "actor": "sup-1", "reason": "不批"}
        status, reply = await district.post(f"/api/v1/cases/{no}/extension", body)
        assert status == 200, reply
        await _decided(district, clock, settings, no)


async def test_a_return_waits_four_working_hours_for_review(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, "HL2026112700123", BUREAU)
        back = task_feedback(task, "return", clock.now(), reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, task["task_id"], back)
        queues = await wait_until(lambda: _waiting(district), "the return waiting for review")
        [item] = queues["waiting"]
        no = task["case_no"]
        assert item["stage"] == "return_decision" and item["case_no"] == no, item
        assert [d["kind"] for d in queues["decisions"]] == ["return"], queues["decisions"]
        assert datetime.fromisoformat(item["due_at"]) == FRIDAY_10AM + timedelta(hours=5)
        clock.advance(timedelta(hours=5, minutes=1))
        await _overdue_against_center(district, clock, settings, no, "return_decision")
        body = {"approve": True, "unit": STREET, "actor": "sup-1", "reason": "属地街道处置"}
        status, reply = await district.post(f"/api/v1/cases/{no}/return-decision", body)
        assert status == 200, reply
        await _decided(district, clock, settings, no)
