"""Every 12345 order is answered as its own order, merged (并案) or not: `accepted` naming the
case it joined, `result` with the lead's summary when that case resolves, `returned` when it is
rejected or withdrawn; its follow-up counts for the case. The same after an operator's merge."""

from __future__ import annotations

from typing import Any

from contracts import topics
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.keys import POOL
from tests.integration.test_intake import BUREAU, SMOKE, nearby
from tests.support import (
    ORDERS,
    Service,
    Topics,
    dispatched,
    now_iso,
    running,
    task_feedback,
    wait_until,
)
from tests.support import case_record as case


async def replies(t: Topics, order_no: str, kind: str, count: int = 1) -> list[dict[str, Any]]:
    return await t.wait_for(
        topics.REPLIES,
        lambda m: m["order_no"] == order_no and m["kind"] == kind,
        f"{kind} reply to {order_no}",
        count,
    )


def followup(order_no: str, satisfaction: str, resolved: bool) -> dict[str, Any]:
    return {
        "schema": "hotline12345.feedback/v1",
        "order_no": order_no,
        "visited_at": now_iso(),
        "resolved": resolved,
        "satisfaction": satisfaction,
        "comment": "回访",
    }


async def resolve(t: Topics, task: dict[str, Any], summary: str) -> None:
    for action, extra in (
        ("accept", {}),
        ("contact", {}),
        ("resolve", {"result": {"resolved": True, "summary": summary}}),
    ):
        await t.publish(
            topics.TASK_FEEDBACK, task["task_id"], task_feedback(task, action, now_iso(), **extra)
        )


async def state_is(district: Service, case_no: str, state: str) -> bool:
    return bool((await case(district, case_no))["state"] == state)


async def test_a_merged_order_gets_its_own_result_and_its_followup_counts(
    settings: Settings,
) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        no = first["case_no"]
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 60))
        [accepted] = await replies(t, "HL-DUP-1", "accepted")
        assert accepted["case_no"] == no and no in accepted["text"]

        await resolve(t, first, "已责令饭店安装油烟净化器")
        [own] = await replies(t, SMOKE, "result")
        [merged] = await replies(t, "HL-DUP-1", "result")
        assert merged["case_no"] == no and merged["text"] == "已责令饭店安装油烟净化器"
        assert merged["reply_id"] != own["reply_id"] and merged["text"] == own["text"]

        # the merged caller is not satisfied: the case reopens for everyone
        await t.publish(
            topics.HOTLINE_FEEDBACK, "HL-DUP-1", followup("HL-DUP-1", "dissatisfied", False)
        )
        await wait_until(lambda: state_is(district, no, "reopened"), "the case reopened")
        detail = await case(district, no)
        [visit] = [e for e in detail["timeline"] if e["type"] == "followed_up"]
        assert visit["data"]["order_no"] == "HL-DUP-1"
        [second] = await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["case_no"] == no and m["task_id"] != first["task_id"],
            "the reopened task",
        )
        await resolve(t, second, "已拆除违规排烟管道")
        results = await replies(t, "HL-DUP-1", "result", 2)
        assert results[-1]["text"] == "已拆除违规排烟管道"
        await t.publish(topics.HOTLINE_FEEDBACK, SMOKE, followup(SMOKE, "satisfied", True))
        await wait_until(lambda: state_is(district, no, "closed"), "closed")
        # the other caller's satisfied visit after the close is recorded, not refused
        await t.publish(
            topics.HOTLINE_FEEDBACK, "HL-DUP-1", followup("HL-DUP-1", "satisfied", True)
        )

        async def two_visits() -> bool:
            timeline = (await case(district, no))["timeline"]
            return sum(e["type"] == "followed_up" for e in timeline) == 3

        await wait_until(two_visits, "every visit recorded")
        assert [m for m in await t.read(topics.DEADLETTER)] == []
        # the record per order (KPIs): each order its own last visit, the case's contact and
        # outcome (no outcome sent: solved)
        rows = await district.app[POOL].fetch(
            "SELECT order_no, first_contact, outcome, satisfaction, citizen_resolved"
            " FROM order_record WHERE case_no = $1 ORDER BY order_no",
            no,
        )
        assert [tuple(r) for r in rows] == [
            ("HL-DUP-1", True, "solved", "satisfied", True),
            (SMOKE, True, "solved", "satisfied", True),
        ]


async def test_merged_orders_are_returned_when_the_case_is_rejected_or_withdrawn(
    settings: Settings,
) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 40))
        await replies(t, "HL-DUP-1", "accepted")
        withdraw = {**ORDERS[SMOKE], "action": "withdraw", "revision": 2, "sent_at": now_iso()}
        await t.publish(topics.WORKORDERS, SMOKE, withdraw)
        [back] = await replies(t, "HL-DUP-1", "returned")
        assert back["case_no"] == first["case_no"] and SMOKE in back["text"]
        assert not [
            m
            for m in await t.read(topics.REPLIES)
            if m["order_no"] == SMOKE and m["kind"] == "returned"
        ]

        # a merged order withdrawn by 12345 leaves its case, which goes on
        other = await dispatched(t, "HL2026112700125", "310106-JSGL")
        await t.publish(
            topics.WORKORDERS,
            "HL-DUP-2",
            {
                **ORDERS["HL2026112700125"],
                "order_no": "HL-DUP-2",
                "sent_at": now_iso(),
                "caller": {
                    "name": "钱先生",
                    "phone": "13900000078",
                    "anonymous": False,
                    "callback": True,
                },
            },
        )
        await replies(t, "HL-DUP-2", "accepted")
        gone = {
            **ORDERS["HL2026112700125"],
            "order_no": "HL-DUP-2",
            "action": "withdraw",
            "revision": 2,
            "sent_at": now_iso(),
        }
        await t.publish(topics.WORKORDERS, "HL-DUP-2", gone)

        async def left() -> bool:
            detail = await case(district, other["case_no"])
            return detail["reporters"] == 1 and detail["state"] == "dispatched"

        await wait_until(left, "the withdrawn merged order left its case")
        await resolve(t, other, "井盖已更换")
        await replies(t, "HL2026112700125", "result")
        assert not [
            m
            for m in await t.read(topics.REPLIES)
            if m["order_no"] == "HL-DUP-2" and m["kind"] == "result"
        ]


async def approve_return(district: Service, case_no: str) -> None:
    """A return waits for the district's decision: approved here."""
    await wait_until(lambda: state_is(district, case_no, "returned"), "the return waiting")
    decision = {"approve": True, "actor": "district-sup-1", "reason": "同意退单"}
    status, body = await district.post(f"/api/v1/cases/{case_no}/return-decision", decision)
    assert status == 200, body


async def test_merged_orders_are_returned_when_the_case_is_rejected(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        no = first["case_no"]
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 40))
        await replies(t, "HL-DUP-1", "accepted")
        await t.publish(
            topics.TASK_FEEDBACK,
            first["task_id"],
            task_feedback(first, "return", now_iso(), reason="not_our_duty"),
        )
        await approve_return(district, no)
        [street] = await t.wait_for(
            topics.task_topic("310106012000"), lambda m: m["case_no"] == no, "the street's task"
        )
        await t.publish(
            topics.TASK_FEEDBACK,
            street["task_id"],
            task_feedback(street, "return", now_iso(), reason="not_our_territory"),
        )
        await approve_return(district, no)
        await wait_until(lambda: state_is(district, no, "triage"), "in triage")
        status, body = await district.post(
            f"/api/v1/cases/{no}/reject", {"actor": "district-op-1", "reason": "非政府职能"}
        )
        assert status == 200, body
        for order_no in (SMOKE, "HL-DUP-1"):
            [back] = await replies(t, order_no, "returned")
            assert back["case_no"] == no and back["text"] == "非政府职能"


async def test_an_operator_merge_answers_the_merged_case_orders(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        kept = await dispatched(t, "HL2026112700124", "310106-JSGL")
        gone = await dispatched(t, "HL2026112700131", "310106-JSGL")
        status, body = await district.post(
            f"/api/v1/cases/{gone['case_no']}/merge",
            {"into": kept["case_no"], "actor": "district-op-1", "reason": "同一问题"},
        )
        assert status == 200, body
        [accepted] = await replies(t, "HL2026112700131", "accepted")
        assert kept["case_no"] in accepted["text"]
        await resolve(t, kept, "工地已停止夜间施工")
        [result] = await replies(t, "HL2026112700131", "result")
        assert result["case_no"] == kept["case_no"] and result["text"] == "工地已停止夜间施工"
        # the merged case's order: its follow-up counts for the case it joined
        await t.publish(
            topics.HOTLINE_FEEDBACK,
            "HL2026112700131",
            followup("HL2026112700131", "satisfied", True),
        )
        await wait_until(lambda: state_is(district, kept["case_no"], "closed"), "closed")
        status, body = await district.post(
            f"/api/v1/cases/{kept['case_no']}/split",
            {"source_ref": "HL2026112700131", "actor": "op", "reason": "x"},
        )
        assert status == 409, body
