"""The closed loop end to end: sample orders through district and street services."""

from __future__ import annotations

from typing import Any

from contracts import topics
from services.common.auth import Role
from services.common.config import Settings
from services.common.http import METRICS
from services.district.app import POOL
from services.district.app import create_app as district_app
from services.street.app import create_app as street_app
from tests.support import Topics, now_iso, running, samples, wait_until

EXPECTED_UNITS = {
    "HL2026112700123": "310106-STHJ",  # 油烟污染 -> ecology bureau
    "HL2026112700124": "310106-JSGL",  # 施工扰民 -> construction commission
    "HL2026112700125": "310106-JSGL",  # 井盖缺损 -> construction commission
    "HL2026112700126": "310106015000",  # 非机动车乱停放: street by GCJ-02 location (天目西路)
    "HL2026112700128": "310106-FGJ",  # 群租 -> housing bureau
    "HL2026112700129": "310106-JSGL",  # 道路积水
    "HL2026112700130": "310106-SCJG",  # 食品安全
    "HL2026112700131": "310106-JSGL",  # 路灯不亮
    "RC-310106011000-20261127-0007": "310106011000",  # 跨门营业 -> 石门二路 street
    "RC-310106013000-20261127-0003": "310106013000",  # 暴露垃圾 -> 静安寺 street
}


async def publish_samples(t: Topics) -> None:
    for order in samples("hotline12345.workorders"):
        if order["action"] == "dispatch":
            await t.publish(topics.WORKORDERS, order["order_no"], order)
    for report in samples("roadchief.reports"):
        await t.publish(topics.ROADCHIEF_REPORTS, report["report_id"], report)


async def task_for(t: Topics, ref: str) -> dict[str, Any]:
    unit = EXPECTED_UNITS[ref]
    [task] = await t.wait_for(
        topics.task_topic(unit),
        lambda m: m["case"]["source_ref"] == ref,
        f"task for {ref} on {unit}",
    )
    return task


async def test_samples_are_dispatched_to_the_owning_units(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await publish_samples(t)
        for ref, unit in EXPECTED_UNITS.items():
            task = await task_for(t, ref)
            assert task["unit_code"] == unit and task["kind"] == "assigned"
            assert task["role"] == "lead"
            assert task["deadlines"]["accept_by"] <= task["deadlines"]["resolve_by"]
        critical = await task_for(t, "HL2026112700129")
        assert critical["case"]["urgency"] == "critical"
        manhole = await task_for(t, "HL2026112700125")
        assert manhole["case"]["caller"]["phone_masked"] == "138****0003"
        assert "13800000003" not in str(manhole)
        assert manhole["case"]["location"]["crs"] == "wgs84"

        # outside the district: replied upstream, naming the right district; no task
        [reply] = await t.wait_for(
            topics.REPLIES, lambda m: m["order_no"] == "HL2026112700132", "not_our_district reply"
        )
        assert reply["kind"] == "not_our_district" and "徐汇区" in reply["text"]
        # no matching category (9901): waits for manual triage, where an operator classifies it
        [triage] = await t.wait_for(
            topics.CASE_EVENTS,
            lambda m: (
                m["to_state"] == "triage" and m["data"].get("reason", "").startswith("unclassified")
            ),
            "HL2026112700127 in triage",
        )
        assert triage["type"] == "to_triage"
        # handled on the spot: closed at once as self-handled
        await t.wait_for(
            topics.CASE_EVENTS,
            lambda m: m["type"] == "self_handled" and m["to_state"] == "closed",
            "on-site report closed",
        )

        assert await district.metric("cityops_cases_opened_total", source="hotline12345") == 10
        assert await district.metric("cityops_cases_opened_total", source="roadchief") == 3
        assert (
            await district.metric(
                "cityops_intake_messages_total", feed="hotline12345", outcome="accepted"
            )
            == 9
        )
        assert (
            await district.metric(
                "cityops_intake_messages_total", feed="hotline12345", outcome="out_of_district"
            )
            == 1
        )
        assert (
            await district.metric("cityops_tasks_dispatched_total", unit="310106-JSGL", role="lead")
            == 4
        )

        async def latency_count() -> bool:
            count = await district.metric("cityops_dispatch_latency_seconds_count")
            return count == len(EXPECTED_UNITS)

        await wait_until(latency_count, "dispatch latency observed once per dispatched task")


async def test_street_desk_closes_the_loop(settings: Settings) -> None:
    async with (
        running(district_app(settings)) as district,
        running(street_app(settings)) as desk,
        Topics(settings) as t,
    ):
        street = await desk.as_role(Role.DEPARTMENT_OPERATOR, "310106-JSGL")  # the task's unit
        await publish_samples(t)
        task = await task_for(t, "HL2026112700125")
        task_id, case_no = task["task_id"], task["case_no"]

        async def on_desk() -> bool:
            status, _ = await street.get(f"/api/v1/tasks/{task_id}")
            return status == 200

        await wait_until(on_desk, "task on the street desk")
        actor = {"id": "op-17", "name": "值班员"}
        for body in (
            {"action": "accept", "actor": actor},
            {"action": "contact", "actor": actor, "note": "已电话联系李先生"},
            {
                "action": "resolve",
                "actor": actor,
                "result": {"resolved": True, "summary": "已更换井盖。"},
            },
        ):
            status, reply = await street.post(f"/api/v1/tasks/{task_id}/actions", body)
            assert status == 202, reply

        replies = await t.wait_for(
            topics.REPLIES, lambda m: m["order_no"] == "HL2026112700125", "three replies", count=3
        )
        assert [r["kind"] for r in replies] == ["accepted", "first_contact", "result"]
        assert replies[-1]["text"] == "已更换井盖。" and replies[-1]["unit_code"] == "310106-JSGL"

        followup = {**samples("hotline12345.feedback")[0], "visited_at": now_iso()}
        await t.publish(topics.HOTLINE_FEEDBACK, followup["order_no"], followup)
        events = await t.wait_for(
            topics.CASE_EVENTS, lambda m: m["case_no"] == case_no, "case closed", count=7
        )
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert [e["to_state"] for e in events] == [
            "received",
            "dispatched",
            "accepted",
            "in_progress",
            "resolved",
            "resolved",
            "closed",
        ]
        assert (
            await district.metric("cityops_cases_closed_total", unit="310106-JSGL", on_time="true")
            == 1
        )
        assert await district.metric("cityops_satisfaction_total", rating="satisfied") == 1
        for action in ("accept", "contact", "resolve"):
            assert (
                await district.metric(
                    "cityops_task_actions_total", unit="310106-JSGL", action=action
                )
                == 1
            )
        # a closed task refuses more actions on the desk
        status, body = await street.post(
            f"/api/v1/tasks/{task_id}/actions", {"action": "progress", "actor": actor}
        )
        assert status == 409 and body["error"] == "task_closed"


async def test_dissatisfied_followup_reopens_and_urge_reaches_the_unit(settings: Settings) -> None:
    async with running(district_app(settings)), Topics(settings) as t:
        await publish_samples(t)
        task = await task_for(t, "HL2026112700124")
        for action, extra in (
            ("accept", {}),
            ("resolve", {"result": {"resolved": True, "summary": "已责令停工"}}),
        ):
            await t.publish(
                topics.TASK_FEEDBACK,
                task["task_id"],
                {
                    "schema": "cityops.task-feedback/v1",
                    "feedback_id": f"fb-{action}",
                    "task_id": task["task_id"],
                    "case_no": task["case_no"],
                    "unit_code": task["unit_code"],
                    "actor": {"id": "u1", "name": "张工"},
                    "action": action,
                    "at": now_iso(),
                    **extra,
                },
            )
        await t.wait_for(topics.REPLIES, lambda m: m["kind"] == "result", "result reply")
        followup = {**samples("hotline12345.feedback")[1], "visited_at": now_iso()}
        await t.publish(topics.HOTLINE_FEEDBACK, followup["order_no"], followup)
        [reopened] = await t.wait_for(
            topics.task_topic("310106-JSGL"),
            lambda m: m["case_no"] == task["case_no"] and m["task_id"] != task["task_id"],
            "re-dispatched task after dissatisfied follow-up",
        )
        assert reopened["kind"] == "assigned" and reopened["task_id"].endswith("-T2")

        urge = {**samples("hotline12345.workorders")[-1], "sent_at": now_iso()}
        await t.publish(topics.WORKORDERS, urge["order_no"], urge)
        [urged] = await t.wait_for(
            topics.task_topic("310106-STHJ"), lambda m: m["kind"] == "urged", "urged task"
        )
        assert urged["case"]["source_ref"] == "HL2026112700123"


async def test_bad_input_is_dead_lettered_and_repeats_change_nothing(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await publish_samples(t)
        await task_for(t, "HL2026112700123")
        order = samples("hotline12345.workorders")[0]
        await t.publish(topics.WORKORDERS, "x1", b"{not json")
        await t.publish(topics.WORKORDERS, "x2", {**order, "revision": "first"})
        await t.publish(topics.WORKORDERS, "x3", {**order, "action": "escalate", "revision": 7})
        await t.publish(
            topics.TASK_FEEDBACK,
            "x4",
            {
                "schema": "cityops.task-feedback/v1",
                "feedback_id": "f-x",
                "task_id": "nope",
                "case_no": "310106-20260101-0000001",
                "unit_code": "310106-JSGL",
                "actor": {"id": "a"},
                "action": "accept",
                "at": now_iso(),
            },
        )
        await t.publish(topics.WORKORDERS, order["order_no"], order)  # a repeat
        letters = await t.wait_for(topics.DEADLETTER, lambda m: True, "dead letters", count=3)
        by_key = {m["key"]: m for m in letters}
        import base64

        assert base64.b64decode(by_key["eDE="]["value"]) == b"{not json"
        assert by_key["eDE="]["error"]["kind"] == "not_json"
        assert (
            by_key["eDI="]["error"]["kind"] == "schema"
            and "revision" in by_key["eDI="]["error"]["detail"]
        )
        assert (
            by_key["eDM="]["error"]["kind"] == "schema"
            and "action" in by_key["eDM="]["error"]["detail"]
        )
        # feedback for a case not (yet) known waits for it, parked: not dead-lettered now
        assert "eDQ=" not in by_key

        async def parked_counted() -> float:
            return await district.metric(
                "cityops_intake_messages_total", feed="task_feedback", outcome="parked"
            )

        assert await wait_until(parked_counted, "feedback for an unknown case parked") == 1
        assert by_key["eDE="]["topic"] == topics.WORKORDERS and by_key["eDE="]["offset"] >= 0

        async def duplicate_counted() -> float:
            return await district.metric(
                "cityops_intake_messages_total", feed="hotline12345", outcome="duplicate"
            )

        assert await wait_until(duplicate_counted, "duplicate counted") == 1
        assert (
            await district.metric(
                "cityops_intake_messages_total", feed="hotline12345", outcome="invalid"
            )
            == 3
        )
        tasks = await t.read(topics.task_topic("310106-STHJ"))
        assert len(tasks) == 1, "a repeated order must not dispatch again"


async def test_open_case_gauges_follow_the_cases(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await publish_samples(t)
        task = await task_for(t, "HL2026112700125")

        async def gauge(unit: str, state: str, want: float) -> bool:
            from services.district.queues.gauges import refresh

            await refresh(district.app[POOL], district.app[METRICS], settings.district_code)
            return await district.metric("cityops_cases_open", unit=unit, state=state) == want

        await wait_until(lambda: gauge("310106-JSGL", "dispatched", 4), "4 dispatched at JSGL")
        await wait_until(lambda: gauge("unassigned", "triage", 1), "1 waiting for triage")
        await t.publish(
            topics.TASK_FEEDBACK,
            task["task_id"],
            {
                "schema": "cityops.task-feedback/v1",
                "feedback_id": "g-1",
                "task_id": task["task_id"],
                "case_no": task["case_no"],
                "unit_code": "310106-JSGL",
                "actor": {"id": "u1"},
                "action": "accept",
                "at": now_iso(),
            },
        )
        await wait_until(lambda: gauge("310106-JSGL", "accepted", 1), "1 accepted at JSGL")
        await wait_until(lambda: gauge("310106-JSGL", "dispatched", 3), "3 dispatched at JSGL")
