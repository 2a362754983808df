"""The district's SQL: loading cases for a batch and writing a batch's changes in bulk."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import fields

import asyncpg

from services.common import outbox
from services.district.lifecycle import State
from services.district.model import CaseRec, Changes, TaskRec
from services.district.reference import Category, Reference, Unit

CASE_COLUMNS = tuple(f.name for f in fields(CaseRec) if f.name != "tasks")
TASK_COLUMNS = tuple(f.name for f in fields(TaskRec))
EVENT_COLUMNS = (
    "case_no",
    "seq",
    "event_id",
    "district_code",
    "type",
    "at",
    "actor",
    "from_state",
    "to_state",
    "unit_code",
    "data",
)


async def claim_new_keys(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    """Record idempotency keys; return those not seen before (the others are repeats)."""
    rows = await conn.fetch(
        "INSERT INTO processed_messages (key) SELECT unnest($1::text[])"
        " ON CONFLICT DO NOTHING RETURNING key",
        list(keys),
    )
    return {r["key"] for r in rows}


async def next_case_numbers(conn: asyncpg.Connection, n: int) -> list[int]:
    if n == 0:
        return []
    rows = await conn.fetch("SELECT nextval('case_no_seq') AS v FROM generate_series(1, $1)", n)
    return [r["v"] for r in rows]


async def lock_cases(
    conn: asyncpg.Connection, case_nos: Iterable[str], source_refs: Iterable[tuple[str, str]]
) -> list[CaseRec]:
    """Load and row-lock cases by case number or by (source, source_ref), with their tasks."""
    refs = list(source_refs)
    rows = await conn.fetch(
        f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE case_no IN ("
        "  SELECT unnest($1::text[])"
        "  UNION ALL"
        "  SELECT c.case_no FROM cases c"
        "  JOIN unnest($2::text[], $3::text[]) AS u(source, ref)"
        "    ON c.source = u.source AND c.source_ref = u.ref"
        ") ORDER BY case_no FOR UPDATE",
        list(case_nos),
        [s for s, _ in refs],
        [r for _, r in refs],
    )
    cases = {r["case_no"]: CaseRec(**{**dict(r), "state": State(r["state"])}) for r in rows}
    if cases:
        task_rows = await conn.fetch(
            f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE case_no = ANY($1::text[])"
            " ORDER BY case_no, dispatched_at, task_id",
            list(cases),
        )
        for t in task_rows:
            cases[t["case_no"]].tasks.append(TaskRec(**dict(t)))
    return list(cases.values())


async def save(conn: asyncpg.Connection, ch: Changes) -> outbox.Pending:
    """Write one batch's changes: new cases, touched cases and tasks, events, outbox; return
    the outbox rows to publish once the transaction has committed."""
    new = {c.case_no for c in ch.new_cases}
    if ch.new_cases:
        await conn.copy_records_to_table(
            "cases",
            columns=CASE_COLUMNS,
            records=[_case_row(c) for c in ch.new_cases],
        )
    updated = [c for no, c in ch.cases.items() if no not in new]
    if updated:
        await _update_cases(conn, updated)
    if ch.new_tasks:
        await conn.copy_records_to_table(
            "tasks", columns=TASK_COLUMNS, records=[_task_row(t) for t in ch.new_tasks]
        )
    fresh = {t.task_id for t in ch.new_tasks}
    changed = [t for no, t in ch.tasks.items() if no not in fresh]
    if changed:
        await _update_tasks(conn, changed)
    if ch.events:
        await conn.copy_records_to_table(
            "case_events",
            columns=EVENT_COLUMNS,
            records=[
                (
                    e.case_no,
                    e.seq,
                    e.event_id,
                    e.district_code,
                    e.type,
                    e.at,
                    e.actor,
                    e.from_state,
                    e.to_state,
                    e.unit_code,
                    e.data,
                )
                for e in ch.events
            ],
        )
    return await outbox.write(conn, ch.outbox)


_case_row = operator.attrgetter(*CASE_COLUMNS)


_MUTABLE_CASE = (
    "state",
    "street_code",
    "urgency",
    "reporters",
    "revision",
    "resolve_by",
    "resolved_at",
    "closed_at",
    "closed_on_time",
    "last_seq",
)


async def _update_cases(conn: asyncpg.Connection, cases: list[CaseRec]) -> None:
    types = {
        "reporters": "int",
        "revision": "int",
        "last_seq": "int",
        "closed_on_time": "bool",
        "resolve_by": "timestamptz",
        "resolved_at": "timestamptz",
        "closed_at": "timestamptz",
    }
    cols = ("case_no", *_MUTABLE_CASE)
    unnest = ", ".join(f"${i + 1}::{types.get(c, 'text')}[]" for i, c in enumerate(cols))
    sets = ", ".join(f"{c} = u.{c}" for c in _MUTABLE_CASE)
    await conn.execute(
        f"UPDATE cases SET {sets} FROM unnest({unnest}) AS u({', '.join(cols)})"
        " WHERE cases.case_no = u.case_no",
        *[[getattr(c, col) for c in cases] for col in cols],
    )


_task_row = operator.attrgetter(*TASK_COLUMNS)
_MUTABLE_TASK = (
    "state",
    "accept_by",
    "first_contact_by",
    "resolve_by",
    "accepted_at",
    "contacted_at",
    "resolved_at",
)


async def _update_tasks(conn: asyncpg.Connection, tasks: list[TaskRec]) -> None:
    cols = ("task_id", *_MUTABLE_TASK)
    unnest = ", ".join(
        f"${i + 1}::{'text' if c in ('task_id', 'state') else 'timestamptz'}[]"
        for i, c in enumerate(cols)
    )
    sets = ", ".join(f"{c} = u.{c}" for c in _MUTABLE_TASK)
    await conn.execute(
        f"UPDATE tasks SET {sets} FROM unnest({unnest}) AS u({', '.join(cols)})"
        " WHERE tasks.task_id = u.task_id",
        *[[getattr(t, col) for t in tasks] for col in cols],
    )


# -- reference data -----------------------------------------------------------------------------


async def store_reference(conn: asyncpg.Connection, ref: Reference) -> None:
    """Upsert units, categories and anchors for the reference's district (idempotent)."""
    d = ref.district_code
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO units (unit_code, district_code, name, tier) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (unit_code) DO UPDATE SET name = EXCLUDED.name, tier = EXCLUDED.tier",
            [(u.unit_code, d, u.name, u.tier) for u in ref.units.values()],
        )
        await conn.executemany(
            "INSERT INTO categories (district_code, code, object_type, major, minor,"
            " default_owner, handle_sla, default_urgency) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
            " ON CONFLICT (district_code, code) DO NOTHING",
            [
                (
                    d,
                    c.code,
                    c.object_type,
                    c.major,
                    c.name,
                    c.default_owner,
                    c.handle_sla,
                    c.default_urgency,
                )
                for c in ref.categories.values()
            ],
        )
        await conn.execute("DELETE FROM street_anchors WHERE district_code = $1", d)
        await conn.copy_records_to_table(
            "street_anchors",
            columns=("district_code", "unit_code", "lon", "lat"),
            records=[(d, a.unit_code, a.lon, a.lat) for a in ref.anchors],
        )


async def load_reference(conn: asyncpg.Connection, district_code: str) -> Reference:
    from services.district.geo import Anchor

    units = {
        r["unit_code"]: Unit(r["unit_code"], r["name"], r["tier"])
        for r in await conn.fetch(
            "SELECT unit_code, name, tier FROM units WHERE district_code = $1", district_code
        )
    }
    categories = {
        r["code"]: Category(
            r["code"],
            r["minor"],
            r["major"],
            r["object_type"],
            r["default_owner"],
            r["handle_sla"],
            r["default_urgency"],
        )
        for r in await conn.fetch(
            "SELECT * FROM categories WHERE district_code = $1", district_code
        )
    }
    anchors = tuple(
        Anchor(r["unit_code"], r["lon"], r["lat"])
        for r in await conn.fetch(
            "SELECT unit_code, lon, lat FROM street_anchors WHERE district_code = $1", district_code
        )
    )
    if not units or not categories:
        raise RuntimeError(f"no reference data for district {district_code}: run bootstrap")
    return Reference(district_code, units, categories, anchors)
