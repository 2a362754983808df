"""Deadlines from domain.md "Deadlines (SLA)", default office hours 09–12 and 13–17:30."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.district.deadlines.policy import (
    Deadlines,
    Duration,
    Unit,
    compute_deadlines,
    parse_duration,
    stage_status,
    warn_at,
)
from services.district.deadlines.policy_file import default_policy
from services.district.deadlines.workcal import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
POLICY = default_policy()  # deploy/reference/deadline_policy.csv


def at(day: str, hhmm: str = "00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH)


def deadlines(
    dispatched_at: datetime,
    urgency: str = "normal",
    request_type: str | None = None,
    category_sla: str | None = None,
    municipal_due: datetime | None = None,
    reopened: bool = False,
    first_contact_owed: bool = True,
) -> Deadlines:
    return compute_deadlines(
        dispatched_at=dispatched_at,
        urgency=urgency,
        request_type=request_type,
        category_sla=category_sla,
        municipal_due=municipal_due,
        calendar=CAL,
        policy=POLICY,
        reopened=reopened,
        first_contact_owed=first_contact_owed,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4WH", Duration(4, Unit.WORKING_HOURS)),
        ("7WD", Duration(7, Unit.WORKING_DAYS)),
        ("30min", Duration(30, Unit.MINUTES)),
        ("2h", Duration(2, Unit.HOURS)),
        ("1d", Duration(1, Unit.DAYS)),
        (" 15 wd ", Duration(15, Unit.WORKING_DAYS)),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


def test_duration_str_round_trips() -> None:
    for text in ("4WH", "7WD", "30min", "2h", "1d"):
        assert str(parse_duration(text)) == text


@pytest.mark.parametrize("text", ["", "4", "WH", "4 weeks", "-1h", "0WD", "1.5h", "4WHx", "h4"])
def test_parse_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_natural_duration_runs_through_night_and_weekend() -> None:
    # natural=True: 1 WD = 24 h, 2 WH = 2 h, regardless of office hours.
    start = at("2026-03-06", "22:00")  # Friday night
    assert parse_duration("1WD").after(start, CAL, natural=True) == at("2026-03-07", "22:00")
    assert parse_duration("2WH").after(start, CAL, natural=True) == at("2026-03-07", "00:00")
    assert parse_duration("2h").after(start, CAL, natural=False) == at("2026-03-07", "00:00")


def test_normal_complaint_across_weekend() -> None:
    # Fri 16:00. Accept 1 WH → 17:00. First contact 1 WD = 7.5 h: 1.5 h Fri, Mon 09–12,
    # 13:00 + 3 h → Mon 16:00. Complaint 5 WD keeps the time of day → next Fri 16:00.
    result = deadlines(at("2026-03-06", "16:00"), request_type="complaint")
    assert result == Deadlines(
        accept_by=at("2026-03-06", "17:00"),
        first_contact_by=at("2026-03-09", "16:00"),
        resolve_by=at("2026-03-13", "16:00"),
    )


@pytest.mark.parametrize(
    ("request_type", "resolve_by"),
    [
        ("consultation", at("2026-03-09", "16:00")),  # 1 WD from Fri 16:00
        ("suggestion", at("2026-03-09", "16:00")),
        ("praise", at("2026-03-09", "16:00")),
        ("help", at("2026-03-13", "16:00")),  # 5 WD
        ("complaint", at("2026-03-13", "16:00")),
    ],
)
def test_12345_request_types(request_type: str, resolve_by: datetime) -> None:
    assert deadlines(at("2026-03-06", "16:00"), request_type=request_type).resolve_by == resolve_by


def test_spring_festival_2026() -> None:
    # Thu Feb 12 10:00 + 5 WD: Fri 13, Sat 14 (调休 workday), Feb 15–23 off, Tue 24,
    # Wed 25, Thu 26 → Thu Feb 26 10:00.
    result = deadlines(at("2026-02-12", "10:00"), request_type="help")
    assert result.resolve_by == at("2026-02-26", "10:00")


@pytest.mark.parametrize(
    ("category_sla", "resolve_by"),
    [
        ("4WH", at("2026-03-09", "15:00")),  # Mon 10–12 (2 h), 13:00 + 2 h
        ("7WD", at("2026-03-18", "10:00")),  # Tue10 … Fri13, Mon16, Tue17, Wed18
        (None, at("2026-03-16", "10:00")),  # grid default 5 WD
    ],
)
def test_grid_category_sla(category_sla: str | None, resolve_by: datetime) -> None:
    result = deadlines(at("2026-03-09", "10:00"), category_sla=category_sla)
    assert result.resolve_by == resolve_by


def test_resolve_never_before_accept() -> None:
    # Fri 17:00: accept 1 WH = Fri 17:00–17:30 + Mon 09:00–09:30 → Mon 09:30. A natural
    # "30min" category SLA (Fri 17:30) is pushed to the accept deadline, and first contact
    # (Mon 17:00) is capped at resolution.
    result = deadlines(at("2026-03-06", "17:00"), category_sla="30min")
    assert result.accept_by == result.resolve_by == at("2026-03-09", "09:30")
    assert result.first_contact_by == at("2026-03-09", "09:30")


def test_urgent_at_night_runs_on_the_clock() -> None:
    # Sat 23:00 urgent help: accept 30 min → 23:30; first contact 2 h → Sun 01:00;
    # resolve 5 WD as 5 × 24 h → Thu 23:00.
    result = deadlines(at("2026-03-07", "23:00"), urgency="urgent", request_type="help")
    assert result == Deadlines(
        accept_by=at("2026-03-07", "23:30"),
        first_contact_by=at("2026-03-08", "01:00"),
        resolve_by=at("2026-03-12", "23:00"),
    )


def test_critical_at_night_runs_on_the_clock() -> None:
    # Sun 02:00 critical grid report, SLA 4 WH as 4 natural hours: accept 15 min → 02:15;
    # first contact 2 h → 04:00; resolve → 06:00.
    result = deadlines(at("2026-03-08", "02:00"), urgency="critical", category_sla="4WH")
    assert result == Deadlines(
        accept_by=at("2026-03-08", "02:15"),
        first_contact_by=at("2026-03-08", "04:00"),
        resolve_by=at("2026-03-08", "06:00"),
    )


def test_earlier_municipal_due_wins() -> None:
    # Complaint from Fri 16:00 would resolve next Fri 16:00; the municipal due time
    # (Tue 12:00 Shanghai, sent as 04:00 UTC) is earlier and wins. Accept and first
    # contact are already earlier and stay.
    due = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    result = deadlines(at("2026-03-06", "16:00"), request_type="complaint", municipal_due=due)
    assert result.resolve_by == at("2026-03-10", "12:00")
    assert result.accept_by == at("2026-03-06", "17:00")
    assert result.first_contact_by == at("2026-03-09", "16:00")


def test_municipal_due_caps_every_deadline() -> None:
    due = at("2026-03-06", "16:30")
    result = deadlines(at("2026-03-06", "16:00"), request_type="complaint", municipal_due=due)
    assert result == Deadlines(accept_by=due, first_contact_by=due, resolve_by=due)


def test_later_municipal_due_is_ignored() -> None:
    due = at("2026-04-30", "17:00")
    result = deadlines(at("2026-03-06", "16:00"), request_type="complaint", municipal_due=due)
    assert result.resolve_by == at("2026-03-13", "16:00")


@pytest.mark.parametrize("late", ["00:00", "15:59", "16:00"])
def test_a_municipal_due_time_that_has_passed_caps_nothing(late: str) -> None:
    # A reopen on Fri 16:00 of an order due earlier: the task gets the policy's deadlines,
    # every one after its dispatch (never born overdue).
    start = at("2026-03-06", "16:00")
    result = deadlines(
        start, request_type="complaint", reopened=True, municipal_due=at("2026-03-06", late)
    )
    assert result == deadlines(start, request_type="complaint", reopened=True)
    assert min(result.accept_by, result.first_contact_by, result.resolve_by) > start


def test_reopened_case_has_three_working_days() -> None:
    # Wed 14:00 + 3 WD (22.5 h): Thu, Fri, Mon → Mon 14:00, whatever the request type.
    result = deadlines(at("2026-03-11", "14:00"), request_type="complaint", reopened=True)
    assert result.resolve_by == at("2026-03-16", "14:00")


def test_supervised_case_has_three_working_days() -> None:
    result = compute_deadlines(
        dispatched_at=at("2026-03-11", "14:00"),
        urgency="normal",
        request_type="help",
        category_sla=None,
        municipal_due=None,
        calendar=CAL,
        policy=POLICY,
        supervised=True,
    )
    assert result.resolve_by == at("2026-03-16", "14:00")


def test_unknown_urgency_or_request_type_rejected() -> None:
    with pytest.raises(ValueError):
        deadlines(at("2026-03-09", "10:00"), urgency="whenever")
    with pytest.raises(ValueError):
        deadlines(at("2026-03-09", "10:00"), request_type="gossip")
    with pytest.raises(ValueError):
        deadlines(datetime(2026, 3, 9, 10, 0), request_type="help")


def test_warn_at_80_percent_of_working_time() -> None:
    # Mon 10:00 → 15:00 is 4 WH; 80 % = 3 h 12 min: 10–12 (2 h), 13:00 + 1 h 12 → 14:12.
    assert warn_at(at("2026-03-09", "10:00"), at("2026-03-09", "15:00"), CAL, False) == at(
        "2026-03-09", "14:12"
    )
    # 5 WD from Mon 09:00 = 37.5 h; 80 % = 30 h = four full days → Thu 17:30.
    assert warn_at(at("2026-03-09", "09:00"), at("2026-03-16", "09:00"), CAL, False) == at(
        "2026-03-12", "17:30"
    )


def test_warn_at_natural_and_custom_fraction() -> None:
    # Sat 23:00 → Sun 01:00 is 2 h on the clock; 80 % = 96 min → 00:36; 50 % → 00:00.
    start, deadline = at("2026-03-07", "23:00"), at("2026-03-08", "01:00")
    assert warn_at(start, deadline, CAL, True) == at("2026-03-08", "00:36")
    assert warn_at(start, deadline, CAL, True, warn_fraction=0.5) == at("2026-03-08", "00:00")


def test_warn_at_never_after_deadline() -> None:
    # Fri 18:00 → Sat 10:00 holds no office time; the warning falls on the deadline itself.
    deadline = at("2026-03-07", "10:00")
    assert warn_at(at("2026-03-06", "18:00"), deadline, CAL, False) == deadline
    assert warn_at(deadline, at("2026-03-06", "18:00"), CAL, False) == at("2026-03-06", "18:00")


@pytest.mark.parametrize(
    ("now", "status"),
    [("14:00", "ok"), ("14:11", "ok"), ("14:12", "warning"), ("15:00", "overdue")],
)
def test_stage_status(now: str, status: str) -> None:
    start, deadline = at("2026-03-09", "10:00"), at("2026-03-09", "15:00")
    assert stage_status(at("2026-03-09", now), start, deadline, CAL, False) == status


def test_policy_defaults_as_plain_mapping() -> None:
    mapping = POLICY.to_mapping()
    assert mapping == {
        "accept_normal": "1WH",
        "accept_urgent": "30min",
        "accept_critical": "15min",
        "first_contact_normal": "1WD",
        "first_contact_urgent": "2h",
        "first_contact_critical": "2h",
        "resolve_by_request_type": {
            "consultation": "1WD",
            "suggestion": "1WD",
            "praise": "1WD",
            "help": "5WD",
            "complaint": "5WD",
        },
        "grid_default": "5WD",
        "supervised": "3WD",
        "reopened": "3WD",
        "max_extension": "15WD",
        "triage_normal": "2WH",
        "triage_urgent": "30min",
        "triage_critical": "30min",
        "escalation_decision_normal": "4WH",
        "escalation_decision_urgent": "1h",
        "escalation_decision_critical": "1h",
        "return_decision_normal": "4WH",
        "return_decision_urgent": "1h",
        "return_decision_critical": "1h",
        "extension_decision": "1WD",
        "warn_fraction": 0.8,
    }
    assert POLICY.with_mapping(json.loads(json.dumps(mapping))) == POLICY


def test_policy_from_partial_mapping() -> None:
    policy = POLICY.with_mapping(
        {
            "accept_normal": "2WH",
            "resolve_by_request_type": {"complaint": "3WD"},
            "warn_fraction": 0.75,
        }
    )
    assert policy.accept("normal") == Duration(2, Unit.WORKING_HOURS)
    assert policy.resolve_for_type("complaint") == Duration(3, Unit.WORKING_DAYS)
    assert policy.resolve_for_type("help") == Duration(5, Unit.WORKING_DAYS)  # default kept
    assert policy.warn_fraction == 0.75
    assert policy.reopened == POLICY.reopened


@pytest.mark.parametrize(
    "mapping",
    [
        {"no_such_key": "1WD"},
        {"accept_normal": "soon"},
        {"accept_normal": 3},
        {"warn_fraction": 1.5},
        {"warn_fraction": "0.8"},
        {"resolve_by_request_type": ["help"]},
    ],
)
def test_policy_from_bad_mapping(mapping: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        POLICY.with_mapping(mapping)


def test_first_contact_not_owed_is_none() -> None:
    start = at("2026-03-06", "16:00")
    result = deadlines(start, request_type="help", first_contact_owed=False)
    assert result.first_contact_by is None
    assert result.resolve_by == deadlines(start, request_type="help").resolve_by
