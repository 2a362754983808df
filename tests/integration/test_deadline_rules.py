"""Deadlines an operator can trust (issue 14), on the real loop with a fake clock: no task born
overdue, stages only where owed, parking pauses the clock, the unit told of its alarms."""

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
from tests.support import (
    ORDERS,
    Service,
    Topics,
    running,
    samples,
    task_feedback,
    wait_until,
)
from tests.support import case_record as case

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
STREET_LAMPS = "310106-JSGL"


async def _state(district: Service, case_no: str, state: str) -> bool:
    status, body = await district.get(f"/api/v1/cases/{case_no}")
    return status == 200 and body["state"] == state


async def _timer_pass(district: Service, clock: FakeClock, settings: Settings) -> None:
    """One pass of a timer worker now (besides the service's own, which runs every second)."""
    app = district.app
    worker = TimerWorker(
        app[POOL], app[DECISIONS], app[PUBLISHER].submit, clock, settings.district_code
    )
    await worker.fire_due()


async def _task(t: Topics, unit: str, match: Any, what: str) -> dict[str, Any]:
    [task] = await t.wait_for(topics.task_topic(unit), match, what)
    return task


async def test_a_reopen_after_the_municipal_due_time_is_not_born_overdue(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    order = {**ORDERS["HL2026112700124"], "due_at": "2026-11-27T12:00:00+08:00"}
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, order["order_no"], order)
        first = await _task(t, STREET_LAMPS, lambda m: m["kind"] == "assigned", "first task")
        assert datetime.fromisoformat(first["deadlines"]["resolve_by"]) == FRIDAY_10AM + timedelta(
            hours=2
        ), "the municipal due time caps the task while it lies ahead"
        no = first["case_no"]
        done = {"resolved": True, "summary": "已责令夜间停工"}
        await t.publish(
            topics.TASK_FEEDBACK,
            first["task_id"],
            task_feedback(first, "resolve", clock.now(), result=done),
        )
        await wait_until(lambda: _state(district, no, "resolved"), "resolved")
        clock.advance(timedelta(hours=3))  # 13:00, an hour past the municipal due time
        followup = {**samples("hotline12345.feedback")[1], "visited_at": clock.now().isoformat()}
        await t.publish(topics.HOTLINE_FEEDBACK, followup["order_no"], followup)
        again = await _task(
            t,
            STREET_LAMPS,
            lambda m: m["kind"] == "assigned" and m["task_id"] != first["task_id"],
            "the reopen task",
        )
        dispatched_at = datetime.fromisoformat(again["dispatched_at"])
        due = {k: datetime.fromisoformat(v) for k, v in again["deadlines"].items() if v}
        assert all(d > dispatched_at for d in due.values()), due
        # 3 WD from 13:00 (working time resumes where the morning ended)
        assert due["resolve_by"] == datetime.fromisoformat("2026-12-02T12:00:00+08:00")
        detail = await case(district, no)
        [missed] = [e for e in detail["timeline"] if e["type"] == "municipal_due_missed"]
        assert datetime.fromisoformat(missed["data"]["municipal_due"]) == FRIDAY_10AM + timedelta(
            hours=2
        )
        status, queues = await district.get("/api/v1/queues")
        assert status == 200 and queues["municipal_due_missed"] == 1, queues
        assert await district.metric("cityops_municipal_due_missed_total", unit=STREET_LAMPS) == 1
        clock.advance(timedelta(minutes=5))
        status, queues = await district.get("/api/v1/queues")
        assert not [o for o in queues["overdue"] if o["unit_code"] == STREET_LAMPS], queues


async def _only_task(t: Topics, district: Service, source_ref: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        _, page = await district.get("/api/v1/cases?limit=200")
        hits = [c for c in page["items"] if c["source_ref"] == source_ref and c["unit_code"]]
        return hits[0] if hits else None

    row = await wait_until(found, f"the case of {source_ref} dispatched")
    return await _task(
        t, row["unit_code"], lambda m: m["case"]["source_ref"] == source_ref, source_ref
    )


async def test_first_contact_is_owed_only_where_the_caller_wants_a_call_back(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    report = {**samples("roadchief.reports")[0], "reported_at": FRIDAY_10AM.isoformat()}
    no_callback = {
        **ORDERS["HL2026112700131"],
        "caller": {**ORDERS["HL2026112700131"]["caller"], "callback": False},
    }
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.ROADCHIEF_REPORTS, report["report_id"], report)
        await t.publish(topics.WORKORDERS, no_callback["order_no"], no_callback)
        await t.publish(topics.WORKORDERS, "HL2026112700124", ORDERS["HL2026112700124"])
        patrol = await _only_task(t, district, report["report_id"])
        quiet = await _only_task(t, district, no_callback["order_no"])
        caller = await _only_task(t, district, "HL2026112700124")
        assert patrol["deadlines"]["first_contact_by"] is None
        assert quiet["deadlines"]["first_contact_by"] is None
        assert caller["deadlines"]["first_contact_by"] is not None
        for task in (patrol, quiet, caller):  # accepted at once: only first contact can lapse
            await t.publish(
                topics.TASK_FEEDBACK, task["task_id"], task_feedback(task, "accept", clock.now())
            )
        clock.advance(timedelta(days=3, hours=1))  # Monday 11:00: a working day has passed
        [urged] = await t.wait_for(
            topics.task_topic(caller["unit_code"]),
            lambda m: (
                m["kind"] == "urged"
                and m["case_no"] == caller["case_no"]
                and m.get("reason") == "overdue"
            ),  # its 80% warning came before
            "the caller's case supervised for first contact",
        )
        assert urged["task_id"] == caller["task_id"]
        status, queues = await district.get("/api/v1/queues")
        assert status == 200, queues
        contact = [o for o in queues["overdue"] if o["stage"] == "first_contact"]
        assert contact == [{"unit_code": caller["unit_code"], "stage": "first_contact", "n": 1}]
        for task in (patrol, quiet):
            timeline = (await case(district, task["case_no"]))["timeline"]
            stages = [e["data"].get("stage") for e in timeline if e["type"] == "supervised"]
            assert "first_contact" not in stages, timeline


async def test_parking_stops_the_clock_and_unparking_resumes_with_the_time_left(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, "HL2026112700124", ORDERS["HL2026112700124"])
        task = await _task(t, STREET_LAMPS, lambda m: m["kind"] == "assigned", "the task")
        no = task["case_no"]
        await t.publish(
            topics.TASK_FEEDBACK, task["task_id"], task_feedback(task, "accept", clock.now())
        )
        await wait_until(lambda: _state(district, no, "accepted"), "accepted")
        clock.advance(timedelta(minutes=30))  # Fri 10:30: half an hour of working time spent
        body = {"actor": "supervisor-1", "reason": "待规划审批"}
        status, reply = await district.post(f"/api/v1/cases/{no}/park", body)
        assert status == 200, reply
        clock.advance(timedelta(days=11))  # Tue 12-08 10:30: every deadline lies in the pause
        await _timer_pass(district, clock, settings)
        status, reply = await district.post(f"/api/v1/cases/{no}/unpark", body)
        assert status == 200, reply
        [resumed] = await t.wait_for(
            topics.task_topic(STREET_LAMPS), lambda m: m["kind"] == "updated", "resumed task"
        )
        due = {k: datetime.fromisoformat(v) for k, v in resumed["deadlines"].items()}
        # first contact had 7 WH left (due Mon 10:00), resolve 5 WD less half an hour
        assert due["first_contact_by"] == datetime.fromisoformat("2026-12-09T10:00:00+08:00")
        assert due["resolve_by"] == datetime.fromisoformat("2026-12-15T10:00:00+08:00")
        detail = await case(district, no)
        assert detail["state"] == "accepted"
        assert datetime.fromisoformat(detail["resolve_by"]) == due["resolve_by"]
        [unparked] = [e for e in detail["timeline"] if e["type"] == "unparked"]
        assert (
            unparked["data"]["deadlines_after"]["resolve_by"] == resumed["deadlines"]["resolve_by"]
        )
        clock.advance(timedelta(minutes=5))
        await _timer_pass(district, clock, settings)
        status, queues = await district.get("/api/v1/queues")
        assert queues["overdue"] == [], queues
        assert "supervised" not in [e["type"] for e in (await case(district, no))["timeline"]]


async def test_the_unit_is_told_of_its_warning_overdue_and_supervision(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, "HL2026112700124", ORDERS["HL2026112700124"])
        task = await _task(t, STREET_LAMPS, lambda m: m["kind"] == "assigned", "the task")
        no, mine = task["case_no"], topics.task_topic(STREET_LAMPS)

        def urged(reason: str) -> Any:
            return lambda m: m["kind"] == "urged" and m["reason"] == reason

        clock.advance(timedelta(minutes=50))  # 83% of the 1 WH accept stage
        await _timer_pass(district, clock, settings)
        [warning] = await t.wait_for(mine, urged("warning"), "the accept warning")
        assert warning["note"].startswith("accept") and warning["task_id"] == task["task_id"]
        clock.advance(timedelta(minutes=11))  # 11:01: the accept deadline has passed
        await _timer_pass(district, clock, settings)
        [overdue] = await t.wait_for(mine, urged("overdue"), "the accept overdue")
        assert "accept" in overdue["note"] and "督办" in overdue["note"]
        status, body = await district.post(
            f"/api/v1/cases/{no}/supervise", {"actor": "supervisor-1", "reason": "领导关注"}
        )
        assert status == 200, body
        [manual] = await t.wait_for(mine, urged("supervision"), "the supervision")
        assert "领导关注" in manual["note"]
        assert len(await t.wait_for(mine, lambda m: m["kind"] == "urged", "urges", 3)) == 3
