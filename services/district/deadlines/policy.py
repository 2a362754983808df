"""Case deadlines (SLA) from domain.md "Deadlines (SLA)" (pure, no I/O).

The table itself is data: `deploy/reference/deadline_policy.csv`, read at start by
`policy_file.load_policy` (the code holds no defaults). Normal cases count working time on a
`WorkCalendar`; urgent and critical cases run on the clock,
so for them a working hour is a natural hour and a working day is 24 hours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from contracts.common import Urgency
from services.district.deadlines.workcal import WorkCalendar

OfficeHours = tuple[tuple[time, time], ...]

URGENCIES = tuple(u.value for u in Urgency)
DEFAULT_WARN_FRACTION = 0.8
StageStatus = Literal["ok", "warning", "overdue"]


class Unit(StrEnum):
    WORKING_HOURS = "WH"
    WORKING_DAYS = "WD"
    MINUTES = "min"
    HOURS = "h"
    DAYS = "d"


_UNITS = {unit.value.lower(): unit for unit in Unit}
_DURATION_RE = re.compile(r"\s*(\d+)\s*([A-Za-z]+)\s*")
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
_NATURAL = {
    Unit.WORKING_HOURS: _HOUR,
    Unit.WORKING_DAYS: _DAY,
    Unit.MINUTES: timedelta(minutes=1),
    Unit.HOURS: _HOUR,
    Unit.DAYS: _DAY,
}


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit.value}"

    def after(self, start: datetime, calendar: WorkCalendar, natural: bool) -> datetime:
        """The deadline this duration sets from `start` (aware, in the calendar's zone)."""
        local = calendar.to_local(start)
        if self.unit is Unit.WORKING_HOURS and not natural:
            return calendar.add_working_time(local, timedelta(hours=self.amount))
        if self.unit is Unit.WORKING_DAYS and not natural:
            return calendar.add_working_days(local, self.amount)
        return _plus_natural(calendar, local, self.amount * _NATURAL[self.unit])


def _plus_natural(calendar: WorkCalendar, moment: datetime, delta: timedelta) -> datetime:
    return calendar.to_local(moment.astimezone(UTC) + delta)


def parse_duration(text: str) -> Duration:
    """Parse "4WH", "7WD", "30min", "2h", "1d"; ValueError for anything else."""
    match = _DURATION_RE.fullmatch(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 4WH, 7WD, 30min, 2h, 1d")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"invalid duration {text!r}: amount must be positive")
    return Duration(amount, unit)


#: category overrides: (category code, request type or "grid" or "*") -> resolve duration
CategoryOverrides = Mapping[tuple[str, str], Duration]
GRID = "grid"  # the request type of road-chief (grid) reports in the policy file


@dataclass(frozen=True)
class DeadlinePolicy:
    """The deadline table (`deploy/reference/deadline_policy.csv`, no defaults in code);
    `with_mapping` / `to_mapping` use duration strings."""

    accept_normal: Duration
    accept_urgent: Duration
    accept_critical: Duration
    first_contact_normal: Duration
    first_contact_urgent: Duration
    first_contact_critical: Duration
    resolve_by_request_type: Mapping[str, Duration] = field(hash=False)
    grid_default: Duration
    supervised: Duration
    reopened: Duration
    max_extension: Duration
    #: the district's own stages: manual triage, an escalation's decision, a return's (退单
    #: review), an extension's
    triage_normal: Duration
    triage_urgent: Duration
    triage_critical: Duration
    escalation_decision_normal: Duration
    escalation_decision_urgent: Duration
    escalation_decision_critical: Duration
    return_decision_normal: Duration
    return_decision_urgent: Duration
    return_decision_critical: Duration
    extension_decision: Duration
    warn_fraction: float
    office_hours: OfficeHours
    #: a category's own resolve deadline, before the request type's or its `handle_sla`
    category_resolve: CategoryOverrides = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.warn_fraction < 1.0:
            raise ValueError(f"warn_fraction must be in (0, 1), got {self.warn_fraction}")
        WorkCalendar(office_hours=self.office_hours)  # ordered, non-overlapping periods

    def calendar(self, **kwargs: Any) -> WorkCalendar:
        """The working-time calendar of the policy's office hours."""
        return WorkCalendar(office_hours=self.office_hours, **kwargs)

    def triage(self, urgency: Urgency) -> Duration:
        return _by_urgency(urgency, self.triage_normal, self.triage_urgent, self.triage_critical)

    def escalation_decision(self, urgency: Urgency) -> Duration:
        return _by_urgency(
            urgency,
            self.escalation_decision_normal,
            self.escalation_decision_urgent,
            self.escalation_decision_critical,
        )

    def return_decision(self, urgency: Urgency) -> Duration:
        return _by_urgency(
            urgency,
            self.return_decision_normal,
            self.return_decision_urgent,
            self.return_decision_critical,
        )

    def resolve_for_category(self, category_code: str, request_type: str | None) -> Duration | None:
        """The category's override of the resolve deadline, if the policy has one."""
        table = self.category_resolve
        return table.get((category_code, request_type or GRID)) or table.get((category_code, "*"))

    def accept(self, urgency: Urgency) -> Duration:
        return _by_urgency(urgency, self.accept_normal, self.accept_urgent, self.accept_critical)

    def first_contact(self, urgency: Urgency) -> Duration:
        return _by_urgency(
            urgency,
            self.first_contact_normal,
            self.first_contact_urgent,
            self.first_contact_critical,
        )

    def resolve_for_type(self, request_type: str) -> Duration:
        try:
            return self.resolve_by_request_type[request_type]
        except KeyError:
            raise ValueError(f"no resolve deadline for request_type {request_type!r}") from None

    def with_mapping(self, data: Mapping[str, object]) -> DeadlinePolicy:
        """This policy with plain values over it; request types merge over its own."""
        known = {f.name for f in fields(self)} - _NOT_MAPPED
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown deadline policy keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {k: _policy_value(self, k, v) for k, v in data.items()}
        return replace(self, **kwargs)

    def to_mapping(self) -> dict[str, object]:
        """The durations, request types and warn fraction as plain values."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NOT_MAPPED:
                continue
            if isinstance(value, Duration):
                out[f.name] = str(value)
            elif f.name == "resolve_by_request_type":
                out[f.name] = {k: str(v) for k, v in value.items()}
            else:
                out[f.name] = value
        return out


_NOT_MAPPED = frozenset({"office_hours", "category_resolve"})


def _as_duration(key: str, value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"{key}: expected a duration string, got {value!r}")


def _policy_value(base: DeadlinePolicy, key: str, value: object) -> object:
    if key == "warn_fraction":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"warn_fraction: expected a number, got {value!r}")
        return float(value)
    if key == "resolve_by_request_type":
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        table = dict(base.resolve_by_request_type)
        table.update({str(k): _as_duration(f"{key}.{k}", v) for k, v in value.items()})
        return MappingProxyType(table)
    return _as_duration(key, value)


def _by_urgency(
    urgency: Urgency, normal: Duration, urgent: Duration, critical: Duration
) -> Duration:
    table = {Urgency.NORMAL: normal, Urgency.URGENT: urgent, Urgency.CRITICAL: critical}
    if urgency not in table:
        raise ValueError(f"unknown urgency {urgency!r}; expected one of {URGENCIES}")
    return table[urgency]


@dataclass(frozen=True)
class Deadlines:
    accept_by: datetime
    first_contact_by: datetime | None  # None: no first contact is owed
    resolve_by: datetime


def is_natural(urgency: Urgency) -> bool:
    """Urgent and critical cases count natural time."""
    return urgency in (Urgency.URGENT, Urgency.CRITICAL)


def _resolve_duration(
    policy: DeadlinePolicy,
    request_type: str | None,
    category_sla: str | None,
    reopened: bool,
    supervised: bool,
    category_code: str | None,
) -> Duration:
    if reopened:
        return policy.reopened
    if supervised:
        return policy.supervised
    if category_code is not None:
        override = policy.resolve_for_category(category_code, request_type)
        if override is not None:
            return override
    if request_type is not None:
        return policy.resolve_for_type(request_type)
    return parse_duration(category_sla) if category_sla else policy.grid_default


def compute_deadlines(
    *,
    dispatched_at: datetime,
    urgency: Urgency,
    request_type: str | None,
    category_sla: str | None,
    municipal_due: datetime | None,
    calendar: WorkCalendar,
    policy: DeadlinePolicy,
    reopened: bool = False,
    supervised: bool = False,
    first_contact_owed: bool = True,
    category_code: str | None = None,
) -> Deadlines:
    """Stage deadlines for a case dispatched at `dispatched_at`.

    Reopened and supervised cases resolve by their own rule; otherwise a category override of
    the policy (`category_code`) comes first, then 12345 orders (request_type given) by the
    request-type rule, grid reports by the category SLA (policy.grid_default when none).
    First contact only where `first_contact_owed` (else None). Resolution is never due
    before acceptance, first contact never after resolution,
    and an earlier `municipal_due` caps all three while it lies ahead: once it has passed, the
    task gets the policy's deadlines (a task is never due before it is dispatched).
    """
    natural = is_natural(urgency)
    start = calendar.to_local(dispatched_at)
    accept = policy.accept(urgency).after(start, calendar, natural)
    first = policy.first_contact(urgency).after(start, calendar, natural)
    resolve_rule = _resolve_duration(
        policy, request_type, category_sla, reopened, supervised, category_code
    )
    resolve = max(resolve_rule.after(start, calendar, natural), accept)
    first = min(first, resolve)
    if municipal_due is not None and municipal_due > dispatched_at:
        due = calendar.to_local(municipal_due)
        accept, first, resolve = min(accept, due), min(first, due), min(resolve, due)
    owed = first if first_contact_owed else None
    return Deadlines(accept_by=accept, first_contact_by=owed, resolve_by=resolve)


def warn_at(
    start: datetime,
    deadline: datetime,
    calendar: WorkCalendar,
    natural: bool,
    warn_fraction: float = DEFAULT_WARN_FRACTION,
) -> datetime:
    """The instant `warn_fraction` of the (working or natural) time to `deadline` has elapsed."""
    start, deadline = calendar.to_local(start), calendar.to_local(deadline)
    if deadline <= start:
        return deadline
    if natural:
        elapsed = (deadline.astimezone(UTC) - start.astimezone(UTC)) * warn_fraction
        return _plus_natural(calendar, start, elapsed)
    allowed = calendar.working_time_between(start, deadline)
    return min(calendar.add_working_time(start, allowed * warn_fraction), deadline)


def stage_status(
    now: datetime,
    start: datetime,
    deadline: datetime,
    calendar: WorkCalendar,
    natural: bool,
    warn_fraction: float = DEFAULT_WARN_FRACTION,
) -> StageStatus:
    """Overdue from the deadline on, warning from the warn instant on, else ok."""
    now = calendar.to_local(now)
    if now >= calendar.to_local(deadline):
        return "overdue"
    if now >= warn_at(start, deadline, calendar, natural, warn_fraction):
        return "warning"
    return "ok"
