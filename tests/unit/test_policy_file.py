"""The deadline policy as data: deploy/reference/deadline_policy.csv gives today's deadlines
exactly, and a bad line stops the start naming itself (line and field)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from contracts.common import Urgency
from services.district.deadlines.policy import (
    DeadlinePolicy,
    Duration,
    Unit,
    compute_deadlines,
)
from services.district.deadlines.policy_file import (
    DEFAULT_PATH,
    PolicyFileError,
    default_policy,
    load_policy,
)
from services.district.deadlines.workcal import DEFAULT_OFFICE_HOURS, WorkCalendar

WH, WD = Unit.WORKING_HOURS, Unit.WORKING_DAYS
MIN, H = Unit.MINUTES, Unit.HOURS
#: the table that was the code's defaults before it moved into the file
TODAY = DeadlinePolicy(
    accept_normal=Duration(1, WH),
    accept_urgent=Duration(30, MIN),
    accept_critical=Duration(15, MIN),
    first_contact_normal=Duration(1, WD),
    first_contact_urgent=Duration(2, H),
    first_contact_critical=Duration(2, H),
    resolve_by_request_type=MappingProxyType(
        {
            "consultation": Duration(1, WD),
            "suggestion": Duration(1, WD),
            "praise": Duration(1, WD),
            "help": Duration(5, WD),
            "complaint": Duration(5, WD),
        }
    ),
    grid_default=Duration(5, WD),
    supervised=Duration(3, WD),
    reopened=Duration(3, WD),
    max_extension=Duration(15, WD),
    triage_normal=Duration(2, WH),
    triage_urgent=Duration(30, MIN),
    triage_critical=Duration(30, MIN),
    escalation_decision_normal=Duration(4, WH),
    escalation_decision_urgent=Duration(1, H),
    escalation_decision_critical=Duration(1, H),
    return_decision_normal=Duration(4, WH),
    return_decision_urgent=Duration(1, H),
    return_decision_critical=Duration(1, H),
    extension_decision=Duration(1, WD),
    warn_fraction=0.8,
    office_hours=DEFAULT_OFFICE_HOURS,
)
FRIDAY_4PM = datetime.fromisoformat("2026-11-27T16:00:00+08:00")
CATEGORIES = ("0101", "0102", "9901")


def test_the_shipped_file_is_todays_table() -> None:
    policy = load_policy(DEFAULT_PATH, CATEGORIES)
    assert policy == TODAY
    assert policy.to_mapping() == TODAY.to_mapping()
    assert dict(policy.resolve_by_request_type) == dict(TODAY.resolve_by_request_type)
    assert policy.category_resolve == {}
    assert default_policy() == TODAY


@pytest.mark.parametrize("urgency", list(Urgency))
@pytest.mark.parametrize("request_type", [None, "consultation", "help", "complaint"])
def test_the_shipped_file_gives_todays_deadlines(
    urgency: Urgency, request_type: str | None
) -> None:
    policy = default_policy()
    for sla in (None, "4WH"):
        got, want = (
            compute_deadlines(
                dispatched_at=FRIDAY_4PM,
                urgency=urgency,
                request_type=request_type,
                category_sla=sla,
                municipal_due=None,
                calendar=p.calendar(),
                policy=p,
                category_code="0102",
            )
            for p in (policy, TODAY)
        )
        assert got == want
    assert policy.calendar().office_hours == WorkCalendar().office_hours


def _write(tmp_path: Path, *lines: str) -> Path:
    """The shipped file with `lines` appended (or replacing a stage: see the callers)."""
    path = tmp_path / "policy.csv"
    path.write_text("\n".join([DEFAULT_PATH.read_text(encoding="utf-8").rstrip(), *lines]) + "\n")
    return path


def _line_count() -> int:
    return len(DEFAULT_PATH.read_text(encoding="utf-8").rstrip().splitlines())


@pytest.mark.parametrize(
    ("line", "column", "words"),
    [
        ("accept,normal,*,*,soon", "value", "invalid duration"),
        ("acept,normal,*,*,1WH", "stage", "unknown stage"),
        ("triage,slow,*,*,1WH", "urgency", "not one of"),
        ("resolve,*,gossip,*,1WD", "request_type", "not one of"),
        ("resolve,*,help,7777,1WD", "category", "unknown category"),
        ("reopened,urgent,*,*,1WD", "urgency", "must be *"),
        ("warn_fraction,*,*,*,1.2", "value", "(0, 1)"),
        ("office_hours,*,*,*,9-17", "value", "HH:MM-HH:MM"),
        ("office_hours,*,*,*,17:00-18:00", "value", "overlaps"),
        ("accept,normal,*,*,2WH", None, "repeats line"),
        ("accept,normal,*,1WH", None, "4 fields"),
    ],
)
def test_a_bad_line_names_itself(tmp_path: Path, line: str, column: str | None, words: str) -> None:
    path = _write(tmp_path, line)
    with pytest.raises(PolicyFileError) as caught:
        load_policy(path, CATEGORIES)
    err = caught.value
    assert err.line == _line_count() + 1, str(err)
    assert err.column == column
    message = str(err)
    assert f"line {_line_count() + 1}" in message and words in message
    if column:
        assert f"({column})" in message


def test_a_missing_rule_is_named(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8").replace("accept,critical,*,*,15min\n", "")
    (path := tmp_path / "policy.csv").write_text(text)
    with pytest.raises(PolicyFileError, match="no accept deadline for urgency critical"):
        load_policy(path)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot be read"):
        load_policy(tmp_path / "missing.csv")


def test_a_category_override_and_a_wildcard_urgency(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    text = text.replace(
        "accept,urgent,*,*,30min\naccept,critical,*,*,15min\n", "accept,*,*,*,20min\n"
    )
    text = text.replace("accept,normal,*,*,1WH", "accept,normal,*,*,2WH")
    text += "resolve,*,grid,0102,2WH\nresolve,*,*,0101,10WD\n"
    (path := tmp_path / "policy.csv").write_text(text)
    policy = load_policy(path, CATEGORIES)
    assert policy.accept(Urgency.NORMAL) == Duration(2, WH)
    assert policy.accept(Urgency.CRITICAL) == Duration(20, MIN)
    assert policy.resolve_for_category("0102", None) == Duration(2, WH)
    assert policy.resolve_for_category("0102", "help") is None
    assert policy.resolve_for_category("0101", "help") == Duration(10, WD)
    got = compute_deadlines(
        dispatched_at=FRIDAY_4PM,
        urgency=Urgency.NORMAL,
        request_type=None,
        category_sla="4WH",
        municipal_due=None,
        calendar=policy.calendar(),
        policy=policy,
        category_code="0102",
    )
    # Friday 16:00 + 2 WH: 1.5 h on Friday, 0.5 h on Monday
    assert got.resolve_by == datetime.fromisoformat("2026-11-30T09:30:00+08:00")
