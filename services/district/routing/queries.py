"""The routing reference data's SQL: units, categories, anchors, roads and territories stored
at bootstrap and loaded at start; the routing rules, their versions and history."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from contracts.common import Urgency
from services.district.routing.geo import Anchor
from services.district.routing.reference import Category, Reference, Rule, Unit


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


async def load_categories(conn: asyncpg.Connection, district_code: str) -> dict[str, Category]:
    """The district's categories by code (without the rest of the reference)."""
    return {
        r["code"]: Category(
            r["code"],
            r["minor"],
            r["major"],
            r["object_type"],
            r["default_owner"],
            r["handle_sla"],
            Urgency(r["default_urgency"]),
        )
        for r in await conn.fetch(
            "SELECT * FROM categories WHERE district_code = $1", district_code
        )
    }


async def load_reference(conn: asyncpg.Connection, district_code: str) -> Reference:
    units = {
        r["unit_code"]: Unit(r["unit_code"], r["name"], r["tier"])
        for r in await conn.fetch(
            "SELECT unit_code, name, tier FROM units WHERE district_code = $1", district_code
        )
    }
    categories = await load_categories(conn, district_code)
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


RULE_COLUMNS = "category_code, owner, alt_owner, urgency, source, version, auto_redispatch_returns"


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
            " alt_owner, version, changed_by, reason, token_id, auto_redispatch_returns)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
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
            rule.auto_redispatch_returns,
        )
    return Rule(
        rule.category_code,
        rule.owner,
        rule.alt_owner,
        rule.urgency,
        rule.source,
        version,
        rule.auto_redispatch_returns,
    )


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
