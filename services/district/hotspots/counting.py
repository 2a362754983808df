"""Counting reports as cases open: a consumer of `cityops.case-events`.

Why a consumer and not the intake's transaction: the intake's one write statement per batch is
the district's throughput (README, Benchmarks); counting in it would add a row per report to
four tables (and their lock traffic) on the path every order takes to its task, while a
hotspot seen seconds later loses nothing. The consumer reads the events the outbox publishes
anyway, counts a batch in one statement (idempotent by event id, so a batch read twice counts
once), and falls behind rather than slowing dispatch when it cannot keep up."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.common.consumer import BatchHandler, Record
from services.district.cases.lifecycle import CaseState, Event
from services.district.hotspots import queries
from services.district.hotspots.areas import place_of
from services.district.hotspots.queries import Report

log = logging.getLogger(__name__)

#: the events that bring a report: a case opened, a report merged into an open case (并案)
REPORT_EVENTS = frozenset({Event.OPENED.value, "merged_report"})
_MARKERS = tuple(f'"{t}"'.encode() for t in REPORT_EVENTS)


def report_event(value: bytes | None, district: str) -> tuple[str, str, datetime] | None:
    """(event_id, case_no, at) of an event that brings a report; None for any other."""
    if not value or not any(m in value for m in _MARKERS):
        return None  # most events: skipped without parsing
    try:
        e = json.loads(value)
        if e.get("type") not in REPORT_EVENTS or e.get("district_code") != district:
            return None
        return str(e["event_id"]), str(e["case_no"]), datetime.fromisoformat(e["at"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # not a case event this service wrote: nothing to count


class Counting(BatchHandler):
    """Counts the reports of a batch of case events in one transaction."""

    def __init__(self, pool: asyncpg.Pool, district: str) -> None:
        self.pool, self.district = pool, district

    async def handle(self, records: Sequence[Record]) -> None:
        found = [e for r in records if (e := report_event(r.value, self.district)) is not None]
        if not found:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            cases = await queries.reported_cases(
                conn, self.district, [c for _, c, _ in found], CaseState.NOT_OURS.value
            )
            reports = [
                _report(event_id, cases[case_no], at)
                for event_id, case_no, at in found
                if case_no in cases
            ]
            if reports:
                await queries.count(conn, self.district, reports)

    async def poison(self, record: Record, error: BaseException) -> None:
        """A case event that cannot be counted (it failed alone, twice) is left uncounted:
        it is this service's own output, kept on its topic, and nothing upstream waits."""
        log.error(
            "case event not counted for hotspots",
            extra={"partition": record.partition, "offset": record.offset, "error": repr(error)},
        )


def _report(event_id: str, case: asyncpg.Record, at: datetime) -> Report:
    return Report(
        event_id=event_id,
        case_no=case["case_no"],
        category_code=case["category_code"],
        street_code=case["street_code"],
        geo_cell=case["geo_cell"],
        place=place_of(case["lon"], case["lat"], case["address"]),
        lon=case["lon"],
        lat=case["lat"],
        at=at,
    )
