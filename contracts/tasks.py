"""Tasks to units and what units report back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.common import Actor, AwareDatetime, LongText, Message, ShortText, Urgency


class TaskKind(StrEnum):
    ASSIGNED = "assigned"
    UPDATED = "updated"
    URGED = "urged"
    WITHDRAWN = "withdrawn"


class TaskReason(StrEnum):
    """Why a unit is urged (`urged`), a task withdrawn (`withdrawn`) or handed back to its
    unit (`updated`)."""

    WARNING = "warning"  # 80% of a stage has elapsed (`note` names the stage)
    OVERDUE = "overdue"  # a stage fell overdue: supervised automatically (督办)
    SUPERVISION = "supervision"  # 督办 by a district operator
    UPSTREAM = "upstream"  # 催办 from 12345
    RETURNED = "returned"  # the district has taken the unit's return (退单)
    ESCALATED = "escalated"  # the district has taken the unit's escalation
    LEAD_RESOLVED = "lead_resolved"  # a joint case resolved by its lead unit
    RETURN_REFUSED = "return_refused"  # `updated`: the district refused the unit's return
    REROUTED = "rerouted"  # a 12345 supplement moved the case to another unit's territory


class TaskRole(StrEnum):
    LEAD = "lead"
    CO = "co"


class Deadlines(Message):
    accept_by: datetime
    #: null where no first contact is owed: road-chief reports, co-unit tasks, callers who
    #: asked for no call-back
    first_contact_by: datetime | None = None
    resolve_by: datetime


class WgsPoint(Message):
    lon: float
    lat: float
    crs: Literal["wgs84"] = "wgs84"


class MaskedCaller(Message):
    name: str = ""
    phone_masked: str = ""
    anonymous: bool = False
    callback: bool = True


class CaseSnapshot(Message):
    source: str
    source_ref: str
    category_code: str
    category_name: str
    title: str
    description: str
    address: str
    location: WgsPoint | None = None
    urgency: Urgency
    request_type: str | None = None
    reporters: int = 1
    caller: MaskedCaller | None = None
    street_code: str | None = None
    district_code: str


class Task(Message):
    """`cityops.task/v1` on `cityops.tasks.<unit_code>`, keyed by case_no."""

    schema_: Literal["cityops.task/v1"] = Field(default="cityops.task/v1", alias="schema")
    task_id: str
    case_no: str
    kind: TaskKind
    role: TaskRole
    unit_code: str
    deadlines: Deadlines
    dispatched_at: datetime
    note: str = ""
    #: why, for `urged` (warning, overdue, supervision, upstream) and for a `withdrawn` that
    #: acknowledges a return or escalation, ends a co-unit's share (lead_resolved) or follows
    #: the case to another owner's place after a 12345 supplement (rerouted)
    reason: TaskReason | None = None
    case: CaseSnapshot


class FeedbackAction(StrEnum):
    ACCEPT = "accept"
    CONTACT = "contact"
    PROGRESS = "progress"
    RESOLVE = "resolve"
    RETURN = "return"
    ESCALATE = "escalate"
    REQUEST_EXTENSION = "request_extension"


class ReturnReason(StrEnum):
    NOT_OUR_TERRITORY = "not_our_territory"
    NOT_OUR_DUTY = "not_our_duty"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    OTHER = "other"


class ResolveOutcome(StrEnum):
    """How the unit answered the matter (实际解决率 counts `solved` only)."""

    SOLVED = "solved"  # 解决: the problem itself was dealt with
    EXPLAINED = "explained"  # 解释说明: explained to the citizen, the problem remains


class ResolveResult(Message):
    resolved: bool
    summary: LongText
    #: solved or only explained; absent (older senders): solved
    outcome: ResolveOutcome | None = None


class TaskFeedback(Message):
    """`cityops.task-feedback/v1` on `cityops.task-feedback`, keyed by task_id."""

    schema_: Literal["cityops.task-feedback/v1"] = Field(
        default="cityops.task-feedback/v1", alias="schema"
    )
    feedback_id: str = Field(min_length=1, max_length=100)
    task_id: str = Field(min_length=1, max_length=100)
    case_no: str = Field(min_length=1, max_length=64)
    unit_code: ShortText
    actor: Actor
    action: FeedbackAction
    at: AwareDatetime
    note: LongText = ""
    reason: ReturnReason | None = None
    requested_until: AwareDatetime | None = None
    result: ResolveResult | None = None
    co_units: list[ShortText] = Field(default_factory=list, max_length=20)
    #: set by a CityOps desk (the street service's HTTP API): the id of the bearer token the
    #: operator acted with, recorded beside `actor` in the case record. Absent from platforms
    #: that publish their own feedback.
    token_id: ShortText | None = None

    def missing_field(self) -> str | None:
        """The field this action requires but lacks, if any."""
        required = {
            FeedbackAction.RETURN: ("reason", self.reason),
            FeedbackAction.RESOLVE: ("result", self.result),
            FeedbackAction.REQUEST_EXTENSION: ("requested_until", self.requested_until),
        }.get(self.action)
        if required is not None and required[1] is None:
            return required[0]
        return None
