"""The simulated month's checker (scripts/simulation/checks.py) flags what it is there to
flag: a task born overdue, a supervision of a stage that was not owed; and counts a stage
done late as overdue, one done in time or handed back before its deadline as not."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from simulation.checks import (
    Done,
    born_overdue,
    district_shares,
    seen_births,
    stage_shares,
    unowed_supervisions,
)
from simulation.ledger import TaskSeen

from contracts.events import CaseEvent
from contracts.tasks import Deadlines, TaskKind, TaskRole
from services.district.deadlines.policy_file import load_policy

SH = timezone(timedelta(hours=8))
T0 = datetime(2026, 9, 29, 10, 0, tzinfo=SH)
H = timedelta(hours=1)
CASE = "310106-20260929-0000001"


def _task(
    *,
    source: str = "hotline12345",
    callback: bool = True,
    role: TaskRole = TaskRole.LEAD,
    first_contact: bool = True,
    resolve_in: timedelta = 24 * H,
    task_id: str = f"{CASE}-T1",
) -> TaskSeen:
    born = Deadlines(
        accept_by=T0 + H,
        first_contact_by=T0 + 4 * H if first_contact else None,
        resolve_by=T0 + resolve_in,
    )
    return TaskSeen(task_id, CASE, "310106001000", role, source, callback, T0, born)


def _supervised(stage: str, at: datetime, mode: str = "auto") -> CaseEvent:
    return _event(9, "supervised", at, "accepted", "accepted", mode=mode, stage=stage)


def _event(
    seq: int, type_: str, at: datetime, before: str | None, after: str, **data: Any
) -> CaseEvent:
    return CaseEvent(
        event_id=f"{CASE}:{seq}",
        case_no=CASE,
        seq=seq,
        type=type_,
        at=at,
        actor="t",
        from_state=before,
        to_state=after,
        district_code="310106",
        data=data,
    )


def test_a_task_due_at_or_before_its_dispatch_is_flagged_born_overdue() -> None:
    assert born_overdue(seen_births([_task()])) == []
    late = _task(resolve_in=timedelta(0))
    [finding] = born_overdue(seen_births([late]))
    assert (finding.kind, finding.task_id, finding.stage) == (
        "born_overdue",
        late.task_id,
        "resolve",
    )
    rows = [("x-T1", CASE, T0, {"accept": T0 - H, "first_contact": None, "resolve": T0 + H})]
    assert [f.stage for f in born_overdue(rows)] == ["accept"]


def test_supervising_first_contact_of_a_road_chief_case_is_flagged() -> None:
    # the task (wrongly) carries a first-contact deadline: the domain rule still says not owed
    report = _task(source="roadchief", callback=False)
    [finding] = unowed_supervisions([_supervised("first_contact", T0 + 5 * H)], [report], {})
    assert (finding.kind, finding.stage) == ("unowed_supervision", "first_contact")
    hotline = _task()
    assert unowed_supervisions([_supervised("first_contact", T0 + 5 * H)], [hotline], {}) == []


def test_supervising_a_stage_not_yet_due_done_or_left_is_flagged() -> None:
    task = _task()
    early = [_supervised("resolve", T0 + 2 * H)]
    assert len(unowed_supervisions(early, [task], {})) == 1
    done = {task.task_id: Done(accepted_at=T0 + 0.5 * H)}
    assert len(unowed_supervisions([_supervised("accept", T0 + 2 * H)], [task], done)) == 1
    assert unowed_supervisions([_supervised("accept", T0 + 2 * H)], [task], {}) == []
    task.ended_at = T0 + 1.5 * H  # withdrawn: the unit no longer held it
    assert len(unowed_supervisions([_supervised("accept", T0 + 2 * H)], [task], {})) == 1
    manual = [_supervised("resolve", T0 + 2 * H, mode="manual")]
    assert unowed_supervisions(manual, [_task()], {}) == []


def test_supervision_judged_by_the_deadline_before_it_not_the_one_it_gave() -> None:
    task = _task(resolve_in=2 * H)
    at = T0 + 2 * H
    task.changes.append(
        (at, TaskKind.URGED, task.born.model_copy(update={"resolve_by": at + 72 * H}))
    )
    assert unowed_supervisions([_supervised("resolve", at)], [task], {}) == []


def test_stage_shares_count_late_work_and_not_work_handed_back_in_time() -> None:
    on_time, late, returned = (_task(task_id=f"{CASE}-T{i}") for i in (1, 2, 3))
    returned.ended_at = T0 + 0.5 * H
    done = {
        on_time.task_id: Done(T0 + 0.5 * H, T0 + 2 * H, T0 + 10 * H),
        late.task_id: Done(T0 + 2 * H, None, None),
    }
    end = T0 + 48 * H
    shares = stage_shares([on_time, late], done, end)
    assert (shares["accept"].owed, shares["accept"].overdue) == (1, 1)  # one case, late
    alone = stage_shares([on_time], done, end)
    assert alone["accept"].overdue == alone["resolve"].overdue == 0
    assert stage_shares([returned], {}, end)["accept"].overdue == 0
    assert stage_shares([returned], {}, end)["resolve"].overdue == 0


def test_an_approved_extension_moves_the_deadline_supervision_does_not() -> None:
    task = _task(resolve_in=24 * H)
    done = {task.task_id: Done(T0 + 0.5 * H, T0 + 1 * H, T0 + 30 * H)}
    later = task.born.model_copy(update={"resolve_by": T0 + 48 * H})
    task.changes.append((T0 + 24 * H, TaskKind.URGED, later))
    assert stage_shares([task], done, T0 + 72 * H)["resolve"].overdue == 1
    task.changes[0] = (T0 + 20 * H, TaskKind.UPDATED, later)
    assert stage_shares([task], done, T0 + 72 * H)["resolve"].overdue == 0


def test_district_stages_against_the_policy() -> None:
    policy = load_policy(
        Path(__file__).resolve().parents[2] / "deploy/reference/deadline_policy.csv"
    )
    events = [
        _event(1, "to_triage", T0, "received", "triage"),
        _event(2, "dispatched", T0 + 3 * H, "triage", "dispatched"),  # 2WH: late
        _event(3, "escalated", T0 + 4 * H, "dispatched", "escalated"),
        _event(4, "dispatched", T0 + 5 * H, "escalated", "dispatched"),  # 4WH: in time
        _event(5, "returned", T0 + 6 * H, "dispatched", "returned"),
        _event(6, "return_approved", T0 + 7 * H, "returned", "returned"),  # still waiting
        _event(7, "to_triage", T0 + 30 * H, "returned", "triage"),  # 4WH (Wed 11:30): late
    ]
    shares = district_shares(events, {}, policy, policy.calendar(), T0 + 48 * H)
    # the second triage, from Wednesday 16:00 (09-30), has 30 min left after National Day
    assert (shares["triage"].owed, shares["triage"].overdue) == (2, 1)
    assert (shares["escalation_decision"].owed, shares["escalation_decision"].overdue) == (1, 0)
    assert (shares["return_decision"].owed, shares["return_decision"].overdue) == (1, 1)
