"""The deadline the KPIs judge a case by (cases.due_by): the one it was first given, moved only
by an approved extension (by what it granted) or the time it was parked. Pure decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.common import Urgency
from services.common.config import ROOT
from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.cases.lifecycle import CaseState
from services.district.cases.model import CaseRec, Changes
from services.district.deadlines.policy_file import default_policy
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.kpis.report import SHANGHAI
from services.district.routing.reference import load_csv

REF = load_csv(ROOT / "deploy" / "reference", "310106")
DECISIONS = Decisions(
    Context(REF, default_policy().calendar(), default_policy(), PhoneVault(bytes(32)), Metrics())
)
JSGL = "310106-JSGL"
T0 = datetime(2026, 11, 27, 10, tzinfo=SHANGHAI)  # a Friday, in office hours
FIRST = datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)  # complaint: 5 working days


def _dispatched() -> CaseRec:
    case = CaseRec(
        *("C", "310106", "hotline12345", "HL-1", CaseState.RECEIVED, "0301", "施工扰民"),
        *(Urgency.NORMAL, "title", "description", "address", T0, T0),
        request_type="complaint",
    )
    DECISIONS.dispatch.task(case, JSGL, T0, Changes(), reason="routing")
    return case


def test_the_first_dispatch_gives_it() -> None:
    case = _dispatched()
    assert case.due_by == case.resolve_by == FIRST


def test_supervision_and_a_reopen_do_not_move_it() -> None:
    case = _dispatched()
    late = FIRST + timedelta(hours=2)
    DECISIONS.operator.supervise(case, "sup-1", "督办", late, Changes())
    assert case.tasks[0].resolve_by > FIRST and case.due_by == FIRST
    case.state = CaseState.RESOLVED
    DECISIONS.dispatch.task(case, JSGL, late, Changes(), reason="回访不满意", reopened=True)
    assert case.resolve_by > FIRST and case.due_by == FIRST


def test_an_approved_extension_moves_it_by_what_it_granted() -> None:
    case = _dispatched()
    task_id, until = case.tasks[0].task_id, FIRST + timedelta(days=3)  # Mon 12-07 10:00
    DECISIONS.operator.decide_extension(
        case, task_id, False, until, "sup-1", "不同意", T0, Changes()
    )
    assert case.due_by == FIRST
    DECISIONS.operator.decide_extension(case, task_id, True, until, "sup-1", "同意", T0, Changes())
    assert case.due_by == case.resolve_by == until


def test_parking_moves_it_by_the_working_time_stopped() -> None:
    """Parked 10:30 to 11:30 on Friday (office hours 09:00-12:00): one working hour."""
    case = _dispatched()
    DECISIONS.operator.park(case, "sup-1", "待协调", T0 + timedelta(minutes=30), Changes())
    DECISIONS.operator.unpark(case, "sup-1", "恢复", T0 + timedelta(minutes=90), Changes())
    assert case.due_by == FIRST + timedelta(hours=1)
