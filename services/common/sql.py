"""Set-based writes: many rows of several tables in one statement (one round trip)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    """A table's writable columns and their PostgreSQL types, for `unnest`-based statements."""

    name: str
    columns: Mapping[str, str]

    def arrays(self, rows: Sequence[Any], names: Sequence[str] | None = None) -> list[list[Any]]:
        """Column arrays from row objects (attributes named like the columns)."""
        return [[getattr(r, c) for r in rows] for c in names or self.columns]


@dataclass
class Batch:
    """Builds one statement of data-modifying CTEs, each fed by `unnest` of array parameters."""

    parts: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def _unnest(self, table: Table, names: Sequence[str], arrays: list[list[Any]]) -> str:
        start = len(self.args)
        self.args.extend(arrays)
        casts = ", ".join(f"${start + i + 1}::{table.columns[c]}[]" for i, c in enumerate(names))
        return f"unnest({casts}) AS u({', '.join(names)})"

    def insert(
        self, table: Table, rows: Sequence[Any], returning: str = "", on_conflict: str = ""
    ) -> str:
        names = list(table.columns)
        source = self._unnest(table, names, table.arrays(rows, names))
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM {source}"
        sql += f" ON CONFLICT {on_conflict}" if on_conflict else ""
        return sql + (f" RETURNING {returning}" if returning else "")

    def update(self, table: Table, key: str, mutable: Sequence[str], rows: Sequence[Any]) -> str:
        names = [key, *mutable]
        source = self._unnest(table, names, table.arrays(rows, names))
        sets = ", ".join(f"{c} = u.{c}" for c in mutable)
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
