"""The district's SQL: loading cases for a batch and writing a batch's changes in bulk."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from services.common import outbox
from services.common.sql import Batch, Table
from services.district.cases.lifecycle import State
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.intake import queries as iq
from services.district.routing.reference import Category, Reference, Rule, Unit

_TS = "timestamptz"
CASES = Table(
    "cases",
    {
        "case_no": "text",
        "district_code": "text",
        "source": "text",
        "source_ref": "text",
        "state": "text",
        "category_code": "text",
        "category_name": "text",
        "urgency": "text",
        "title": "text",
        "description": "text",
        "address": "text",
        "received_at": _TS,
        "opened_at": _TS,
        "street_code": "text",
        "request_type": "text",
        "lon": "float8",
        "lat": "float8",
        "caller_name": "text",
        "caller_phone_sealed": "bytea",
        "caller_phone_masked": "text",
        "caller_anonymous": "bool",
        "caller_callback": "bool",
        "reporters": "int4",
        "revision": "int4",
        "municipal_due": _TS,
        "resolve_by": _TS,
        "resolved_at": _TS,
        "closed_at": _TS,
        "closed_on_time": "bool",
        "last_seq": "int4",
        "supervised": "bool",
        "returns": "int4",
    },
    "cases_row",
)
MUTABLE_CASE = (
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
    "supervised",
    "returns",
)
TASKS = Table(
    "tasks",
    {
        "task_id": "text",
        "case_no": "text",
        "district_code": "text",
        "unit_code": "text",
        "role": "text",
        "state": "text",
        "dispatched_at": _TS,
        "accept_by": _TS,
        "first_contact_by": _TS,
        "resolve_by": _TS,
        "accepted_at": _TS,
        "contacted_at": _TS,
        "resolved_at": _TS,
        "summary": "text",
    },
    "tasks_row",
)
MUTABLE_TASK = (
    "state",
    "accept_by",
    "first_contact_by",
    "resolve_by",
    "accepted_at",
    "contacted_at",
    "resolved_at",
    "summary",
)
EVENTS = Table(
    "case_events",
    {
        "case_no": "text",
        "seq": "int4",
        "event_id": "text",
        "district_code": "text",
        "type": "text",
        "at": _TS,
        "actor": "text",
        "from_state": "text",
        "to_state": "text",
        "unit_code": "text",
        "data": "jsonb",
    },
    "case_events_row",
)
TIMERS = Table(
    "task_timers",
    {"task_id": "text", "case_no": "text", "district_code": "text", "next_at": _TS},
    "task_timers_row",
)
COUNTS = Table(
    "case_counts",
    {
        "district_code": "text",
        "unit_code": "text",
        "state": "text",
        "n": "int8",
    },
    "case_counts_row",
)
assert set(CASES.columns) == {f.name for f in fields(CaseRec)} - {"tasks", "counted"}
assert set(TASKS.columns) == {f.name for f in fields(TaskRec)}


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
    conn: asyncpg.Connection,
    case_nos: Iterable[str],
    source_refs: Iterable[tuple[str, str]],
    *,
    skip_locked: bool = False,
) -> list[CaseRec]:
    """Load and row-lock cases by case number or by (source, source_ref), with their tasks."""
    refs = list(source_refs)
    rows = await conn.fetch(
        f"SELECT {', '.join(CASES.columns)} FROM cases WHERE case_no IN ("
        "  SELECT unnest($1::text[])"
        "  UNION ALL"
        "  SELECT c.case_no FROM cases c"
        "  JOIN unnest($2::text[], $3::text[]) AS u(source, ref)"
        "    ON c.source = u.source AND c.source_ref = u.ref"
        ") ORDER BY case_no FOR UPDATE" + (" SKIP LOCKED" if skip_locked else ""),
        list(case_nos),
        [s for s, _ in refs],
        [r for _, r in refs],
    )
    cases = {r["case_no"]: CaseRec(**{**dict(r), "state": State(r["state"])}) for r in rows}
    if cases:
        task_rows = await conn.fetch(
            f"SELECT {', '.join(TASKS.columns)} FROM tasks WHERE case_no = ANY($1::text[])"
            " ORDER BY case_no, dispatched_at, task_id",
            list(cases),
        )
        for t in task_rows:
            cases[t["case_no"]].tasks.append(TaskRec(**dict(t)))
    for case in cases.values():
        case.counted = case.gauge_key()
    return list(cases.values())


async def save(conn: asyncpg.Connection, ch: Changes) -> outbox.Pending:
    """Write one batch's changes in one statement: new and touched cases and tasks, events,
    outbox; return the outbox rows to publish once the transaction has committed."""
    new_cases = {c.case_no for c in ch.new_cases}
    updated = [c for no, c in ch.cases.items() if no not in new_cases]
    new_tasks = {t.task_id for t in ch.new_tasks}
    changed = [t for no, t in ch.tasks.items() if no not in new_tasks]
    b = Batch()
    b.add(bool(ch.new_cases), lambda: b.insert(CASES, ch.new_cases))
    b.add(bool(updated), lambda: b.update(CASES, "case_no", MUTABLE_CASE, updated))
    b.add(bool(ch.new_tasks), lambda: b.insert(TASKS, ch.new_tasks))
    b.add(bool(changed), lambda: b.update(TASKS, "task_id", MUTABLE_TASK, changed))
    b.add(bool(ch.events), lambda: b.insert(EVENTS, ch.events))
    b.add(bool(ch.reporters), lambda: b.insert(iq.REPORTERS, ch.reporters))
    b.add(bool(ch.split), lambda: iq.delete_reporters(b, ch.split))
    b.add(bool(ch.parked), lambda: b.insert(iq.PARKED, ch.parked))
    b.add(bool(ch.unparked), lambda: b.delete(iq.PARKED_IDS, "id", ch.unparked))
    armed = [
        _Timer(t.task_id, t.case_no, t.district_code, at)
        for t, at in ch.timers.values()
        if at is not None
    ]
    disarmed = [t.task_id for t, at in ch.timers.values() if at is None]
    b.add(
        bool(armed),
        lambda: b.insert(
            TIMERS,
            armed,
            # only the resolve deadline ever moves: its alarms may fire again, no others
            on_conflict="(task_id) DO UPDATE SET next_at = EXCLUDED.next_at,"
            " done = array_remove(array_remove(task_timers.done, 'resolve:warn'),"
            " 'resolve:overdue')",
        ),
    )
    b.add(bool(disarmed), lambda: b.delete(TIMERS, "task_id", disarmed))
    counts = _count_deltas(ch.cases.values())
    b.add(
        bool(counts),
        lambda: b.insert(
            COUNTS,
            counts,
            on_conflict="(district_code, unit_code, state)"
            " DO UPDATE SET n = case_counts.n + EXCLUDED.n",
        ),
    )
    rows = await conn.fetch(b.statement(outbox.insert(b, ch.outbox)), *b.args)
    return outbox.Pending([r["id"] for r in rows], list(ch.outbox))


@dataclass(frozen=True, slots=True)
class _Timer:
    task_id: str
    case_no: str
    district_code: str
    next_at: datetime


@dataclass(frozen=True, slots=True)
class _Delta:
    district_code: str
    unit_code: str
    state: str
    n: int


def _count_deltas(cases: Iterable[CaseRec]) -> list[_Delta]:
    """How the batch moved cases between (unit, state) counters, in key order (no deadlocks
    between instances updating the same counters)."""
    deltas: Counter[tuple[str, str, str]] = Counter()
    for case in cases:
        now = case.gauge_key()
        if now != case.counted:
            if case.counted:
                deltas[(case.district_code, *case.counted)] -= 1
            if now:
                deltas[(case.district_code, *now)] += 1
    return [_Delta(*key, n) for key, n in sorted(deltas.items()) if n]


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
        await conn.executemany(
            "INSERT INTO routing_rules (district_code, category_code, owner, alt_owner,"
            " version, changed_by, reason)"
            " SELECT $1, $2, $3, $4, 1, 'bootstrap', 'taxonomy default' WHERE NOT EXISTS"
            " (SELECT 1 FROM routing_rules WHERE district_code = $1 AND category_code = $2)",
            [(d, c.code, c.default_owner, c.alt_owner) for c in ref.categories.values()],
        )
        await conn.execute("DELETE FROM street_anchors WHERE district_code = $1", d)
        await conn.copy_records_to_table(
            "street_anchors",
            columns=("district_code", "unit_code", "lon", "lat"),
            records=[(d, a.unit_code, a.lon, a.lat) for a in ref.anchors],
        )
        await _store_geography(conn, ref)


async def _store_geography(conn: asyncpg.Connection, ref: Reference) -> None:
    """Replace the district's road table and official territories (jsonb sent as text, so a
    connection without the pool's jsonb codec works too)."""
    d = ref.district_code
    await conn.execute("DELETE FROM street_roads WHERE district_code = $1", d)
    await conn.executemany(
        "INSERT INTO street_roads (district_code, unit_code, road) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        [(d, unit_code, road) for unit_code, road in ref.roads],
    )
    await conn.execute("DELETE FROM street_territories WHERE district_code = $1", d)
    await conn.executemany(
        "INSERT INTO street_territories (district_code, seq, unit_code, geometry)"
        " VALUES ($1, $2, $3, $4::text::jsonb)",
        [
            (d, seq, f["properties"]["unit_code"], json.dumps(f["geometry"]))
            for seq, f in enumerate(ref.official_territories)
        ],
    )


async def _load_geography(
    conn: asyncpg.Connection, district_code: str
) -> tuple[tuple[tuple[str, str], ...], tuple[dict[str, Any], ...]]:
    """The road table and the official territories (GeoJSON features, in the order given)."""
    roads = await conn.fetch(
        "SELECT unit_code, road FROM street_roads WHERE district_code = $1"
        " ORDER BY unit_code, road",
        district_code,
    )
    areas = await conn.fetch(
        "SELECT unit_code, geometry::text AS geometry FROM street_territories"
        " WHERE district_code = $1 ORDER BY seq",
        district_code,
    )
    features = tuple(
        {
            "type": "Feature",
            "properties": {"unit_code": r["unit_code"]},
            "geometry": json.loads(r["geometry"]),
        }
        for r in areas
    )
    return tuple((r["unit_code"], r["road"]) for r in roads), features


async def load_reference(conn: asyncpg.Connection, district_code: str) -> Reference:
    from services.district.routing.geo import Anchor

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
    roads, territories = await _load_geography(conn, district_code)
    return Reference(
        district_code,
        units,
        categories,
        anchors,
        await load_rules(conn, district_code),
        roads=roads,
        official_territories=territories,
    )


RULE_COLUMNS = "category_code, owner, alt_owner, urgency, source, version"


async def load_rules(
    conn: asyncpg.Connection, district_code: str
) -> dict[tuple[str, str, str], Rule]:
    rows = await conn.fetch(
        f"SELECT {RULE_COLUMNS} FROM routing_rules WHERE district_code = $1 AND active",
        district_code,
    )
    return {(r["category_code"], r["urgency"], r["source"]): Rule(**dict(r)) for r in rows}


async def rules_version(conn: asyncpg.Connection, district_code: str) -> object:
    """Changes whenever any rule of the district changes (cheap to poll)."""
    return await conn.fetchval(
        "SELECT (count(*), max(changed_at)) FROM routing_rules WHERE district_code = $1",
        district_code,
    )


async def change_rule(
    conn: asyncpg.Connection,
    district_code: str,
    rule: Rule,
    actor: str,
    reason: str,
    token_id: str | None = None,
) -> Rule:
    """A new version of the rule for (category, urgency, source); the old one is kept, with
    who changed it (the stated actor and the API token it came with)."""
    key = (district_code, rule.category_code, rule.urgency, rule.source)
    async with conn.transaction():
        # one change of a rule at a time (the first version has no row to lock yet)
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "routing_rule/" + "/".join(key)
        )
        current = await conn.fetchval(
            "SELECT max(version) FROM routing_rules WHERE district_code = $1"
            " AND category_code = $2 AND urgency = $3 AND source = $4",
            *key,
        )
        version = (current or 0) + 1
        await conn.execute(
            "UPDATE routing_rules SET active = false WHERE district_code = $1"
            " AND category_code = $2 AND urgency = $3 AND source = $4 AND active",
            district_code,
            rule.category_code,
            rule.urgency,
            rule.source,
        )
        await conn.execute(
            "INSERT INTO routing_rules (district_code, category_code, urgency, source, owner,"
            " alt_owner, version, changed_by, reason, token_id)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            district_code,
            rule.category_code,
            rule.urgency,
            rule.source,
            rule.owner,
            rule.alt_owner,
            version,
            actor,
            reason,
            token_id,
        )
    return Rule(rule.category_code, rule.owner, rule.alt_owner, rule.urgency, rule.source, version)


async def rule_history(
    conn: asyncpg.Connection, district_code: str, category_code: str
) -> list[dict[str, object]]:
    rows = await conn.fetch(
        f"SELECT {RULE_COLUMNS}, active, changed_by, token_id, changed_at, reason"
        " FROM routing_rules"
        " WHERE district_code = $1 AND category_code = $2 ORDER BY urgency, source, version",
        district_code,
        category_code,
    )
    return [dict(r) for r in rows]


# -- the case record ----------------------------------------------------------------------------

_PUBLIC_CASE = [c for c in CASES.columns if c != "caller_phone_sealed"]


async def case_detail(conn: asyncpg.Connection, case_no: str) -> dict[str, object] | None:
    """A case with its tasks and its full timeline (the phone stays masked)."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(_PUBLIC_CASE)} FROM cases WHERE case_no = $1", case_no
    )
    if row is None:
        return None
    tasks = await conn.fetch(
        f"SELECT {', '.join(TASKS.columns)} FROM tasks WHERE case_no = $1"
        " ORDER BY dispatched_at, task_id",
        case_no,
    )
    events = await conn.fetch(
        "SELECT seq, event_id, type, at, actor, from_state, to_state, unit_code, data"
        " FROM case_events WHERE case_no = $1 ORDER BY seq",
        case_no,
    )
    return {**dict(row), "tasks": [dict(t) for t in tasks], "timeline": [dict(e) for e in events]}
