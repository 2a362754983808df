"""Exception paths are decided, not automatic: a return (退单) waits on the district's queue
until an operator approves it (re-dispatched, the unit told its return was taken) or refuses
it (the task back to the unit, told why); only a routing rule's `auto_redispatch_returns`
re-dispatches at once. Every decision is in the exception ledger with its approver and
reason, and each path's share is served by the KPI API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from contracts import topics
from services.common.auth import Role
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.street.app import create_app as street_app
from tests.integration.test_api_roles import call
from tests.support import Service, Topics, dispatched, running, task_feedback, wait_until
from tests.support import case_record as case

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
BUREAU, STREET = "310106-STHJ", "310106012000"  # 油烟 (0106): the ecology bureau; 南京西路
SMOKE = "HL2026112700123"
PERIOD = "from=2026-11-27&to=2026-11-28"


async def returned(t: Topics, district: Service, task: dict[str, Any], reason: str) -> str:
    """The unit returns its task; the case waits at the district (`returned`)."""
    back = task_feedback(task, "return", FRIDAY_10AM, reason=reason)
    await t.publish(topics.TASK_FEEDBACK, task["task_id"], back)
    no: str = task["case_no"]

    async def waiting() -> bool:
        return (await case(district, no))["state"] == "returned"

    await wait_until(waiting, "the case waiting at the district")
    return no


async def on_topic(t: Topics, unit: str, case_no: str, kind: str) -> list[dict[str, Any]]:
    return [
        m
        for m in await t.read(topics.task_topic(unit))
        if m["case_no"] == case_no and m["kind"] == kind
    ]


def instants(deadlines: dict[str, str | None]) -> dict[str, datetime | None]:
    return {k: datetime.fromisoformat(v) if v else None for k, v in deadlines.items()}


async def ledger(district: Service) -> list[dict[str, Any]]:
    status, body = await district.get(f"/api/v1/exceptions?{PERIOD}")
    assert status == 200, body
    return body["items"]  # type: ignore[no-any-return]


async def test_a_return_waits_for_approval_then_is_redispatched_and_acknowledged(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        no = await returned(t, district, first, "not_our_duty")
        # on the queue, not re-dispatched, not yet acknowledged
        status, queues = await district.get("/api/v1/queues")
        assert status == 200, queues
        assert [(d["kind"], d["task_id"], d["return_reason"]) for d in queues["decisions"]] == [
            ("return", first["task_id"], "not_our_duty")
        ]
        assert await on_topic(t, STREET, no, "assigned") == []
        assert await on_topic(t, BUREAU, no, "withdrawn") == []
        decision = {"approve": True, "actor": "sup-1", "reason": "确非生态环境局职责"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", decision)
        assert status == 200, body
        assert body["state"] == "dispatched"
        [ack] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "withdrawn", "return taken"
        )
        assert ack["task_id"] == first["task_id"] and ack["reason"] == "returned"
        # routing's suggestion for not_our_duty: the category's other owner, the street
        [second] = await t.wait_for(
            topics.task_topic(STREET), lambda m: m["kind"] == "assigned", "re-dispatched"
        )
        assert second["case_no"] == no
        _, queues = await district.get("/api/v1/queues")
        assert queues["decisions"] == []
        [row] = await ledger(district)
        assert (row["kind"], row["decision"], row["approver"]) == ("return", "approved", "sup-1")
        assert row["reason"] == "确非生态环境局职责" and row["token_id"] == district.token_id
        assert (row["task_id"], row["unit_code"]) == (first["task_id"], BUREAU)
        assert row["detail"]["redispatch_to"] == STREET
        n = await district.metric("cityops_exceptions_total", kind="return", decision="approved")
        assert n == 1


async def test_a_refused_return_goes_back_to_the_unit_told_why(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        no = await returned(t, district, first, "not_our_duty")
        # a decision needs a reason (the ledger's)
        empty = {"approve": False, "actor": "sup-1"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", empty)
        assert status == 409 and body["error"] == "refused", body
        decision = {"approve": False, "actor": "sup-1", "reason": "油烟污染属生态环境局职责"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", decision)
        assert status == 200, body
        assert body["state"] == "dispatched"
        [told] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "updated", "the unit told"
        )
        assert told["task_id"] == first["task_id"] and told["reason"] == "return_refused"
        assert "油烟污染属生态环境局职责" in told["note"]
        assert instants(told["deadlines"]) == instants(first["deadlines"])  # the clock it had
        assert await on_topic(t, BUREAU, no, "withdrawn") == []
        assert await on_topic(t, STREET, no, "assigned") == []
        # the task is the unit's again: it can work on it
        accept = task_feedback(first, "accept", clock.now())
        await t.publish(topics.TASK_FEEDBACK, first["task_id"], accept)

        async def accepted() -> bool:
            return (await case(district, no))["state"] == "accepted"

        await wait_until(accepted, "accepted after the refusal")
        [row] = await ledger(district)
        assert (row["kind"], row["decision"], row["approver"]) == ("return", "refused", "sup-1")
        assert row["reason"] == "油烟污染属生态环境局职责"
        types = [e["type"] for e in (await case(district, no))["timeline"]]
        assert types[-3:] == ["returned", "return_refused", "accepted"]


async def test_a_routing_rule_may_redispatch_returns_without_approval(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        rule = {
            "category_code": "0106",
            "owner": BUREAU,
            "alt_owner": "street",
            "auto_redispatch_returns": True,
            "actor": "sup-1",
            "reason": "油烟退单自动改派",
        }
        status, body, _ = await call(district, "PUT", "/api/v1/routing-rules", rule)
        assert status == 200 and body["auto_redispatch_returns"] is True, body
        first = await dispatched(t, SMOKE, BUREAU)
        back = task_feedback(first, "return", clock.now(), reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, first["task_id"], back)
        [second] = await t.wait_for(
            topics.task_topic(STREET), lambda m: m["kind"] == "assigned", "re-dispatched"
        )
        no = first["case_no"]
        assert second["case_no"] == no
        [ack] = await on_topic(t, BUREAU, no, "withdrawn")
        assert ack["reason"] == "returned"
        [row] = await ledger(district)
        assert (row["kind"], row["decision"], row["approver"]) == ("return", "auto", "routing")
        assert row["token_id"] is None and "not 310106-STHJ's duty" in row["reason"]
        _, queues = await district.get("/api/v1/queues")
        assert queues["decisions"] == []


async def test_every_exception_is_in_the_ledger_and_its_share_counted(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        no = await returned(t, district, first, "not_our_duty")
        take = {"approve": True, "actor": "sup-1", "reason": "改派属地"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", take)
        assert status == 200, body
        [second] = await t.wait_for(
            topics.task_topic(STREET), lambda m: m["kind"] == "assigned", "re-dispatched"
        )
        until = datetime.fromisoformat(second["deadlines"]["resolve_by"]) + timedelta(days=1)
        extend = {
            "task_id": second["task_id"],
            "approve": True,
            "until": until.isoformat(),
            "actor": "sup-2",
            "reason": "需协调业主",
        }
        status, body = await district.post(f"/api/v1/cases/{no}/extension", extend)
        assert status == 200, body
        status, body = await district.post(
            f"/api/v1/cases/{no}/park", {"actor": "sup-3", "reason": "待规划调整"}
        )
        assert status == 200, body
        rows = await ledger(district)
        assert [(r["kind"], r["decision"], r["approver"], r["reason"]) for r in rows] == [
            ("parking", "approved", "sup-3", "待规划调整"),
            ("extension", "approved", "sup-2", "需协调业主"),
            ("return", "approved", "sup-1", "改派属地"),
        ]
        assert all(r["token_id"] == district.token_id for r in rows)
        status, body = await district.get(f"/api/v1/kpis/exceptions?{PERIOD}")
        assert status == 200, body
        # two tasks dispatched (the bureau's, the street's): each granted exception is 1 of 2
        assert body["dispatched"] == 2
        shares = {k["kind"]: (k["granted"], k["refused"], k["share"]) for k in body["kinds"]}
        assert shares == {
            "return": (1, 0, 0.5),
            "extension": (1, 0, 0.5),
            "parking": (1, 0, 0.5),
            "cancellation": (0, 0, 0.0),
        }
        status, body = await district.get("/api/v1/kpis/exceptions?from=2026-11-28&to=2026-11-29")
        assert status == 200 and body["dispatched"] == 0
        assert {k["share"] for k in body["kinds"]} == {None}


async def test_the_street_desk_gets_a_refused_return_back_to_work_on(settings: Settings) -> None:
    async with (
        running(district_app(settings)) as district,
        running(street_app(settings)) as desk,
        Topics(settings) as t,
    ):
        bureau = await desk.as_role(Role.DEPARTMENT_OPERATOR, BUREAU)
        first = await dispatched(t, SMOKE, BUREAU)
        task_id, no = first["task_id"], first["case_no"]

        async def desk_state() -> str | None:
            status, body = await bureau.get(f"/api/v1/tasks/{task_id}")
            return body["state"] if status == 200 else None

        await wait_until(desk_state, "the task on the desk")
        back = {"action": "return", "actor": {"id": "op-1", "name": "值班员"}, "reason": "other"}
        status, body = await bureau.post(f"/api/v1/tasks/{task_id}/actions", back)
        assert status == 202, body
        assert await desk_state() == "returned"
        await wait_until(lambda: state_is(district, no, "returned"), "the return waiting")
        refuse = {"approve": False, "actor": "sup-1", "reason": "请继续办理"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", refuse)
        assert status == 200, body
        await wait_until(lambda: _is(desk_state, "open"), "the task open on the desk again")
        accept = {"action": "accept", "actor": {"id": "op-1", "name": "值班员"}}
        status, body = await bureau.post(f"/api/v1/tasks/{task_id}/actions", accept)
        assert status == 202, body
        await wait_until(lambda: state_is(district, no, "accepted"), "accepted at the district")


async def state_is(district: Service, case_no: str, state: str) -> bool:
    return bool((await case(district, case_no))["state"] == state)


async def _is(read: Callable[[], Awaitable[str | None]], want: str) -> bool:
    return await read() == want


async def test_a_refused_extension_and_a_cancellation_are_in_the_ledger(settings: Settings) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, SMOKE, BUREAU)
        no = first["case_no"]
        refuse = {
            "task_id": first["task_id"],
            "approve": False,
            "actor": "sup-1",
            "reason": "无正当理由",
        }
        status, body = await district.post(f"/api/v1/cases/{no}/extension", refuse)
        assert status == 200, body
        await returned(t, district, first, "invalid")
        cancel = {"actor": "sup-2", "reason": "重复诉求，作废"}
        status, body = await district.post(f"/api/v1/cases/{no}/reject", cancel)
        assert status == 200 and body["state"] == "rejected", body
        rows = await ledger(district)
        assert [(r["kind"], r["decision"], r["approver"], r["reason"]) for r in rows] == [
            ("cancellation", "approved", "sup-2", "重复诉求，作废"),
            ("extension", "refused", "sup-1", "无正当理由"),
        ]
        assert rows[0]["unit_code"] == BUREAU and rows[0]["task_id"] is None
        _, body = await district.get(f"/api/v1/kpis/exceptions?{PERIOD}")
        shares = {k["kind"]: (k["granted"], k["refused"], k["share"]) for k in body["kinds"]}
        # one task dispatched; the refused extension is counted beside, not in the share
        assert shares["extension"] == (0, 1, 0.0) and shares["cancellation"] == (1, 0, 1.0)
        assert shares["return"] == (0, 0, 0.0)  # the return itself was never decided
