"""The district's own waits on the clock: a case entering manual triage or escalation starts
its stage's deadline, leaving it (the district decided) ends it; a unit's extension request
waits for approval until it is decided. Pure: records and `Changes` only."""

from __future__ import annotations

from datetime import datetime

from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines import waits
from services.district.deadlines.waits import DistrictStage
from services.district.decisions.context import Context


class DistrictWaits:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def sync(self, case: CaseRec, at: datetime, ch: Changes) -> None:
        """After a transition: a stage the case now waits in starts (unless it already waits
        in it); a wait it left is over."""
        stage = waits.WAITING.get(case.state)
        if stage is not None and stage.value == case.waiting_stage:
            return
        if stage is None and case.waiting_stage is None:
            return
        if stage is None:
            case.waiting_stage = case.waiting_since = case.waiting_due = None
            key = waits.case_timer(case.case_no)
            ch.waits[case.case_no] = (key, case.case_no, case.district_code, None)
            return
        due = self._decide_by(case, stage, at)
        case.waiting_stage, case.waiting_since, case.waiting_due = stage.value, at, due
        self._arm(case, case.case_no, waits.case_timer(case.case_no), stage, at, due, ch)

    def extension_asked(self, case: CaseRec, task: TaskRec, at: datetime, ch: Changes) -> None:
        """A unit asks for an extension: the decision is due (a request already pending keeps
        the clock it started)."""
        if task.extension_due is not None:
            return
        stage = DistrictStage.EXTENSION_DECISION
        due = self._decide_by(case, stage, at)
        task.extension_requested_at, task.extension_due = at, due
        self._arm(case, task.task_id, waits.extension_timer(task.task_id), stage, at, due, ch)
        ch.touch(case, task)

    def extension_decided(self, case: CaseRec, task: TaskRec, ch: Changes) -> None:
        if task.extension_due is None:
            return
        task.extension_requested_at = task.extension_due = None
        key = waits.extension_timer(task.task_id)
        ch.waits[task.task_id] = (key, case.case_no, case.district_code, None)
        ch.touch(case, task)

    def _decide_by(self, case: CaseRec, stage: DistrictStage, at: datetime) -> datetime:
        return waits.decide_by(self.ctx.policy, self.ctx.calendar, stage, case.urgency, at)

    def _arm(
        self,
        case: CaseRec,
        owner: str,
        key: str,
        stage: DistrictStage,
        since: datetime,
        due: datetime,
        ch: Changes,
    ) -> None:
        cal, fraction = self.ctx.calendar, self.ctx.policy.warn_fraction
        first = min(a.at for a in waits.wait_alarms(stage, since, due, case.urgency, cal, fraction))
        ch.waits[owner] = (key, case.case_no, case.district_code, first)
