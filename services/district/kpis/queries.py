"""The counts behind the closed-loop KPIs, per unit / street / category / source and period.

Four set-based reads in one read-only snapshot, each a range scan over an index of
`deploy/migrations/015_kpi_indexes.sql` or `043_kpi_record.sql`. The period is [start, end),
read as known at `as_of` (the service's clock). How the case record is read (assumptions,
documented once here):

- **Due to close (应结案)** = cases closed in the period (state `closed`, `closed_at` inside)
  plus cases open at the period's end whose deadline (`cases.due_by`: the resolve deadline the
  case was first given, moved only by an approved extension or the time it was parked; a
  reopen, a re-dispatch or supervision does not move it) fell inside the period and has
  passed. A case resolved by that deadline and waiting for its follow-up (回访) is not open
  and overdue: the wait is not the unit's. Cases withdrawn, not ours, rejected, merged or
  parked (挂账) are nobody's overdue. Reports a road chief handled on the spot are not
  dispatched work: they are left out here and counted on their own (自处置).
- **On time** is `cases.closed_on_time`: resolved by `due_by` (the record keeps a case's last
  resolution, so a reopened case is on time only if its final resolution beat the first
  deadline).
- **Extended (延期)**: the case has an `extension_approved` event (the district approved a
  unit's request). A request (`extension_requested`) not approved extends nothing.
- **Follow-ups** are `followed_up` events in the period, one per visit; `data.satisfaction`
  `unreachable` is not a follow-up. Rated resolved (实际解决) = the citizen said resolved and
  the unit's resolution before the visit was `solved` (解决), not only `explained` (解释说明)
  (`data.outcome` of the `resolved` event; none recorded: solved).
- **Resolved / reopened** count transitions into `resolved` / `reopened` recorded in the
  period (a co-unit's report does not move the case and does not count).
- **Road-chief reports** (路长巡查) opened in the period; self-handled (自处置) those closed on
  the spot (`self_handled`). Unit: the road chief's own (`opened` event's `road_chief_unit`).
- **Tasks** are those dispatched in the period (lead and co), with their outcome at `as_of`.
  Accepted on time: an explicit accept (an `accepted` event of the task) by `accept_by`; resolving
  or contacting without accepting is no accept. A task still inside its accept deadline and not
  yet accepted is undecided and left out of the on-time-accept denominator. First contact is
  required of lead tasks of 12345 cases whose caller asked for a call back, unless the task was
  returned or withdrawn before any contact; likewise undecided until contacted or past
  `first_contact_by`. Returned (退单): the task has a `returned` event. Re-dispatched: the task left
  its unit unresolved (returned, escalated, withdrawn) and a lead task of another unit was
  dispatched on the case at or after it.
- **Grouping**: a case's unit is the unit of its last lead task that did not hand it back
  (returned, escalated, withdrawn), otherwise `unassigned` (a case in triage is the district
  centre's); a task's unit is its own; an event's unit is the one it names, else its case's; a
  road-chief report's unit is its road chief's. No street: street `none`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts.tasks import ResolveOutcome, TaskRole
from services.common.sql import literals
from services.district.cases.lifecycle import CaseState, Event, TaskState
from services.district.kpis.formulas import Counts, total

DIMENSIONS = ("unit", "street", "category", "source")
#: the event that extends a case's deadline
EXTENSION_EVENT = "extension_approved"
#: states in which a case is nobody's overdue
NOT_ACCOUNTABLE = frozenset(
    {
        CaseState.WITHDRAWN,
        CaseState.NOT_OURS,
        CaseState.REJECTED,
        CaseState.MERGED,
        CaseState.PARKED,
    }
)
# The closed sets below are SQL constants rendered from their enums (`literals`): the partial
# indexes of deploy/migrations/015_kpi_indexes.sql are chosen only for predicates the planner
# sees.
_NOT_ACCOUNTABLE_SQL = literals(NOT_ACCOUNTABLE)
_CLOSED = literals({CaseState.CLOSED})
_LEAD = literals({TaskRole.LEAD})
_HANDED_BACK = literals({TaskState.RETURNED, TaskState.WITHDRAWN})
_ASSIGNED = literals({TaskState.ASSIGNED})
_NOT_YET_CONTACTED = literals({TaskState.ASSIGNED, TaskState.ACCEPTED})
_RESOLVED_OR_CLOSED = literals({CaseState.RESOLVED, CaseState.CLOSED})
SOURCE_NAMES = {"hotline12345": "12345热线", "roadchief": "路长巡查"}
ROADCHIEF = "roadchief"
#: a report the road chief handled on the spot (format `case`: the cases row's alias)
_SELF_HANDLED = (
    "EXISTS (SELECT 1 FROM case_events s WHERE s.case_no = {case}.case_no"
    f" AND s.type = '{Event.SELF_HANDLED}')"
)

_CASE_UNIT = f"""coalesce(
    (SELECT lt.unit_code FROM tasks lt
      WHERE lt.case_no = c.case_no AND lt.role = {_LEAD}
        AND lt.state NOT IN ({_HANDED_BACK})
      ORDER BY lt.dispatched_at DESC, lt.task_id DESC LIMIT 1),
    'unassigned')"""
CASE_KEYS = {
    "unit": _CASE_UNIT,
    "street": "coalesce(c.street_code, 'none')",
    "category": "c.category_code",
    "source": "c.source",
}
TASK_KEYS = {**CASE_KEYS, "unit": "t.unit_code"}
EVENT_KEYS = {**CASE_KEYS, "unit": f"coalesce(e.unit_code, {_CASE_UNIT})"}

# $1 district, $2 start, $3 end, $4 as_of, $5 the unit a unit token sees (NULL: all).
# The event types are literals, so the planner can use
# the partial index case_events_marks.
DUE_TO_CLOSE = f"""
SELECT key,
       count(*) FILTER (WHERE closed) AS closed,
       count(*) FILTER (WHERE closed AND on_time) AS closed_on_time,
       count(*) FILTER (WHERE NOT closed) AS open_overdue,
       count(*) FILTER (WHERE extended) AS extended,
       count(*) FILTER (WHERE municipal_missed) AS municipal_missed
FROM (
    SELECT {{key}} AS key, {{unit}} AS unit_key, c.closed,
           coalesce(c.closed_on_time, false) AS on_time,
           c.municipal_missed_at IS NOT NULL AS municipal_missed,
           EXISTS (SELECT 1 FROM case_events x
                    WHERE x.case_no = c.case_no AND x.type = '{EXTENSION_EVENT}') AS extended
    FROM (
        SELECT case_no, street_code, category_code, source, closed_on_time, municipal_missed_at,
               true AS closed
          FROM cases
         WHERE district_code = $1 AND state = {_CLOSED} AND closed_at >= $2 AND closed_at < $3
           AND NOT {_SELF_HANDLED.format(case="cases")}
        UNION ALL
        SELECT case_no, street_code, category_code, source, closed_on_time, municipal_missed_at,
               false
          FROM cases
         WHERE district_code = $1 AND due_by >= $2 AND due_by < least($3, $4)
           AND state NOT IN ({_NOT_ACCOUNTABLE_SQL}) AND (state <> {_CLOSED} OR closed_at >= $3)
           AND NOT (state IN ({_RESOLVED_OR_CLOSED}) AND resolved_at <= due_by)
    ) c
) due
WHERE {{scope}}::text IS NULL OR unit_key = {{scope}}
GROUP BY key
"""

# $1 district, $2 start, $3 end, $4 as_of, $5 the unit (NULL: all)
TASKS_DISPATCHED = f"""
SELECT key,
       count(*) AS dispatched,
       count(*) FILTER (WHERE signed_at IS NOT NULL OR accept_by < $4 OR state <> {_ASSIGNED})
           AS accept_decided,
       count(*) FILTER (WHERE accepted_on_time) AS accepted_on_time,
       count(*) FILTER (WHERE needs_contact AND (contacted_at IS NOT NULL
           OR first_contact_by < $4 OR state NOT IN ({_NOT_YET_CONTACTED})))
           AS contact_required,
       count(*) FILTER (WHERE needs_contact AND contacted_at <= first_contact_by)
           AS contacted_on_time,
       count(*) FILTER (WHERE returned) AS returned,
       count(*) FILTER (WHERE NOT returned AND NOT redispatched) AS accurate
FROM (
    SELECT {{key}} AS key, {{unit}} AS unit_key, t.state, t.accept_by, t.first_contact_by,
           t.contacted_at,
           coalesce(t.accepted_at, t.resolved_at) AS signed_at,
           EXISTS (SELECT 1 FROM case_events a
                    WHERE a.case_no = t.case_no AND a.type = '{Event.ACCEPTED}'
                      AND a.data->>'task_id' = t.task_id AND a.at <= t.accept_by)
               AS accepted_on_time,
           t.first_contact_by IS NOT NULL
               AND t.role = {_LEAD} AND c.source = 'hotline12345' AND c.caller_callback
               AND (t.contacted_at IS NOT NULL OR t.state NOT IN ({_HANDED_BACK}))
               AS needs_contact,
           EXISTS (SELECT 1 FROM case_events x
                    WHERE x.case_no = t.case_no AND x.type = 'returned'
                      AND x.data->>'task_id' = t.task_id) AS returned,
           t.state IN ({_HANDED_BACK}) AND EXISTS (
               SELECT 1 FROM tasks n
                WHERE n.case_no = t.case_no AND n.role = {_LEAD} AND n.unit_code <> t.unit_code
                  AND n.task_id <> t.task_id AND n.dispatched_at >= t.dispatched_at
           ) AS redispatched
    FROM tasks t
    JOIN cases c ON c.case_no = t.case_no
    WHERE t.district_code = $1 AND t.dispatched_at >= $2 AND t.dispatched_at < $3
) dispatched
WHERE {{scope}}::text IS NULL OR unit_key = {{scope}}
GROUP BY key
"""

#: the events the KPIs read; the partial index case_events_kpi has exactly this predicate
KPI_EVENTS = (
    "(type = 'followed_up'"
    " OR (to_state IN ('resolved', 'reopened') AND from_state IS DISTINCT FROM to_state))"
)

# $1 district, $2 start, $3 end, $4 the unit (NULL: all)
EVENTS = f"""
SELECT key,
       count(*) FILTER (WHERE followed_up) AS followed_up,
       count(*) FILTER (WHERE followed_up AND said_resolved) AS rated_resolved,
       count(*) FILTER (WHERE rating IN ('satisfied', 'basically_satisfied', 'dissatisfied'))
           AS rated,
       count(*) FILTER (WHERE rating IN ('satisfied', 'basically_satisfied')) AS satisfied,
       count(*) FILTER (WHERE NOT is_followup AND to_state = 'resolved') AS resolved,
       count(*) FILTER (WHERE NOT is_followup AND to_state = 'reopened') AS reopened
FROM (
    SELECT {{key}} AS key, {{unit}} AS unit_key, e.to_state, e.type = 'followed_up' AS is_followup,
           e.type = 'followed_up' AND e.data->>'satisfaction' <> 'unreachable' AS followed_up,
           CASE WHEN e.type = 'followed_up' THEN e.data->>'satisfaction' END AS rating,
           e.type = 'followed_up' AND e.data->>'resolved' = 'true' AND coalesce(
               (SELECT r.data->>'outcome' FROM case_events r
                 WHERE r.case_no = e.case_no AND r.seq < e.seq AND r.to_state = 'resolved'
                   AND r.from_state IS DISTINCT FROM r.to_state
                 ORDER BY r.seq DESC LIMIT 1), '{ResolveOutcome.SOLVED}'
           ) = '{ResolveOutcome.SOLVED}' AS said_resolved
    FROM case_events e
    JOIN cases c ON c.case_no = e.case_no
    WHERE e.district_code = $1 AND e.at >= $2 AND e.at < $3 AND {KPI_EVENTS}
) ev
WHERE {{scope}}::text IS NULL OR unit_key = {{scope}}
GROUP BY key
"""


#: the unit a road-chief report counts for: the road chief's own (older records: the street)
_ROAD_CHIEF_UNIT = f"""coalesce(
    (SELECT o.data->>'road_chief_unit' FROM case_events o
      WHERE o.case_no = c.case_no AND o.type = '{Event.OPENED}' LIMIT 1),
    c.street_code, 'none')"""
REPORT_KEYS = {**CASE_KEYS, "unit": _ROAD_CHIEF_UNIT}

# $1 district, $2 start, $3 end, $4 the unit (NULL: all)
ROAD_CHIEF_REPORTS = f"""
SELECT key, count(*) AS roadchief_reports, count(*) FILTER (WHERE self_handled) AS self_handled
FROM (
    SELECT {{key}} AS key, {{unit}} AS unit_key, {_SELF_HANDLED.format(case="c")} AS self_handled
    FROM cases c
    WHERE c.district_code = $1 AND c.source = '{ROADCHIEF}'
      AND c.opened_at >= $2 AND c.opened_at < $3
) reports
WHERE {{scope}}::text IS NULL OR unit_key = {{scope}}
GROUP BY key
"""


@dataclass(frozen=True, slots=True)
class Gathered:
    """The counts of every group that had anything in the period, and the groups' names."""

    as_of: datetime
    groups: dict[str, Counts]
    names: dict[str, str]


async def gather(
    conn: asyncpg.Connection,
    district_code: str,
    by: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    unit: str | None = None,
) -> Gathered:
    """Counts per group of `by` for [start, end) as known at `as_of` (the service's clock:
    what is overdue, what is still inside its deadline), read in one consistent snapshot.
    `unit`: only what counts for that unit (a unit token's view), grouped by `by`."""
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}, not {by!r}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        groups = await _counts(conn, district_code, by, start, end, as_of, unit)
        names = await group_names(conn, district_code, by)
    return Gathered(as_of, groups, names)


async def trend(
    conn: asyncpg.Connection,
    district_code: str,
    periods: Sequence[tuple[datetime, datetime]],
    as_of: datetime,
    unit: str | None = None,
) -> list[Counts]:
    """The totals of each period (a unit's own, with `unit`), in one consistent snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return [
            total(await _counts(conn, district_code, "source", start, end, as_of, unit))
            for start, end in periods
        ]


async def unit_tiers(conn: asyncpg.Connection, district_code: str) -> dict[str, str]:
    """unit code -> tier (district, street, department)."""
    rows = await conn.fetch(
        "SELECT unit_code, tier FROM units WHERE district_code = $1", district_code
    )
    return {r["unit_code"]: r["tier"] for r in rows}


async def _counts(
    conn: asyncpg.Connection,
    district_code: str,
    by: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    unit: str | None,
) -> dict[str, Counts]:
    scoped = unit is not None

    def sql(template: str, keys: dict[str, str], scope: str) -> str:
        return template.format(
            key=keys[by], unit=keys["unit"] if scoped else "NULL::text", scope=scope
        )

    period = (district_code, start, end)
    rows = [
        *await conn.fetch(sql(DUE_TO_CLOSE, CASE_KEYS, "$5"), *period, as_of, unit),
        *await conn.fetch(sql(TASKS_DISPATCHED, TASK_KEYS, "$5"), *period, as_of, unit),
        *await conn.fetch(sql(EVENTS, EVENT_KEYS, "$4"), *period, unit),
        *await conn.fetch(sql(ROAD_CHIEF_REPORTS, REPORT_KEYS, "$4"), *period, unit),
    ]
    return _merge(rows)


def _merge(rows: list[asyncpg.Record]) -> dict[str, Counts]:
    """One Counts per key from the rows of the four reads (each fills some of the fields)."""
    fields: dict[str, dict[str, int]] = {}
    for row in rows:
        values = dict(row)
        fields.setdefault(values.pop("key"), {}).update(values)
    return {key: Counts(**values) for key, values in sorted(fields.items())}


async def group_names(conn: asyncpg.Connection, district_code: str, by: str) -> dict[str, str]:
    """Display names of the groups: unit and street names, category names, feed names."""
    if by in ("unit", "street"):
        rows = await conn.fetch(
            "SELECT unit_code AS key, name FROM units WHERE district_code = $1", district_code
        )
    elif by == "category":
        rows = await conn.fetch(
            "SELECT code AS key, minor AS name FROM categories WHERE district_code = $1",
            district_code,
        )
    else:
        return dict(SOURCE_NAMES)
    return {r["key"]: r["name"] for r in rows}
