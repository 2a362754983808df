"""The operator APIs by role: what each token sees and may do, and how refusals read
(401, 403, 404 for another unit's case or task, 400/422 for bad input, 413 when too large)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contracts import topics
from services.common import db
from services.common.auth import TOKENS, Role, TokenStore
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.ops import tokens
from services.street.app import create_app as street_app
from tests.support import Service, Topics, dispatched, running, wait_until

FUMES, FUMES_UNIT = "HL2026112700123", "310106-STHJ"  # ecology bureau (a department)
BIKES, BIKES_UNIT = "HL2026112700126", "310106015000"  # a street, by location


async def call(
    service: Service,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    data: bytes | None = None,
) -> tuple[int, Any, Any]:
    """One request as `token` (default: the service's); the body parsed when it is JSON."""
    token = service.token if token is None else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, service.url + path, json=body, data=data, headers=headers) as r,
    ):
        text = await r.text()
        parsed = json.loads(text) if r.content_type == "application/json" else text
        return r.status, parsed, r.headers


async def test_district_api_by_role(settings: Settings) -> None:
    async with running(district_app(settings)) as sup, Topics(settings) as t:
        fumes = (await dispatched(t, FUMES, FUMES_UNIT))["case_no"]
        bikes = (await dispatched(t, BIKES, BIKES_UNIT))["case_no"]
        op = await sup.as_role(Role.DISTRICT_OPERATOR)
        aud = await sup.as_role(Role.AUDITOR)
        dept = await sup.as_role(Role.DEPARTMENT_OPERATOR, FUMES_UNIT)
        street = await sup.as_role(Role.STREET_OPERATOR, BIKES_UNIT)

        # 401 without a token or with a wrong one; the probes and the document stay open
        for token in ("", "cityops_nope_nope"):
            status, body, headers = await call(sup, "GET", "/api/v1/queues", token=token)
            assert (status, body["error"]) == (401, "unauthenticated")
            assert headers["WWW-Authenticate"].startswith("Bearer")
        for path in ("/healthz", "/metrics", "/api/v1/openapi.json"):
            assert (await _anonymous(sup, path))[0] == 200, path

        # case detail: every district role sees every case; a unit sees its own, 404 otherwise
        for who in (sup, op, aud):
            for case_no in (fumes, bikes):
                assert (await call(who, "GET", f"/api/v1/cases/{case_no}"))[0] == 200
        for who, mine, theirs in ((dept, fumes, bikes), (street, bikes, fumes)):
            status, body, _ = await call(who, "GET", f"/api/v1/cases/{mine}")
            assert status == 200 and body["case_no"] == mine
            status, body, _ = await call(who, "GET", f"/api/v1/cases/{theirs}")
            assert (status, body["error"]) == (404, "not_found")

        # search: scoped by unit, filtered, keyset-paginated
        status, page, _ = await call(dept, "GET", "/api/v1/cases")
        assert status == 200 and [c["case_no"] for c in page["items"]] == [fumes]
        assert page["items"][0]["unit_code"] == FUMES_UNIT
        status, page, _ = await call(aud, "GET", "/api/v1/cases")
        assert {c["case_no"] for c in page["items"]} == {fumes, bikes}
        status, page, _ = await call(sup, "GET", f"/api/v1/cases?unit={BIKES_UNIT}")
        assert [c["case_no"] for c in page["items"]] == [bikes]
        status, page, _ = await call(sup, "GET", "/api/v1/cases?state=dispatched&overdue=false")
        assert {c["case_no"] for c in page["items"]} == {fumes, bikes}
        status, page, _ = await call(sup, "GET", "/api/v1/cases?source=roadchief")
        assert page["items"] == []
        status, page, _ = await call(sup, "GET", "/api/v1/cases?from=0001-01-01&to=9999-12-31")
        assert status == 200 and {c["case_no"] for c in page["items"]} == {fumes, bikes}
        status, first, _ = await call(sup, "GET", "/api/v1/cases?limit=1")
        assert len(first["items"]) == 1 and first["next"]
        status, second, _ = await call(sup, "GET", f"/api/v1/cases?limit=1&after={first['next']}")
        seen = {first["items"][0]["case_no"], second["items"][0]["case_no"]}
        assert seen == {fumes, bikes}
        for query, want in (
            ("after=garbage", (400, "bad_cursor")),
            ("limit=0", (422, "invalid_query")),
            ("state=nonsense", (422, "invalid_query")),
            ("colour=red", (422, "invalid_query")),
        ):
            status, body, _ = await call(sup, "GET", f"/api/v1/cases?{query}")
            assert (status, body["error"]) == want, query

        # queues: the district sees every unit, a unit its own row
        status, queues, _ = await call(op, "GET", "/api/v1/queues")
        units = {row["unit_code"] for row in queues["open"]}
        assert status == 200 and {FUMES_UNIT, BIKES_UNIT} <= units
        assert queues["waiting_for_triage"] == 0
        status, queues, _ = await call(dept, "GET", "/api/v1/queues")
        assert {row["unit_code"] for row in queues["open"]} == {FUMES_UNIT}

        # decisions: 403 for the roles that may not take them, before the body is read
        supervise = {"actor": "op-1", "reason": "市民反映强烈"}
        for who in (aud, dept, street):
            status, body, _ = await call(who, "POST", f"/api/v1/cases/{fumes}/supervise", {})
            assert (status, body["error"]) == (403, "forbidden")
        joint = {"actor": "op-1", "lead": FUMES_UNIT, "co_units": [BIKES_UNIT]}
        status, body, _ = await call(op, "POST", f"/api/v1/cases/{fumes}/joint", joint)
        assert (status, body["error"]) == (403, "forbidden")
        rule = {"actor": "op-1", "category_code": "x", "owner": "street"}
        for who in (op, aud, dept):
            assert (await call(who, "PUT", "/api/v1/routing-rules", rule))[0] == 403
        status, body, _ = await call(op, "POST", f"/api/v1/cases/{fumes}/supervise", supervise)
        assert status == 200 and body["supervised"] is True
        # the record names the token the decision came with, beside the actor it states
        [event] = [e for e in body["timeline"] if e["type"] == "supervised"]
        assert (event["actor"], event["data"]["token_id"]) == ("op-1", op.token_id)
        status, body, _ = await call(aud, "GET", "/api/v1/routing-rules")
        assert status == 200 and body
        change = {"actor": "sup-1", "category_code": "0102", "owner": "street", "reason": "核对"}
        assert (await call(sup, "PUT", "/api/v1/routing-rules", change))[0] == 200
        status, history, _ = await call(aud, "GET", "/api/v1/routing-rules/0102/history")
        [now] = [h for h in history if h["active"] and (h["urgency"], h["source"]) == ("*", "*")]
        assert (now["changed_by"], now["token_id"]) == ("sup-1", sup.token_id)

        # bad bodies: 400 not JSON, 422 wrong shape, 413 too large; all JSON
        status, body, _ = await call(sup, "POST", f"/api/v1/cases/{fumes}/dispatch", {})
        assert (status, body["error"]) == (422, "invalid")
        path = f"/api/v1/cases/{fumes}/dispatch"
        status, body, _ = await call(sup, "POST", path, data=b"{not json")
        assert (status, body["error"]) == (400, "not_json")
        huge = json.dumps({"actor": "x", "unit": "y", "reason": "长" * 600_000}).encode()
        status, body, _ = await call(sup, "POST", path, data=huge)
        assert (status, body["error"]) == (413, "too_large")
        status, body, _ = await call(sup, "GET", "/api/v1/no-such-thing")
        assert (status, body["error"]) == (404, "not_found")
        status, body, _ = await call(sup, "DELETE", "/api/v1/queues")
        assert (status, body["error"]) == (405, "method_not_allowed")

        # a revoked token stops working
        assert await sup.app[TOKENS].revoke(dept.token_id)
        assert (await call(dept, "GET", "/api/v1/queues"))[0] == 401


async def _anonymous(service: Service, path: str) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.get(service.url + path) as r:
        text = await r.text()
        parsed = json.loads(text) if r.content_type == "application/json" else text
        return r.status, parsed, r.headers


async def test_street_desk_by_role(settings: Settings) -> None:
    async with (
        running(district_app(settings)),
        running(street_app(settings)) as sup,
        Topics(settings) as t,
    ):
        fumes = await dispatched(t, FUMES, FUMES_UNIT)
        bikes = await dispatched(t, BIKES, BIKES_UNIT)
        dept = await sup.as_role(Role.DEPARTMENT_OPERATOR, FUMES_UNIT)
        aud = await sup.as_role(Role.AUDITOR)

        async def on_desk() -> bool:
            status, page, _ = await call(aud, "GET", "/api/v1/tasks")
            return status == 200 and len(page["items"]) == 2

        await wait_until(on_desk, "both tasks on the desk")
        status, page, _ = await call(dept, "GET", "/api/v1/tasks")
        assert [x["task_id"] for x in page["items"]] == [fumes["task_id"]]
        assert (await call(dept, "GET", f"/api/v1/tasks?unit={BIKES_UNIT}"))[0] == 404
        assert (await call(dept, "GET", f"/api/v1/tasks/{bikes['task_id']}"))[0] == 404
        assert (await call(dept, "GET", "/api/v1/tasks?limit=0"))[0] == 400
        assert (await _anonymous(sup, "/api/v1/tasks"))[0] == 401

        accept = {"action": "accept", "actor": {"id": "op-9", "name": "值班员"}}
        status, body, _ = await call(
            dept, "POST", f"/api/v1/tasks/{bikes['task_id']}/actions", accept
        )
        assert (status, body["error"]) == (404, "not_found")
        for who in (sup, aud):  # the district's roles read the desk; only the unit acts
            path = f"/api/v1/tasks/{fumes['task_id']}/actions"
            status, body, _ = await call(who, "POST", path, accept)
            assert (status, body["error"]) == (403, "forbidden")
        path = f"/api/v1/tasks/{fumes['task_id']}/actions"
        status, body, _ = await call(dept, "POST", path, {"action": "dance", "actor": {"id": "x"}})
        assert (status, body["error"]) == (422, "invalid_action")
        status, body, _ = await call(dept, "POST", path, accept)
        assert status == 202 and body["status"] == "sent"
        # the district's record of the acceptance names the desk token it came with
        [accepted] = await t.wait_for(
            topics.CASE_EVENTS,
            lambda m: m["case_no"] == fumes["case_no"] and m["type"] == "accepted",
            "the acceptance in the case record",
        )
        assert accepted["actor"] == "op-9"
        assert accepted["data"]["token_id"] == dept.token_id
        status, doc, _ = await _anonymous(sup, "/api/v1/openapi.json")
        assert status == 200 and "/api/v1/tasks/{task_id}/actions" in doc["paths"]


async def sse_events(
    service: Service, token: str, into: list[dict[str, Any]], subscribed: asyncio.Event
) -> None:
    """Read the event stream into `into` until cancelled."""
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with (
        aiohttp.ClientSession(timeout=timeout) as s,
        s.get(service.url + "/api/v1/events", headers=headers) as r,
    ):
        assert r.status == 200 and r.content_type == "text/event-stream"
        async for line in r.content:
            text = line.decode().rstrip("\n")
            if text == ": subscribed":
                subscribed.set()
            elif text.startswith("data: "):
                into.append(json.loads(text.removeprefix("data: ")))


async def test_live_events_follow_the_callers_scope(settings: Settings) -> None:
    async with running(district_app(settings)) as sup, Topics(settings) as t:
        street = await sup.as_role(Role.STREET_OPERATOR, BIKES_UNIT)
        everything: list[dict[str, Any]] = []
        mine: list[dict[str, Any]] = []
        ready = [asyncio.Event(), asyncio.Event()]
        readers = [
            asyncio.create_task(sse_events(sup, str(sup.token), everything, ready[0])),
            asyncio.create_task(sse_events(street, str(street.token), mine, ready[1])),
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 15)
            fumes = (await dispatched(t, FUMES, FUMES_UNIT))["case_no"]
            bikes = (await dispatched(t, BIKES, BIKES_UNIT))["case_no"]

            async def both_seen() -> bool:
                cases = {(e["case_no"], e["to_state"]) for e in everything}
                return {(fumes, "dispatched"), (bikes, "dispatched")} <= cases

            async def street_saw_its_dispatch() -> bool:
                return any(e["case_no"] == bikes and e["to_state"] == "dispatched" for e in mine)

            await wait_until(both_seen, "the supervisor's stream shows both cases")
            await wait_until(street_saw_its_dispatch, "the street's stream shows its case")
            assert {e["case_no"] for e in mine} == {bikes}
            assert "data" not in mine[0] and mine[0]["event_id"].startswith(bikes)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        status, body, _ = await _anonymous(sup, "/api/v1/events")
        assert (status, body["error"]) == (401, "unauthenticated")


async def test_tokens_from_the_command_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    tokens.add_arguments(parser)
    args = parser.parse_args(["create", "--role", "street_operator", "--unit", BIKES_UNIT])
    assert await tokens.main(settings, args) == 0
    printed = capsys.readouterr().out.strip()
    for bad in (
        ["create", "--role", "street_operator"],
        ["create", "--role", "auditor", "--unit", BIKES_UNIT],
    ):
        assert await tokens.main(settings, parser.parse_args(bad)) == 2
    demo = json.loads(
        (await tokens.write_demo_tokens(settings, tmp_path / "demo.json")).read_text()
    )
    assert set(demo) == {r.value for r in Role}
    pool = await db.create_pool(settings.database_url, 2)
    try:
        store = TokenStore(pool, settings.district_code)
        who = await store.resolve(printed)
        assert who is not None and (who.role, who.unit_code) == (Role.STREET_OPERATOR, BIKES_UNIT)
        for role, entry in demo.items():
            found = await store.resolve(entry["token"])
            assert found is not None and found.role == role and found.unit_code == entry["unit"]
        stored = await pool.fetchval(
            "SELECT count(*) FROM api_tokens WHERE token_sha256 = $1", printed.encode()
        )
        assert stored == 0  # only the hash is kept
    finally:
        await pool.close()
