"""Deadline alarms: warnings at 80%, overdue at 100%, each once, in order."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.common import Urgency
from contracts.tasks import TaskRole
from services.district.cases.lifecycle import CaseState
from services.district.cases.model import CaseRec, TaskRec
from services.district.deadlines.alarms import alarms, due, first_alarm
from services.district.deadlines.workcal import WorkCalendar

CAL = WorkCalendar()
T0 = datetime.fromisoformat("2026-11-27T10:00:00+08:00")  # a Friday, in office hours


def task(**changes: object) -> TaskRec:
    base = TaskRec(
        "C-T1",
        "C",
        "310106",
        "310106-JSGL",
        "lead",
        "assigned",
        T0,
        accept_by=T0 + timedelta(hours=1),
        first_contact_by=T0 + timedelta(hours=5),
        resolve_by=datetime.fromisoformat("2026-12-04T10:00:00+08:00"),
    )
    for k, v in changes.items():
        setattr(base, k, v)
    return base


def test_first_alarm_is_the_warning_of_the_earliest_deadline() -> None:
    assert first_alarm(task(), "normal", CAL) == T0 + timedelta(minutes=48)
    assert first_alarm(task(), "normal", CAL) == alarms(task(), "normal", CAL)[0].at


def test_finished_stages_have_no_alarms() -> None:
    t = task(accepted_at=T0 + timedelta(minutes=5), contacted_at=T0 + timedelta(minutes=6))
    assert {a.stage for a in alarms(t, "normal", CAL)} == {"resolve"}
    t.resolved_at = T0 + timedelta(hours=1)
    assert first_alarm(t, "normal", CAL) is None


def test_due_fires_each_alarm_once_and_skips_a_warning_already_overdue() -> None:
    pending = alarms(task(), "normal", CAL)
    fire, mark, nxt = due(pending, [], T0 + timedelta(minutes=50))
    assert [a.key for a in fire] == ["accept:warn"] and mark == ["accept:warn"]
    assert nxt == T0 + timedelta(hours=1)
    fire, mark, _ = due(pending, mark, T0 + timedelta(minutes=50))
    assert fire == [] and mark == []
    fire, mark, _ = due(pending, [], T0 + timedelta(hours=1, minutes=1))
    assert [a.key for a in fire] == ["accept:overdue"]
    assert set(mark) == {"accept:warn", "accept:overdue"}


def test_a_stage_not_owed_has_no_alarms() -> None:
    t = task(first_contact_by=None, accepted_at=T0 + timedelta(minutes=5))
    assert {a.stage for a in alarms(t, "normal", CAL)} == {"resolve"}
    resolve_warn = alarms(t, "normal", CAL)[0].at
    assert first_alarm(t, "normal", CAL) == resolve_warn


def test_first_contact_is_owed_only_on_12345_lead_tasks_of_callers_wanting_a_call_back() -> None:
    case = CaseRec(
        *("C", "310106", "hotline12345", "HL1", CaseState.RECEIVED, "0101", "x", Urgency.NORMAL),
        *("title", "description", "address", T0, T0),
    )
    assert case.first_contact_owed(TaskRole.LEAD)
    assert not case.first_contact_owed(TaskRole.CO)
    case.caller_callback = False
    assert not case.first_contact_owed(TaskRole.LEAD)
    case.caller_callback, case.source = True, "roadchief"
    assert not case.first_contact_owed(TaskRole.LEAD)
