"""The hotspot tables' SQL (deploy/migrations/050_hotspots.sql): counting reports, the
buckets and peers a detection round reads, the hotspots it writes, the list the API serves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contracts.hotspots import HotspotKind
from services.district.hotspots.areas import AreaKind
from services.district.hotspots.detector import Sent
from services.district.hotspots.plan import Key, Spot


@dataclass(frozen=True, slots=True)
class Report:
    """One report to count: the event that brought it and where and what it is about."""

    event_id: str
    case_no: str
    category_code: str
    street_code: str | None
    geo_cell: int | None
    place: str | None
    lon: float | None
    lat: float | None
    at: datetime


_COUNT = """
WITH ins AS (
    INSERT INTO hotspot_reports (event_id, district_code, case_no, category_code, street_code,
                                 geo_cell, place, lon, lat, at)
    SELECT r.event_id, $1, r.case_no, r.category_code, r.street_code, r.geo_cell, r.place,
           r.lon, r.lat, r.at
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[],
                $8::float8[], $9::float8[], $10::timestamptz[])
         AS r(event_id, case_no, category_code, street_code, geo_cell, place, lon, lat, at)
    ORDER BY r.event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING category_code, street_code, geo_cell, place, at
), keys AS (
    SELECT 'cell' AS area_kind, 'cluster' AS kind, geo_cell::text AS area, category_code, at
      FROM ins WHERE geo_cell IS NOT NULL
    UNION ALL SELECT 'street', 'surge', street_code, category_code, at
      FROM ins WHERE street_code IS NOT NULL
    UNION ALL SELECT 'place', 'repeat', place, category_code, at
      FROM ins WHERE place IS NOT NULL
), buckets AS (
    SELECT area_kind, area, category_code, 'hour' AS grain, date_trunc('hour', at, 'UTC') AS b
      FROM keys WHERE area_kind <> 'place'
    UNION ALL SELECT area_kind, area, category_code, 'day', date_trunc('day', at, 'Asia/Shanghai')
      FROM keys
), counted AS (
    INSERT INTO hotspot_counts (district_code, area_kind, category_code, area, grain, bucket, n)
    SELECT $1, area_kind, category_code, area, grain, b, count(*) FROM buckets
    GROUP BY area_kind, category_code, area, grain, b
    ORDER BY area_kind, category_code, area, grain, b
    ON CONFLICT (district_code, area_kind, category_code, area, grain, bucket)
    DO UPDATE SET n = hotspot_counts.n + EXCLUDED.n
), meta AS (
    INSERT INTO hotspot_meta (district_code, counting_since)
    SELECT $1, min(at) FROM ins HAVING count(*) > 0
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM ins
"""


async def reported_cases(
    conn: asyncpg.Connection, district: str, case_nos: Sequence[str], skip_state: str
) -> dict[str, asyncpg.Record]:
    """The cases reports opened or joined (not those found to be another district's)."""
    rows = await conn.fetch(
        "SELECT case_no, category_code, street_code, geo_cell, lon, lat, address FROM cases"
        " WHERE case_no = ANY($1::text[]) AND district_code = $2 AND state <> $3",
        list(case_nos),
        district,
        skip_state,
    )
    return {r["case_no"]: r for r in rows}


async def count(conn: asyncpg.Connection, district: str, reports: Sequence[Report]) -> int:
    """Count each report once (by its event id): buckets, keys to judge, the first count's
    time. Returns how many were new."""
    cols = [[getattr(r, f) for r in reports] for f in Report.__slots__]
    return int(await conn.fetchval(_COUNT, district, *cols))


_COUNTED_SINCE = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS below),
judged AS (
    UPDATE hotspot_meta m SET judged_below = h.below FROM horizon h
    WHERE m.district_code = $1 RETURNING m.judged_below AS below, h.below AS upto
), old AS (SELECT * FROM hotspot_meta WHERE district_code = $1),
leftover AS (
    DELETE FROM hotspot_dirty WHERE district_code = $1 RETURNING kind, area, category_code
), reports AS (
    SELECT r.category_code, r.street_code, r.geo_cell, r.place
    FROM hotspot_reports r, old o, horizon h
    WHERE r.district_code = $1 AND r.counted_by >= o.judged_below AND r.counted_by < h.below
)
SELECT DISTINCT * FROM (
    SELECT 'cluster' AS kind, geo_cell::text AS area, category_code FROM reports
      WHERE geo_cell IS NOT NULL
    UNION ALL SELECT 'surge', street_code, category_code FROM reports WHERE street_code IS NOT NULL
    UNION ALL SELECT 'repeat', place, category_code FROM reports WHERE place IS NOT NULL
    UNION ALL SELECT * FROM leftover
) AS k ORDER BY 1, 2, 3
"""


async def take_dirty(conn: asyncpg.Connection, district: str) -> list[Key]:
    """The keys that saw reports since the previous round (and any an older version left in
    hotspot_dirty); the next round starts after them. One statement: its snapshot is the
    horizon, and all its parts see the same one."""
    rows = await conn.fetch(_COUNTED_SINCE, district)
    return [Key(HotspotKind(r["kind"]), r["area"], r["category_code"]) for r in rows]


async def counting_since(conn: asyncpg.Connection, district: str) -> datetime | None:
    since: datetime | None = await conn.fetchval(
        "SELECT counting_since FROM hotspot_meta WHERE district_code = $1", district
    )
    return since


async def open_spots(conn: asyncpg.Connection, district: str) -> list[Spot]:
    rows = await conn.fetch(
        "SELECT hotspot_id, kind, area, category_code, count, updated_at FROM hotspots"
        " WHERE district_code = $1 AND state = 'open' ORDER BY hotspot_id",
        district,
    )
    return [
        Spot(
            r["hotspot_id"],
            Key(HotspotKind(r["kind"]), r["area"], r["category_code"]),
            Sent(r["count"], r["updated_at"]),
        )
        for r in rows
    ]


async def buckets(
    conn: asyncpg.Connection,
    district: str,
    kind: AreaKind,
    pairs: Sequence[tuple[str, str]],
    since: datetime,
) -> list[asyncpg.Record]:
    """The buckets since `since` of the (category, area) pairs of one area kind."""
    return list(
        await conn.fetch(
            "SELECT c.category_code, c.area, c.grain, c.bucket, c.n"
            " FROM unnest($3::text[], $4::text[]) AS k(category_code, area)"
            " JOIN hotspot_counts c ON c.district_code = $1 AND c.area_kind = $2"
            "  AND c.category_code = k.category_code AND c.area = k.area AND c.bucket >= $5",
            district,
            kind.value,
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            since,
        )
    )


async def peer_buckets(
    conn: asyncpg.Connection,
    district: str,
    kind: AreaKind,
    category: str,
    grain: str,
    since: datetime,
) -> list[asyncpg.Record]:
    """Every area's buckets of one kind, category and grain since `since`."""
    return list(
        await conn.fetch(
            "SELECT area, bucket, n FROM hotspot_counts WHERE district_code = $1"
            " AND area_kind = $2 AND category_code = $3 AND grain = $4 AND bucket >= $5",
            district,
            kind.value,
            category,
            grain,
            since,
        )
    )


async def window_reports(
    conn: asyncpg.Connection, district: str, key: Key, areas: Sequence[str], since: datetime
) -> list[asyncpg.Record]:
    """The newest reports (at most 500) of a key since `since`: where they lie, their cases."""
    column = {AreaKind.CELL: "geo_cell", AreaKind.STREET: "street_code", AreaKind.PLACE: "place"}
    col = column[key.area_kind]
    values: list[Any] = [int(a) for a in areas] if col == "geo_cell" else list(areas)
    cast = "int8" if col == "geo_cell" else "text"
    return list(
        await conn.fetch(
            f"SELECT case_no, street_code, lon, lat FROM hotspot_reports"
            f" WHERE district_code = $1 AND category_code = $2 AND {col} = ANY($3::{cast}[])"
            f"  AND at >= $4 ORDER BY at DESC LIMIT 500",
            district,
            key.category_code,
            values,
            since,
        )
    )


async def next_number(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT nextval('hotspot_no_seq')"))


HOTSPOT_COLUMNS = (
    "hotspot_id",
    "district_code",
    "kind",
    "area",
    "category_code",
    "street_code",
    "state",
    "seq",
    "count",
    "baseline",
    "score",
    "window_from",
    "window_to",
    "lon",
    "lat",
    "radius_m",
    "bbox",
    "case_nos",
    "opened_at",
    "updated_at",
    "closed_at",
)
_FIXED = ("hotspot_id", "district_code", "opened_at")


async def save(conn: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the hotspots opened, update those updated or closed (one row each)."""
    marks = ", ".join(f"${i}" for i in range(1, len(HOTSPOT_COLUMNS) + 1))
    sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in HOTSPOT_COLUMNS if n not in _FIXED)
    await conn.executemany(
        f"INSERT INTO hotspots ({', '.join(HOTSPOT_COLUMNS)}) VALUES ({marks})"
        f" ON CONFLICT (hotspot_id) DO UPDATE SET {sets}",
        [[r[n] for n in HOTSPOT_COLUMNS] for r in rows],
    )


async def open_gauge(conn: asyncpg.Connection, district: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT kind, coalesce(street_code, '') AS street, count(*) AS n FROM hotspots"
            " WHERE district_code = $1 AND state = 'open' GROUP BY 1, 2",
            district,
        )
    )


async def prune(conn: asyncpg.Connection, district: str, now: datetime, days_kept: int) -> None:
    """Forget reports older than the longest window, hourly buckets older than three days,
    daily buckets older than the longest window with its lookback."""
    await conn.execute(
        "DELETE FROM hotspot_reports WHERE district_code = $1 AND at < $2",
        district,
        now - timedelta(days=35),
    )
    for grain, kept in (("hour", timedelta(days=3)), ("day", timedelta(days=days_kept))):
        await conn.execute(
            "DELETE FROM hotspot_counts WHERE district_code = $1 AND area_kind = ANY($2::text[])"
            " AND grain = $3 AND bucket < $4",
            district,
            [k.value for k in AreaKind],
            grain,
            now - kept,
        )
