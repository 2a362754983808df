"""The district's own stages (domain.md "Deadlines (SLA)"): a case waiting in manual triage or
for an escalation's decision, a unit's extension request waiting for approval. Each wait has a
deadline from the policy, a warning and an overdue alarm on the task timers' table, and counts
against the district's centre. Pure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from contracts.common import Urgency
from services.district.cases.lifecycle import CaseState
from services.district.deadlines.alarms import Alarm
from services.district.deadlines.policy import DeadlinePolicy, is_natural, warn_at
from services.district.deadlines.workcal import WorkCalendar


class DistrictStage(StrEnum):
    TRIAGE = "triage"
    ESCALATION_DECISION = "escalation_decision"
    RETURN_DECISION = "return_decision"
    EXTENSION_DECISION = "extension_decision"


class WaitEvent(StrEnum):
    """The case record's events of a district stage's alarms (the case does not move)."""

    WARNING = "district_deadline_warning"
    OVERDUE = "district_deadline_overdue"


#: the case states in which the case waits for the district, and the stage it waits in
WAITING: dict[CaseState, DistrictStage] = {
    CaseState.TRIAGE: DistrictStage.TRIAGE,
    CaseState.ESCALATED: DistrictStage.ESCALATION_DECISION,
    CaseState.RETURNED: DistrictStage.RETURN_DECISION,
}
#: timer keys: '<case_no>:district' (triage, escalation), '<task_id>:extension'
_CASE_SUFFIX, _EXTENSION_SUFFIX = ":district", ":extension"


def case_timer(case_no: str) -> str:
    return case_no + _CASE_SUFFIX


def extension_timer(task_id: str) -> str:
    return task_id + _EXTENSION_SUFFIX


def parse_timer(key: str) -> tuple[DistrictStage | None, str] | None:
    """(None, case_no) for a case's wait, (EXTENSION_DECISION, task_id) for an extension's;
    None for a task's own timer."""
    if key.endswith(_CASE_SUFFIX):
        return None, key.removesuffix(_CASE_SUFFIX)
    if key.endswith(_EXTENSION_SUFFIX):
        return DistrictStage.EXTENSION_DECISION, key.removesuffix(_EXTENSION_SUFFIX)
    return None


def decide_by(
    policy: DeadlinePolicy,
    calendar: WorkCalendar,
    stage: DistrictStage,
    urgency: Urgency,
    since: datetime,
) -> datetime:
    """When the district must have decided a wait that began at `since`."""
    if stage is DistrictStage.TRIAGE:
        duration = policy.triage(urgency)
    elif stage is DistrictStage.ESCALATION_DECISION:
        duration = policy.escalation_decision(urgency)
    elif stage is DistrictStage.RETURN_DECISION:
        duration = policy.return_decision(urgency)
    else:
        duration = policy.extension_decision
    return duration.after(since, calendar, is_natural(urgency))


def wait_alarms(
    stage: DistrictStage,
    since: datetime,
    due: datetime,
    urgency: Urgency,
    calendar: WorkCalendar,
    warn_fraction: float,
) -> list[Alarm]:
    """The wait's warning (at `warn_fraction` of its time) and overdue alarm."""
    warn = warn_at(since, due, calendar, is_natural(urgency), warn_fraction)
    return [Alarm(stage.value, "warn", warn), Alarm(stage.value, "overdue", due)]
