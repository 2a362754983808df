"""The KPI rules of issue 15 on the real loop, each with figures worked out by hand: due to
close against the resolve deadline (the wait for 回访 is not the unit's), self-handled road-chief
reports outside the dispatch KPIs (自处置率), on time against the deadline first given, accepted
on time only by an explicit accept, 实际解决率 only for solved (not explained) resolutions;
then the same record as a trend (API and `cityops kpis --trend`) and a ranking.

Clock and deadlines as in test_kpis.py: from Fri 2026-11-27 10:00 (Shanghai) a construction
complaint at 310106-JSGL must be accepted by 11:00, first contacted by Mon 11-30 10:00 and
resolved by Fri 12-04 10:00; the clock then jumps to Fri 12-04 12:00 (AS_OF).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contracts import topics
from services.common.clock import FakeClock
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.keys import POOL
from tests.integration.test_kpis import (
    AS_OF,
    CONSTRUCTION,
    JSGL,
    PERIOD,
    RESOLVED,
    T0,
    Loop,
    dec,
    followup,
    kpis_cli,
    nov,
    rate,
)
from tests.support import Service, Topics, running, samples, wait_until

at = datetime.fromisoformat
#: the road chief's street (RC-0415 of 310106016000); his report of bikes parked off their bay
STREET = "310106016000"
ON_SITE = next(r for r in samples("roadchief.reports") if r["handled_on_site"])
EXPLAINED = {"result": {"resolved": True, "summary": "已解释说明", "outcome": "explained"}}


async def drive(loop: Loop, clock: FakeClock) -> dict[str, dict[str, Any]]:
    """G resolved on time, no follow-up yet; L resolved late, no follow-up yet; R returned,
    re-dispatched at AS_OF and resolved then; N contacted and resolved (explained) without
    an accept; P parked 10:30-11:30 (the clock stops: its deadline moves one working hour, to
    12-04 11:00) and resolved 12-04 10:30; S1 a road-chief report handled on the spot, S2 his
    report dispatched."""
    tasks = {k: await loop.order(f"KPI-{k}", CONSTRUCTION, JSGL, i) for i, k in enumerate("GLRNP")}
    s1 = {**ON_SITE, "report_id": "RC-KPI-S1"}
    s2 = {**ON_SITE, "report_id": "RC-KPI-S2", "handled_on_site": False}
    # S1 first: were S2 open first, S1 from the same place would join it (并案)
    await loop.t.publish(topics.ROADCHIEF_REPORTS, s1["report_id"], s1)
    s1_closed = "SELECT state = 'closed' FROM cases WHERE source_ref = 'RC-KPI-S1'"
    await wait_until(lambda: loop.pool.fetchval(s1_closed), "S1 handled on the spot")
    await loop.t.publish(topics.ROADCHIEF_REPORTS, s2["report_id"], s2)
    [tasks["S2"]] = await loop.t.wait_for(
        topics.task_topic(STREET),
        lambda m: m["case"]["source_ref"] == "RC-KPI-S2" and m["kind"] == "assigned",
        "S2's task",
    )
    await _park_for_an_hour(loop, clock, tasks["P"]["case_no"])
    clock.advance(AS_OF - clock.now())
    g, late, r, n, parked = (tasks[k] for k in "GLRNP")
    await loop.act(g, ("accept", nov(27, 10, 10), {}), ("contact", nov(27, 10, 20), {}))
    await loop.act(g, ("resolve", nov(30, 10), RESOLVED))
    await loop.act(late, ("accept", nov(27, 10, 10), {}), ("contact", nov(27, 10, 20), {}))
    await loop.act(late, ("resolve", dec(4, 11), RESOLVED))
    await loop.act(n, ("contact", nov(27, 10, 20), {}), ("resolve", nov(27, 10, 30), EXPLAINED))
    await loop.act(parked, ("accept", nov(27, 11, 40), {}), ("contact", nov(27, 11, 45), {}))
    await loop.act(parked, ("resolve", dec(4, 10, 30), RESOLVED))
    await loop.act(r, ("return", nov(27, 10, 15), {"reason": "other"}))
    await loop.state(r["case_no"], "returned")  # the return waits for the district's review
    body = {"approve": True, "unit": JSGL, "actor": "sup-1", "reason": "同意退单，重新派单"}
    path = f"/api/v1/cases/{r['case_no']}/return-decision"
    status, reply = await loop.district.post(path, body)
    assert status == 200, reply
    [r2] = await loop.t.wait_for(
        topics.task_topic(JSGL),
        lambda m: (
            m["case"]["source_ref"] == "KPI-R"
            and m["task_id"] != r["task_id"]
            and m["kind"] == "assigned"
        ),
        "R re-dispatched",
    )
    now = AS_OF.isoformat()
    await loop.act(r2, ("accept", now, {}), ("contact", now, {}), ("resolve", now, RESOLVED))
    for k in "GLRNP":
        await loop.state(tasks[k]["case_no"], "resolved")
    for order_no in ("KPI-R", "KPI-N", "KPI-P"):
        message = followup(order_no, "satisfied", True, AS_OF)
        await loop.t.publish(topics.HOTLINE_FEEDBACK, order_no, message)
    for k in "RNP":
        await loop.state(tasks[k]["case_no"], "closed")
    return tasks


async def _park_for_an_hour(loop: Loop, clock: FakeClock, case_no: str) -> None:
    """挂账 at 10:30, resumed at 11:30: one working hour (office hours 09:00-12:00) stopped."""
    for minutes, decision in ((30, "park"), (60, "unpark")):
        clock.advance(timedelta(minutes=minutes))
        body = {"actor": "sup-1", "reason": "待协调"}
        status, reply = await loop.district.post(f"/api/v1/cases/{case_no}/{decision}", body)
        assert status == 200, reply


EXPECTED = {
    JSGL: {
        # due to close: R, N and P closed in the period; L open (resolved 12-04 11:00, after
        # its deadline 12-04 10:00, waiting for 回访) and overdue; G resolved 11-30, before its
        # deadline, waiting for 回访: not overdue, not due. Due R N P L = 4.
        "closure_rate": rate(3, 4),
        # on time against the deadline first given: N (resolved 11-27 10:30), P (12-04 10:30,
        # its first deadline moved to 11:00 by the hour parked). R's re-dispatch gave the unit
        # until 12-11, but the case was first due 12-04 10:00 and resolved 12:00: late.
        "on_time_closure_rate": rate(2, 4),
        "extension_rate": rate(0, 4),
        # tasks G1 L1 R1 N1 P1 R2, all decided; explicit accepts in time: G1 10:10, L1 10:10,
        # P1 11:40 (its 11:00 moved to 12:00 by the hour parked), R2 12:00 (due 13:00 or
        # later). N1 contacted 10:20 and resolved 10:30 without an accept: no accept. R1
        # returned unaccepted.
        "on_time_accept_rate": rate(4, 6),
        # owed: G1 L1 N1 P1 R2 (R1 was returned before any contact), all in time
        "first_contact_rate": rate(5, 5),
        # follow-ups R, N and P, all satisfied and "resolved"; N's unit only explained
        "satisfaction_rate": rate(3, 3),
        "resolution_rate": rate(2, 3),
        "rework_rate": rate(0, 5),  # resolutions G L N P R in the period, none reopened
        "return_rate": rate(1, 6),
        "dispatch_accuracy": rate(5, 6),
        "self_handled_rate": rate(0, 0),
    },
    # the road chief's unit: S1 handled on the spot, S2 dispatched to the street (4 WH from
    # 11-27 10:00, still open at AS_OF: overdue). S1 is not a closure: due S2 only.
    STREET: {
        "self_handled_rate": rate(1, 2),
        "closure_rate": rate(0, 1),
        "on_time_closure_rate": rate(0, 1),
    },
}


async def test_the_rules_of_issue_15_by_hand(settings: Settings) -> None:
    clock = FakeClock(T0)
    async with running(district_app(settings, clock=clock)) as district, Topics(settings) as t:
        tasks = await drive(Loop(t, district), clock)
        status, body = await district.get(f"/api/v1/kpis?by=unit&{PERIOD}")
        assert status == 200, body
        groups = {g["key"]: g for g in body["groups"]}
        for unit, expected in EXPECTED.items():
            for key, figures in expected.items():
                got = groups[unit]["kpis"][key]
                assert {f: got[f] for f in figures} == figures, (unit, key, got)
        assert groups[JSGL]["counts"]["open_overdue"] == 1  # L
        due_p = "SELECT due_by FROM cases WHERE case_no = $1"
        assert await district.app[POOL].fetchval(due_p, tasks["P"]["case_no"]) == at(dec(4, 11))
        assert groups[STREET]["counts"]["roadchief_reports"] == 2
        # the record keeps the unit's outcome with each resolution
        case = await district.get(f"/api/v1/cases/{tasks['N']['case_no']}")
        [resolved] = [e for e in case[1]["timeline"] if e["type"] == "resolved"]
        assert resolved["data"]["outcome"] == "explained"
        await _order_record(district.app[POOL], tasks)
        await _trend(district)
        await _ranking(district)
    await _cli(settings)


async def _order_record(pool: asyncpg.Pool, tasks: dict[str, dict[str, Any]]) -> None:
    """Per order: first contact and when, the unit's outcome, the follow-up's rating."""
    rows = await pool.fetch(
        "SELECT * FROM order_record WHERE order_no = ANY($1) ORDER BY order_no",
        ["KPI-G", "KPI-N", "KPI-R"],
    )
    got = {
        r["order_no"]: (
            r["first_contact"],
            r["first_contact_at"],
            r["outcome"],
            r["satisfaction"],
            r["citizen_resolved"],
        )
        for r in rows
    }
    assert got == {
        "KPI-G": (True, at(nov(27, 10, 20)), "solved", None, None),  # no 回访 yet
        "KPI-N": (True, at(nov(27, 10, 20)), "explained", "satisfied", True),
        "KPI-R": (True, AS_OF, "solved", "satisfied", True),  # R2's contact; R1 never called
    }
    assert {r["case_no"] for r in rows} == {tasks[k]["case_no"] for k in "GNR"}


async def _trend(district: Service) -> None:
    """Per ISO week: W48 is Fri 11-27 .. Sun 11-29 of the period, W49 Mon 11-30 .. Fri 12-04."""
    status, body = await district.get(f"/api/v1/kpis/trend?by=week&{PERIOD}")
    assert status == 200, body
    w48, w49 = body["buckets"]
    assert (w48["label"], w49["label"]) == ("2026-W48", "2026-W49")
    assert w49["from"] == "2026-11-30T00:00:00+08:00"
    # W48: tasks G1 L1 R1 N1 P1 S2's; S2 due 11-27 and still open; both road-chief reports
    assert w48["counts"]["dispatched"] == 6 and w48["counts"]["open_overdue"] == 1
    assert w48["kpis"]["self_handled_rate"]["numerator"] == 1
    assert w48["kpis"]["self_handled_rate"]["denominator"] == 2
    # W49: R2 dispatched; R, N and P closed (N and P on time), L overdue; follow-ups R N P
    assert w49["counts"]["dispatched"] == 1
    assert w49["kpis"]["on_time_closure_rate"] == {"name": "按期结案率", **rate(2, 4)}
    assert w49["kpis"]["resolution_rate"] == {"name": "实际解决率", **rate(2, 3)}
    status, days = await district.get(f"/api/v1/kpis/trend?by=day&{PERIOD}")
    assert [d["label"] for d in days["buckets"]][::7] == ["2026-11-27", "2026-12-04"]
    assert len(days["buckets"]) == 8
    status, bad = await district.get("/api/v1/kpis/trend?by=day&from=2020-01-01&to=2026-01-01")
    assert (status, bad["error"]) == (400, "bad_period")


async def _ranking(district: Service) -> None:
    """Departments: JSGL alone has work. First contact 5/5, satisfied 3/3, solved 2/3, volume
    6 of the most 6: 100 × (30×1 + 40×1 + 20×2/3 + 5×1) / 95 = 100 × 88.33 / 95 = 92.98."""
    status, body = await district.get(f"/api/v1/kpis/ranking?kind=department&{PERIOD}")
    assert status == 200, body
    first, *rest = body["items"]
    assert (first["rank"], first["key"], first["volume"]) == (1, JSGL, 6)
    assert round(first["score"], 2) == 92.98
    assert first["parts"]["resolution_rate"] == 2 / 3
    assert all(r["score"] is None and r["rank"] is None for r in rest)
    # the street: S2's task only, no KPI of the weighted ones to rate (no caller, no visit)
    status, streets = await district.get(f"/api/v1/kpis/ranking?kind=street&{PERIOD}")
    [mine] = [r for r in streets["items"] if r["key"] == STREET]
    assert (mine["volume"], mine["score"]) == (1, None)


async def _cli(settings: Settings) -> None:
    """`cityops kpis --trend week` prints a row per week; 派遣准确率 does not depend on the
    clock: W48 5/6 (R1 returned), W49 1/1."""
    out = await _run(settings, "--trend", "week")
    title, _, header, w48, w49 = out.splitlines()
    assert title.startswith("closed-loop KPIs per week, [2026-11-27T00:00:00+08:00")
    assert header.split()[:3] == ["week", "结案率", "按期结案率"]
    assert w48.startswith("2026-W48") and "83.3% 5/6" in w48
    assert w49.startswith("2026-W49") and "100.0% 1/1" in w49
    ranking = (await _run(settings, "--ranking", "department")).splitlines()
    assert ranking[2].split()[:4] == ["rank", "department", "name", "score"]
    assert ranking[3].split()[:2] == ["1", JSGL]


async def _run(settings: Settings, *args: str) -> str:
    return await kpis_cli(settings, "--from", "2026-11-27", "--to", "2026-12-05", *args)
