"""The counts behind the closed-loop KPIs, per unit / street / category / source and period.

Three set-based reads in one read-only snapshot, each a range scan over an index of
`deploy/migrations/015_kpi_indexes.sql`. The period is [start, end), read as known at `as_of`
(the service's clock). How the case record is read (assumptions, documented once here):

- **Due to close (应结案)** = cases closed in the period (state `closed`, `closed_at` inside)
  plus cases open at the period's end whose resolve deadline (`cases.resolve_by`, the current
  one: it moves on reopen and extension, never on supervision, which gives the lead task a
  deadline to work to while the case stays late) fell inside the period and has passed. Cases
  withdrawn, not ours, rejected, merged or parked (挂账) are nobody's overdue. The record keeps
  a case's last closure and last deadline, so a case reopened after closing counts by those.
- **On time** is `cases.closed_on_time` (resolved by the deadline in force when it closed).
- **Extended (延期)**: the case has an `extension_approved` event (the district approved a
  unit's request). A request (`extension_requested`) not approved extends nothing.
- **Follow-ups** are `followed_up` events in the period, one per visit; `data.satisfaction`
  `unreachable` is not a follow-up. `data.resolved` is the citizen's "resolved" answer.
- **Resolved / reopened** count transitions into `resolved` / `reopened` recorded in the
  period (a co-unit's report does not move the case and does not count).
- **Tasks** are those dispatched in the period (lead and co), with their outcome at `as_of`.
  Accepted on time: accepted (or, without an explicit accept, resolved) by `accept_by`; a task
  still inside its accept deadline and not yet accepted is undecided and left out of the
  on-time-accept denominator. First contact is required of lead tasks of 12345 cases whose
  caller asked for a call back, unless the task was returned or withdrawn before any contact;
  likewise undecided until contacted or past `first_contact_by`. Returned (退单): the task has
  a `returned` event. Re-dispatched: the task left its unit unresolved (returned, escalated,
  withdrawn) and a lead task of another unit was dispatched on the case at or after it.
- **Grouping**: a case's unit is the unit of its last lead task that did not hand it back
  (returned, escalated, withdrawn), or the road chief's unit for a report handled on the spot;
  otherwise `unassigned` (a case in triage is the district centre's); a task's unit is its
  own; an event's unit is the one it names, else its case's. No street: street `none`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts.tasks import TaskRole
from services.common.sql import literals
from services.district.cases.lifecycle import CaseState, TaskState
from services.district.kpis.formulas import Counts

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
SOURCE_NAMES = {"hotline12345": "12345热线", "roadchief": "路长巡查"}

_CASE_UNIT = f"""coalesce(
    (SELECT lt.unit_code FROM tasks lt
      WHERE lt.case_no = c.case_no AND lt.role = {_LEAD}
        AND lt.state NOT IN ({_HANDED_BACK})
      ORDER BY lt.dispatched_at DESC, lt.task_id DESC LIMIT 1),
    (SELECT sh.unit_code FROM case_events sh
      WHERE sh.case_no = c.case_no AND sh.type = 'self_handled' LIMIT 1),
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
        UNION ALL
        SELECT case_no, street_code, category_code, source, closed_on_time, municipal_missed_at,
               false
          FROM cases
         WHERE district_code = $1 AND resolve_by >= $2 AND resolve_by < least($3, $4)
           AND state NOT IN ({_NOT_ACCOUNTABLE_SQL}) AND (state <> {_CLOSED} OR closed_at >= $3)
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
       count(*) FILTER (WHERE signed_at <= accept_by) AS accepted_on_time,
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
           e.type = 'followed_up' AND e.data->>'resolved' = 'true' AS said_resolved
    FROM case_events e
    JOIN cases c ON c.case_no = e.case_no
    WHERE e.district_code = $1 AND e.at >= $2 AND e.at < $3 AND {KPI_EVENTS}
) ev
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
    scoped = unit is not None

    def sql(template: str, keys: dict[str, str], scope: str) -> str:
        return template.format(
            key=keys[by], unit=keys["unit"] if scoped else "NULL::text", scope=scope
        )

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = [
            *await conn.fetch(
                sql(DUE_TO_CLOSE, CASE_KEYS, "$5"), district_code, start, end, as_of, unit
            ),
            *await conn.fetch(
                sql(TASKS_DISPATCHED, TASK_KEYS, "$5"), district_code, start, end, as_of, unit
            ),
            *await conn.fetch(sql(EVENTS, EVENT_KEYS, "$4"), district_code, start, end, unit),
        ]
        names = await group_names(conn, district_code, by)
    return Gathered(as_of, _merge(rows), names)


def _merge(rows: list[asyncpg.Record]) -> dict[str, Counts]:
    """One Counts per key from the rows of the three reads (each fills some of the fields)."""
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
