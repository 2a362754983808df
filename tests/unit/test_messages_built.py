"""Outgoing messages are built without validation (services/district/cases/messages.py): each
one the decisions make must still read back, under its contract, as exactly what was sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from contracts import topics
from contracts.events import CaseEvent
from contracts.hotline import Reply
from contracts.tasks import Task
from services.district.intake.batch import WorkingSet
from services.district.intake.parse import parse
from tests.support import ORDERS
from tests.unit.test_refusals import INTAKE

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def _contract(topic: str) -> type[BaseModel]:
    if topic.startswith(topics.TASKS_PREFIX):
        return Task
    return {topics.CASE_EVENTS: CaseEvent, topics.REPLIES: Reply}[topic]


@pytest.mark.parametrize("order_no", sorted(ORDERS))
def test_each_message_of_an_opening_reads_back_as_sent(order_no: str) -> None:
    raw = json.dumps(ORDERS[order_no], ensure_ascii=False).encode()
    record = ConsumerRecord(topics.WORKORDERS, 0, 7, 1, 0, b"k", raw, None, 1, len(raw), ())
    batch = WorkingSet(numbers=iter([1]))
    INTAKE.decide(batch, [(record, parse(record, NOW))], NOW)
    sent = batch.changes.outbox
    assert {m.topic for m in sent} >= {topics.CASE_EVENTS}, "an opening publishes its events"
    for m in sent:
        model = _contract(m.topic).model_validate_json(m.value)
        assert model.model_dump_json(by_alias=True).encode() == m.value, m.topic
        assert json.loads(m.value)["schema"] == model.model_dump(by_alias=True)["schema"]
