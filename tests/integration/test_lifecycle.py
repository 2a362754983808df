"""The district's rules on the real loop: returns, joint tasks, extensions, supervision by
timers (injectable clock), reopening, and replaying the record."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contracts import topics
from services.common import db
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import DECISIONS, POOL
from services.district.app import create_app as district_app
from services.district.cases.replay import replay
from services.district.deadlines.timers import TimerWorker
from services.district.keys import PUBLISHER, TIMERS
from tests.support import (
    Service,
    Topics,
    dispatched,
    running,
    samples,
    task_feedback,
    wait_until,
)
from tests.support import case_record as case

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")


feedback = task_feedback


async def new_task(t: Topics, unit: str, case_no: str, known: set[str]) -> dict[str, Any]:
    [task] = await t.wait_for(
        topics.task_topic(unit),
        lambda m: m["case_no"] == case_no and m["kind"] == "assigned" and m["task_id"] not in known,
        f"a new task of {case_no} on {unit}",
    )
    return task


async def test_returns_are_redispatched_on_approval_then_left_to_an_operator(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, "HL2026112700123", "310106-STHJ")  # 油烟: ecology bureau
        no = first["case_no"]
        await t.publish(
            topics.TASK_FEEDBACK,
            first["task_id"],
            feedback(first, "return", clock.now(), reason="not_our_duty"),
        )
        # a return waits for the district's decision; approved, it goes where routing says:
        # not our duty -> the category's other owner, the street of the location (南京西路)
        await _approve_return(district, no)
        second = await new_task(t, "310106012000", no, {first["task_id"]})
        await t.publish(
            topics.TASK_FEEDBACK,
            second["task_id"],
            feedback(second, "return", clock.now(), reason="not_our_territory"),
        )
        # returned twice: approved, it waits for an operator to name the unit (triage)
        await _approve_return(district, no)
        await wait_until(lambda: _state(district, no, "triage"), "case in triage")
        status, body = await district.post(
            f"/api/v1/cases/{no}/dispatch",
            {"unit": "310106-CGZF", "actor": "district-op-1", "reason": "城管执法处置"},
        )
        assert status == 200, body
        third = await new_task(t, "310106-CGZF", no, set())
        assert third["task_id"].endswith("-T3")
        detail = await case(district, no)
        assert detail["returns"] == 2 and detail["state"] == "dispatched"
        types = [e["type"] for e in detail["timeline"]]
        assert types == [
            "opened",
            "dispatched",
            "returned",
            "return_approved",
            "dispatched",
            "returned",
            "return_approved",
            "to_triage",
            "dispatched",
        ]
        # an operator may not dispatch to the district centre itself
        status, body = await district.post(
            f"/api/v1/cases/{no}/dispatch", {"unit": "310106-CENTER", "actor": "op"}
        )
        assert status == 409 and body["error"] == "refused"


async def _approve_return(district: Service, case_no: str) -> None:
    await wait_until(lambda: _state(district, case_no, "returned"), "the return waiting")
    decision = {"approve": True, "actor": "district-sup-1", "reason": "同意退单"}
    status, body = await district.post(f"/api/v1/cases/{case_no}/return-decision", decision)
    assert status == 200, body


async def test_escalation_becomes_a_joint_task_that_resolves_with_its_lead(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        street = "310106015000"  # 天目西路: shared bikes blocking the pavement
        first = await dispatched(t, "HL2026112700126", street)
        no = first["case_no"]
        await t.publish(
            topics.TASK_FEEDBACK,
            first["task_id"],
            feedback(
                first, "escalate", clock.now(), note="需执法和交警配合", co_units=["310106-CGZF"]
            ),
        )
        await wait_until(lambda: _state(district, no, "escalated"), "escalated")
        status, body = await district.post(
            f"/api/v1/cases/{no}/joint",
            {
                "lead": street,
                "co_units": ["310106-CGZF", "310106-GAJ"],
                "actor": "supervisor-1",
                "reason": "联勤联动整治",
            },
        )
        assert status == 200, body
        lead = await new_task(t, street, no, {first["task_id"]})
        co1 = await new_task(t, "310106-CGZF", no, set())
        co2 = await new_task(t, "310106-GAJ", no, set())
        assert (lead["role"], co1["role"], co2["role"]) == ("lead", "co", "co")
        result = {"resolved": True, "summary": "已清理乱停车辆并设置围栏"}
        await t.publish(
            topics.TASK_FEEDBACK,
            lead["task_id"],
            feedback(lead, "resolve", clock.now(), result=result),
        )
        [reply] = await t.wait_for(
            topics.REPLIES, lambda m: m["kind"] == "result" and m["case_no"] == no, "result reply"
        )
        assert reply["unit_code"] == street and reply["text"] == result["summary"]
        # the co-units' open tasks are withdrawn; a later report is still recorded
        for co in (co1, co2):
            [gone] = await t.wait_for(
                topics.task_topic(co["unit_code"]),
                lambda m, co=co: m["kind"] == "withdrawn" and m["task_id"] == co["task_id"],
                "co task withdrawn",
            )
            assert gone["reason"] == "lead_resolved"
        await t.publish(
            topics.TASK_FEEDBACK,
            co1["task_id"],
            feedback(co1, "resolve", clock.now(), result={"resolved": True, "summary": "执法完毕"}),
        )
        await wait_until(lambda: _event(district, no, "co_reported_late"), "late co-unit report")
        assert (await case(district, no))["state"] == "resolved"
        await t.publish(
            topics.HOTLINE_FEEDBACK,
            "HL2026112700126",
            {
                "schema": "hotline12345.feedback/v1",
                "order_no": "HL2026112700126",
                "visited_at": clock.now().isoformat(),
                "resolved": True,
                "satisfaction": "satisfied",
            },
        )
        await wait_until(lambda: _state(district, no, "closed"), "closed")
        await _replays_exactly(settings, no)


async def test_extension_approved_moves_the_deadline_and_refused_does_not(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, "HL2026112700131", "310106-JSGL")  # 路灯: 1WD (suggestion)
        no, resolve_by = task["case_no"], datetime.fromisoformat(task["deadlines"]["resolve_by"])
        until = resolve_by + timedelta(days=3)
        await t.publish(
            topics.TASK_FEEDBACK,
            task["task_id"],
            feedback(
                task,
                "request_extension",
                clock.now(),
                requested_until=until.isoformat(),
                note="需采购灯具",
            ),
        )
        await wait_until(lambda: _event(district, no, "extension_requested"), "request recorded")
        status, pending = await district.get("/api/v1/extension-requests")
        assert status == 200, pending
        [asked] = [x for x in pending["items"] if x["case_no"] == no]  # the board lists it apart
        assert (asked["task_id"], asked["note"]) == (task["task_id"], "需采购灯具")
        assert datetime.fromisoformat(asked["requested_until"]) == until
        status, body = await district.post(
            f"/api/v1/cases/{no}/extension",
            {
                "task_id": task["task_id"],
                "approve": True,
                "until": until.isoformat(),
                "actor": "supervisor-1",
                "reason": "同意延期",
            },
        )
        assert status == 200, body
        [updated] = await t.wait_for(
            topics.task_topic("310106-JSGL"), lambda m: m["kind"] == "updated", "updated task"
        )
        assert datetime.fromisoformat(updated["deadlines"]["resolve_by"]) == until
        _, pending = await district.get("/api/v1/extension-requests")
        assert no not in [x["case_no"] for x in pending["items"]]  # decided
        [reply] = await t.wait_for(
            topics.REPLIES, lambda m: m["kind"] == "extension", "extension reply"
        )
        assert reply["order_no"] == "HL2026112700131"
        approved = [
            e for e in (await case(district, no))["timeline"] if e["type"] == "extension_approved"
        ]
        before = approved[0]["data"]["deadlines_before"]["resolve_by"]
        assert datetime.fromisoformat(before) == resolve_by
        status, body = await district.post(
            f"/api/v1/cases/{no}/extension",
            {
                "task_id": task["task_id"],
                "approve": False,
                "actor": "supervisor-1",
                "reason": "不予延期",
            },
        )
        assert status == 200, body
        detail = await case(district, no)
        assert datetime.fromisoformat(detail["resolve_by"]) == until
        assert [e["type"] for e in detail["timeline"]][-1] == "extension_refused"
        assert (
            await district.metric(
                "cityops_extensions_total", unit="310106-JSGL", decision="approved"
            )
            == 1
        )


async def test_overdue_accept_is_supervised_once_and_the_unit_urged(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, "HL2026112700123", "310106-STHJ")
        assert datetime.fromisoformat(task["deadlines"]["accept_by"]) == FRIDAY_10AM + timedelta(
            hours=1
        )
        no = task["case_no"]
        clock.advance(timedelta(minutes=50))  # 83%: a warning, no supervision yet
        await wait_until(lambda: _event(district, no, "deadline_warning"), "80% warning")
        assert not await _event(district, no, "supervised")
        clock.advance(timedelta(minutes=11))  # 11:01, past the 11:00 accept deadline
        [urged] = await t.wait_for(
            topics.task_topic("310106-STHJ"),
            lambda m: m["kind"] == "urged" and m["reason"] == "overdue",
            "urged task",
        )
        assert urged["task_id"] == task["task_id"] and "督办" in urged["note"]
        # more instances racing on the same alarms fire nothing more
        decisions, pool = district.app[DECISIONS], district.app[POOL]
        submit = district.app[PUBLISHER].submit
        workers = [
            TimerWorker(pool, decisions, submit, clock, settings.district_code) for _ in range(3)
        ]
        await asyncio.gather(*(w.fire_due() for w in workers))
        detail = await case(district, no)
        assert detail["supervised"] is True
        assert [e["type"] for e in detail["timeline"]].count("supervised") == 1
        assert (
            await district.metric("cityops_supervisions_total", unit="310106-STHJ", mode="auto")
            == 1
        )


async def test_timers_fire_once_across_instances_and_catch_up_after_downtime(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        for order_no, unit in (
            ("HL2026112700123", "310106-STHJ"),
            ("HL2026112700128", "310106-FGJ"),
            ("HL2026112700130", "310106-SCJG"),
        ):
            await dispatched(t, order_no, unit)
    # the service is down; two new instances start after the deadlines passed
    clock.advance(timedelta(hours=2))
    pools = [await db.create_pool(settings.database_url, 2) for _ in range(2)]
    try:
        app = district_app(settings, clock=clock)
        async with running(app) as district:
            decisions, submit = district.app[DECISIONS], district.app[PUBLISHER].submit
            district_code = settings.district_code
            workers = [TimerWorker(p, decisions, submit, clock, district_code) for p in pools]
            for _ in range(3):
                await asyncio.gather(*(w.fire_due() for w in workers))
            conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
            try:
                counts = await conn.fetch(
                    "SELECT case_no, count(*) AS n FROM case_events WHERE type = 'supervised'"
                    " GROUP BY case_no"
                )
            finally:
                await conn.close()
            assert len(counts) == 3 and all(r["n"] == 1 for r in counts), counts
    finally:
        for p in pools:
            await p.close()


async def test_dissatisfied_followup_reopens_then_resolves_and_closes(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, "HL2026112700124", "310106-JSGL")
        no = first["case_no"]
        done = {"resolved": True, "summary": "已责令夜间停工"}
        await t.publish(
            topics.TASK_FEEDBACK,
            first["task_id"],
            feedback(first, "resolve", clock.now(), result=done),
        )
        await wait_until(lambda: _state(district, no, "resolved"), "resolved")
        followup = {**samples("hotline12345.feedback")[1], "visited_at": clock.now().isoformat()}
        await t.publish(topics.HOTLINE_FEEDBACK, followup["order_no"], followup)
        again = await new_task(t, "310106-JSGL", no, {first["task_id"]})
        detail = await case(district, no)
        assert detail["state"] == "reopened"
        reopen_by = datetime.fromisoformat(again["deadlines"]["resolve_by"])
        assert reopen_by == datetime.fromisoformat("2026-12-02T10:00:00+08:00")  # 3WD
        await t.publish(
            topics.TASK_FEEDBACK,
            again["task_id"],
            feedback(
                again, "resolve", clock.now(), result={"resolved": True, "summary": "已查处停工"}
            ),
        )
        await wait_until(lambda: _state(district, no, "resolved"), "resolved again")
        await t.publish(
            topics.HOTLINE_FEEDBACK,
            followup["order_no"],
            {
                **followup,
                "visited_at": (clock.now() + timedelta(minutes=1)).isoformat(),
                "resolved": True,
                "satisfaction": "basically_satisfied",
            },
        )
        await wait_until(lambda: _state(district, no, "closed"), "closed")
        await _replays_exactly(settings, no)


async def _state(district: Service, case_no: str, state: str) -> bool:
    status, body = await district.get(f"/api/v1/cases/{case_no}")
    return status == 200 and body["state"] == state


async def _event(district: Service, case_no: str, type_: str) -> bool:
    status, body = await district.get(f"/api/v1/cases/{case_no}")
    return status == 200 and any(e["type"] == type_ for e in body["timeline"])


async def _replays_exactly(settings: Settings, case_no: str) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
    try:
        await db._init_connection(conn)
        events = await conn.fetch(
            "SELECT case_no, seq, type, to_state, unit_code, data FROM case_events"
            " WHERE case_no = $1 ORDER BY seq",
            case_no,
        )
        row = await conn.fetchrow(
            "SELECT state, supervised, resolve_by, last_seq FROM cases WHERE case_no = $1", case_no
        )
        tasks = await conn.fetch(
            "SELECT task_id, unit_code, role FROM tasks WHERE case_no = $1", case_no
        )
    finally:
        await conn.close()
    rebuilt = replay([dict(e) for e in events])
    assert rebuilt.state == row["state"] and rebuilt.seq == row["last_seq"]
    assert rebuilt.supervised == row["supervised"] and rebuilt.resolve_by == row["resolve_by"]
    assert rebuilt.tasks == {r["task_id"]: (r["unit_code"], r["role"]) for r in tasks}


async def test_a_case_past_its_resolve_deadline_is_supervised_with_three_working_days(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        task = await dispatched(t, "HL2026112700131", "310106-JSGL")  # suggestion: 1 WD
        no = task["case_no"]
        await t.publish(
            topics.TASK_FEEDBACK,
            task["task_id"],
            feedback(task, "contact", clock.now(), note="已联系"),
        )
        await wait_until(lambda: _state(district, no, "in_progress"), "in progress")
        clock.advance(timedelta(days=3, hours=1))  # Monday 11:00, past Monday 10:00
        [urged] = await t.wait_for(
            topics.task_topic("310106-JSGL"),
            lambda m: m["kind"] == "urged" and m["reason"] == "overdue",
            "urged task",
        )
        new_deadline = datetime.fromisoformat("2026-12-03T11:00:00+08:00")  # 3 WD later
        assert datetime.fromisoformat(urged["deadlines"]["resolve_by"]) == new_deadline
        clock.advance(timedelta(minutes=5))
        for _ in range(2):  # two more timer passes: nothing already fired fires again
            await district.app[TIMERS].fire_due()
        detail = await case(district, no)
        assert [e["type"] for e in detail["timeline"]].count("supervised") == 1
        [lead] = [task for task in detail["tasks"] if task["role"] == "lead"]
        assert datetime.fromisoformat(lead["resolve_by"]) == new_deadline  # the unit works to it
        given = datetime.fromisoformat("2026-11-30T10:00:00+08:00")  # 1 WD from dispatch
        assert datetime.fromisoformat(detail["resolve_by"]) == given  # the case stays late
        await _replays_exactly(settings, no)


async def test_an_operator_merges_a_case_into_another(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        kept = await dispatched(t, "HL2026112700124", "310106-JSGL")
        gone = await dispatched(t, "HL2026112700131", "310106-JSGL")
        status, body = await district.post(
            f"/api/v1/cases/{gone['case_no']}/merge",
            {"into": kept["case_no"], "actor": "district-op-1", "reason": "同一问题"},
        )
        assert status == 200, body
        assert body["case_no"] == kept["case_no"] and body["reporters"] == 2
        [withdrawn] = await t.wait_for(
            topics.task_topic("310106-JSGL"), lambda m: m["kind"] == "withdrawn", "withdrawn task"
        )
        assert withdrawn["task_id"] == gone["task_id"]
        [reply] = await t.wait_for(
            topics.REPLIES,
            lambda m: m["order_no"] == "HL2026112700131",
            "reply naming the case joined",
        )
        assert kept["case_no"] in reply["text"]
        assert (await case(district, gone["case_no"]))["state"] == "merged"
        status, body = await district.post(
            f"/api/v1/cases/{gone['case_no']}/merge",
            {"into": kept["case_no"], "actor": "district-op-1"},
        )
        assert status == 409 and body["error"] == "refused"
        await _replays_exactly(settings, gone["case_no"])
