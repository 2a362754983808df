"""A shorter simulated month (`make simulate` runs 30 days): five days around National Day
2026 through the district's own intake, case store and timer worker on the real database, on
a fake clock. No task is born overdue, no stage that was not owed is supervised, and the
report measures what it says it does."""

from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from simulation.parties import Volume
from simulation.report import summarise
from simulation.run import Window, simulate
from simulation.world import prepare

from services.common.config import ROOT, Settings
from tests.conftest import TEMPLATE, Databases

START = datetime(2026, 9, 29, tzinfo=ZoneInfo("Asia/Shanghai"))  # 10-01..03: holidays


@pytest.mark.timeout(180)
async def test_five_days_over_a_public_holiday(databases: Databases, template_dsn: str) -> None:
    name = f"sim_{uuid.uuid4().hex[:12]}"
    dsn = await databases.create(name, template=TEMPLATE)
    settings = replace(Settings(), database_url=dsn, reference_dir=ROOT / "deploy" / "reference")
    try:
        await prepare(settings)
        window = Window(START, 5, timedelta(minutes=10))
        district, outcome = await simulate(settings, window, 7, Volume(100, 140))
        try:
            summary = await summarise(district, outcome)
        finally:
            await district.close()
    finally:
        await _drop(databases, name)

    inv, counts, stages = (
        summary["invariants"],
        summary["counts"],
        summary["overdue_share_by_stage"],
    )
    assert inv["tasks_born_overdue"] == 0, inv["examples"]
    assert inv["supervisions_of_stage_not_owed"] == 0, inv["examples"]
    # it ran the loop: cases opened, worked, closed, reopened, supervised by the timer
    assert counts["cases"] >= 400 and counts["tasks"] >= counts["cases"] * 0.8, counts
    assert counts["closures"] > 0 and counts["reopens"] > 0 and counts["returns"] > 0, counts
    assert counts["supervisions"].get("auto", 0) > 0 and counts["warnings"] > 0, counts
    assert summary["commands"]["applied"].get("triage", 0) > 0, summary["commands"]
    # first contact is owed by fewer cases than acceptance (road-chief reports, no call-back)
    assert 0 < stages["first_contact"]["owed"] < stages["accept"]["owed"], stages
    for stage in ("accept", "first_contact", "resolve", "triage"):
        assert 0.0 <= stages[stage]["share"] < 0.5, (stage, stages[stage])
    assert summary["window"]["public_holidays"] == ["2026-10-01", "2026-10-02"], summary["window"]
    assert summary["holiday"]["tasks_with_resolve_deadline_spanning_holiday"] > 0


async def _drop(databases: Databases, name: str) -> None:
    conn = await asyncpg.connect(databases.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
