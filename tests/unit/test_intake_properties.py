"""Whatever arrives, the boundary answers with a valid command or a reason, never a crash:
garbage bytes, truncated JSON, random JSON values and mutated valid samples (wrong types,
unknown enum values, missing keys, absurd coordinates, future timestamps) on every feed."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts import topics
from contracts.tasks import Task
from services.district.intake.parse import _MODELS, CLOCK_SKEW, Command, Invalid, parse
from services.district.routing.geo import plausibility_error
from tests.support import samples

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FEEDBACK = {
    "schema": "cityops.task-feedback/v1",
    "feedback_id": "fb-1",
    "task_id": "310106-20261127-0000001-T1",
    "case_no": "310106-20261127-0000001",
    "unit_code": "310106-JSGL",
    "actor": {"id": "op-1", "name": "值班员"},
    "action": "resolve",
    "at": "2026-11-28T10:00:00+08:00",
    "result": {"resolved": True, "summary": "已处理"},
}
VALID: dict[str, list[dict[str, Any]]] = {
    topics.WORKORDERS: samples("hotline12345.workorders"),
    topics.ROADCHIEF_REPORTS: samples("roadchief.reports"),
    topics.HOTLINE_FEEDBACK: samples("hotline12345.feedback"),
    topics.TASK_FEEDBACK: [FEEDBACK],
}
TOPICS = st.sampled_from(sorted(VALID))
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
ABSURD_NUMBERS = st.sampled_from(
    # json.dumps writes nan and inf as NaN / Infinity, which JSON does not allow
    [0.0, -0.0, 1e308, -1e308, 181.0, -91.0, 31.2, 121.4, 1e-300, 2**63, math.nan, math.inf]
) | st.floats(allow_nan=False, allow_infinity=False)
FUTURE = st.integers(min_value=11, max_value=10_000_000).map(
    lambda minutes: (NOW + timedelta(minutes=minutes)).isoformat()
)
ODD_TEXT = st.sampled_from(["", "escalate", "URGENT", "2026-13-45", "🙂", "null", " " * 300])
ENUMS = {"action", "channel", "request_type", "urgency", "satisfaction", "crs", "reason"}
HYPOTHESIS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),  # CI repeats the same examples
)


def record(topic: str, raw: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, 7, 1_700_000_000_000, 0, b"k", raw, None, 1, len(raw), ())


def check(topic: str, raw: bytes) -> None:
    """The property: a valid Command for the topic, or Invalid with a kind and a detail."""
    try:
        cmd = parse(record(topic, raw), NOW)
    except Invalid as exc:
        assert exc.kind and exc.detail, (exc.kind, exc.detail)
        return
    assert isinstance(cmd, Command) and cmd.key
    assert isinstance(cmd.message, _MODELS[topic])
    location = getattr(cmd.message, "location", None)
    if location is not None:
        assert math.isfinite(location.lon) and math.isfinite(location.lat)
        assert plausibility_error(location.lon, location.lat) is None
    for name in ("sent_at", "reported_at", "visited_at", "at"):
        stamp = getattr(cmd.message, name, None)
        assert stamp is None or stamp <= NOW + CLOCK_SKEW


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key / index path inside a JSON value."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def mutate(value: Any, path: tuple[Any, ...], how: str, new: Any) -> Any:
    """A copy of `value` with the node at `path` deleted or replaced by `new`."""
    copy = json.loads(json.dumps(value))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return copy


@HYPOTHESIS
@given(TOPICS, st.binary(max_size=2000))
def test_garbage_bytes(topic: str, raw: bytes) -> None:
    check(topic, raw)


@HYPOTHESIS
@given(TOPICS, st.data())
def test_truncated_valid_json(topic: str, data: st.DataObject) -> None:
    raw = json.dumps(data.draw(st.sampled_from(VALID[topic])), ensure_ascii=False).encode()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    check(topic, raw[:cut])


@HYPOTHESIS
@given(TOPICS, JSON)
def test_random_json_values(topic: str, value: Any) -> None:
    check(topic, json.dumps(value).encode())


@HYPOTHESIS
@given(TOPICS, st.data())
def test_mutated_valid_samples(topic: str, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(VALID[topic]))
    path = data.draw(st.sampled_from(paths(sample)))
    leaf = path[-1]
    replacement = st.one_of(
        JSON,
        ABSURD_NUMBERS,
        FUTURE,
        ODD_TEXT if leaf in ENUMS else st.text(max_size=5),
    )
    how = data.draw(st.sampled_from(["delete", "replace"]))
    mutated = mutate(sample, path, how, data.draw(replacement))
    check(topic, json.dumps(mutated, ensure_ascii=False).encode())


@HYPOTHESIS
@given(TOPICS, st.data())
def test_several_mutations_at_once(topic: str, data: st.DataObject) -> None:
    value = data.draw(st.sampled_from(VALID[topic]))
    for _ in range(data.draw(st.integers(min_value=2, max_value=5))):
        found = paths(value)
        if not found:
            break
        path = data.draw(st.sampled_from(found))
        value = mutate(value, path, "replace", data.draw(JSON | ABSURD_NUMBERS | FUTURE))
    check(topic, json.dumps(value, ensure_ascii=False).encode())


@HYPOTHESIS
@given(st.sampled_from(sorted(VALID)), st.sampled_from(["lon", "lat"]), ABSURD_NUMBERS)
def test_absurd_coordinates(topic: str, axis: str, number: float) -> None:
    sample = next((s for s in VALID[topic] if s.get("location")), None)
    if sample is None:
        return
    check(topic, json.dumps(mutate(sample, ("location", axis), "replace", number)).encode())


def test_a_future_timestamp_is_refused_with_its_reason() -> None:
    order = {**VALID[topics.WORKORDERS][0], "sent_at": (NOW + timedelta(hours=1)).isoformat()}
    try:
        parse(record(topics.WORKORDERS, json.dumps(order).encode()), NOW)
    except Invalid as exc:
        assert exc.kind == "future_timestamp" and "sent_at" in exc.detail
    else:
        raise AssertionError("a future sent_at was accepted")


# -- the street platform's task parser ---------------------------------------------------------

TASK = {
    "schema": "cityops.task/v1",
    "task_id": "310106-20261127-0000001-T1",
    "case_no": "310106-20261127-0000001",
    "kind": "assigned",
    "role": "lead",
    "unit_code": "310106-JSGL",
    "deadlines": {
        "accept_by": "2026-11-27T11:00:00+08:00",
        "first_contact_by": "2026-11-28T11:00:00+08:00",
        "resolve_by": "2026-12-04T11:00:00+08:00",
    },
    "dispatched_at": "2026-11-27T10:00:00+08:00",
    "note": "",
    "case": {
        "source": "hotline12345",
        "source_ref": "HL1",
        "category_code": "01",
        "category_name": "井盖缺损",
        "title": "井盖缺损",
        "description": "",
        "address": "静安区",
        "urgency": "critical",
        "reporters": 1,
        "district_code": "310106",
    },
}


def street_check(raw: bytes) -> None:
    """The street consumer's boundary: a Task or a ValidationError (dead-lettered), nothing
    else."""
    try:
        task = Task.model_validate_json(raw)
    except ValidationError:
        return
    assert task.task_id and task.case_no


def test_the_task_sample_is_valid() -> None:
    Task.model_validate_json(json.dumps(TASK))


@HYPOTHESIS
@given(st.binary(max_size=2000) | JSON.map(lambda v: json.dumps(v).encode()))
def test_street_task_parser_on_garbage(raw: bytes) -> None:
    street_check(raw)


@HYPOTHESIS
@given(st.data())
def test_street_task_parser_on_mutated_tasks(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(TASK)))
    how = data.draw(st.sampled_from(["delete", "replace"]))
    mutated = mutate(TASK, path, how, data.draw(JSON | ABSURD_NUMBERS | FUTURE | ODD_TEXT))
    raw = json.dumps(mutated, ensure_ascii=False).encode()
    street_check(raw[: data.draw(st.integers(min_value=1, max_value=len(raw)))])
