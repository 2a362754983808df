"""What the parties around the district saw of the simulated month: every task message a
unit received, every case event, reply and dead letter, read from the messages the district
committed to its outbox (what Kafka would have carried). Pure: no I/O."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from contracts import topics
from contracts.events import CaseEvent, DeadLetter
from contracts.hotline import Reply
from contracts.tasks import Deadlines, Task, TaskKind, TaskReason, TaskRole

#: the stages of a task and the deadline each reads
STAGES = ("accept", "first_contact", "resolve")
_CASE_OR_TASK = re.compile(r"\d{6}-\d{8}-\d+(-T\d+)?")


def deadline_of(deadlines: Deadlines, stage: str) -> datetime | None:
    return {
        "accept": deadlines.accept_by,
        "first_contact": deadlines.first_contact_by,
        "resolve": deadlines.resolve_by,
    }[stage]


@dataclass
class TaskSeen:
    """One task as its unit saw it: born with deadlines, changed by later messages."""

    task_id: str
    case_no: str
    unit_code: str
    role: TaskRole
    source: str
    callback: bool
    dispatched_at: datetime
    born: Deadlines
    #: (when, kind, deadlines) of every later message: `updated` (an extension decided, a
    #: resumed clock) and `urged` (supervision may give the lead a new deadline to work to)
    changes: list[tuple[datetime, TaskKind, Deadlines]] = field(default_factory=list)
    #: when the task left its unit (withdrawn: returned, escalated, reclassified ...)
    ended_at: datetime | None = None
    ended_reason: TaskReason | None = None

    def owes(self, stage: str) -> bool:
        """The domain rule (not the task's own deadline): 先行联系 is owed on a 12345 case's
        lead task whose caller asked for a call-back; the other stages on every task."""
        if stage != "first_contact":
            return True
        return self.role is TaskRole.LEAD and self.source == "hotline12345" and self.callback

    def deadline(self, stage: str, at: datetime, *, urged: bool = True) -> datetime | None:
        """The stage's deadline in force just before `at`: as born, moved by the updates before
        (and by supervision's new deadline when `urged`): what a supervision at `at` found."""
        current = self.born
        for when, kind, deadlines in self.changes:
            if when < at and (kind is TaskKind.UPDATED or urged):
                current = deadlines
        return deadline_of(current, stage)

    def active_at(self, at: datetime) -> bool:
        return self.dispatched_at <= at and (self.ended_at is None or self.ended_at >= at)


@dataclass
class Ledger:
    tasks: dict[str, TaskSeen] = field(default_factory=dict)
    events: list[CaseEvent] = field(default_factory=list)
    replies: Counter[str] = field(default_factory=Counter)
    #: dead letters by source topic and reason (case and task numbers left out)
    deadletters: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)

    def see(self, topic: str, value: bytes, now: datetime) -> Task | CaseEvent | Reply | None:
        """Record one published message; returns it parsed (None: a dead letter)."""
        if topic.startswith(topics.TASKS_PREFIX):
            task = Task.model_validate_json(value)
            self.messages[f"task.{task.kind}"] += 1
            self._task(task, now)
            return task
        if topic == topics.CASE_EVENTS:
            event = CaseEvent.model_validate_json(value)
            self.events.append(event)
            return event
        if topic == topics.REPLIES:
            reply = Reply.model_validate_json(value)
            self.replies[reply.kind.value] += 1
            return reply
        if topic == topics.DEADLETTER:
            letter = DeadLetter.model_validate_json(value)
            why = _CASE_OR_TASK.sub("…", letter.error.detail.split(";")[0])
            self.deadletters[f"{letter.topic}: {why}"] += 1
        return None

    def _task(self, task: Task, now: datetime) -> None:
        if task.kind is TaskKind.ASSIGNED:
            caller = task.case.caller
            self.tasks[task.task_id] = TaskSeen(
                task.task_id,
                task.case_no,
                task.unit_code,
                task.role,
                task.case.source,
                caller.callback if caller is not None else False,
                task.dispatched_at,
                task.deadlines,
            )
            return
        seen = self.tasks.get(task.task_id)
        if seen is None:
            return
        if task.kind is TaskKind.WITHDRAWN:
            if seen.ended_at is None:
                seen.ended_at, seen.ended_reason = now, task.reason
        elif task.kind in (TaskKind.UPDATED, TaskKind.URGED):
            seen.changes.append((now, task.kind, task.deadlines))
