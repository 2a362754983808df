"""The SQL of parked messages and merged reporters (并案); `queries.save` writes both tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord

from services.common.consumer import Record
from services.common.crypto import PhoneVault, redact
from services.common.sql import Batch, Table
from services.district.cases.model import ParkedRec
from services.district.intake.duplicates import JOINABLE, Probe, cells
from services.district.routing.geo import haversine_m

REPORTERS = Table(
    "case_reporters",
    {
        "case_no": "text",
        "source": "text",
        "source_ref": "text",
        "caller_phone_masked": "text",
        "caller_phone_sealed": "bytea",
        "joined_at": "timestamptz",
        "message": "jsonb",
    },
    "case_reporters_row",
)
PARKED = Table(
    "parked_messages",
    {
        "district_code": "text",
        "lookup": "text",
        "topic": "text",
        "kafka_partition": "int4",
        "kafka_offset": "int8",
        "key": "bytea",
        "value": "bytea",
        "timestamp_ms": "int8",
        "received_at": "timestamptz",
        "value_sealed": "bytea",
    },
    "parked_messages_row",
)
_JOINABLE = sorted(s.value for s in JOINABLE)


async def reporter_cases(
    conn: asyncpg.Connection, refs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The case each merged report joined: (source, source_ref) -> case number."""
    if not refs:
        return {}
    rows = await conn.fetch(
        "SELECT r.source, r.source_ref, r.case_no FROM case_reporters r"
        " JOIN unnest($1::text[], $2::text[]) AS u(source, ref)"
        "   ON r.source = u.source AND r.source_ref = u.ref",
        [s for s, _ in refs],
        [r for _, r in refs],
    )
    return {(r["source"], r["source_ref"]): r["case_no"] for r in rows}


async def merged_orders(conn: asyncpg.Connection, case_nos: Sequence[str]) -> list[tuple[str, str]]:
    """(case number, order number) of the 12345 orders merged into these cases (并案), in the
    order they joined."""
    rows = await conn.fetch(
        "SELECT case_no, source_ref FROM case_reporters"
        " WHERE case_no = ANY($1::text[]) AND source = $2 ORDER BY joined_at, source_ref",
        list(case_nos),
        "hotline12345",
    )
    return [(r["case_no"], r["source_ref"]) for r in rows]


async def nearby_open_cases(
    conn: asyncpg.Connection,
    district_code: str,
    probes: Sequence[Probe],
    since: datetime,
    radius_m: float,
) -> list[str]:
    """For each probe, the nearest open case of its category opened since `since` within
    `radius_m`: the only stored case it can join (`find_duplicate` weighs it against the
    batch's own new cases), so only those are locked and loaded, however many open cases share
    the neighbourhood. One query for the whole batch, one index lookup per (category, grid
    cell the boxes overlap) on `cases_nearby_cell`."""
    by_cell: dict[tuple[str, int], list[int]] = {}
    for i, p in enumerate(probes):
        for cell in cells(p):
            by_cell.setdefault((p.category_code, cell), []).append(i)
    if not by_cell:
        return []
    wanted = sorted(by_cell)
    rows = await conn.fetch(
        "SELECT c.case_no, c.category_code, c.geo_cell, c.lon, c.lat"
        " FROM unnest($2::text[], $3::int8[]) AS u(category, cell)"
        " JOIN cases c ON c.district_code = $1 AND c.category_code = u.category"
        "  AND c.geo_cell = u.cell AND c.opened_at >= $4 AND c.state = ANY($5::text[])",
        district_code,
        [category for category, _ in wanted],
        [cell for _, cell in wanted],
        since,
        sorted(JOINABLE),
    )
    nearest: dict[int, tuple[float, str]] = {}
    for r in rows:
        for i in by_cell[(r["category_code"], r["geo_cell"])]:
            p = probes[i]
            if p.min_lon <= r["lon"] <= p.max_lon and p.min_lat <= r["lat"] <= p.max_lat:
                d = haversine_m(p.lon, p.lat, r["lon"], r["lat"])
                if d <= radius_m and (i not in nearest or (d, r["case_no"]) < nearest[i]):
                    nearest[i] = (d, r["case_no"])
    return sorted({case_no for _, case_no in nearest.values()})


async def parked_for(
    conn: asyncpg.Connection, lookups: Sequence[str], vault: PhoneVault
) -> dict[str, list[tuple[int, Record]]]:
    """Messages waiting for these cases, locked, in the order they arrived."""
    if not lookups:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM parked_messages WHERE lookup = ANY($1::text[]) ORDER BY id FOR UPDATE",
        list(lookups),
    )
    out: dict[str, list[tuple[int, Record]]] = {}
    for r in rows:
        out.setdefault(r["lookup"], []).append((r["id"], as_record(r, vault)))
    return out


async def orphans(
    conn: asyncpg.Connection, district_code: str, before: datetime, limit: int, vault: PhoneVault
) -> list[tuple[int, Record]]:
    """Parked messages (received before `before`) whose case exists after all, by number, by
    reference or as a merged report; locked (SKIP LOCKED), in the order they arrived."""
    rows = await conn.fetch(
        "SELECT p.* FROM parked_messages p,"
        " LATERAL (SELECT split_part(p.lookup, ':', 1) AS source,"
        "   substr(p.lookup, strpos(p.lookup, ':') + 1) AS ref) AS l"
        " WHERE p.district_code = $1 AND p.received_at < $2 AND ("
        "  EXISTS (SELECT 1 FROM cases c WHERE c.case_no = p.lookup)"
        "  OR EXISTS (SELECT 1 FROM cases c WHERE c.source = l.source AND c.source_ref = l.ref)"
        "  OR EXISTS (SELECT 1 FROM case_reporters r"
        "   WHERE r.source = l.source AND r.source_ref = l.ref))"
        " ORDER BY p.id LIMIT $3 FOR UPDATE OF p SKIP LOCKED",
        district_code,
        before,
        limit,
    )
    return [(r["id"], as_record(r, vault)) for r in rows]


async def take_expired(
    conn: asyncpg.Connection, district_code: str, before: datetime, limit: int, vault: PhoneVault
) -> list[Record]:
    """Delete and return parked messages received before `before` that no one holds."""
    rows = await conn.fetch(
        "DELETE FROM parked_messages WHERE id IN ("
        " SELECT id FROM parked_messages WHERE district_code = $1 AND received_at < $2"
        " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *",
        district_code,
        before,
        limit,
    )
    return [as_record(r, vault) for r in sorted(rows, key=lambda r: r["id"])]


async def reporter(
    conn: asyncpg.Connection, case_no: str, source_ref: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT source, source_ref, caller_phone_sealed, message::text AS message"
        " FROM case_reporters"
        " WHERE case_no = $1 AND source_ref = $2",
        case_no,
        source_ref,
    )
    if row is None:
        return None
    return {**dict(row), "message": json.loads(row["message"])}


def as_record(r: asyncpg.Record, vault: PhoneVault) -> Record:
    """The parked message as it came (its original unsealed when it was kept sealed)."""
    sealed = r["value_sealed"]
    value = bytes(r["value"]) if sealed is None else vault.open_bytes(bytes(sealed))
    key = None if r["key"] is None else bytes(r["key"])
    return ConsumerRecord[bytes, bytes](
        r["topic"],
        r["kafka_partition"],
        r["kafka_offset"],
        r["timestamp_ms"] if r["timestamp_ms"] is not None else -1,
        0,
        key,
        value,
        None,
        len(key or b""),
        len(value),
        (),
    )


def park_record(
    district_code: str, lookup: str, record: Record, received_at: datetime, vault: PhoneVault
) -> ParkedRec:
    """The record kept until its case opens; a phone number in it kept sealed, masked in clear."""
    value, sealed = redact(record.value or b"", vault)
    return ParkedRec(
        district_code,
        lookup,
        record.topic,
        record.partition,
        record.offset,
        record.key,
        value,
        record.timestamp,
        received_at,
        sealed,
    )


PARKED_IDS = Table("parked_messages", {"id": "int8"})


def delete_reporters(batch: Batch, refs: Sequence[tuple[str, str]]) -> str:
    """The statement part that removes split-out reports from their former case."""
    start = len(batch.args)
    batch.args.extend([[s for s, _ in refs], [r for _, r in refs]])
    return (
        "DELETE FROM case_reporters WHERE (source, source_ref) IN"
        f" (SELECT * FROM unnest(${start + 1}::text[], ${start + 2}::text[]))"
    )


def move_reporters(batch: Batch, moves: Sequence[tuple[str, str]]) -> str:
    """The statement part that moves a merged case's reporters to the case it joined."""
    start = len(batch.args)
    batch.args.extend([[a for a, _ in moves], [b for _, b in moves]])
    return (
        "UPDATE case_reporters r SET case_no = m.joined FROM"
        f" unnest(${start + 1}::text[], ${start + 2}::text[]) AS m(gone, joined)"
        " WHERE r.case_no = m.gone"
    )
