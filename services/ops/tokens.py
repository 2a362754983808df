"""`cityops token create | list | revoke`: mint an operator API token (printed once, stored
hashed; it expires after `--expires-in`, by default CITYOPS_TOKEN_EXPIRES_IN), list tokens
with their expiry and last use, revoke one; and the demo tokens `cityops run` writes for each
role."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from services.common.auth import UNIT_ROLES, Role, TokenStore
from services.common.config import ROOT, Settings, duration

DEMO_FILE = ROOT / ".cityops" / "demo-tokens.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="mint a token; it is printed once")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--unit", help="the unit of a street or department operator")
    create.add_argument("--name", default="", help="who or what holds the token")
    create.add_argument(
        "--expires-in",
        help="its lifetime: 90d, 12h, 30m; never (default: CITYOPS_TOKEN_EXPIRES_IN, 90d)",
    )
    actions.add_parser("list", help="tokens: role, unit, name, created, expires, last used")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")


async def main(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.database_url:
        print("cityops token: set CITYOPS_DATABASE_URL (cityops run prints it)")
        return 2
    conn = await asyncpg.connect(settings.database_url)
    try:
        store = TokenStore(conn, settings.district_code)
        if args.token_command == "list":
            return await _list(conn, settings)
        if args.token_command == "revoke":
            done = await store.revoke(args.token_id)
            print("revoked" if done else f"no active token {args.token_id}")
            return 0 if done else 1
        role = Role(args.role)
        if (role in UNIT_ROLES) != (args.unit is not None):
            need = "needs --unit" if role in UNIT_ROLES else "takes no --unit"
            print(f"cityops token: role {role} {need}")
            return 2
        if args.unit is not None and not await _unit_exists(conn, settings, args.unit):
            print(f"cityops token: no unit {args.unit} in district {settings.district_code}")
            return 2
        try:
            expires_in = duration(args.expires_in or settings.token_expires_in)
        except ValueError as exc:
            print(f"cityops token: --expires-in: {exc}")
            return 2
        print(await store.mint(role, args.unit, args.name, expires_in))
        return 0
    finally:
        await conn.close()


def default_lifetime(settings: Settings) -> timedelta | None:
    return duration(settings.token_expires_in)


async def _list(conn: asyncpg.Connection, settings: Settings) -> int:
    rows = await conn.fetch(
        "SELECT id, role, unit_code, name, created_at, expires_at, last_used_at, revoked_at"
        " FROM api_tokens WHERE district_code = $1 ORDER BY created_at, id",
        settings.district_code,
    )

    def when(at: datetime | None, none: str) -> str:
        return none if at is None else at.isoformat(timespec="seconds")

    print("id\trole\tunit\tname\tcreated\texpires\tlast used\trevoked")
    for r in rows:
        print(
            "\t".join(
                [
                    r["id"],
                    r["role"],
                    r["unit_code"] or "-",
                    r["name"],
                    when(r["created_at"], "-"),
                    when(r["expires_at"], "never"),
                    when(r["last_used_at"], "never"),
                    when(r["revoked_at"], "-"),
                ]
            )
        )
    return 0


async def _unit_exists(conn: asyncpg.Connection, settings: Settings, unit: str) -> bool:
    sql = "SELECT EXISTS (SELECT 1 FROM units WHERE unit_code = $1 AND district_code = $2)"
    return bool(await conn.fetchval(sql, unit, settings.district_code))


async def write_demo_tokens(settings: Settings, path: Path = DEMO_FILE) -> Path:
    """One fresh token per role (unit roles: the first street / department), as JSON."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        store = TokenStore(conn, settings.district_code)
        units = {
            tier: await conn.fetchval(
                "SELECT min(unit_code) FROM units WHERE district_code = $1 AND tier = $2",
                settings.district_code,
                tier,
            )
            for tier in ("street", "department")
        }
        unit_of = {
            Role.STREET_OPERATOR: units["street"],
            Role.DEPARTMENT_OPERATOR: units["department"],
        }
        tokens = {}
        for role in Role:
            unit = unit_of.get(role)
            token = await store.mint(role, unit, f"demo {role.value}", default_lifetime(settings))
            tokens[role.value] = {"token": token, "unit": unit}
    finally:
        await conn.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(tokens, f, indent=2)
    return path
