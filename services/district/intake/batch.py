"""One batch's working set in the intake: the cases it touches, by number, by upstream
reference and (for 并案) by category; what it parked and unparked; its outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from services.common.consumer import Record
from services.district.cases.model import CaseRec, Changes, ParkedRec
from services.district.intake.parse import Command


@dataclass
class WorkingSet:
    """One batch's working set: cases by number and by upstream reference, and outcomes."""

    changes: Changes = field(default_factory=Changes)
    by_no: dict[str, CaseRec] = field(default_factory=dict)
    by_ref: dict[tuple[str, str], CaseRec] = field(default_factory=dict)
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    #: open cases by category, where new reports look for a duplicate (并案)
    by_category: dict[str, list[CaseRec]] = field(default_factory=dict)
    #: messages waiting for a case: parked before this batch (row id) and in this batch
    parked_before: dict[str, list[tuple[int, Record]]] = field(default_factory=dict)
    parked_now: dict[str, list[tuple[ParkedRec, Record, Command]]] = field(default_factory=dict)
    #: idempotency keys of openings refused (no case records that they were handled)
    refused: list[str] = field(default_factory=list)
    #: the case numbers reserved for the cases this batch opens, in order
    numbers: Iterator[int] = field(default_factory=lambda: iter(()))

    def add(self, case: CaseRec) -> None:
        self.by_no[case.case_no] = case
        self.by_ref[(case.source, case.source_ref)] = case
        if case.lon is not None:
            self.by_category.setdefault(case.category_code, []).append(case)

    def find(self, lookup: tuple[str, str] | str) -> CaseRec | None:
        return self.by_no.get(lookup) if isinstance(lookup, str) else self.by_ref.get(lookup)
