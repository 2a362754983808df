"""JSON Schema and AsyncAPI documents generated from the models (checked in, drift-tested)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts import MODELS, topics

SCHEMA_DIR = Path(__file__).parent / "schemas"

#: topic -> (schema name, direction, key) as contracts.md lists them.
CHANNELS: dict[str, tuple[str, str, str]] = {
    topics.WORKORDERS: ("hotline12345.workorder/v1", "in", "order_no"),
    topics.HOTLINE_FEEDBACK: ("hotline12345.feedback/v1", "in", "order_no"),
    topics.ROADCHIEF_REPORTS: ("roadchief.report/v1", "in", "report_id"),
    topics.REPLIES: ("hotline12345.reply/v1", "out", "order_no"),
    topics.TASKS_PREFIX + "{unit_code}": ("cityops.task/v1", "out", "case_no"),
    topics.TASK_FEEDBACK: ("cityops.task-feedback/v1", "in", "task_id"),
    topics.CASE_EVENTS: ("cityops.case-event/v1", "out", "case_no"),
    topics.DEADLETTER: ("cityops.deadletter/v1", "out", "source key"),
    topics.HOTSPOTS: ("cityops.hotspot/v1", "out", "hotspot_id"),
}


def schema_file(name: str) -> str:
    return name.replace("/", ".") + ".json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of each message."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema(by_alias=True)
        schema["$id"] = f"https://cityops.invalid/schemas/{schema_file(name)}"
        out[schema_file(name)] = schema
    return out


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for topic, (name, direction, key) in CHANNELS.items():
        operation = "subscribe" if direction == "out" else "publish"
        channels[topic] = {
            "description": f"{direction}bound; Kafka key: {key}",
            operation: {
                "message": {"name": name, "payload": {"$ref": f"schemas/{schema_file(name)}"}}
            },
        }
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "CityOps topics", "version": "1"},
        "channels": channels,
    }


def rendered() -> dict[str, str]:
    """Path relative to contracts/ -> the exact text that must be checked in."""
    files = {f"schemas/{n}": _dump(s) for n, s in json_schemas().items()}
    files["asyncapi.json"] = _dump(asyncapi())
    return files


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
