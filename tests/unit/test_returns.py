"""The district decides returns (退单) and keeps a ledger; a joint case resolves with its lead.
Pure: the decisions on in-memory records, and each exception path's share."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.tasks import TaskFeedback, TaskKind, TaskReason, TaskRole
from services.district.cases.lifecycle import (
    CaseState,
    ExceptionDecision,
    ExceptionKind,
    TaskState,
)
from services.district.cases.model import Changes
from services.district.decisions.context import Refused
from services.district.kpis.exceptions import shares
from tests.unit.test_refusals import DECISIONS, DEPT, NOW, STREET, _case, _feedback


def _apply(case: Any, task: str, unit: str, action: str, **extra: Any) -> Changes:
    ch = Changes()
    fb = TaskFeedback.model_validate(_feedback(task, unit, action, **extra))
    DECISIONS.feedback.apply(case, fb, NOW, ch)
    return ch


def _told(ch: Changes) -> list[tuple[str, str, str | None]]:
    """(task id, kind, reason) of each task message in the change set."""
    bodies = [json.loads(m.value) for m in ch.outbox if m.topic.startswith("cityops.tasks.")]
    return [(b["task_id"], b["kind"], b.get("reason")) for b in bodies]


def test_a_return_waits_then_a_refusal_gives_the_task_back() -> None:
    case = _case(CaseState.ACCEPTED, TaskState.ACCEPTED, None)
    ch = _apply(case, "C-T1", STREET, "return", reason="not_our_territory")
    assert case.state is CaseState.RETURNED and len(case.tasks) == 1
    assert _told(ch) == [] and ch.exceptions == []  # no re-dispatch, nothing taken yet
    ch = Changes()
    DECISIONS.returns.decide(case, None, False, None, "sup", "属本街道", NOW, ch)
    assert case.state is CaseState.ACCEPTED and case.tasks[0].state is TaskState.ACCEPTED
    assert _told(ch) == [("C-T1", TaskKind.UPDATED, TaskReason.RETURN_REFUSED)]
    [row] = ch.exceptions
    assert (row.kind, row.decision, row.approver, row.reason, row.unit_code) == (
        ExceptionKind.RETURN,
        ExceptionDecision.REFUSED,
        "sup",
        "属本街道",
        STREET,
    )
    with pytest.raises(Refused):  # decided: nothing waits any more
        DECISIONS.returns.decide(case, None, True, None, "sup", "again", NOW, Changes())


def test_an_approved_return_goes_to_the_unit_named_and_is_acknowledged() -> None:
    case = _case(CaseState.DISPATCHED, TaskState.ASSIGNED, None)
    _apply(case, "C-T1", STREET, "return", reason="other")
    ch = Changes()
    DECISIONS.returns.decide(case, None, True, DEPT, "sup", "城管处置", NOW, ch)
    assert case.state is CaseState.DISPATCHED and case.tasks[-1].unit_code == DEPT
    assert _told(ch) == [
        ("C-T1", TaskKind.WITHDRAWN, TaskReason.RETURNED),
        ("C-T2", TaskKind.ASSIGNED, None),
    ]
    assert [r.decision for r in ch.exceptions] == [ExceptionDecision.APPROVED]


def test_a_joint_case_resolves_with_its_lead_and_withdraws_the_co_units() -> None:
    case = _case(CaseState.ACCEPTED, TaskState.ACCEPTED, TaskState.ACCEPTED)
    done = {"result": {"resolved": True, "summary": "已处置"}}
    ch = _apply(case, "C-T1", STREET, "resolve", **done)
    assert case.state is CaseState.RESOLVED
    assert case.tasks[1].state is TaskState.WITHDRAWN
    assert ("C-T2", TaskKind.WITHDRAWN, TaskReason.LEAD_RESOLVED) in _told(ch)
    late = _apply(case, "C-T2", DEPT, "resolve", **done)
    assert [e.type for e in late.events] == ["co_reported_late"]
    assert _told(late) == [] and case.state is CaseState.RESOLVED
    assert case.tasks[1].role is TaskRole.CO and case.tasks[1].state is TaskState.WITHDRAWN


def test_a_co_units_return_does_not_count_as_the_cases_return() -> None:
    """A co-unit handing its part back leaves the lead's routing as it was: the lead's first
    return still goes where routing suggests (a second would go to an operator)."""
    case = _case(CaseState.ACCEPTED, TaskState.ACCEPTED, TaskState.ACCEPTED)
    _apply(case, "C-T2", DEPT, "return", reason="not_our_duty")
    assert case.tasks[1].state is TaskState.RETURNED and case.state is CaseState.ACCEPTED
    assert case.returns == 0
    _apply(case, "C-T1", STREET, "return", reason="not_our_territory")
    assert case.returns == 1 and case.state is CaseState.RETURNED


def test_each_exception_share_is_granted_over_dispatched() -> None:
    counts = {
        ("return", "approved"): 2,
        ("return", "auto"): 1,
        ("return", "refused"): 4,
        ("parking", "approved"): 1,
    }
    got = {s["kind"]: (s["granted"], s["refused"], s["share"]) for s in shares(counts, 12)}
    assert got == {
        "return": (3, 4, 0.25),
        "extension": (0, 0, 0.0),
        "parking": (1, 0, 1 / 12),
        "cancellation": (0, 0, 0.0),
    }
    assert {s["share"] for s in shares(counts, 0)} == {None}
