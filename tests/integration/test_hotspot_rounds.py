"""The keys a detection round judges (services/district/hotspots/queries.py `take_dirty`): those
of the reports counted since the previous round, by transaction id under the round's snapshot
horizon. A report whose counting transaction is still open when a round runs is judged by a
later round, never skipped, and no report is judged twice."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from contracts.hotspots import HotspotKind
from services.common.config import Settings
from services.district.hotspots import queries
from services.district.hotspots.plan import Key

DISTRICT = "310106"
AT = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def _report(n: int, street: str) -> queries.Report:
    return queries.Report(f"C{n}:1", f"C{n}", "0203", street, None, None, None, None, AT)


def _surge(street: str) -> Key:
    return Key(HotspotKind.SURGE, street, "0203")


async def test_a_report_counted_while_a_round_runs_is_judged_by_the_next(
    settings: Settings,
) -> None:
    counting = await asyncpg.connect(settings.database_url)
    rounds = await asyncpg.connect(settings.database_url)
    try:
        await queries.count(counting, DISTRICT, [_report(1, "S1")])
        assert await queries.take_dirty(rounds, DISTRICT) == [_surge("S1")]
        assert await queries.take_dirty(rounds, DISTRICT) == []  # judged once

        slow = counting.transaction()
        await slow.start()
        await queries.count(counting, DISTRICT, [_report(2, "S2")])  # not committed yet
        await queries.count(rounds, DISTRICT, [_report(3, "S3")])  # committed after it began
        assert await queries.take_dirty(rounds, DISTRICT) == []  # both wait for the slow one
        await slow.commit()
        assert await queries.take_dirty(rounds, DISTRICT) == [_surge("S2"), _surge("S3")]
        assert await queries.take_dirty(rounds, DISTRICT) == []
    finally:
        await counting.close()
        await rounds.close()
