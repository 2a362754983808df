"""The KPI reads the API and `cityops kpis` share: a trend over a period and a ranking."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from services.district.kpis import queries
from services.district.kpis.formulas import Counts
from services.district.kpis.ranking import Ranked, RankKind, rank
from services.district.kpis.trend import Bucket, Step, buckets


async def trend(
    conn: asyncpg.Connection,
    district_code: str,
    step: Step,
    start: datetime,
    end: datetime,
    as_of: datetime,
    unit: str | None = None,
) -> tuple[list[tuple[Bucket, Counts]], list[Counts] | None]:
    """Each bucket's totals (a unit's own, with `unit`) and, for a unit, the district's.
    Raises trend.TooManyBuckets for a period too long for the step."""
    cut = buckets(start, end, step)
    periods = [(b.start, b.end) for b in cut]
    own = await queries.trend(conn, district_code, periods, as_of, unit)
    whole = None
    if unit is not None:
        whole = await queries.trend(conn, district_code, periods, as_of)
    return list(zip(cut, own, strict=True)), whole


async def ranking(
    conn: asyncpg.Connection,
    district_code: str,
    kind: RankKind,
    start: datetime,
    end: datetime,
    as_of: datetime,
    weights: Mapping[str, float],
) -> list[Ranked]:
    """Every street (or department) of the district scored on its own figures, ranked; a unit
    with nothing in the period is listed without a score."""
    result = await queries.gather(conn, district_code, "unit", start, end, as_of)
    tiers = await queries.unit_tiers(conn, district_code)
    groups = {u: result.groups.get(u, Counts()) for u, tier in tiers.items() if tier == kind}
    return rank(groups, result.names, weights)
