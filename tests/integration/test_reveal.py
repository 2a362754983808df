"""Revealing a caller's phone: never for an anonymous caller or one who asked for no call-back
(403 with the reason), a unit for its own unit only, a district supervisor with a reason
(recorded), nobody else; an anonymous caller's name masked everywhere."""

from __future__ import annotations

from contracts import topics
from services.common.auth import Role
from services.common.config import Settings
from services.district.app import create_app as district_app
from tests.support import ORDERS, Topics, dispatched, running
from tests.support import case_record as case

NOISE, JSGL = "HL2026112700124", "310106-JSGL"  # an anonymous caller (施工扰民)
SMOKE, STHJ = "HL2026112700123", "310106-STHJ"


async def test_reveal_refused_for_anonymous_and_no_callback(settings: Settings) -> None:
    async with running(district_app(settings)) as sup, Topics(settings) as t:
        anonymous = await dispatched(t, NOISE, JSGL)
        quiet = {**ORDERS[SMOKE], "caller": {**ORDERS[SMOKE]["caller"], "callback": False}}
        await t.publish(topics.WORKORDERS, SMOKE, quiet)
        [no_callback] = await t.wait_for(
            topics.task_topic(STHJ), lambda m: m["case"]["source_ref"] == SMOKE, "task"
        )
        jsgl = await sup.as_role(Role.DEPARTMENT_OPERATOR, JSGL)
        sthj = await sup.as_role(Role.DEPARTMENT_OPERATOR, STHJ)
        ask = {"actor": "op-1", "reason": "回访"}
        for who, task, why in (
            (jsgl, anonymous, "anonymous"),
            (sup, anonymous, "anonymous"),
            (sthj, no_callback, "no call-back"),
            (sup, no_callback, "no call-back"),
        ):
            status, body = await who.post(f"/api/v1/cases/{task['case_no']}/reveal-phone", ask)
            assert (status, body["error"]) == (403, "withheld"), body
            assert why in body["detail"]
        detail = await case(sup, anonymous["case_no"])
        assert detail["caller_name"] == "匿名" and detail["caller_anonymous"] is True
        assert not [e for e in detail["timeline"] if e["type"] == "phone_revealed"]


async def test_a_supervisor_reveals_with_a_reason_and_others_may_not(settings: Settings) -> None:
    async with running(district_app(settings)) as sup, Topics(settings) as t:
        task = await dispatched(t, SMOKE, STHJ)
        path = f"/api/v1/cases/{task['case_no']}/reveal-phone"
        for role in (Role.DISTRICT_OPERATOR, Role.AUDITOR):
            who = await sup.as_role(role)
            status, body = await who.post(path, {"actor": "x", "reason": "想问问"})
            assert (status, body["error"]) == (403, "forbidden"), body
        status, body = await sup.post(path, {"actor": "sup-1"})
        assert (status, body["error"]) == (409, "refused"), body
        street = await sup.as_role(Role.STREET_OPERATOR, "310106015000")
        status, body = await street.post(path, {"actor": "s", "unit_code": STHJ, "reason": "r"})
        assert (status, body["error"]) == (403, "forbidden"), body
        status, body = await sup.post(path, {"actor": "sup-1", "reason": "市民投诉升级，需核实"})
        assert status == 200 and body["phone"] == "13800000001", body
        [event] = [
            e
            for e in (await case(sup, task["case_no"]))["timeline"]
            if e["type"] == "phone_revealed"
        ]
        assert event["data"]["role"] == "district_supervisor"
        assert event["data"]["reason"] == "市民投诉升级，需核实" and event["actor"] == "sup-1"
