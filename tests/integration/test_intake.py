"""Intake that never loses, never duplicates, and knows where things are: actions parked until
their case opens (or dead-lettered when it never does), duplicate reports merged into the open
case nearby (and split out again), and the caller's phone revealed to the holding unit only."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import topics
from services.common.auth import Role
from services.common.clock import FakeClock
from services.common.config import Settings
from services.common.kafka import PARTITIONS
from services.district.app import create_app as district_app
from services.district.cases.model import case_number
from services.district.intake.duplicates import cell_of
from services.district.keys import PARKED
from tests.support import ORDERS, Topics, now_iso, running, samples, wait_until
from tests.support import case_record as case

SMOKE = "HL2026112700123"  # 油烟污染 at 南京西路: the ecology bureau's
BUREAU = "310106-STHJ"
METRES_PER_DEG_LAT = 111_320.0


def urge(order_no: str = SMOKE) -> dict[str, Any]:
    order = samples("hotline12345.workorders")[-1]
    assert order["action"] == "urge"
    return {**order, "order_no": order_no, "sent_at": now_iso()}


def nearby(order_no: str, metres_north: float, **extra: Any) -> dict[str, Any]:
    """The smoke complaint again, from another caller, `metres_north` of the first."""
    first = ORDERS[SMOKE]
    loc = first["location"]
    return {
        **first,
        "order_no": order_no,
        "sent_at": now_iso(),
        "caller": {"name": "赵先生", "phone": "13900000077", "anonymous": False, "callback": True},
        "location": {**loc, "lat": loc["lat"] + metres_north / METRES_PER_DEG_LAT},
        **extra,
    }


async def tasks_of(t: Topics, ref: str, kind: str = "assigned") -> list[dict[str, Any]]:
    return [
        m
        for m in await t.read(topics.task_topic(BUREAU))
        if m["case"]["source_ref"] == ref and m["kind"] == kind
    ]


async def parked_rows(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM parked_messages"))
    finally:
        await conn.close()


async def test_an_urge_before_its_dispatch_waits_and_is_applied_once(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, SMOKE, urge())

        async def parked() -> float:
            return await district.metric(
                "cityops_intake_messages_total", feed="hotline12345", outcome="parked"
            )

        await wait_until(parked, "the urge parked")
        assert await parked_rows(settings) == 1
        await t.publish(topics.WORKORDERS, SMOKE, ORDERS[SMOKE])
        [urged] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "urged", "urged task"
        )
        assert urged["case"]["source_ref"] == SMOKE and urged["note"] == "市民催办"
        assert urged["reason"] == "upstream"
        assert len(await tasks_of(t, SMOKE)) == 1
        assert await parked_rows(settings) == 0
        detail = await case(district, urged["case_no"])
        assert [e["type"] for e in detail["timeline"]] == ["opened", "dispatched", "urged"]
        assert not await t.read(topics.DEADLETTER)

        # feedback naming a task the (known) case does not have is refused, not parked
        bogus = {
            "schema": "cityops.task-feedback/v1",
            "feedback_id": "fb-bogus",
            "task_id": f"{urged['case_no']}-T9",
            "case_no": urged["case_no"],
            "unit_code": BUREAU,
            "actor": {"id": "a"},
            "action": "accept",
            "at": now_iso(),
        }
        await t.publish(topics.TASK_FEEDBACK, bogus["task_id"], bogus)
        [letter] = await t.wait_for(topics.DEADLETTER, lambda m: True, "refused feedback")
        assert letter["error"]["kind"] == "refused" and await parked_rows(settings) == 0


async def test_an_action_parked_beside_its_opening_batch_is_adopted(settings: Settings) -> None:
    """Two instances: one opens the case while the other, not seeing it yet, parks an urge for
    it; neither batch sees the other's. The parked urge is applied within seconds."""
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, SMOKE, ORDERS[SMOKE])
        [task] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["case"]["source_ref"] == SMOKE, "the task"
        )
        raw = json.dumps(urge()).encode()
        conn = await asyncpg.connect(settings.database_url)
        try:  # what the other instance's batch committed
            await conn.execute(
                "INSERT INTO parked_messages (district_code, lookup, topic, kafka_partition,"
                " kafka_offset, key, value, timestamp_ms, received_at)"
                " VALUES ('310106', $1, $2, 0, 42, $3, $4, NULL, now() - interval '10 s')",
                f"hotline12345:{SMOKE}",
                topics.WORKORDERS,
                SMOKE.encode(),
                raw,
            )
        finally:
            await conn.close()
        [urged] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "urged", "urged task"
        )
        assert urged["case_no"] == task["case_no"] and urged["note"] == "市民催办"
        assert await parked_rows(settings) == 0
        detail = await case(district, task["case_no"])
        assert [e["type"] for e in detail["timeline"]] == ["opened", "dispatched", "urged"]
        assert not await t.read(topics.DEADLETTER)


async def test_the_stored_grid_cell_is_the_one_duplicate_search_computes(
    settings: Settings,
) -> None:
    """`cases.geo_cell` (generated in SQL) and `duplicates.cell_of` must agree, or 并案 would
    look in the wrong cells."""
    async with running(district_app(settings)), Topics(settings) as t:
        for no, order in ORDERS.items():
            await t.publish(topics.WORKORDERS, no, order)
        conn = await asyncpg.connect(settings.database_url)
        try:
            expected = sum(1 for o in ORDERS.values() if o.get("location"))

            async def located() -> bool:
                n = await conn.fetchval("SELECT count(*) FROM cases WHERE lon IS NOT NULL")
                return int(n) == expected

            await wait_until(located, "every located sample order's case")
            rows = await conn.fetch("SELECT lon, lat, geo_cell FROM cases WHERE lon IS NOT NULL")
        finally:
            await conn.close()
        assert rows and all(r["geo_cell"] == cell_of(r["lon"], r["lat"]) for r in rows)


async def test_a_duplicate_joins_the_open_case_and_can_be_split_out(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, SMOKE, ORDERS[SMOKE])
        [first] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["case"]["source_ref"] == SMOKE, "first task"
        )
        no = first["case_no"]
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 60, urgency="urgent"))
        await t.publish(topics.WORKORDERS, "HL-FAR-1", nearby("HL-FAR-1", 300))
        [reply] = await t.wait_for(
            topics.REPLIES, lambda m: m["order_no"] == "HL-DUP-1", "the duplicate's reply"
        )
        assert reply["kind"] == "accepted" and no in reply["text"] and reply["case_no"] == no
        far = await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["case"]["source_ref"] == "HL-FAR-1",
            "300 m away: its own case",
        )
        assert far[0]["case_no"] != no
        detail = await case(district, no)
        assert detail["reporters"] == 2 and detail["urgency"] == "urgent"
        assert len(detail["tasks"]) == 1
        merged = [e for e in detail["timeline"] if e["type"] == "merged_report"]
        assert merged and merged[0]["data"]["source_ref"] == "HL-DUP-1"
        assert "13900000077" not in str(detail)
        assert await tasks_of(t, "HL-DUP-1") == []
        assert [
            m["kind"] for m in await t.read(topics.task_topic(BUREAU)) if m["case_no"] == no
        ] == [
            "assigned",
            "updated",
        ]

        # a later action about the merged order finds the case it joined
        await t.publish(topics.WORKORDERS, "HL-DUP-1", urge("HL-DUP-1"))
        await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["case_no"] == no and m["kind"] == "urged",
            "the merged order's urge on the joined case",
        )

        status, split = await district.post(
            f"/api/v1/cases/{no}/split",
            {"source_ref": "HL-DUP-1", "actor": "district-op-1", "reason": "不同饭店"},
        )
        assert status == 200, split
        assert split["case_no"] != no and split["source_ref"] == "HL-DUP-1"
        assert split["caller_phone_masked"] == "139****0077" and split["reporters"] == 1
        [own] = await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["case"]["source_ref"] == "HL-DUP-1" and m["kind"] == "assigned",
            "the split report dispatched as its own case",
        )
        assert own["case_no"] == split["case_no"]
        after = await case(district, no)
        assert after["reporters"] == 1 and after["timeline"][-1]["type"] == "report_split"
        status, body = await district.post(
            f"/api/v1/cases/{no}/split", {"source_ref": "HL-DUP-1", "actor": "district-op-1"}
        )
        assert status == 404, body


async def test_a_report_between_two_open_cases_joins_the_nearer(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        opened = {}
        for ref, order in ((SMOKE, ORDERS[SMOKE]), ("HL-NORTH-1", nearby("HL-NORTH-1", 150))):
            await t.publish(topics.WORKORDERS, ref, order)  # 150 m apart: two cases
            [task] = await t.wait_for(
                topics.task_topic(BUREAU), lambda m, r=ref: m["case"]["source_ref"] == r, ref
            )
            opened[ref] = task["case_no"]
        assert opened[SMOKE] != opened["HL-NORTH-1"]
        await t.publish(topics.WORKORDERS, "HL-MID-1", nearby("HL-MID-1", 90))  # 90 m and 60 m
        [reply] = await t.wait_for(
            topics.REPLIES, lambda m: m["order_no"] == "HL-MID-1", "the joining report's reply"
        )
        assert reply["case_no"] == opened["HL-NORTH-1"]
        assert (await case(district, opened["HL-NORTH-1"]))["reporters"] == 2
        assert (await case(district, opened[SMOKE]))["reporters"] == 1


async def test_the_phone_is_revealed_to_the_holding_unit_only(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, SMOKE, ORDERS[SMOKE])
        [task] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["case"]["source_ref"] == SMOKE, "task"
        )
        no, path = task["case_no"], f"/api/v1/cases/{task['case_no']}/reveal-phone"
        unit = await district.as_role(Role.DEPARTMENT_OPERATOR, BUREAU)
        status, body = await unit.post(path, {"actor": "op-17", "reason": "回访市民"})
        assert status == 200, body
        assert body == {"case_no": no, "unit_code": BUREAU, "phone": "13800000001"}
        other = await district.as_role(Role.DEPARTMENT_OPERATOR, "310106-JSGL")
        status, body = await other.post(path, {"actor": "op-9", "reason": "想问问"})
        assert status == 403 and body["error"] == "not_holding", body
        detail = await case(district, no)
        revealed = [e for e in detail["timeline"] if e["type"] == "phone_revealed"]
        assert len(revealed) == 1
        assert revealed[0]["data"] == {
            "actor": "op-17",
            "unit_code": BUREAU,
            "reason": "回访市民",
            "token_id": unit.token_id,  # the credential that asked
        }
        assert "13800000001" not in str(detail)
        events = await t.wait_for(
            topics.CASE_EVENTS, lambda m: m["type"] == "phone_revealed", "the event published"
        )
        assert "13800000001" not in str(events)


async def test_parked_messages_past_the_limit_are_dead_lettered(settings: Settings) -> None:
    clock = FakeClock()
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, "HL-NEVER", urge("HL-NEVER"))
        feedback = {
            "schema": "cityops.task-feedback/v1",
            "feedback_id": "fb-early",
            "task_id": "310106-20260101-0000001-T1",
            "case_no": case_number("310106", 9_999_999, clock.now()),
            "unit_code": BUREAU,
            "actor": {"id": "a"},
            "action": "accept",
            "at": now_iso(),
        }
        await t.publish(topics.TASK_FEEDBACK, "fb-early", feedback)

        async def both_parked() -> bool:
            return await parked_rows(settings) == 2

        await wait_until(both_parked, "two messages parked")
        sweeper = district.app[PARKED]
        assert await sweeper.sweep() == 0  # not old enough yet
        clock.advance(timedelta(days=7, minutes=1))
        assert await sweeper.sweep() == 2
        letters = await t.wait_for(topics.DEADLETTER, lambda m: True, "dead letters", count=2)
        assert {m["error"]["kind"] for m in letters} == {"unknown_case"}
        by_topic = {m["topic"]: m for m in letters}
        assert base64.b64decode(by_topic[topics.WORKORDERS]["key"]) == b"HL-NEVER"
        assert b"fb-early" in base64.b64decode(by_topic[topics.TASK_FEEDBACK]["value"])
        assert await parked_rows(settings) == 0
        assert (
            await district.metric(
                "cityops_deadletters_total", feed="hotline12345", kind="unknown_case"
            )
            == 1
        )


async def test_offsets_are_committed_once_the_effects_are_durable(settings: Settings) -> None:
    """The district's group commits each inbound partition up to what it has applied (soon
    after, off the batch's path), so a restart resumes after it."""
    group = f"{settings.group_prefix}-district"
    async with running(district_app(settings)), Topics(settings) as t:
        for no, order in ORDERS.items():
            await t.publish(topics.WORKORDERS, no, order)
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        ends = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        await ends.start()
        try:
            parts = [TopicPartition(topics.WORKORDERS, p) for p in range(PARTITIONS)]
            end = await ends.end_offsets(parts)

            async def committed_to_the_end() -> bool:
                offsets = await admin.list_consumer_group_offsets(group, partitions=parts)
                # (-1: nothing committed, as for a partition no order went to)
                return all(tp in offsets and max(offsets[tp].offset, 0) == end[tp] for tp in parts)

            await wait_until(committed_to_the_end, "inbound offsets committed to the end")
        finally:
            await ends.stop()
            await admin.close()
        conn = await asyncpg.connect(settings.database_url)
        try:  # committed means applied: every order is a case by now
            opened = await conn.fetchval(
                "SELECT count(*) FROM cases WHERE source_ref = ANY($1::text[])", list(ORDERS)
            )
        finally:
            await conn.close()
        assert opened == len(ORDERS)
