"""The KPI report: the period asked for, its JSON shape (API) and its table (`cityops kpis`)."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.common.config import Settings
from services.district.kpis import formulas as kpis
from services.district.kpis import queries as kpi_queries
from services.district.kpis.queries import DIMENSIONS, Gathered

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
            {"key": key, "name": result.names.get(key, ""), **_figures(counts)}
            for key, counts in result.groups.items()
        ],
        "total": _figures(kpis.total(result.groups)),
    }
    if district is not None:
        body["district_total"] = _figures(district)
    return body


def _figures(counts: kpis.Counts) -> dict[str, Any]:
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
        rows.append([key, result.names.get(key, ""), *map(_cell, kpis.compute(counts))])
    rows.append(["total", "", *map(_cell, kpis.compute(kpis.total(result.groups)))])
    widths = [max(_width(row[i]) for row in rows) for i in range(len(header))]
    title = (
        f"closed-loop KPIs by {by}, [{start.isoformat()}, {end.isoformat()}),"
        f" as of {result.as_of.astimezone(SHANGHAI).isoformat(timespec='seconds')}"
    )
    lines = [title, ""]
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [_pad(text, width, left=i < 2) for i, (text, width) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cell(kpi: kpis.Kpi) -> str:
    value = "–" if kpi.value is None else f"{kpi.value:.1%}"
    return f"{value} {kpi.numerator}/{kpi.denominator}"


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text


# -- `cityops kpis` ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=DIMENSIONS, default="unit", help="group by (unit)")
    parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD, included")
    parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD, excluded")


async def main(settings: Settings, args: argparse.Namespace) -> int:
    """Print the table for the period; 2 on a bad period or no database configured."""
    try:
        start, end = parse_period(args.start, args.end)
    except BadPeriod as exc:
        print(f"cityops kpis: {exc}", file=sys.stderr)
        return 2
    if not settings.database_url:
        print(
            "cityops kpis: set CITYOPS_DATABASE_URL (`make run` prints the embedded one)",
            file=sys.stderr,
        )
        return 2
    conn = await asyncpg.connect(settings.database_url)
    try:
        now = datetime.now(UTC)
        result = await kpi_queries.gather(conn, settings.district_code, args.by, start, end, now)
    finally:
        await conn.close()
    print(render_table(result, args.by, start, end))
    return 0
