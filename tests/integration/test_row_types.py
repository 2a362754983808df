"""Each row type the set-based writes use lists its table's written columns, in order, with
the column's own type (deploy/migrations/026_row_types.sql against the `Table`s in the code)."""

from __future__ import annotations

import asyncpg
import pytest

from services.common import outbox
from services.common.sql import Table
from services.district.cases import queries
from services.district.intake import queries as iq
from services.street.desk import OUTBOX as STREET_OUTBOX

WRITTEN = [
    queries.CASES,
    queries.TASKS,
    queries.EVENTS,
    queries.EXCEPTIONS,
    queries.TIMERS,
    queries.COUNTS,
    iq.REPORTERS,
    iq.PARKED,
    outbox.table("outbox"),
    outbox.table(STREET_OUTBOX),
]


async def _normalised(conn: asyncpg.Connection, types: list[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT format_type(to_regtype(t), NULL) AS t FROM unnest($1::text[]) WITH ORDINALITY"
        " AS u(t, n) ORDER BY n",
        types,
    )
    return [r["t"] for r in rows]


@pytest.mark.parametrize("table", WRITTEN, ids=lambda t: t.name)
async def test_row_type_matches_the_table(template_dsn: str, table: Table) -> None:
    conn = await asyncpg.connect(template_dsn)
    try:
        attributes = await conn.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS t"
            " FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum",
            table.row_type,
        )
        declared = await _normalised(conn, list(table.columns.values()))
        assert [(r["attname"], r["t"]) for r in attributes] == list(
            zip(table.columns, declared, strict=True)
        )
        # and the table itself has those columns with those types
        schema, _, name = table.name.rpartition(".")
        actual = await conn.fetch(
            "SELECT column_name, format_type(to_regtype(udt_name), NULL) AS t"
            " FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            schema or "public",
            name,
        )
        found = {r["column_name"]: r["t"] for r in actual}
        assert {c: found.get(c) for c in table.columns} == dict(
            zip(table.columns, declared, strict=True)
        )
    finally:
        await conn.close()
