"""Prepare a deployment: migrations, reference data, topics, the phone key. Idempotent."""

from __future__ import annotations

import logging

import asyncpg

from services.common import db
from services.common.config import Settings
from services.common.crypto import load_vault
from services.common.kafka import district_topics, ensure_topics
from services.district.deadlines.policy_file import load_policy
from services.district.routing import queries
from services.district.routing.reference import load_csv

log = logging.getLogger(__name__)


async def bootstrap(settings: Settings) -> None:
    applied = await db.migrate(settings.database_url)
    ref = load_csv(settings.reference_dir, settings.district_code, settings.territory_geojson)
    load_policy(settings.deadline_policy_path, ref.categories)  # a bad file stops here too
    conn = await asyncpg.connect(settings.database_url)
    try:
        await queries.store_reference(conn, ref)
    finally:
        await conn.close()
    desks = (u.unit_code for u in ref.units.values() if u.tier != "district")
    await ensure_topics(settings, district_topics(desks))
    load_vault(settings)
    log.info("bootstrap done", extra={"migrations": applied, "units": len(ref.units)})
