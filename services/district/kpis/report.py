"""The KPI report: the period asked for, its JSON shape (API) and its table (`cityops kpis`).
Pure."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from services.district.kpis import formulas as kpis
from services.district.kpis.queries import Gathered

SHANGHAI = ZoneInfo("Asia/Shanghai")


class BadPeriod(ValueError):
    """The period cannot be read, or ends before it starts."""


#: years a period may name (the record's timestamps, in UTC, stay within PostgreSQL's range)
YEARS = range(1970, 9999)


def parse_instant(text: str) -> datetime:
    """`YYYY-MM-DD` is that day's midnight in Shanghai; an ISO datetime without an offset is
    Shanghai time too."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), SHANGHAI)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadPeriod(f"{text!r} is not YYYY-MM-DD or an ISO datetime") from exc
    if moment.year not in YEARS:
        raise BadPeriod(f"{text!r} is not between {YEARS.start} and {YEARS.stop - 1}")
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def parse_period(start: str, end: str) -> tuple[datetime, datetime]:
    """[start, end): both required; end after start."""
    begin, until = parse_instant(start), parse_instant(end)
    if until <= begin:
        raise BadPeriod(f"the period must end after it starts ({start} .. {end})")
    return begin, until


def to_json(
    result: Gathered,
    by: str,
    start: datetime,
    end: datetime,
    unit: str | None = None,
    district: kpis.Counts | None = None,
) -> dict[str, Any]:
    """The API's body: every group's counts and KPIs, and their total. For a unit's view
    (`unit`), the groups hold that unit's figures only and `district_total` the whole
    district's, for comparison."""
    body: dict[str, Any] = {
        "by": by,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": result.as_of.isoformat(),
        "scope": {"unit": unit} if unit else {"district": True},
        "groups": [
            {"key": key, "name": result.names.get(key, ""), **figures(counts)}
            for key, counts in result.groups.items()
        ],
        "total": figures(kpis.total(result.groups)),
    }
    if district is not None:
        body["district_total"] = figures(district)
    return body


def figures(counts: kpis.Counts) -> dict[str, Any]:
    return {
        "counts": counts.as_dict(),
        "kpis": {k.key: k.as_dict() for k in kpis.compute(counts)},
    }


# -- the table ---------------------------------------------------------------------------------


def render_table(result: Gathered, by: str, start: datetime, end: datetime) -> str:
    """An aligned table: one row per group and a total, each rate with its counts behind it."""
    header = [by, "name", *(name for _, name, *_ in kpis.FORMULAS)]
    rows = [header]
    for key, counts in result.groups.items():
        rows.append([key, result.names.get(key, ""), *map(cell, kpis.compute(counts))])
    rows.append(["total", "", *map(cell, kpis.compute(kpis.total(result.groups)))])
    title = (
        f"closed-loop KPIs by {by}, [{start.isoformat()}, {end.isoformat()}),"
        f" as of {result.as_of.astimezone(SHANGHAI).isoformat(timespec='seconds')}"
    )
    return "\n".join([title, "", *aligned(rows, left=2)])


def aligned(rows: list[list[str]], left: int) -> list[str]:
    """The rows' cells in columns (CJK characters take two); the first `left` columns are
    aligned left, the others right."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [_pad(text, width, left=i < left) for i, (text, width) in pairs]
        lines.append("  ".join(cells).rstrip())
    return lines


def cell(kpi: kpis.Kpi) -> str:
    value = "–" if kpi.value is None else f"{kpi.value:.1%}"
    return f"{value} {kpi.numerator}/{kpi.denominator}"


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text
