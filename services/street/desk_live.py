"""The street desk, live: `GET /api/v1/desk/events` streams a server-sent event whenever one
of the caller's unit's tasks changes (a new task, an update, the operator's own action).

PostgreSQL announces each change on `cityops_street_tasks` when it commits (a trigger,
deploy/migrations/030_street_task_notify.sql); one listening connection per process fans the
notices out. A client that reconnects re-reads its list, so nothing is replayed: each event's
id is the time it was sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from services.common.auth import principal
from services.common.fanout import Subscribers
from services.common.tasks import supervised
from services.street.keys import SETTINGS, UNITS

CHANNEL = "cityops_street_tasks"
HEARTBEAT_S = 15.0
QUEUE_MAX = 1000
routes = web.RouteTableDef()


class DeskNotices:
    """Listens on the channel with its own connection and hands notices to subscribers."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.subscribers: Subscribers[dict[str, Any]] = Subscribers()

    async def listen(self) -> None:
        """Until the connection is lost (the supervisor then calls again, with a new one)."""
        conn = await asyncpg.connect(self.dsn)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notice)
            while not lost.is_set():  # a dead peer is noticed by the next query
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), HEARTBEAT_S)
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=5)
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _notice(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = json.loads(payload)
        except ValueError:
            return
        self.subscribers.publish(notice)


NOTICES = web.AppKey("desk_notices", DeskNotices)


async def context(app: web.Application) -> AsyncIterator[None]:
    notices = app[NOTICES] = DeskNotices(app[SETTINGS].database_url)
    task = asyncio.create_task(supervised("desk-notices", notices.listen), name="desk-notices")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notices.subscribers.end_all()


@routes.get("/api/v1/desk/events")
async def desk_events(request: web.Request) -> web.StreamResponse:
    who, served = principal(request), request.app[UNITS]
    units = {who.unit_code} & set(served) if who.unit_scoped else set(served)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_MAX)
    notices = request.app[NOTICES]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    notices.subscribers.add(queue)
    try:
        await response.prepare(request)
        await response.write(b": subscribed\n\n")
        while True:
            try:
                notice = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if notice is None:
                break
            if notice.get("unit_code") in units:
                data = json.dumps(notice, ensure_ascii=False)
                event_id = time.time_ns()
                await response.write(f"id: {event_id}\nevent: task\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        notices.subscribers.discard(queue)
    return response
