"""In-memory case records and the changes one batch makes to them. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from contracts.common import Urgency
from contracts.hotline import WorkOrder
from contracts.roadchief import Report
from contracts.tasks import TaskRole
from services.common.outbox import OutMessage
from services.district.cases.lifecycle import (
    ACTIVE_TASK,
    TERMINAL,
    CaseState,
    ExceptionDecision,
    ExceptionKind,
    TaskState,
)


@dataclass(slots=True)
class TaskRec:
    task_id: str
    case_no: str
    district_code: str
    unit_code: str
    role: TaskRole
    state: TaskState
    dispatched_at: datetime
    accept_by: datetime
    first_contact_by: datetime | None  # None: no first contact owed (see first_contact_owed)
    resolve_by: datetime
    accepted_at: datetime | None = None
    contacted_at: datetime | None = None
    resolved_at: datetime | None = None
    summary: str | None = None
    #: where the task's clock starts after a pause (挂账); None: at its dispatch
    clock_start: datetime | None = None
    #: the unit's reason when it returned the task (退单), for the district's decision
    return_reason: str | None = None
    #: a pending extension request (延期申请): when it was asked, when the district must decide
    extension_requested_at: datetime | None = None
    extension_due: datetime | None = None

    @property
    def started(self) -> datetime:
        """Where its stages' clock starts: the dispatch, or where it resumed after a pause."""
        return self.clock_start or self.dispatched_at

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_TASK

    def deadlines(self) -> dict[str, str | None]:
        """The task's deadlines as the case record shows them (before / after a change)."""
        first = self.first_contact_by
        return {
            "accept_by": self.accept_by.isoformat(),
            "first_contact_by": first.isoformat() if first else None,
            "resolve_by": self.resolve_by.isoformat(),
        }

    def resume_state(self) -> TaskState:
        """The working state its timestamps say it is in (after parking)."""
        if self.contacted_at:
            return TaskState.CONTACTED
        return TaskState.ACCEPTED if self.accepted_at else TaskState.ASSIGNED


@dataclass(slots=True)
class CaseRec:
    case_no: str
    district_code: str
    source: str
    source_ref: str
    state: CaseState
    category_code: str
    category_name: str
    urgency: Urgency
    title: str
    description: str
    address: str
    received_at: datetime
    opened_at: datetime
    street_code: str | None = None
    request_type: str | None = None
    lon: float | None = None
    lat: float | None = None
    caller_name: str | None = None
    caller_phone_sealed: bytes | None = None
    caller_phone_masked: str | None = None
    caller_anonymous: bool = False
    caller_callback: bool = True
    reporters: int = 1
    revision: int = 1
    municipal_due: datetime | None = None
    resolve_by: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    closed_on_time: bool | None = None
    last_seq: int = 0
    supervised: bool = False
    #: times its lead task was returned (a second return goes to an operator, routing.rules)
    returns: int = 0
    #: when a task was first due after the municipal due time (it had passed): missed
    municipal_missed_at: datetime | None = None
    #: when it was parked (挂账), while it is
    parked_at: datetime | None = None
    #: the district's own stage it waits in (triage, escalation, return decision), since, due
    waiting_stage: str | None = None
    waiting_since: datetime | None = None
    waiting_due: datetime | None = None
    #: the resolve deadline the case was first given, moved only by an approved extension
    #: (and the time it was parked): what the KPIs judge "due" and "on time" against
    due_by: datetime | None = None
    tasks: list[TaskRec] = field(default_factory=list)
    #: the other 12345 orders this case answers (并案: joined reports, merged cases)
    merged_orders: list[str] = field(default_factory=list)
    #: the (unit, state) this case is counted under in case_counts, as last persisted
    counted: tuple[str, str] | None = None

    def first_contact_owed(self, role: TaskRole) -> bool:
        """先行联系 is owed on a 12345 case's lead task, when the caller wants a call-back."""
        return role is TaskRole.LEAD and self.source == "hotline12345" and self.caller_callback

    def task(self, task_id: str) -> TaskRec | None:
        return next((t for t in self.tasks if t.task_id == task_id), None)

    def move_due(self, by: timedelta) -> None:
        """An approved extension (or the time parked) moves the first deadline by as much."""
        if self.due_by is not None and by > timedelta(0):
            self.due_by += by

    def active_tasks(self) -> list[TaskRec]:
        return [t for t in self.tasks if t.active]

    def lead(self) -> TaskRec | None:
        """The active lead task, if a unit currently holds the case."""
        return next((t for t in self.tasks if t.role == TaskRole.LEAD and t.active), None)

    def gauge_key(self) -> tuple[str, str] | None:
        """(lead unit or 'unassigned', state) for the open-case gauge; None once terminal."""
        if self.state in TERMINAL:
            return None
        lead = self.lead()
        return (lead.unit_code if lead else "unassigned", self.state.value)

    def last_lead(self) -> TaskRec | None:
        return next((t for t in reversed(self.tasks) if t.role == TaskRole.LEAD), None)

    def handling_unit(self) -> str | None:
        lead = self.last_lead()
        return lead.unit_code if lead else None

    def orders(self) -> list[str]:
        """Every 12345 order this case answers: its own (when it came from 12345), then the
        orders merged into it, each answered as its own order."""
        own = [self.source_ref] if self.source == "hotline12345" else []
        return own + self.merged_orders


@dataclass(slots=True)
class EventRec:
    case_no: str
    seq: int
    district_code: str
    type: str
    at: datetime
    actor: str
    from_state: str | None
    to_state: str
    unit_code: str | None
    data: dict[str, Any]

    @property
    def event_id(self) -> str:
        return f"{self.case_no}:{self.seq}"


@dataclass(frozen=True, slots=True)
class ExceptionRec:
    """One decision on an exception path (退单, 延期, 缓办, 作废): a row of the ledger."""

    district_code: str
    case_no: str
    task_id: str | None
    unit_code: str | None
    kind: ExceptionKind
    decision: ExceptionDecision
    approver: str
    token_id: str | None
    reason: str
    decided_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ReporterRec:
    """A duplicate report joined to an open case (并案); `message` is the validated report."""

    case_no: str
    source: str
    source_ref: str
    caller_phone_masked: str | None
    caller_phone_sealed: bytes | None
    joined_at: datetime
    message: dict[str, Any]


@dataclass(slots=True)
class ParkedRec:
    """An inbound record about a case not yet seen, waiting for it (original bytes kept: with
    every phone number masked in `value` and the original sealed in `value_sealed` when it
    holds one)."""

    district_code: str
    lookup: str
    topic: str
    kafka_partition: int
    kafka_offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    received_at: datetime
    value_sealed: bytes | None = None


def lookup_key(lookup: tuple[str, str] | str) -> str:
    """How a parked message names its case: 'source:source_ref', or the case number."""
    return lookup if isinstance(lookup, str) else f"{lookup[0]}:{lookup[1]}"


def source_of(m: WorkOrder | Report) -> tuple[str, str]:
    """(source, source_ref): how the case record names the report a case came from."""
    return ("hotline12345", m.order_no) if isinstance(m, WorkOrder) else ("roadchief", m.report_id)


def case_number(district_code: str, n: int, now: datetime) -> str:
    return f"{district_code}-{now.year:04d}{now.month:02d}{now.day:02d}-{n:07d}"


@dataclass
class Changes:
    """Everything one batch decided; written in one transaction, metrics applied after commit."""

    new_cases: list[CaseRec] = field(default_factory=list)
    new_tasks: list[TaskRec] = field(default_factory=list)
    #: tasks whose alarms were (re)computed: task id -> (task, next alarm or None)
    timers: dict[str, tuple[TaskRec, datetime | None]] = field(default_factory=dict)
    #: the district's waits whose alarms were (re)armed, by case number (triage, escalation)
    #: or task id (extension): (timer key, case number, district, next alarm or None)
    waits: dict[str, tuple[str, str, str, datetime | None]] = field(default_factory=dict)
    cases: dict[str, CaseRec] = field(default_factory=dict)  # touched, by case_no
    tasks: dict[str, TaskRec] = field(default_factory=dict)  # touched, by task_id
    events: list[EventRec] = field(default_factory=list)
    outbox: list[OutMessage] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    reporters: list[ReporterRec] = field(default_factory=list)  # joined duplicates
    split: list[tuple[str, str]] = field(default_factory=list)  # (source, ref) split out
    #: merged cases whose reporters move to the case they joined: (from case, into case)
    moved: list[tuple[str, str]] = field(default_factory=list)
    parked: list[ParkedRec] = field(default_factory=list)  # to park
    unparked: list[int] = field(default_factory=list)  # parked ids applied or expired
    exceptions: list[ExceptionRec] = field(default_factory=list)  # the ledger's new rows
    #: the API token the decisions were taken under, recorded in each event (None: no API)
    token_id: str | None = None

    def extend(self, other: Changes) -> None:
        """Add what another batch decided: its lists appended, its maps merged."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)

    def touch(self, case: CaseRec, *tasks: TaskRec) -> None:
        self.cases[case.case_no] = case
        for t in tasks:
            self.tasks[t.task_id] = t

    def savepoint(self, *cases: CaseRec) -> Savepoint:
        """A point to return to: every field of the change set, and the `cases` a decision
        may change (with their tasks). Costs O(the cases' tasks), not O(the batch): inside a
        savepoint lists only grow, and maps only gain keys or change those of `cases`."""
        keys = {c.case_no for c in cases} | {t.task_id for c in cases for t in c.tasks}
        marks: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                marks[f.name] = len(value)
            elif isinstance(value, dict):
                marks[f.name] = (len(value), {k: value[k] for k in keys if k in value})
            else:
                marks[f.name] = value
        return Savepoint(marks, [_RecordState.of(c) for c in cases])

    def rollback(self, sp: Savepoint) -> None:
        """Undo everything decided since `sp`: the change set's fields, and the cases and
        tasks restored in place (every reference to them stays valid)."""
        for name, mark in sp.marks.items():
            value = getattr(self, name)
            if isinstance(value, list):
                assert isinstance(mark, int)
                del value[mark:]
            elif isinstance(value, dict):
                assert isinstance(mark, tuple)
                size, entries = mark
                for key in list(value)[size:]:
                    del value[key]
                value.update(entries)
            else:
                setattr(self, name, mark)
        for state in sp.records:
            state.restore()


@dataclass(frozen=True, slots=True)
class _RecordState:
    """A case's fields and its tasks' fields, as they were."""

    case: CaseRec
    values: dict[str, Any]
    tasks: list[tuple[TaskRec, dict[str, Any]]]

    @classmethod
    def of(cls, case: CaseRec) -> _RecordState:
        return cls(case, _values(case), [(t, _values(t)) for t in case.tasks])

    def restore(self) -> None:
        for name, value in self.values.items():
            setattr(self.case, name, value)
        self.case.tasks = [t for t, _ in self.tasks]
        for task, values in self.tasks:
            for name, value in values.items():
                setattr(task, name, value)


def _values(rec: CaseRec | TaskRec) -> dict[str, Any]:
    return {f.name: getattr(rec, f.name) for f in fields(rec) if f.name != "tasks"}


@dataclass(frozen=True, slots=True)
class Savepoint:
    """What `Changes.savepoint` took: list lengths and map copies by field, and records."""

    marks: dict[str, object]
    records: list[_RecordState]
