"""The contracts: samples validate, checked-in schemas match the models, masking works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.asyncapi import rendered
from contracts.common import mask_phone
from contracts.hotline import Feedback, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import TaskFeedback
from tests.support import samples

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_checked_in_schemas_match_the_models() -> None:
    for rel, text in rendered().items():
        path = CONTRACTS / rel
        assert path.exists(), f"{rel} missing: run `make schemas`"
        assert path.read_text(encoding="utf-8") == text, f"{rel} drifted: run `make schemas`"
    on_disk = {f"schemas/{p.name}" for p in (CONTRACTS / "schemas").glob("*.json")}
    assert on_disk == {k for k in rendered() if k.startswith("schemas/")}, "stale schema files"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("hotline12345.workorders", WorkOrder),
        ("hotline12345.feedback", Feedback),
        ("roadchief.reports", Report),
    ],
)
def test_every_sample_validates(name: str, model: type) -> None:
    for sample in samples(name):
        model.model_validate(sample)


def test_naive_timestamps_are_refused() -> None:
    order = {**samples("hotline12345.workorders")[0], "sent_at": "2026-11-27T09:20:11"}
    with pytest.raises(ValidationError, match="offset"):
        WorkOrder.model_validate(order)


def test_unknown_enum_values_are_refused() -> None:
    order = {**samples("hotline12345.workorders")[0], "channel": "fax"}
    with pytest.raises(ValidationError, match="channel"):
        WorkOrder.model_validate(order)


def test_fields_added_later_are_tolerated() -> None:
    order = {**samples("hotline12345.workorders")[0], "new_field": 1}
    assert WorkOrder.model_validate(order).order_no == "HL2026112700123"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800001234", "138****1234"),
        ("138-0000-1234", "138****1234"),
        ("02100000005", "021****0005"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_feedback_reopens_only_when_dissatisfied_or_unresolved() -> None:
    satisfied, dissatisfied = (Feedback.model_validate(s) for s in samples("hotline12345.feedback"))
    assert not satisfied.reopens and dissatisfied.reopens
    unreachable = satisfied.model_copy(update={"satisfaction": "unreachable", "resolved": False})
    assert not unreachable.reopens


def test_task_feedback_names_the_field_an_action_lacks() -> None:
    base = {
        "schema": "cityops.task-feedback/v1",
        "feedback_id": "f",
        "task_id": "t",
        "case_no": "c",
        "unit_code": "u",
        "actor": {"id": "a"},
        "at": "2026-11-27T10:00:00+08:00",
    }
    assert TaskFeedback.model_validate({**base, "action": "return"}).missing_field() == "reason"
    assert TaskFeedback.model_validate({**base, "action": "resolve"}).missing_field() == "result"
    assert TaskFeedback.model_validate({**base, "action": "accept"}).missing_field() is None
    json.dumps(base)
