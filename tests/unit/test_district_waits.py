"""The district's own stages on the clock (deadlines/waits.py, decisions/waits.py): when a wait
starts, when it is due, that it keeps its clock while it lasts and ends when decided."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.common import Urgency
from contracts.tasks import TaskRole
from services.common.config import ROOT
from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.cases.lifecycle import CaseState, TaskState
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.deadlines import waits
from services.district.deadlines.policy_file import default_policy
from services.district.deadlines.waits import DistrictStage
from services.district.decisions.context import Context
from services.district.decisions.waits import DistrictWaits
from services.district.routing.reference import load_csv

POLICY = default_policy()
WAITS = DistrictWaits(
    Context(
        load_csv(ROOT / "deploy" / "reference", "310106"),
        POLICY.calendar(),
        POLICY,
        PhoneVault(bytes(32)),
        Metrics(),
    )
)
FRIDAY_11AM = datetime.fromisoformat("2026-11-27T11:00:00+08:00")


def _case(state: CaseState, urgency: Urgency = Urgency.NORMAL) -> CaseRec:
    return CaseRec(
        *("C", "310106", "hotline12345", "HL1", state, "9901", "未分类", urgency),
        *("title", "description", "address", FRIDAY_11AM, FRIDAY_11AM),
    )


def _task(case: CaseRec) -> TaskRec:
    t = TaskRec(
        *("C-T1", "C", "310106", "310106-JSGL", TaskRole.LEAD, TaskState.ACCEPTED, FRIDAY_11AM),
        accept_by=FRIDAY_11AM,
        first_contact_by=None,
        resolve_by=FRIDAY_11AM + timedelta(days=7),
    )
    case.tasks.append(t)
    return t


def test_triage_is_due_in_two_working_hours_across_lunch() -> None:
    case, ch = _case(CaseState.TRIAGE), Changes()
    WAITS.sync(case, FRIDAY_11AM, ch)
    assert case.waiting_stage == DistrictStage.TRIAGE
    assert case.waiting_due == datetime.fromisoformat("2026-11-27T14:00:00+08:00")
    key, _, _, first = ch.waits["C"]
    # the warning at 80% of the two working hours: 1 h 36 min, lunch not counted
    assert key == "C:district" and first == datetime.fromisoformat("2026-11-27T13:36:00+08:00")


def test_an_urgent_escalation_counts_an_hour_of_natural_time() -> None:
    case, ch = _case(CaseState.ESCALATED, Urgency.URGENT), Changes()
    WAITS.sync(case, FRIDAY_11AM, ch)
    assert case.waiting_stage == DistrictStage.ESCALATION_DECISION
    assert case.waiting_due == FRIDAY_11AM + timedelta(hours=1)


def test_a_wait_keeps_its_clock_while_it_lasts_and_ends_when_the_case_leaves() -> None:
    case, ch = _case(CaseState.TRIAGE), Changes()
    WAITS.sync(case, FRIDAY_11AM, ch)
    due = case.waiting_due
    WAITS.sync(case, FRIDAY_11AM + timedelta(minutes=30), ch)  # still in triage (supervised)
    assert (case.waiting_since, case.waiting_due) == (FRIDAY_11AM, due)
    case.state = CaseState.DISPATCHED
    WAITS.sync(case, FRIDAY_11AM + timedelta(hours=1), ch)
    assert (case.waiting_stage, case.waiting_since, case.waiting_due) == (None, None, None)
    assert ch.waits["C"][0] == "C:district" and ch.waits["C"][3] is None  # disarmed


def test_an_extension_request_waits_a_working_day_and_a_repeat_keeps_the_first_clock() -> None:
    case, ch = _case(CaseState.ACCEPTED), Changes()
    task = _task(case)
    WAITS.extension_asked(case, task, FRIDAY_11AM, ch)
    monday = datetime.fromisoformat("2026-11-30T11:00:00+08:00")
    assert task.extension_due == monday
    WAITS.extension_asked(case, task, FRIDAY_11AM + timedelta(hours=2), ch)
    assert (task.extension_requested_at, task.extension_due) == (FRIDAY_11AM, monday)
    assert ch.waits["C-T1"][0] == "C-T1:extension"
    WAITS.extension_decided(case, task, ch)
    assert (task.extension_requested_at, task.extension_due) == (None, None)
    assert ch.waits["C-T1"][3] is None


def test_timer_keys_name_the_wait_and_leave_task_timers_alone() -> None:
    assert waits.parse_timer(waits.case_timer("C")) == (None, "C")
    extension = waits.parse_timer(waits.extension_timer("C-T1"))
    assert extension == (DistrictStage.EXTENSION_DECISION, "C-T1")
    assert waits.parse_timer("C-T1") is None
