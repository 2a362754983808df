"""A 12345 supplement's decisions (decisions/supplement.py), without I/O: what it changes, and
where a new place takes a case (another owner, outside the district, a finished case)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import topics
from contracts.common import Urgency
from contracts.hotline import WorkOrder
from contracts.tasks import TaskRole
from services.common.config import ROOT
from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.cases.lifecycle import CaseState, TaskState
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.policy_file import default_policy
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.decisions.supplement import changes
from services.district.routing.reference import load_csv
from tests.support import ORDERS

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # Friday 11:00 in Shanghai
ORDER_NO, STREET = "HL2026112700126", "310106012000"  # 非机动车乱停放: territorial
DECISIONS = Decisions(
    Context(
        load_csv(ROOT / "deploy" / "reference", "310106"),
        default_policy().calendar(),
        default_policy(),
        PhoneVault(bytes(32)),
        Metrics(),
    )
)


def _case(state: CaseState = CaseState.ACCEPTED) -> CaseRec:
    order = ORDERS[ORDER_NO]
    case = CaseRec(
        *("C", "310106", "hotline12345", ORDER_NO, state, "0203", "非机动车乱停放"),
        Urgency.NORMAL,
        *(order["title"], order["content"], order["address"], NOW, NOW),
        street_code=STREET,
        request_type="complaint",
        lon=121.45309,
        lat=31.22692,
    )
    case.tasks.append(
        TaskRec(
            *("C-T1", "C", "310106", STREET, TaskRole.LEAD, TaskState.ACCEPTED, NOW),
            accept_by=NOW + timedelta(hours=1),
            first_contact_by=NOW + timedelta(days=1),
            resolve_by=NOW + timedelta(days=7),
            accepted_at=NOW,
        )
    )
    return case


def _order(**fields: Any) -> WorkOrder:
    raw = {**ORDERS[ORDER_NO], "action": "supplement", "revision": 2, **fields}
    return WorkOrder.model_validate(raw)


def test_only_what_differs_is_a_change_and_what_is_not_carried_stays() -> None:
    case = _case()
    assert changes(case, _order(location=None)) == {}
    found = changes(case, _order(content="新内容", location=None))
    assert found == {"content": (case.description, "新内容")}


def test_a_place_far_outside_the_district_is_not_ours_and_the_task_withdrawn() -> None:
    case, ch = _case(), Changes()
    xuhui = {"lon": 121.43676, "lat": 31.19478, "crs": "wgs84"}  # 漕溪北路, 徐汇区
    DECISIONS.upstream.supplement.apply(case, _order(location=xuhui), NOW, ch)
    assert case.state is CaseState.NOT_OURS
    assert case.tasks[0].state is TaskState.WITHDRAWN
    sent = [(m.topic, json.loads(m.value)) for m in ch.outbox]
    kinds = [(topic, v.get("kind"), v.get("reason")) for topic, v in sent]
    assert (topics.task_topic(STREET), "withdrawn", "rerouted") in kinds
    assert (topics.REPLIES, "not_our_district", None) in kinds
    assert [e.type for e in ch.events] == ["supplemented", "rerouted", "not_ours"]


def test_a_resolved_case_takes_the_new_place_without_re_routing() -> None:
    case, ch = _case(CaseState.RESOLVED), Changes()
    linfen = {"lon": 121.45702, "lat": 31.31176, "crs": "wgs84"}
    DECISIONS.upstream.supplement.apply(case, _order(location=linfen), NOW, ch)
    assert case.state is CaseState.RESOLVED and case.street_code == "310106021000"
    assert [e.type for e in ch.events] == ["supplemented"]


def test_a_finished_case_records_the_supplement_and_changes_nothing() -> None:
    case, ch = _case(CaseState.CLOSED), Changes()
    DECISIONS.upstream.supplement.apply(case, _order(content="新内容"), NOW, ch)
    assert case.state is CaseState.CLOSED and case.description == ORDERS[ORDER_NO]["content"]
    [event] = ch.events
    assert event.type == "supplement_not_applied" and event.data["state"] == "closed"
    assert not ch.tasks and [m.topic for m in ch.outbox] == [topics.CASE_EVENTS]


def _as_dispatched() -> tuple[CaseRec, TaskRec]:
    """A case whose task holds the deadlines it was given at dispatch (not yet accepted)."""
    case = _case(CaseState.DISPATCHED)
    task = case.tasks[0]
    task.state, task.accepted_at = TaskState.ASSIGNED, None
    given = DECISIONS.dispatch.recomputed(case, task, task.dispatched_at, None)
    task.accept_by, task.resolve_by = given.accept_by, given.resolve_by
    task.first_contact_by = given.first_contact_by
    return case, task


def test_a_new_due_time_keeps_an_approved_extension_and_caps_it_while_ahead() -> None:
    case, task = _as_dispatched()
    policy_resolve, accept = task.resolve_by, task.accept_by
    task.resolve_by = extended = policy_resolve + timedelta(days=10)  # an approved extension
    later = NOW + timedelta(days=30)
    DECISIONS.upstream.supplement.apply(
        case, _order(due_at=later.isoformat(), location=None), NOW, Changes()
    )
    assert task.resolve_by == extended  # not back to the policy's 5 WD
    assert task.accept_by == accept  # unmoved, and the due time is far ahead: the policy's
    sooner = NOW + timedelta(days=3)
    DECISIONS.upstream.supplement.apply(
        case, _order(due_at=sooner.isoformat(), location=None), NOW, Changes()
    )
    assert task.resolve_by == sooner  # the extension, capped by the new due time


def test_a_new_due_time_moves_a_deadline_still_as_given() -> None:
    case, task = _as_dispatched()
    sooner = NOW + timedelta(hours=20)
    DECISIONS.upstream.supplement.apply(
        case, _order(due_at=sooner.isoformat(), location=None), NOW, Changes()
    )
    assert task.resolve_by == sooner and case.resolve_by == sooner
