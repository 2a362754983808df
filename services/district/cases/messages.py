"""Outgoing messages built from case records: tasks, replies upstream, case events.

Each is encoded once, straight from the records (field by field, in the contract's order, with
pydantic's own JSON encoder), with no model built: the records are the service's own, typed and
validated where they came in, and building a model (validated or not) cost several times its
encoding. tests/unit/test_messages_built.py checks that every kind reads back under its
contract as exactly what was sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from contracts import topics
from contracts.common import ANONYMOUS
from contracts.events import CaseEvent
from contracts.hotline import Reply, ReplyKind
from contracts.tasks import Task, TaskKind, TaskReason
from services.common.outbox import OutMessage
from services.district.cases.model import CaseRec, EventRec, TaskRec


def _schema(model: type[BaseModel]) -> str:
    value = model.model_fields["schema_"].default
    assert isinstance(value, str)
    return value


TASK, REPLY, CASE_EVENT = _schema(Task), _schema(Reply), _schema(CaseEvent)


def snapshot(case: CaseRec) -> dict[str, Any]:
    """The case as a task shows it (`contracts.tasks.CaseSnapshot`)."""
    location = None
    if case.lon is not None and case.lat is not None:
        location = {"lon": case.lon, "lat": case.lat, "crs": "wgs84"}
    caller = None
    if case.caller_name is not None:
        caller = {
            "name": ANONYMOUS if case.caller_anonymous else case.caller_name,
            "phone_masked": case.caller_phone_masked or "",
            "anonymous": case.caller_anonymous,
            "callback": case.caller_callback,
        }
    return {
        "source": case.source,
        "source_ref": case.source_ref,
        "category_code": case.category_code,
        "category_name": case.category_name,
        "title": case.title,
        "description": case.description,
        "address": case.address,
        "location": location,
        "urgency": case.urgency,
        "request_type": case.request_type,
        "reporters": case.reporters,
        "caller": caller,
        "street_code": case.street_code,
        "district_code": case.district_code,
    }


def task_message(
    case: CaseRec,
    task: TaskRec,
    kind: TaskKind,
    note: str = "",
    origin_ms: int | None = None,
    reason: TaskReason | None = None,
) -> OutMessage:
    msg = {
        "schema": TASK,
        "task_id": task.task_id,
        "case_no": case.case_no,
        "kind": kind,
        "role": task.role,
        "unit_code": task.unit_code,
        "deadlines": {
            "accept_by": task.accept_by,
            "first_contact_by": task.first_contact_by,
            "resolve_by": task.resolve_by,
        },
        "dispatched_at": task.dispatched_at,
        "note": note,
        "reason": reason,
        "case": snapshot(case),
    }
    return _out(topics.task_topic(task.unit_code), case.case_no, msg, origin_ms)


def reply_message(
    case: CaseRec,
    event: EventRec,
    kind: ReplyKind,
    unit_code: str,
    unit_name: str,
    text: str,
    order_no: str | None = None,
) -> OutMessage:
    """A reply to the case's order, or to `order_no` (a duplicate order merged into it)."""
    own = order_no is None or order_no == case.source_ref
    order_no = order_no or case.source_ref
    msg = {
        "schema": REPLY,
        "reply_id": f"{case.case_no}:{event.seq}:{kind}" + ("" if own else f":{order_no}"),
        "order_no": order_no,
        "case_no": case.case_no,
        "kind": kind,
        "at": event.at,
        "unit_code": unit_code,
        "unit_name": unit_name,
        "text": text,
    }
    return _out(topics.REPLIES, order_no, msg)


def event_message(event: EventRec) -> OutMessage:
    msg = {
        "schema": CASE_EVENT,
        "event_id": event.event_id,
        "case_no": event.case_no,
        "seq": event.seq,
        "type": event.type,
        "at": event.at,
        "actor": event.actor,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "unit_code": event.unit_code,
        "district_code": event.district_code,
        "data": event.data,
    }
    return _out(topics.CASE_EVENTS, event.case_no, msg)


def _out(topic: str, key: str, msg: dict[str, Any], origin_ms: int | None = None) -> OutMessage:
    return OutMessage(topic, key.encode(), to_json(msg), origin_ms)
