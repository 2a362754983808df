"""The case tables' SQL: locking and loading cases with their tasks, writing a batch's changes
in one statement (cases, tasks, events, timers, counters, reporters, parked messages, the
exception ledger, outbox),
and reading a case record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from contracts.common import Urgency
from contracts.tasks import TaskRole
from services.common import outbox
from services.common.sql import Batch, Table
from services.district.cases.lifecycle import CaseState, TaskState
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.intake import queries as iq

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
        "municipal_missed_at": _TS,
        "parked_at": _TS,
        "waiting_stage": "text",
        "waiting_since": _TS,
        "waiting_due": _TS,
        "due_by": _TS,
    },
    "cases_row",
)
MUTABLE_CASE = (
    "state",
    "title",
    "description",
    "address",
    "lon",
    "lat",
    "municipal_due",
    "category_code",
    "category_name",
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
    "municipal_missed_at",
    "parked_at",
    "waiting_stage",
    "waiting_since",
    "waiting_due",
    "due_by",
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
        "clock_start": _TS,
        "return_reason": "text",
        "extension_requested_at": _TS,
        "extension_due": _TS,
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
    "clock_start",
    "return_reason",
    "extension_requested_at",
    "extension_due",
)
#: the exception ledger (退单, 延期, 缓办, 作废 decisions with their approver)
EXCEPTIONS = Table(
    "exception_ledger",
    {
        "district_code": "text",
        "case_no": "text",
        "task_id": "text",
        "unit_code": "text",
        "kind": "text",
        "decision": "text",
        "approver": "text",
        "token_id": "text",
        "reason": "text",
        "decided_at": _TS,
        "detail": "jsonb",
    },
    "exception_ledger_row",
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
assert set(CASES.columns) == {f.name for f in fields(CaseRec)} - {
    "tasks",
    "counted",
    "merged_orders",
}
assert set(TASKS.columns) == {f.name for f in fields(TaskRec)}


async def claim_new_keys(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    """Record idempotency keys; return those not seen before (the others are repeats)."""
    rows = await conn.fetch(
        "INSERT INTO processed_messages (key) SELECT unnest($1::text[])"
        " ON CONFLICT DO NOTHING RETURNING key",
        list(keys),
    )
    return {r["key"] for r in rows}


async def claim_or_seen(
    conn: asyncpg.Connection, claim: Sequence[str], check: Sequence[str]
) -> set[str]:
    """Record the idempotency keys `claim` and look up the keys `check` (recorded only when
    their message is refused: a case opened is its own key, by its unique source reference);
    return the keys of both not seen before. One round trip."""
    rows = await conn.fetch(
        "WITH claimed AS (INSERT INTO processed_messages (key) SELECT unnest($1::text[])"
        "  ON CONFLICT DO NOTHING RETURNING key)"
        " SELECT key, true AS fresh FROM claimed"
        " UNION ALL SELECT key, false FROM processed_messages WHERE key = ANY($2::text[])",
        list(claim),
        list(check),
    )
    seen = {r["key"] for r in rows if not r["fresh"]}
    return {r["key"] for r in rows if r["fresh"]} | (set(check) - seen)


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
    cases = {r["case_no"]: _case(r) for r in rows}
    if cases:
        task_rows = await conn.fetch(
            f"SELECT {', '.join(TASKS.columns)} FROM tasks WHERE case_no = ANY($1::text[])"
            " ORDER BY case_no, dispatched_at, task_id",
            list(cases),
        )
        for t in task_rows:
            cases[t["case_no"]].tasks.append(_task(t))
        for case_no, order_no in await iq.merged_orders(conn, list(cases)):
            cases[case_no].merged_orders.append(order_no)
    for case in cases.values():
        case.counted = case.gauge_key()
    return list(cases.values())


def _case(r: asyncpg.Record) -> CaseRec:
    row = dict(r)
    return CaseRec(**{**row, "state": CaseState(row["state"]), "urgency": Urgency(row["urgency"])})


def _task(r: asyncpg.Record) -> TaskRec:
    row = dict(r)
    return TaskRec(**{**row, "role": TaskRole(row["role"]), "state": TaskState(row["state"])})


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
    b.add(bool(ch.moved), lambda: iq.move_reporters(b, ch.moved))
    b.add(bool(ch.parked), lambda: b.insert(iq.PARKED, ch.parked))
    b.add(bool(ch.unparked), lambda: b.delete(iq.PARKED_IDS, "id", ch.unparked))
    b.add(bool(ch.exceptions), lambda: b.insert(EXCEPTIONS, ch.exceptions))
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
    _save_waits(b, ch)
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


def _save_waits(b: Batch, ch: Changes) -> None:
    """The district's waits (triage, escalation, extension decisions) share the timer table:
    a wait (re)started fires all its alarms again, a decided one leaves."""
    armed = [_Timer(k, c, d, at) for k, c, d, at in ch.waits.values() if at is not None]
    disarmed = [key for key, _, _, at in ch.waits.values() if at is None]
    b.add(
        bool(armed),
        lambda: b.insert(
            TIMERS,
            armed,
            on_conflict="(task_id) DO UPDATE SET next_at = EXCLUDED.next_at, done = '{}'",
        ),
    )
    b.add(bool(disarmed), lambda: b.delete(TIMERS, "task_id", disarmed))


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
