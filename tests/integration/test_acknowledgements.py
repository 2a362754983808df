"""The unit's platform learns that the district has taken its return or escalation: a
`withdrawn` task message with the reason, on the unit's own topic."""

from __future__ import annotations

from datetime import datetime

from contracts import topics
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import create_app as district_app
from tests.support import Topics, case_record, dispatched, running, task_feedback, wait_until

FRIDAY_10AM = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
BUREAU, STREET = "310106-STHJ", "310106012000"


async def test_a_return_and_an_escalation_are_acknowledged_with_withdrawn(
    settings: Settings,
) -> None:
    clock = FakeClock(FRIDAY_10AM)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        first = await dispatched(t, "HL2026112700123", BUREAU)  # 油烟: the ecology bureau
        back = task_feedback(first, "return", clock.now(), reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, first["task_id"], back)
        no = first["case_no"]

        async def waiting() -> bool:
            return (await case_record(district, no))["state"] == "returned"

        # the district takes the return when it approves it (tests/integration/test_exceptions.py)
        await wait_until(waiting, "the return waiting for a decision")
        decision = {"approve": True, "actor": "sup-1", "reason": "同意退单"}
        status, body = await district.post(f"/api/v1/cases/{no}/return-decision", decision)
        assert status == 200, body
        [ack] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "withdrawn", "return acknowledged"
        )
        assert ack["task_id"] == first["task_id"] and ack["reason"] == "returned"
        [second] = await t.wait_for(
            topics.task_topic(STREET), lambda m: m["kind"] == "assigned", "re-dispatched"
        )
        up = task_feedback(second, "escalate", clock.now(), note="需执法配合", co_units=[BUREAU])
        await t.publish(topics.TASK_FEEDBACK, second["task_id"], up)
        [ack] = await t.wait_for(
            topics.task_topic(STREET), lambda m: m["kind"] == "withdrawn", "escalation taken"
        )
        assert ack["task_id"] == second["task_id"] and ack["reason"] == "escalated"
