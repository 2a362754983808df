"""Requests and answers of the district's operator API (its OpenAPI document is built from
these)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel

from services.district.cases.lifecycle import CaseState

#: a unit's stages, then the district's own (counted against its centre, `<district>-CENTER`)
Stage = Literal[
    "accept",
    "first_contact",
    "resolve",
    "triage",
    "escalation_decision",
    "return_decision",
    "extension_decision",
]
DistrictStageName = Literal[
    "triage", "escalation_decision", "return_decision", "extension_decision"
]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CaseQuery(_Query):
    unit: str | None = Field(default=None, max_length=64, description="a unit held a task")
    street: str | None = Field(default=None, max_length=64, description="the location's street")
    state: CaseState | None = None
    category: str | None = Field(default=None, max_length=64, description="category code")
    source: Literal["hotline12345", "roadchief"] | None = None
    overdue: bool | None = Field(default=None, description="open and past its resolve deadline")
    supervised: bool | None = None
    from_: date | None = Field(default=None, alias="from", description="opened on or after")
    to: date | None = Field(default=None, description="opened before (exclusive)")
    limit: int = Field(default=50, ge=1, le=500)
    after: str | None = Field(default=None, max_length=200, description="the `next` cursor")


class EventsQuery(_Query):
    case_no: str | None = Field(default=None, max_length=64, description="one case only")


class KpiQuery(_Query):
    by: Literal["unit", "street", "category", "source"] = "unit"
    from_: date = Field(alias="from")
    to: date


class PeriodQuery(_Query):
    from_: date = Field(alias="from")
    to: date


class KpiTrendQuery(PeriodQuery):
    by: Literal["day", "week", "month"] = Field(
        default="day", description="Shanghai calendar days, ISO weeks or months (at most 400)"
    )


class LedgerQuery(PeriodQuery):
    limit: int = Field(default=100, ge=1, le=1000)


class KpiRankingQuery(PeriodQuery):
    kind: Literal["street", "department"] = "street"


class CaseSummary(BaseModel):
    case_no: str
    source: str
    source_ref: str
    state: str
    category_code: str
    category_name: str
    urgency: str
    title: str
    address: str
    street_code: str | None
    unit_code: str | None = Field(description="the lead unit holding the case now")
    opened_at: datetime
    resolve_by: datetime | None
    closed_at: datetime | None
    supervised: bool


class CasePage(BaseModel):
    items: list[CaseSummary]
    next: str | None = Field(description="pass as `after` for the next page; null at the end")


class CaseDetail(BaseModel):
    """The case record with its tasks and full timeline (the caller's phone masked)."""

    model_config = ConfigDict(extra="allow")
    case_no: str
    state: str | None = None
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    timeline: list[dict[str, Any]] = Field(default_factory=list)


class OpenCount(BaseModel):
    unit_code: str = Field(description="the lead unit, or `unassigned`")
    state: str
    n: int


class OverdueCount(BaseModel):
    unit_code: str
    stage: Stage
    n: int


class PendingDecision(BaseModel):
    """A return waiting for the district's decision (`POST .../return-decision`)."""

    kind: Literal["return", "replace_co_unit"] = Field(
        description="a lead unit's return (退单), or a co-unit's: replace it or dismiss it"
    )
    case_no: str
    task_id: str
    unit_code: str
    return_reason: str | None = Field(description="the unit's reason; null for an escalation")
    since: datetime | None


class WaitingItem(BaseModel):
    """A decision the district owes: a case in triage or escalated, an extension request."""

    case_no: str
    task_id: str | None = Field(description="the task whose extension request waits")
    unit_code: str | None = Field(description="the unit asking for the extension")
    stage: DistrictStageName
    title: str
    urgency: str
    since: datetime
    due_at: datetime = Field(description="when the district must have decided (the policy)")
    overdue: bool


class Queues(BaseModel):
    open: list[OpenCount]
    overdue: list[OverdueCount] = Field(
        description="per unit and stage; the district's own stages under `<district>-CENTER`"
    )
    waiting: list[WaitingItem] = Field(
        default_factory=list, description="the district's pending decisions, nearest due first"
    )
    waiting_for_triage: int = Field(description="cases at the district: triage/returned/escalated")
    municipal_due_missed: int = Field(
        0, description="open cases that missed the municipal due time (12345 `due_at`)"
    )
    decisions: list[PendingDecision] = Field(
        default_factory=list, description="returns and co-units to replace, oldest first"
    )
    as_of: datetime


class RuleOut(BaseModel):
    category_code: str
    urgency: str
    source: str
    owner: str
    alt_owner: str | None
    version: int
    auto_redispatch_returns: bool = False


class RuleList(RootModel[list[RuleOut]]):
    pass


class RuleVersion(RuleOut):
    active: bool
    changed_by: str
    changed_at: datetime
    reason: str


class RuleHistory(RootModel[list[RuleVersion]]):
    pass


# -- commands: the bodies of POST /api/v1/cases/{case_no}/<command> and PUT /routing-rules -----


class Command(BaseModel):
    actor: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=2000)


class DispatchTo(Command):
    unit: str


class Reclassify(Command):
    """A new category for the case (e.g. an unclassified 9901 one): the units' tasks are
    withdrawn and the case is routed again by it."""

    category_code: str = Field(min_length=1, max_length=10, examples=["0102"])


class JointTask(Command):
    lead: str
    co_units: list[str] = Field(min_length=1, max_length=10)


class AddCoUnits(Command):
    """联勤联动 on a case a lead already works on: a co-unit task for each unit."""

    co_units: list[str] = Field(min_length=1, max_length=10)


class ReturnDecision(Command):
    """The district's decision on a return (退单) waiting on its queue: the lead's (the case is
    `returned`; `task_id` may be left out) or a co-unit's (`task_id`). Approved: re-dispatched
    to `unit`, or where routing suggests (a co-unit's: replaced by `unit`, or dismissed).
    Refused: the task goes back to its unit. `reason` is required (the ledger's)."""

    task_id: str | None = Field(default=None, min_length=1, max_length=64)
    approve: bool
    unit: str | None = Field(default=None, min_length=1, max_length=40)


class ExtensionDecision(Command):
    task_id: str
    approve: bool
    until: AwareDatetime | None = None


class Verification(Command):
    ok: bool


class SplitReport(Command):
    source_ref: str = Field(min_length=1, max_length=200)


class MergeCase(Command):
    into: str = Field(min_length=1, max_length=64)


class RevealPhone(Command):
    """A unit token reveals for its own unit (named or left out); a district supervisor names
    no unit and must give a `reason`."""

    unit_code: str | None = Field(default=None, min_length=1, max_length=40)


class PhoneRevealed(BaseModel):
    case_no: str
    unit_code: str | None
    phone: str


class RuleChange(Command):
    category_code: str
    owner: str
    alt_owner: str | None = None
    urgency: str = "*"
    source: str = "*"
    #: a return (退单) is re-dispatched by routing at once, without the district's decision
    auto_redispatch_returns: bool = False
