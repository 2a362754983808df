"""Scope on every route: every operation of both OpenAPI documents (district and street desk),
called with every role, never answers a unit token with another unit's data; a unit token's
KPIs are its own unit's figures with the district's totals beside them."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import aiohttp

from services.common.auth import Role
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.kpis.queries import DIMENSIONS
from services.district.kpis.ranking import RankKind
from services.district.kpis.trend import Step
from services.street.app import create_app as street_app
from tests.integration.test_api_roles import BIKES, BIKES_UNIT, FUMES, FUMES_UNIT
from tests.support import Service, Topics, dispatched, running, wait_until

PERIOD = "from=2000-01-01&to=2100-01-01"
#: routes that read a period (answered 400 without one)
PERIODIC = ("/api/v1/kpis/exceptions", "/api/v1/exceptions")
#: the trend's period: days around today (a trend answers at most 400 buckets)
_TODAY = date.today()
RECENT = f"from={_TODAY - timedelta(days=40)}&to={_TODAY + timedelta(days=2)}"
UNIT_OF = {Role.STREET_OPERATOR: [BIKES_UNIT], Role.DEPARTMENT_OPERATOR: [FUMES_UNIT]}


async def fetch(service: Service, method: str, path: str) -> tuple[int, str]:
    """One request; an event stream is read for a second, then closed."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    body = {} if method in ("POST", "PUT") else None
    async with (
        aiohttp.ClientSession(timeout=timeout) as s,
        s.request(method, service.url + path, json=body, headers=service.auth) as r,
    ):
        if r.content_type != "text/event-stream":
            return r.status, await r.text()
        chunks: list[bytes] = []

        async def read() -> None:
            async for line in r.content:
                chunks.append(line)

        try:
            await asyncio.wait_for(read(), 1.0)
        except TimeoutError:
            pass
        return r.status, b"".join(chunks).decode()


def requests(doc: dict[str, Any], fill: dict[str, str]) -> list[tuple[str, str]]:
    """(method, path) of every operation in an OpenAPI document, its path parameters filled;
    the KPI route once per grouping, the other period routes with the period."""
    out = []
    for template, ops in doc["paths"].items():
        path = template.format(**fill)
        for method in ops:
            if path == "/api/v1/kpis":
                out += [("GET", f"{path}?by={by}&{PERIOD}") for by in DIMENSIONS]
            elif path in PERIODIC:
                out.append((method.upper(), f"{path}?{PERIOD}"))
            elif path == "/api/v1/kpis/trend":
                out += [("GET", f"{path}?by={step}&{RECENT}") for step in Step]
            elif path == "/api/v1/kpis/ranking":
                out += [("GET", f"{path}?kind={kind}&{PERIOD}") for kind in RankKind]
            else:
                out.append((method.upper(), path))
    return out


#: routes that answer the district's reference data, the same for every caller
REFERENCE = ("/api/v1/routing-rules", "/api/v1/units", "/api/v1/territories")


async def test_no_route_shows_a_unit_another_units_data(settings: Settings) -> None:
    async with (
        running(district_app(settings)) as district,
        running(street_app(settings)) as desk,
        Topics(settings) as t,
    ):
        fumes = await dispatched(t, FUMES, FUMES_UNIT)
        bikes = await dispatched(t, BIKES, BIKES_UNIT)
        # what would betray each unit's cases to another unit
        marks = {
            FUMES_UNIT: {fumes["case_no"], fumes["task_id"], FUMES},
            BIKES_UNIT: {bikes["case_no"], bikes["task_id"], BIKES},
        }
        tasks = {FUMES_UNIT: fumes, BIKES_UNIT: bikes}

        def betrays(unit: str, path: str) -> set[str]:
            """Its cases, tasks, orders and, but in the district's reference data (the
            routing rules name the owners of categories; the unit directory and the street
            territories name every unit), its unit code: a KPI row, a queue, a task list."""
            reference = path.startswith(REFERENCE)
            return marks[unit] | (set() if reference else {unit})

        async def on_desk() -> bool:
            status, body = await desk.get("/api/v1/tasks")
            return status == 200 and len(body["items"]) == 2

        await wait_until(on_desk, "both tasks on the desk")
        docs = [(district, (await district.get("/api/v1/openapi.json"))[1])]
        docs.append((desk, (await desk.get("/api/v1/openapi.json"))[1]))
        walked = 0
        for role in Role:
            for unit in UNIT_OF.get(role, [None]):
                for service, doc in docs:
                    caller = await service.as_role(role, unit)
                    for other in [u for u in marks if unit is not None and u != unit] or [None]:
                        # path parameters name the other unit's case and task (and, for a
                        # district role, any of them)
                        target = tasks[other or BIKES_UNIT]
                        fill = {
                            "case_no": target["case_no"],
                            "task_id": target["task_id"],
                            "category_code": "0102",
                        }
                        for method, path in requests(doc, fill):
                            status, text = await fetch(caller, method, path)
                            walked += 1
                            assert status < 500, (role, method, path, status, text)
                            if other is None:
                                continue
                            # a refusal may echo the id asked for, nothing more
                            echo = path if status >= 400 else ""
                            leaked = [
                                m for m in betrays(other, path) if m in text and m not in echo
                            ]
                            assert not leaked, (role, unit, method, path, status, leaked)
        assert walked > 100


async def test_a_unit_tokens_kpis_hold_only_its_unit(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await dispatched(t, FUMES, FUMES_UNIT)
        await dispatched(t, BIKES, BIKES_UNIT)
        street = await district.as_role(Role.STREET_OPERATOR, BIKES_UNIT)
        status, body = await street.get(f"/api/v1/kpis?by=unit&{PERIOD}")
        assert status == 200, body
        assert [g["key"] for g in body["groups"]] == [BIKES_UNIT]
        assert body["scope"] == {"unit": BIKES_UNIT}
        assert body["total"]["counts"]["dispatched"] == 1
        assert body["district_total"]["counts"]["dispatched"] == 2
        status, whole = await district.get(f"/api/v1/kpis?by=unit&{PERIOD}")
        assert {g["key"] for g in whole["groups"]} == {FUMES_UNIT, BIKES_UNIT}
        assert "district_total" not in whole and whole["scope"] == {"district": True}
        for by in DIMENSIONS:
            status, body = await street.get(f"/api/v1/kpis?by={by}&{PERIOD}")
            assert status == 200 and sum(g["counts"]["dispatched"] for g in body["groups"]) == 1, (
                json.dumps(body, ensure_ascii=False)
            )

        # the trend: the street's own figures per bucket, the district's beside them
        status, trend = await street.get(f"/api/v1/kpis/trend?by=week&{RECENT}")
        assert status == 200 and trend["scope"] == {"unit": BIKES_UNIT}, trend
        assert sum(b["counts"]["dispatched"] for b in trend["buckets"]) == 1
        assert sum(b["district_total"]["counts"]["dispatched"] for b in trend["buckets"]) == 2
        # the ranking: its own row only (of the 14 streets ranked); a department token asking
        # for the streets' ranking sees no row
        status, ranking = await street.get(f"/api/v1/kpis/ranking?kind=street&{PERIOD}")
        assert status == 200, ranking
        assert [r["key"] for r in ranking["items"]] == [BIKES_UNIT]
        assert ranking["ranked"] == 14 and ranking["items"][0]["volume"] == 1
        department = await district.as_role(Role.DEPARTMENT_OPERATOR, FUMES_UNIT)
        status, ranking = await department.get(f"/api/v1/kpis/ranking?kind=street&{PERIOD}")
        assert status == 200 and ranking["items"] == [], ranking
        status, whole = await district.get(f"/api/v1/kpis/ranking?kind=department&{PERIOD}")
        assert FUMES_UNIT in [r["key"] for r in whole["items"]], whole
