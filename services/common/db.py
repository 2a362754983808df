"""PostgreSQL: one pool per process, numbered SQL migrations applied in order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolAcquireContext
from pydantic_core import to_json

from services.common.config import ROOT

log = logging.getLogger(__name__)
MIGRATIONS = ROOT / "deploy" / "migrations"
#: advisory lock key held while migrating, so concurrent starts apply each file once.
_MIGRATION_LOCK = 7_314_001


async def _init_connection(conn: asyncpg.Connection) -> None:
    # binary format, so COPY (copy_records_to_table) can write jsonb columns too
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda v: b"\x01" + to_json(v),  # (pydantic's encoder: a few times json's speed)
        decoder=lambda b: json.loads(b[1:]),
    )


async def _reset(conn: asyncpg.Connection) -> None:
    """Before a connection goes back to the pool. Nothing of ours outlives a transaction (only
    SET LOCAL and transaction-level advisory locks; no LISTEN, no cursors), so this skips
    asyncpg's reset query, a round trip on every release: it only ends a transaction left
    open."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


#: Nothing waits forever on a database that stopped answering. A connection attempt gives up
#: after CONNECT_TIMEOUT_S, a statement after COMMAND_TIMEOUT_S (client side: a frozen server
#: never reports its own timeout), a wait for a free connection of the pool (and its release)
#: after ACQUIRE_TIMEOUT_S. Server side, a statement is cancelled after STATEMENT_TIMEOUT and a
#: transaction left idle (a client frozen mid-transaction) ends after IDLE_IN_TRANSACTION.
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
ACQUIRE_TIMEOUT_S = 30.0
SERVER_SETTINGS = {
    "statement_timeout": "50s",
    "idle_in_transaction_session_timeout": "120s",
}


class Pool(asyncpg.Pool):  # type: ignore[misc]
    """asyncpg's pool, with a bounded wait for a connection unless the caller gives one."""

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return super().acquire(timeout=ACQUIRE_TIMEOUT_S if timeout is None else timeout)


async def create_pool(dsn: str, size: int = 8) -> asyncpg.Pool:
    pool = Pool(
        dsn,
        min_size=1,
        max_size=size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        reset=_reset,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=CONNECT_TIMEOUT_S,
        server_settings=SERVER_SETTINGS,
    )
    await pool  # opens min_size connections
    return pool


def _migration_files(directory: Path) -> list[tuple[str, str]]:
    files = sorted(directory.glob("[0-9][0-9][0-9]_*.sql"))
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


async def migrate(dsn: str, directory: Path = MIGRATIONS) -> list[str]:
    """Apply every `NNN_name.sql` not yet recorded in `schema_migrations`; return those applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in _migration_files(directory):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("migration applied", extra={"version": version})
            applied.append(version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
