"""Refused input leaves nothing but its refusal: for every case state, every task state and
every input a case can receive, when the intake refuses the input the batch's changes are
exactly the dead letter and its counter, and the case and its tasks are as they were."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from contracts import topics
from contracts.common import Urgency
from contracts.tasks import TaskRole
from services.common.config import ROOT
from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.cases.lifecycle import CaseState, TaskState
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.policy_file import default_policy
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.intake.batch import WorkingSet
from services.district.intake.handler import Intake
from services.district.intake.parse import parse
from services.district.routing.reference import load_csv
from tests.support import ORDERS

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # Saturday noon in Shanghai
T0 = NOW - timedelta(days=1)
ORDER_NO, STREET, DEPT = "HL2026112700124", "310106011000", "310106-CGZF"
METRICS = Metrics()
REF = load_csv(ROOT / "deploy" / "reference", "310106")
DECISIONS = Decisions(
    Context(REF, default_policy().calendar(), default_policy(), PhoneVault(bytes(32)), METRICS)
)
INTAKE = Intake(None, DECISIONS, METRICS, "310106")  # type: ignore[arg-type]  # no I/O here


def _task(n: int, unit: str, role: TaskRole, state: TaskState) -> TaskRec:
    return TaskRec(
        f"C-T{n}",
        "C",
        "310106",
        unit,
        role,
        state,
        T0,
        accept_by=T0 + timedelta(hours=1),
        first_contact_by=T0 + timedelta(hours=5),
        resolve_by=T0 + timedelta(days=5),
        accepted_at=None if state is TaskState.ASSIGNED else T0,
    )


def _case(state: CaseState, lead: TaskState, co: TaskState | None) -> CaseRec:
    case = CaseRec(
        *("C", "310106", "hotline12345", ORDER_NO, state, "0102", "暴露垃圾", Urgency.NORMAL),
        *("title", "description", "address", T0, T0),
        street_code=STREET,
        request_type="complaint",
        last_seq=3,
    )
    case.tasks.append(_task(1, STREET, TaskRole.LEAD, lead))
    if co is not None:
        case.tasks.append(_task(2, DEPT, TaskRole.CO, co))
    case.counted = case.gauge_key()
    return case


def _record(topic: str, value: dict[str, Any]) -> ConsumerRecord[bytes, bytes]:
    raw = json.dumps(value, ensure_ascii=False).encode()
    return ConsumerRecord(topic, 0, 7, 1, 0, b"k", raw, None, 1, len(raw), ())


def _feedback(task: str, unit: str, action: str, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "cityops.task-feedback/v1",
        "feedback_id": f"fb-{task}-{action}",
        **{"task_id": task, "case_no": "C", "unit_code": unit, "action": action},
        "actor": {"id": "op", "name": "值班员"},
        "at": T0.isoformat(),
        **extra,
    }


def _inputs() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every input a case can receive: 12345's later actions, follow-ups, unit feedback."""
    for action in ("supplement", "urge", "reopen", "withdraw"):
        yield topics.WORKORDERS, {**ORDERS[ORDER_NO], "action": action, "revision": 2}
    for satisfaction in ("satisfied", "dissatisfied", "unreachable"):
        visit = {"order_no": ORDER_NO, "visited_at": T0.isoformat(), "resolved": True}
        yield (
            topics.HOTLINE_FEEDBACK,
            {
                "schema": "hotline12345.feedback/v1",
                **visit,
                "satisfaction": satisfaction,
            },
        )
    extra: dict[str, dict[str, Any]] = {
        "return": {"reason": "not_our_duty"},
        "resolve": {"result": {"resolved": True, "summary": "done"}},
        "request_extension": {"requested_until": (T0 + timedelta(days=9)).isoformat()},
        "escalate": {"co_units": [DEPT]},
    }
    for task, unit in (("C-T1", STREET), ("C-T2", DEPT), ("C-T1", DEPT)):
        for action in ("accept", "contact", "progress", "resolve", "return", "escalate"):
            yield topics.TASK_FEEDBACK, _feedback(task, unit, action, **extra.get(action, {}))
        yield (
            topics.TASK_FEEDBACK,
            _feedback(task, unit, "request_extension", **extra["request_extension"]),
        )


def _changed(ch: Changes) -> dict[str, Any]:
    """Every field of the change set that is not empty."""
    return {f.name: v for f in fields(ch) if (v := getattr(ch, f.name)) not in ([], {}, None)}


CO_STATES: list[TaskState | None] = [None, *TaskState]


@pytest.mark.parametrize("state", list(CaseState))
def test_a_refused_input_leaves_only_its_refusal(state: CaseState) -> None:
    refused = 0
    for lead in TaskState:
        for co in CO_STATES:
            for topic, value in _inputs():
                case = _case(state, lead, co)
                before = copy.deepcopy(case)
                batch = WorkingSet()
                batch.add(case)
                INTAKE._apply(
                    batch, _record(topic, value), parse(_record(topic, value), NOW), NOW, iter(())
                )
                [(_, outcome)] = batch.outcomes
                if outcome != "refused":
                    continue
                refused += 1
                where = f"{state}/{lead}/{co}: {value.get('action', value.get('satisfaction'))}"
                changed = _changed(batch.changes)
                assert set(changed) == {"outbox", "after_commit"}, where
                [letter] = batch.changes.outbox
                assert letter.topic == topics.DEADLETTER, where
                assert len(batch.changes.after_commit) == 1, where  # the dead-letter counter
                assert case == before, where
    assert refused > 0


def test_a_reopen_for_a_dispatched_case_leaves_no_orphan_task() -> None:
    case = _case(CaseState.DISPATCHED, TaskState.ASSIGNED, None)
    batch = WorkingSet()
    batch.add(case)
    reopen = _record(topics.WORKORDERS, {**ORDERS[ORDER_NO], "action": "reopen", "revision": 2})
    INTAKE._apply(batch, reopen, parse(reopen, NOW), NOW, iter(()))
    assert batch.outcomes == [("hotline12345", "refused")]
    assert [t.task_id for t in case.tasks] == ["C-T1"] and case.revision == 1
    assert not batch.changes.new_tasks and not batch.changes.timers
