"""Parsing inbound records: every kind of bad input gets a precise reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from contracts import topics
from services.district.intake.parse import MAX_MESSAGE_BYTES, Invalid, parse
from tests.support import samples

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def record(value: bytes | dict[str, Any], topic: str = topics.WORKORDERS) -> ConsumerRecord:
    raw = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()
    return ConsumerRecord(topic, 0, 42, 1_700_000_000_000, 0, b"k", raw, None, 1, len(raw), ())


ORDER = samples("hotline12345.workorders")[0]


def test_a_valid_order_becomes_a_command_with_its_idempotency_key() -> None:
    cmd = parse(record(ORDER), NOW)
    assert cmd.key == "wo:HL2026112700123:dispatch:1" and cmd.opens_case
    assert cmd.feed == "hotline12345" and cmd.origin_ms == 1_700_000_000_000


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b'{"schema": "hotline12345.workorder/v1", "order_no"', "not_json"),
        (b"\xff\xfe\x00garbage", "not_utf8"),
        (b"[1, 2, 3]", "not_object"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "oversized"),
        ({**ORDER, "revision": "one"}, "schema"),
        ({**ORDER, "urgency": "extreme"}, "schema"),
        ({k: v for k, v in ORDER.items() if k != "order_no"}, "schema"),
        ({**ORDER, "schema": "hotline12345.workorder/v2"}, "schema"),
        ({**ORDER, "location": {"lon": 0, "lat": 0, "crs": "wgs84"}}, "bad_location"),
        ({**ORDER, "location": {"lon": 31.2, "lat": 121.4, "crs": "wgs84"}}, "schema"),
        ({**ORDER, "location": {"lon": 2.35, "lat": 48.85, "crs": "wgs84"}}, "bad_location"),
        ({**ORDER, "location": {"lon": 121.4, "lat": 31.2, "crs": "bd09"}}, "schema"),
        ({**ORDER, "sent_at": (NOW + timedelta(days=2)).isoformat()}, "future_timestamp"),
    ],
)
def test_bad_input_is_invalid_with_a_reason(value: bytes | dict[str, Any], kind: str) -> None:
    with pytest.raises(Invalid) as info:
        parse(record(value), NOW)
    assert info.value.kind == kind and info.value.detail


def test_swapped_coordinates_inside_lat_range_are_named() -> None:
    swapped = {**ORDER, "location": {"lon": 31.2, "lat": 80.0, "crs": "wgs84"}}
    with pytest.raises(Invalid) as info:
        parse(record(swapped), NOW)
    assert info.value.kind == "bad_location"


def test_idempotency_keys_per_feed() -> None:
    report = samples("roadchief.reports")[0]
    assert parse(record(report, topics.ROADCHIEF_REPORTS), NOW).key == f"rc:{report['report_id']}"
    fb = samples("hotline12345.feedback")[0]
    assert parse(record(fb, topics.HOTLINE_FEEDBACK), NOW).key.startswith("hf:HL2026112700125:")


def test_phone_numbers_in_free_text_are_masked_and_the_rest_kept() -> None:
    order = {
        **ORDER,
        "content": "楼上漏水，请联系物业 139 1234 5678 或 (021) 6666-7777，门牌 1280 号",
        "note": "来电人手机13800001234",
    }
    cmd = parse(record(order), NOW)
    assert cmd.message.content == "楼上漏水，请联系物业 139****5678 或 021****7777，门牌 1280 号"
    assert cmd.message.note == "来电人手机138****1234"
    assert cmd.message.address == ORDER["address"]
    untouched = parse(record(ORDER), NOW).message
    assert untouched.content == ORDER["content"]


def test_a_units_summary_and_note_are_masked() -> None:
    feedback = {
        "schema": "cityops.task-feedback/v1",
        "feedback_id": "F-1",
        "unit_code": "310106-JSGL",
        "task_id": "T-1",
        "case_no": "C-1",
        "action": "resolve",
        "at": NOW.isoformat(),
        "actor": {"id": "op-1", "name": "值班员"},
        "note": "回电 13912345678",
        "result": {"resolved": True, "summary": "已联系业主 139-1234-5678 处理"},
    }
    message = parse(record(feedback, topics.TASK_FEEDBACK), NOW).message
    assert message.note == "回电 139****5678"
    assert message.result.summary == "已联系业主 139****5678 处理"
