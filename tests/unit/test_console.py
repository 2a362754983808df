"""The console's pure parts: countdowns in the time that counts (the district's overdue list,
the street desk's tasks), and the events kept for clients that reconnect with Last-Event-ID."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.common import static
from services.district.api.live_resume import Recent
from services.district.deadlines.countdown import countdown, in_office, next_change
from services.district.deadlines.workcal import WorkCalendar
from services.street.api import task_countdown

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_normal_cases_count_office_time_and_stop_outside_it() -> None:
    # Friday 2026-11-27 16:30 -> Monday 11-30 10:00: 1 h Friday + 1 h Monday
    clock = countdown(CAL, at("2026-11-27T16:30"), at("2026-11-30T10:00"), "normal")
    assert (clock.remaining_s, clock.natural, clock.ticking) == (7200, False, True)
    weekend = countdown(CAL, at("2026-11-28T12:00"), at("2026-11-30T10:00"), "normal")
    assert (weekend.remaining_s, weekend.ticking) == (3600, False)
    late = countdown(CAL, at("2026-11-30T11:00"), at("2026-11-30T10:00"), "normal")
    assert late.remaining_s == -3600


def test_urgent_cases_count_natural_time() -> None:
    clock = countdown(CAL, at("2026-11-28T12:00"), at("2026-11-28T14:00"), "urgent")
    assert (clock.remaining_s, clock.natural, clock.ticking) == (7200, True, True)


def test_the_street_desk_counts_each_task_to_the_step_owed_next_as_the_district() -> None:
    deadlines: dict[str, str | None] = {
        "accept_by": "2026-11-27T17:00:00+08:00",
        "first_contact_by": "2026-11-30T10:00:00+08:00",
        "resolve_by": "2026-12-04T17:00:00+08:00",
    }

    def task(state: str, urgency: str) -> dict[str, object]:
        return {"state": state, "deadlines": deadlines, "snapshot": {"urgency": urgency}}

    saturday = at("2026-11-28T12:00")
    owed = task_countdown(task("accepted", "normal"), CAL, saturday)
    assert owed is not None
    assert (owed["stage"], owed["remaining_s"], owed["natural"], owed["ticking"]) == (
        "first_contact",
        3600,  # Monday 9:00-10:00: the weekend does not count
        False,
        False,
    )
    urgent = task_countdown(task("accepted", "urgent"), CAL, saturday)
    assert urgent is not None and (urgent["remaining_s"], urgent["ticking"]) == (46 * 3600, True)
    late = task_countdown(task("open", "normal"), CAL, saturday)
    # due Friday 17:00, office until 17:30: overdue by half an hour of office time
    assert late is not None and (late["stage"], late["remaining_s"]) == ("accept", -1800)
    assert task_countdown(task("resolved", "normal"), CAL, saturday) is None
    deadlines["first_contact_by"] = None  # none owed (a road-chief report, a co-unit's task)
    resolve = task_countdown(task("accepted", "normal"), CAL, saturday)
    assert resolve is not None and resolve["stage"] == "resolve"


def test_the_clock_changes_at_the_office_periods_edges() -> None:
    assert in_office(CAL, at("2026-11-27T11:59")) and not in_office(CAL, at("2026-11-27T12:30"))
    assert next_change(CAL, at("2026-11-27T11:00")) == at("2026-11-27T12:00")
    assert next_change(CAL, at("2026-11-27T12:30")) == at("2026-11-27T13:00")
    assert next_change(CAL, at("2026-11-27T18:00")) == at("2026-11-30T09:00")  # Monday


def test_recent_events_answer_what_followed_an_id_or_none() -> None:
    recent = Recent(keep=3)
    for i in range(5):
        recent.pending.put_nowait({"event_id": f"C:{i}", "case_no": "C"})
    assert [e["event_id"] for e in recent.after("C:2") or []] == ["C:3", "C:4"]
    assert recent.after("C:4") == []
    assert recent.after("C:0") is None  # no longer kept: the client reloads


async def test_without_a_build_the_page_says_how_to_build_it(tmp_path: Path) -> None:
    app = web.Application()
    static.install(app, "district", dist=tmp_path)
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/")
        assert page.status == 503 and "npm ci" in await page.text()
        (tmp_path / "assets").mkdir()
        (tmp_path / "district.html").write_text("<p>console</p>")
        (tmp_path / "assets" / "a-1.js").write_text("x")
        page = await client.get("/")
        assert page.status == 200
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert (await client.get("/assets/a-1.js")).headers["Content-Type"] == "text/javascript"
        assert (await client.get("/assets/..%2Fdistrict.html")).status == 404
