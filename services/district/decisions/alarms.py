"""When a task's deadline warns (80%) or falls overdue: a warning in the case record, or
supervision (督办) by the timer; when a district stage's does: an event against the district's
centre. Pure. (When alarms fall: `deadlines.alarms`, `deadlines.waits`.)"""

from __future__ import annotations

from datetime import datetime

from contracts.tasks import TaskKind, TaskReason
from services.district.cases import messages
from services.district.cases.lifecycle import CaseState, Event
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines.alarms import STAGES, Alarm
from services.district.deadlines.waits import DistrictStage, WaitEvent
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

    def district(
        self,
        case: CaseRec,
        stage: DistrictStage,
        alarm: Alarm,
        deadline: datetime,
        now: datetime,
        ch: Changes,
        task: TaskRec | None = None,
    ) -> None:
        """A district stage's deadline warned or fell overdue: recorded against the centre
        (the case stays where it waits; the district's queue view shows it)."""
        event = WaitEvent.WARNING if alarm.kind == "warn" else WaitEvent.OVERDUE
        data = {"stage": stage.value, "deadline": deadline.isoformat()}
        if task is not None:
            data["task_id"] = task.task_id
        center = self.log.ctx.ref.center.unit_code
        self.log.record(case, event.value, now, "timer", ch, center, data)
