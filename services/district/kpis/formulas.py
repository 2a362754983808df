"""Closed-loop KPIs (domain.md, "Closed-loop KPIs"): exact formulas over counts. Pure.

Every KPI comes with its numerator and denominator, so a small sample reads as one, and is None
when nothing was due. What each count means (and which rows it is read from) is written next to
it in `Counts`; `services/district/kpis/queries.py` gathers them from the case record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Counts:
    """The counts behind the KPIs of one group (a unit, street, category or source) and period."""

    # cases due to close in the period (应结案): closed in it, or open at its end past their
    # resolve deadline (a deadline inside the period)
    closed: int = 0
    closed_on_time: int = 0
    open_overdue: int = 0
    extended: int = 0  # of the cases due to close, those whose deadline was extended
    municipal_missed: int = 0  # of the cases due to close, those that missed the 12345 due time
    # follow-ups (回访) in the period; an unreachable citizen is not a follow-up
    followed_up: int = 0
    rated_resolved: int = 0
    rated: int = 0  # satisfied, basically satisfied or dissatisfied
    satisfied: int = 0  # satisfied or basically satisfied
    # resolutions and reopenings (重办) recorded in the period
    resolved: int = 0
    reopened: int = 0
    # tasks dispatched in the period
    dispatched: int = 0
    accept_decided: int = 0  # less those still inside their accept deadline, not yet accepted
    accepted_on_time: int = 0
    contact_required: int = 0  # lead tasks of callers who asked for a call back, decided
    contacted_on_time: int = 0
    returned: int = 0  # 退单
    accurate: int = 0  # neither returned nor re-dispatched to another unit
    # road-chief reports opened in the period, and those handled on the spot (自处置): not
    # dispatched work, so outside every figure above
    roadchief_reports: int = 0
    self_handled: int = 0

    @property
    def due_to_close(self) -> int:
        return self.closed + self.open_overdue

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Kpi:
    key: str
    name: str
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        """numerator / denominator; None when the denominator is 0 (nothing to rate)."""
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
        }


_Part = Callable[[Counts], int]

#: key, name, numerator, denominator: the table of domain.md, in its order.
FORMULAS: tuple[tuple[str, str, _Part, _Part], ...] = (
    ("closure_rate", "结案率", lambda c: c.closed, lambda c: c.due_to_close),
    # closed on time / (closed + open and overdue), not / closed: late cases must pull it down
    ("on_time_closure_rate", "按期结案率", lambda c: c.closed_on_time, lambda c: c.due_to_close),
    (
        "first_contact_rate",
        "先行联系率",
        lambda c: c.contacted_on_time,
        lambda c: c.contact_required,
    ),
    ("resolution_rate", "实际解决率", lambda c: c.rated_resolved, lambda c: c.followed_up),
    ("satisfaction_rate", "满意率", lambda c: c.satisfied, lambda c: c.rated),
    ("rework_rate", "返工率", lambda c: c.reopened, lambda c: c.resolved),
    ("extension_rate", "延期率", lambda c: c.extended, lambda c: c.due_to_close),
    ("return_rate", "退单率", lambda c: c.returned, lambda c: c.dispatched),
    ("dispatch_accuracy", "派遣准确率", lambda c: c.accurate, lambda c: c.dispatched),
    ("on_time_accept_rate", "按时签收率", lambda c: c.accepted_on_time, lambda c: c.accept_decided),
    # 自处置数 is its numerator
    ("self_handled_rate", "自处置率", lambda c: c.self_handled, lambda c: c.roadchief_reports),
)
KEYS = tuple(key for key, *_ in FORMULAS)


def compute(counts: Counts) -> list[Kpi]:
    """Every KPI of domain.md for one group, in the table's order."""
    return [Kpi(key, name, num(counts), den(counts)) for key, name, num, den in FORMULAS]


def total(groups: dict[str, Counts]) -> Counts:
    """The counts of all groups together (each row is counted in exactly one group)."""
    out = Counts()
    for counts in groups.values():
        out = out + counts
    return out
