"""Topic names: part of the external contract."""

from __future__ import annotations

WORKORDERS = "upstream.hotline12345.workorders"
HOTLINE_FEEDBACK = "upstream.hotline12345.feedback"
ROADCHIEF_REPORTS = "upstream.roadchief.reports"
REPLIES = "upstream.hotline12345.replies"
TASK_FEEDBACK = "cityops.task-feedback"
CASE_EVENTS = "cityops.case-events"
DEADLETTER = "cityops.deadletter"
HOTSPOTS = "cityops.hotspots"
TASKS_PREFIX = "cityops.tasks."

INBOUND = (WORKORDERS, HOTLINE_FEEDBACK, ROADCHIEF_REPORTS, TASK_FEEDBACK)


def task_topic(unit_code: str) -> str:
    return f"{TASKS_PREFIX}{unit_code}"
