"""`cityops keys rotate`: a new phone key seals from now on; everything sealed at rest under an
older key is sealed again under it (the older keys stay in the ring: dead letters already on
the topic still name them). Running services pick the new key up when restarted; until then
they seal under the key they started with, which the next `rotate --reseal-only` re-seals."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

import asyncpg

from services.common.config import Settings
from services.common.crypto import PhoneVault, add_key, load_vault, redact

#: (table, key columns, sealed column, raw message?): every sealed value at rest
SEALED = (
    ("cases", ("case_no",), "caller_phone_sealed", False),
    ("case_reporters", ("source", "source_ref"), "caller_phone_sealed", False),
    ("parked_messages", ("id",), "value_sealed", True),
)
BATCH = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", required=True)
    rotate = sub.add_parser("rotate", help="add a phone key and re-seal what rests under it")
    rotate.add_argument(
        "--reseal-only", action="store_true", help="re-seal under the newest key, add none"
    )


async def main(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.database_url:
        print("cityops keys: set CITYOPS_DATABASE_URL", file=sys.stderr)
        return 2
    if not args.reseal_only:
        if settings.phone_key:
            print(
                "cityops keys: CITYOPS_PHONE_KEY is set: add an entry `<id>:<base64 of 32 bytes>`"
                " with a higher id to it, then run `cityops keys rotate --reseal-only`",
                file=sys.stderr,
            )
            return 2
        load_vault(settings)  # the ring exists before it grows
        print(f"cityops keys: key {add_key(settings)} seals from now on")
    vault = load_vault(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:
        counts = await reseal(conn, vault)
    finally:
        await conn.close()
    for table, n in counts.items():
        print(f"cityops keys: {table}: {n} re-sealed under key {vault.current}")
    return 0


async def reseal(conn: asyncpg.Connection, vault: PhoneVault) -> dict[str, int]:
    """Seal every value at rest under the vault's current key; legacy parked messages that
    hold a phone in clear are masked and sealed. Returns how many rows changed, by table."""
    counts = {}
    for table, keys, column, raw in SEALED:
        again = functools.partial(vault.reseal, raw=raw)
        counts[table] = await _reseal_table(conn, table, keys, column, again, vault.current)
    counts["parked_messages (in clear)"] = await _seal_clear_parked(conn, vault)
    return counts


async def _reseal_table(
    conn: asyncpg.Connection,
    table: str,
    keys: tuple[str, ...],
    column: str,
    again: Callable[[bytes], bytes],
    current: int,
) -> int:
    done, names = 0, ", ".join(keys)
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                f"SELECT {names}, {column} AS sealed FROM {table}"
                f" WHERE {column} IS NOT NULL AND get_byte({column}, 0) <> $1"
                f" LIMIT {BATCH} FOR UPDATE SKIP LOCKED",
                current,
            )
            if not rows:
                return done
            where = " AND ".join(f"{k} = ${i + 2}" for i, k in enumerate(keys))
            await conn.executemany(
                f"UPDATE {table} SET {column} = $1 WHERE {where}",
                [(again(bytes(r["sealed"])), *(r[k] for k in keys)) for r in rows],
            )
            done += len(rows)


async def _seal_clear_parked(conn: asyncpg.Connection, vault: PhoneVault) -> int:
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, value FROM parked_messages WHERE value_sealed IS NULL FOR UPDATE"
        )
        changed = [(r["id"], *redact(bytes(r["value"]), vault)) for r in rows]
        changed = [c for c in changed if c[2] is not None]
        await conn.executemany(
            "UPDATE parked_messages SET value = $2, value_sealed = $3 WHERE id = $1", changed
        )
    return len(changed)
