"""Set-based writes: many rows of several tables in one statement (one round trip).

Rows travel as one array parameter of a composite type per table (`Table.row_type`, created
by a migration with the table's columns in the same order): asyncpg encodes such an array
row by row, in C, where an array per column costs a check per value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    """A table's writable columns with their PostgreSQL types, and the composite type that
    carries its rows (`row_type`: those columns, in this order; "" for a table only deleted
    from)."""

    name: str
    columns: Mapping[str, str]
    row_type: str = ""

    def __post_init__(self) -> None:
        if self.row_type and len(self.columns) < 2:  # (attrgetter of one name gives no tuple)
            raise ValueError(f"{self.name}: a row type needs two columns or more")

    def rows(self, items: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Row tuples from row objects (attributes named like the columns)."""
        return list(map(operator.attrgetter(*self.columns), items))


@dataclass
class Batch:
    """Builds one statement of data-modifying CTEs, each fed by `unnest` of an array of rows."""

    parts: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def _unnest(self, table: Table, rows: Sequence[Any]) -> str:
        if not table.row_type:
            raise ValueError(f"{table.name}: no row type to write rows with")
        self.args.append(table.rows(rows))
        return f"unnest(${len(self.args)}::{table.row_type}[]) AS u"

    def insert(
        self, table: Table, rows: Sequence[Any], returning: str = "", on_conflict: str = ""
    ) -> str:
        names = ", ".join(table.columns)
        sql = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {self._unnest(table, rows)}"
        sql += f" ON CONFLICT {on_conflict}" if on_conflict else ""
        return sql + (f" RETURNING {returning}" if returning else "")

    def update(self, table: Table, key: str, mutable: Sequence[str], rows: Sequence[Any]) -> str:
        """Set the `mutable` columns of the rows matched by `key` (whole rows are sent)."""
        sets = ", ".join(f"{c} = u.{c}" for c in mutable)
        source = self._unnest(table, rows)
        return f"UPDATE {table.name} SET {sets} FROM {source} WHERE {table.name}.{key} = u.{key}"

    def delete(self, table: Table, key: str, values: Sequence[Any]) -> str:
        self.args.append(list(values))
        return (
            f"DELETE FROM {table.name} WHERE {key} = ANY(${len(self.args)}::{table.columns[key]}[])"
        )

    def add(self, when: bool, build: Callable[[], str]) -> None:
        if when:
            self.parts.append(build())

    def statement(self, final: str) -> str:
        """`WITH p0 AS (...), p1 AS (...) <final>`; `final` is the last (returning) part."""
        ctes = ", ".join(f"p{i} AS ({p})" for i, p in enumerate(self.parts))
        return f"WITH {ctes} {final}" if ctes else final


def literals(values: Iterable[str]) -> str:
    """`'a', 'b'`: the values of an enum as SQL constants, for a predicate the planner must see
    to use a partial index (a parameter would hide it from a generic plan). Everywhere else the
    values travel as parameters."""
    return ", ".join(f"'{v}'" for v in sorted(values))
