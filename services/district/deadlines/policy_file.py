"""The deadline policy read from its file (`deploy/reference/deadline_policy.csv`).

One rule a line: `stage,urgency,request_type,category,value` (the file's header explains
them); `#` lines and blank lines are comments. Anything wrong stops the start with a
`PolicyFileError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from contracts.common import Urgency
from contracts.hotline import RequestType
from services.common.config import ROOT
from services.district.deadlines.policy import (
    GRID,
    DeadlinePolicy,
    Duration,
    parse_duration,
)

#: the file shipped with CityOps
DEFAULT_PATH = ROOT / "deploy" / "reference" / "deadline_policy.csv"
COLUMNS = ("stage", "urgency", "request_type", "category", "value")
ANY = "*"
_BY_URGENCY = ("accept", "first_contact", "triage", "escalation_decision", "return_decision")
_SINGLE = ("reopened", "supervised", "max_extension", "extension_decision")
_REQUEST_TYPES = (*(t.value for t in RequestType), GRID)
_URGENCIES = tuple(u.value for u in Urgency)
_PERIOD_RE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


class PolicyFileError(ValueError):
    """A bad deadline policy file: which line, which field, what is wrong."""

    def __init__(self, path: Path, line: int | None, column: str | None, problem: str) -> None:
        where = f"{path}" + (f", line {line}" if line is not None else "")
        what = f" ({column})" if column else ""
        super().__init__(f"deadline policy {where}{what}: {problem}")
        self.path, self.line, self.column = path, line, column


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    stage: str
    urgency: str
    request_type: str
    category: str
    value: str


def load_policy(
    path: Path = DEFAULT_PATH, categories: Collection[str] | None = None
) -> DeadlinePolicy:
    """The policy of the file at `path`; `categories`: the known category codes (overrides
    naming another are refused), None to accept any."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(path, None, None, f"cannot be read: {exc.strerror}") from None
    return _Builder(path, categories).build(_lines(path, text))


@functools.cache
def default_policy() -> DeadlinePolicy:
    """The policy shipped in `deploy/reference/deadline_policy.csv` (tests, tools)."""
    return load_policy(DEFAULT_PATH)


def _lines(path: Path, text: str) -> Iterator[_Line]:
    header_seen = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([raw]))]
        if not header_seen:
            if tuple(cells) != COLUMNS:
                raise PolicyFileError(path, number, None, f"header must be {','.join(COLUMNS)}")
            header_seen = True
            continue
        if len(cells) != len(COLUMNS):
            raise PolicyFileError(
                path, number, None, f"{len(cells)} fields, expected {len(COLUMNS)}"
            )
        yield _Line(number, *cells)
    if not header_seen:
        raise PolicyFileError(path, None, None, "no header line")


class _Builder:
    def __init__(self, path: Path, categories: Collection[str] | None) -> None:
        self.path, self.categories = path, categories
        self.by_urgency: dict[tuple[str, str], Duration] = {}
        self.single: dict[str, Duration] = {}
        self.resolve: dict[str, Duration] = {}
        self.overrides: dict[tuple[str, str], Duration] = {}
        self.office: list[tuple[int, time, time]] = []
        self.warn: float | None = None
        self.seen: dict[tuple[str, str, str, str], int] = {}

    def fail(self, line: _Line | None, column: str | None, problem: str) -> PolicyFileError:
        return PolicyFileError(self.path, line.number if line else None, column, problem)

    def build(self, lines: Iterator[_Line]) -> DeadlinePolicy:
        for line in lines:
            self.add(line)
        return self.policy()

    def add(self, line: _Line) -> None:
        self._add(line)  # the fields first, then whether the rule repeats another
        key = (line.stage, line.urgency, line.request_type, line.category)
        if line.stage != "office_hours" and key in self.seen:
            raise self.fail(line, None, f"repeats line {self.seen[key]}")
        self.seen[key] = line.number

    def _add(self, line: _Line) -> None:
        if line.stage == "office_hours":
            self._wildcards(line, "urgency", "request_type", "category")
            self.office.append((line.number, *self._period(line)))
        elif line.stage == "warn_fraction":
            self._wildcards(line, "urgency", "request_type", "category")
            self.warn = self._fraction(line)
        elif line.stage in _BY_URGENCY:
            self._wildcards(line, "request_type", "category")
            if line.urgency != ANY and line.urgency not in _URGENCIES:
                raise self.fail(line, "urgency", f"{line.urgency!r} is not one of {_URGENCIES}")
            self.by_urgency[(line.stage, line.urgency)] = self._duration(line)
        elif line.stage in _SINGLE:
            self._wildcards(line, "urgency", "request_type", "category")
            self.single[line.stage] = self._duration(line)
        elif line.stage == "resolve":
            self._resolve(line)
        else:
            known = (*_BY_URGENCY, "resolve", *_SINGLE, "office_hours", "warn_fraction")
            raise self.fail(line, "stage", f"unknown stage {line.stage!r}; one of {known}")

    def _resolve(self, line: _Line) -> None:
        self._wildcards(line, "urgency")
        if line.request_type != ANY and line.request_type not in _REQUEST_TYPES:
            problem = f"{line.request_type!r} is not one of {_REQUEST_TYPES}"
            raise self.fail(line, "request_type", problem)
        duration = self._duration(line)
        if line.category != ANY:
            if self.categories is not None and line.category not in self.categories:
                raise self.fail(line, "category", f"unknown category {line.category!r}")
            self.overrides[(line.category, line.request_type)] = duration
        elif line.request_type == ANY:
            raise self.fail(line, "request_type", "name the request type (or grid)")
        else:
            self.resolve[line.request_type] = duration

    def _wildcards(self, line: _Line, *columns: str) -> None:
        for column in columns:
            if getattr(line, column) != ANY:
                raise self.fail(line, column, f"must be * for {line.stage}")

    def _duration(self, line: _Line) -> Duration:
        try:
            return parse_duration(line.value)
        except ValueError as exc:
            raise self.fail(line, "value", str(exc)) from None

    def _fraction(self, line: _Line) -> float:
        try:
            value = float(line.value)
        except ValueError:
            raise self.fail(line, "value", f"{line.value!r} is not a number") from None
        if not 0.0 < value < 1.0:
            raise self.fail(line, "value", f"warn_fraction must be in (0, 1), got {value}")
        return value

    def _period(self, line: _Line) -> tuple[time, time]:
        match = _PERIOD_RE.fullmatch(line.value)
        try:
            if match is None:
                raise ValueError
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            begin, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise self.fail(line, "value", f"{line.value!r} is not a period HH:MM-HH:MM") from None
        if begin >= end:
            raise self.fail(line, "value", f"{line.value!r} ends before it starts")
        if self.office and self.office[-1][2] > begin:
            previous = self.office[-1][0]
            raise self.fail(line, "value", f"overlaps or precedes the period of line {previous}")
        return begin, end

    def _urgencies(self, stage: str) -> dict[str, Duration]:
        out = {}
        for urgency in _URGENCIES:
            found = self.by_urgency.get((stage, urgency)) or self.by_urgency.get((stage, ANY))
            if found is None:
                raise self.fail(None, None, f"no {stage} deadline for urgency {urgency}")
            out[urgency] = found
        return out

    def policy(self) -> DeadlinePolicy:
        kwargs: dict[str, Any] = {}
        for stage in _BY_URGENCY:
            for urgency, duration in self._urgencies(stage).items():
                kwargs[f"{stage}_{urgency}"] = duration
        for stage in _SINGLE:
            if stage not in self.single:
                raise self.fail(None, None, f"no {stage} deadline")
            kwargs[stage] = self.single[stage]
        missing = [t for t in _REQUEST_TYPES if t not in self.resolve]
        if missing:
            raise self.fail(None, None, f"no resolve deadline for request type {missing[0]}")
        kwargs["grid_default"] = self.resolve[GRID]
        by_type = {t: d for t, d in self.resolve.items() if t != GRID}
        kwargs["resolve_by_request_type"] = MappingProxyType(by_type)
        kwargs["category_resolve"] = MappingProxyType(dict(self.overrides))
        if not self.office:
            raise self.fail(None, None, "no office_hours line")
        kwargs["office_hours"] = tuple((b, e) for _, b, e in self.office)
        if self.warn is None:
            raise self.fail(None, None, "no warn_fraction line")
        kwargs["warn_fraction"] = self.warn
        return DeadlinePolicy(**kwargs)
