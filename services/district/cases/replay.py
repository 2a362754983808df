"""Rebuild a case's state from its events alone (全过程记录 can be replayed). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.tasks import TaskRole
from services.district.cases.lifecycle import CaseState, Event, next_state


@dataclass
class Replayed:
    case_no: str
    state: CaseState | None = None
    seq: int = 0
    supervised: bool = False
    resolve_by: datetime | None = None
    #: task id -> unit code, in dispatch order, with its role
    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)


def replay(events: Iterable[Mapping[str, Any]]) -> Replayed:
    """Fold events in `seq` order; every transition is checked against the state machine, so
    a record that could not have happened raises IllegalTransition."""
    out: Replayed | None = None
    for e in events:
        out = out or Replayed(e["case_no"])
        if e["seq"] != out.seq + 1:
            raise ValueError(f"{out.case_no}: event {e['seq']} follows {out.seq} (gap)")
        out.seq = e["seq"]
        _apply(out, e)
    if out is None:
        raise ValueError("no events")
    return out


def _apply(out: Replayed, e: Mapping[str, Any]) -> None:
    data = e["data"] or {}
    try:
        event = Event(e["type"])
    except ValueError:
        event = None  # a record without a transition (co-unit reports, lead resolved)
    if event is not None:
        target = CaseState(e["to_state"])
        after = next_state(out.state, event, target)
        if after is not target:
            raise ValueError(f"{out.case_no}#{e['seq']}: {event} gives {after}, record {target}")
        out.state = after
    if "task_id" in data and "role" in data:
        out.tasks[data["task_id"]] = (e["unit_code"], data["role"])
    after_deadlines = data.get("deadlines_after")
    supervising = event is Event.SUPERVISED  # a new deadline for the task, not the case
    if after_deadlines and data.get("role", TaskRole.LEAD) == TaskRole.LEAD and not supervising:
        out.resolve_by = datetime.fromisoformat(after_deadlines["resolve_by"])
    if event is Event.SUPERVISED:
        out.supervised = True
