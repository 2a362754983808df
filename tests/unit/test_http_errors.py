"""Errors answer JSON {error, detail}: unknown routes, wrong methods, oversize bodies, and an
unexpected exception (a 500 with an id the server logs; no stack trace reaches the client)."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.common.auth import json_errors


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"size": len(await request.read())})


async def test_errors_are_json(caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application(client_max_size=1024, middlewares=[json_errors])
    app.router.add_get("/boom", _boom)
    app.router.add_post("/echo", _echo)
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.ERROR):
            r = await client.get("/boom")
            body = await r.json()
        assert r.status == 500 and body["error"] == "internal" and body["id"]
        assert "secret" not in await r.text() and "Traceback" not in await r.text()
        assert any(getattr(rec, "error_id", None) == body["id"] for rec in caplog.records)
        r = await client.post("/echo", data=b"x" * 2048)
        assert (r.status, (await r.json())["error"]) == (413, "too_large")
        r = await client.get("/nowhere")
        assert (r.status, (await r.json())["error"]) == (404, "not_found")
        r = await client.delete("/echo")
        assert (r.status, (await r.json())["error"]) == (405, "method_not_allowed")
        assert "POST" in r.headers["Allow"]
