"""CityOps message contracts: one pydantic model per message of contracts.md."""

from __future__ import annotations

from pydantic import BaseModel

from contracts.events import CaseEvent, DeadLetter
from contracts.hotline import Feedback, Reply, WorkOrder
from contracts.hotspots import Hotspot
from contracts.roadchief import Report
from contracts.tasks import Task, TaskFeedback

#: schema name -> model, for every message that crosses a topic.
MODELS: dict[str, type[BaseModel]] = {
    "hotline12345.workorder/v1": WorkOrder,
    "hotline12345.feedback/v1": Feedback,
    "hotline12345.reply/v1": Reply,
    "roadchief.report/v1": Report,
    "cityops.task/v1": Task,
    "cityops.task-feedback/v1": TaskFeedback,
    "cityops.case-event/v1": CaseEvent,
    "cityops.deadletter/v1": DeadLetter,
    "cityops.hotspot/v1": Hotspot,
}

__all__ = [
    "MODELS",
    "CaseEvent",
    "DeadLetter",
    "Feedback",
    "Hotspot",
    "Reply",
    "Report",
    "Task",
    "TaskFeedback",
    "WorkOrder",
]
