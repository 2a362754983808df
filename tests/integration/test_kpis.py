"""Closed-loop KPIs on the real loop: known scenarios, hand-computed figures, read back from the
KPI API and from Prometheus.

The district runs on a FakeClock from Friday 2026-11-27 10:00 (Shanghai). A normal complaint
to the construction commission (施工扰民 -> 310106-JSGL) gets: accept by 11:00, first contact
by Mon 11-30 10:00, resolve by Fri 12-04 10:00 (5 WD). After the extension and before any other
feedback the clock jumps to Fri 12-04 12:00 (`AS_OF`); the units then report with the times they
acted (`at`, in the past), so some acted late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contracts import topics
from services.common.clock import FakeClock
from services.common.config import ROOT, Settings
from services.district.app import create_app as district_app
from services.district.keys import POOL
from tests.support import (
    Service,
    Topics,
    run_cityops,
    running,
    samples,
    task_feedback,
    wait_until,
)

T0 = datetime.fromisoformat("2026-11-27T10:00:00+08:00")
AS_OF = datetime.fromisoformat("2026-12-04T12:00:00+08:00")
JSGL, STHJ = "310106-JSGL", "310106-STHJ"
PERIOD = "from=2026-11-27&to=2026-12-05"
_TEMPLATES = {
    o["order_no"]: o for o in samples("hotline12345.workorders") if o["action"] == "dispatch"
}
CONSTRUCTION = _TEMPLATES["HL2026112700124"]  # 施工扰民, complaint, caller wants a call back
FUMES = _TEMPLATES["HL2026112700123"]  # 油烟污染 -> ecology bureau
#: one place in the district per construction order, far apart: reports of one problem at
#: one place within a day would be merged (并案) into one case
PLACES = [
    o["location"]
    for o in _TEMPLATES.values()
    if o["district_code"] == "310106" and o.get("location")
]


def nov(day: int, hour: int, minute: int = 0) -> str:
    return datetime(2026, 11, day, hour, minute, tzinfo=T0.tzinfo).isoformat()


def dec(day: int, hour: int, minute: int = 0) -> str:
    return datetime(2026, 12, day, hour, minute, tzinfo=T0.tzinfo).isoformat()


feedback = task_feedback


def followup(order_no: str, satisfaction: str, resolved: bool, visited: datetime) -> dict[str, Any]:
    return {
        "schema": "hotline12345.feedback/v1",
        "order_no": order_no,
        "visited_at": visited.isoformat(),
        "resolved": resolved,
        "satisfaction": satisfaction,
    }


class Loop:
    """Drives orders and feedback through the running district and reads the record back."""

    def __init__(self, t: Topics, district: Service) -> None:
        self.t, self.district = t, district
        self.pool: asyncpg.Pool = district.app[POOL]

    async def order(
        self, order_no: str, template: dict[str, Any], unit: str, place: int = 0
    ) -> dict[str, Any]:
        order = {**template, "order_no": order_no, "location": PLACES[place]}
        await self.t.publish(topics.WORKORDERS, order_no, order)
        [task] = await self.t.wait_for(
            topics.task_topic(unit),
            lambda m: m["case"]["source_ref"] == order_no and m["kind"] == "assigned",
            order_no,
        )
        return task

    async def act(self, task: dict[str, Any], *steps: tuple[str, str, dict[str, Any]]) -> None:
        for action, when, extra in steps:
            await self.t.publish(
                topics.TASK_FEEDBACK, task["task_id"], feedback(task, action, when, **extra)
            )

    async def state(self, case_no: str, state: str) -> None:
        async def reached() -> bool:
            got = await self.pool.fetchval("SELECT state FROM cases WHERE case_no = $1", case_no)
            return bool(got == state)

        await wait_until(reached, f"{case_no} {state}")

    async def event(self, case_no: str, type_: str) -> None:
        async def recorded() -> bool:
            sql = "SELECT count(*) FROM case_events WHERE case_no = $1 AND type = $2"
            return bool(await self.pool.fetchval(sql, case_no, type_))

        await wait_until(recorded, f"{case_no} {type_}")


RESOLVED = {"result": {"resolved": True, "summary": "已处置"}}


async def drive_scenarios(loop: Loop, clock: FakeClock) -> dict[str, dict[str, Any]]:
    """A on time (with an approved extension), B late, C reopened, D returned, E left open
    past its deadline, F on time at another unit, H dispatched at the end (not yet due)."""
    tasks = {k: await loop.order(f"KPI-{k}", CONSTRUCTION, JSGL, i) for i, k in enumerate("ABCDE")}
    tasks["F"] = await loop.order("KPI-F", FUMES, STHJ, 6)
    a = tasks["A"]
    await loop.act(a, ("request_extension", T0.isoformat(), {"requested_until": dec(7, 10)}))
    await loop.event(a["case_no"], "extension_requested")
    body = {"task_id": a["task_id"], "approve": True, "until": dec(7, 10), "actor": "sup-1"}
    status, reply = await loop.district.post(f"/api/v1/cases/{a['case_no']}/extension", body)
    assert status == 200, reply

    clock.advance(AS_OF - T0)
    await loop.act(a, ("accept", nov(27, 10, 30), {}), ("contact", nov(27, 10, 40), {}))
    await loop.act(a, ("resolve", nov(30, 9, 30), RESOLVED))
    await loop.act(tasks["B"], ("accept", nov(27, 11, 30), {}), ("contact", dec(1, 9, 30), {}))
    await loop.act(tasks["B"], ("resolve", dec(4, 11), RESOLVED))
    await loop.act(tasks["C"], ("accept", nov(27, 10, 20), {}), ("contact", nov(27, 10, 30), {}))
    await loop.act(tasks["C"], ("resolve", nov(30, 10), RESOLVED))
    await loop.act(tasks["D"], ("return", nov(27, 10, 15), {"reason": "other"}))
    await loop.act(tasks["F"], ("accept", nov(27, 10, 30), {}), ("contact", nov(27, 10, 45), {}))
    await loop.act(tasks["F"], ("resolve", nov(30, 10), RESOLVED))
    for k in "ABCF":
        await loop.state(tasks[k]["case_no"], "resolved")
    # D's return waits for the district's decision; approved, with no unit to suggest for
    # `other`, it goes to triage
    await loop.state(tasks["D"]["case_no"], "returned")
    take = {"approve": True, "actor": "sup-1", "reason": "同意退单"}
    d_no = tasks["D"]["case_no"]
    status, reply = await loop.district.post(f"/api/v1/cases/{d_no}/return-decision", take)
    assert status == 200, reply
    await loop.state(tasks["D"]["case_no"], "triage")

    visits = [
        ("KPI-A", "satisfied", True, AS_OF),
        ("KPI-B", "unreachable", False, AS_OF - timedelta(hours=1)),  # not a follow-up
        ("KPI-B", "basically_satisfied", True, AS_OF),
        ("KPI-C", "dissatisfied", False, AS_OF),
        ("KPI-F", "satisfied", True, AS_OF),
    ]
    for order_no, rating, resolved, visited in visits:
        message = followup(order_no, rating, resolved, visited)
        await loop.t.publish(topics.HOTLINE_FEEDBACK, order_no, message)
    for k in "ABF":
        await loop.state(tasks[k]["case_no"], "closed")
    await loop.state(tasks["C"]["case_no"], "reopened")
    tasks["H"] = await loop.order("KPI-H", CONSTRUCTION, JSGL, 5)
    return tasks


def rate(num: int, den: int) -> dict[str, Any]:
    return {"value": num / den if den else None, "numerator": num, "denominator": den}


EXPECTED_BY_UNIT = {
    # due to close: A closed on time (extended), B closed late, E open past 12-04 10:00, and
    # C: reopened at AS_OF, its reopen task has until 12-09, but the case is judged against
    # the deadline it was first given (12-04 10:00, passed): open and overdue. H (dispatched
    # at AS_OF) is not due. Due: A B C E = 4; closed A B; on time A; open overdue C E.
    # tasks: A1 B1 C1 C2 D1 E1 H1; C2 and H1 are still inside their accept/contact deadlines.
    JSGL: {
        "closure_rate": rate(2, 4),
        "on_time_closure_rate": rate(1, 4),
        "first_contact_rate": rate(2, 4),  # A1, C1 of A1 B1 C1 E1 (D1 was returned uncontacted)
        "resolution_rate": rate(2, 3),  # A, B resolved; C not (B's unreachable visit left out)
        "satisfaction_rate": rate(2, 3),
        "rework_rate": rate(1, 3),  # C reopened of A, B, C resolved
        "extension_rate": rate(1, 4),  # A of A B C E
        "return_rate": rate(1, 7),
        "dispatch_accuracy": rate(6, 7),
        "on_time_accept_rate": rate(2, 5),  # A1, C1 of A1 B1 C1 D1 E1
    },
    # D: returned to the district, in triage past its deadline: the centre's overdue
    "unassigned": {"closure_rate": rate(0, 1), "on_time_closure_rate": rate(0, 1)},
    STHJ: {k: rate(1, 1) for k in ("closure_rate", "on_time_closure_rate", "satisfaction_rate")}
    | {"return_rate": rate(0, 1), "rework_rate": rate(0, 1), "on_time_accept_rate": rate(1, 1)},
}


async def test_kpis_match_the_scenarios_in_the_api_and_in_prometheus(settings: Settings) -> None:
    clock = FakeClock(T0)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        await drive_scenarios(Loop(t, district), clock)

        status, body = await district.get(f"/api/v1/kpis?by=unit&{PERIOD}")
        assert status == 200, body
        assert datetime.fromisoformat(body["as_of"]) == AS_OF
        groups = {g["key"]: g for g in body["groups"]}
        assert set(groups) == {JSGL, STHJ, "unassigned"}
        assert groups[JSGL]["name"] == "静安区建设和管理委员会"
        for unit, expected in EXPECTED_BY_UNIT.items():
            got = {k: {**v} for k, v in groups[unit]["kpis"].items()}
            for key, figures in expected.items():
                assert {f: got[key][f] for f in figures} == figures, (unit, key, got[key])
        assert groups[JSGL]["counts"]["open_overdue"] == 2  # C and E

        # the same exact closures Prometheus counted
        for unit, on_time, n in ((JSGL, "true", 1), (JSGL, "false", 1), (STHJ, "true", 1)):
            labels = {"unit": unit, "on_time": on_time}
            assert await district.metric("cityops_cases_closed_total", **labels) == n
        ratings = {"satisfied": 2, "basically_satisfied": 1, "dissatisfied": 1, "unreachable": 1}
        for rating, n in ratings.items():
            assert await district.metric("cityops_satisfaction_total", rating=rating) == n
        dispatched = await district.metric("cityops_tasks_dispatched_total", unit=JSGL, role="lead")
        assert dispatched == groups[JSGL]["counts"]["dispatched"] == 7
        returns = await district.metric("cityops_task_actions_total", unit=JSGL, action="return")
        assert returns == groups[JSGL]["counts"]["returned"] == 1

        # every grouping counts every row once: the totals do not depend on `by`
        totals = []
        for by in ("street", "category", "source"):
            status, other = await district.get(f"/api/v1/kpis?by={by}&{PERIOD}")
            assert status == 200, other
            totals.append(other["total"])
        assert all(total == body["total"] for total in totals)
        assert [g["key"] for g in other["groups"]] == ["hotline12345"]

        await _http_metrics_use_route_templates(district)
        await _backfill_agrees(district.app[POOL])


async def _backfill_agrees(pool: asyncpg.Pool) -> None:
    """043's backfill of cases.due_by from the record gives what the loop kept: A's first
    deadline moved by its extension (12-07 10:00), C's first (not its reopen's), D's first
    (not the triage it went back to), and none for a case never dispatched."""
    kept = {
        r["case_no"]: r["due_by"] for r in await pool.fetch("SELECT case_no, due_by FROM cases")
    }
    migration = (ROOT / "deploy" / "migrations" / "043_kpi_record.sql").read_text()
    [backfill] = [sql for sql in migration.split(";") if "UPDATE cases c SET due_by" in sql]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE cases SET due_by = NULL")
        await conn.execute(backfill)
        again = {
            r["case_no"]: r["due_by"] for r in await conn.fetch("SELECT case_no, due_by FROM cases")
        }
    assert again == kept
    a = await pool.fetchval("SELECT due_by FROM cases WHERE source_ref = 'KPI-A'")
    assert a == datetime.fromisoformat(dec(7, 10))


async def _http_metrics_use_route_templates(district: Service) -> None:
    ok = await district.metric(
        "cityops_http_requests_total", route="/api/v1/kpis", method="GET", status="200"
    )
    assert ok == 4
    extension = await district.metric(
        "cityops_http_requests_total",
        route="/api/v1/cases/{case_no}/extension",
        method="POST",
        status="200",
    )
    assert extension == 1
    await district.get("/no/such/path")
    assert (
        await district.metric(
            "cityops_http_requests_total", route="unmatched", method="GET", status="404"
        )
        == 1
    )
    _, text = await district.get("/metrics")
    assert "KPI-" not in text and "/no/such/path" not in text


async def test_bad_kpi_queries_are_told_why(settings: Settings) -> None:
    async with running(district_app(settings)) as district:
        for query, reason in (
            ("by=unit", "bad_query"),
            ("by=officer&from=2026-11-01&to=2026-12-01", "bad_query"),
            ("by=unit&from=2026-12-01&to=2026-11-01", "bad_period"),
            ("by=unit&from=yesterday&to=2026-12-01", "bad_period"),
        ):
            status, body = await district.get(f"/api/v1/kpis?{query}")
            assert (status, body["error"]) == (400, reason), query
        for path, reason in (
            ("trend?by=hour&from=2026-11-01&to=2026-12-01", "bad_query"),
            ("trend?by=day&from=2026-12-01&to=2026-11-01", "bad_period"),
            ("ranking?kind=officer&from=2026-11-01&to=2026-12-01", "bad_query"),
            ("ranking?kind=street", "bad_query"),
        ):
            status, body = await district.get(f"/api/v1/kpis/{path}")
            assert (status, body["error"]) == (400, reason), path


async def test_cli_prints_the_table(settings: Settings) -> None:
    out = await kpis_cli(settings, "--by", "source", "--from", "2026-11-01", "--to", "2026-12-01")
    lines = out.splitlines()
    assert lines[0].startswith("closed-loop KPIs by source, [2026-11-01T00:00:00+08:00")
    assert lines[2].split()[:3] == ["source", "name", "结案率"]
    assert lines[-1].split()[:3] == ["total", "–", "0/0"]


async def kpis_cli(settings: Settings, *args: str) -> str:
    """`cityops kpis` with nothing but the database's URL: its table (it must succeed)."""
    env = {"CITYOPS_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    code, out, err = await run_cityops(env, "kpis", *args)
    assert code == 0, err
    return out
