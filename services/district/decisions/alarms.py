"""When a task's deadline warns (80%) or falls overdue: a warning in the case record, or
supervision (督办) by the timer. Pure. (When alarms fall: `deadlines.alarms`.)"""

from __future__ import annotations

from datetime import datetime

from contracts.tasks import TaskKind, TaskReason
from services.district.cases import messages
from services.district.cases.lifecycle import CaseState, Event
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.alarms import STAGES, Alarm
from services.district.decisions.log import CaseLog
from services.district.decisions.operator import Operator


class Alarms:
    def __init__(self, log: CaseLog, operator: Operator) -> None:
        self.log, self.operator = log, operator

    def fire(self, case: CaseRec, task: TaskRec, alarm: Alarm, now: datetime, ch: Changes) -> None:
        """A task's deadline warned or fell overdue (then: supervised automatically)."""
        if not task.active or case.state is CaseState.PARKED:
            return
        deadline: datetime = getattr(task, STAGES[alarm.stage][0])
        if alarm.kind == "warn":
            data = {"task_id": task.task_id, "stage": alarm.stage, "deadline": deadline.isoformat()}
            self.log.transition(
                case, Event.DEADLINE_WARNING, now, "timer", ch, unit_code=task.unit_code, data=data
            )
            note = f"{alarm.stage}: 80% elapsed, due {deadline.isoformat()}"
            ch.outbox.append(
                messages.task_message(case, task, TaskKind.URGED, note, reason=TaskReason.WARNING)
            )
            return
        reason = f"{alarm.stage} overdue ({deadline.isoformat()})"
        self.operator.supervise(case, "timer", reason, now, ch, stage=alarm.stage)
