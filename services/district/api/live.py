"""`GET /api/v1/events`: server-sent events with a summary of every case event in the caller's
scope (district roles: all of the district; unit roles: cases their unit holds or held).

One consumer per process reads `cityops.case-events` from its end (no group, no commits: a
subscriber sees what happens after it connects) and fans each event out to the subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import topics
from services.common import params
from services.common.auth import Principal, principal
from services.common.config import Settings
from services.common.fanout import Subscribers
from services.common.http import METRICS
from services.common.kafka import side_fetch_max_wait_ms
from services.common.tasks import supervised
from services.district.api import live_resume
from services.district.api.models import EventsQuery
from services.district.keys import POOL, SETTINGS
from services.district.queues import queries as queue_queries

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SUMMARY = (
    "event_id",
    "case_no",
    "seq",
    "type",
    "at",
    "actor",
    "from_state",
    "to_state",
    "unit_code",
)
HEARTBEAT_S = 15.0
#: a subscriber waits this long for the reader to reach the topic's end (503 after it)
START_TIMEOUT_S = 10.0
QUEUE_MAX = 1000


class LiveEvents:
    """Reads case events once and hands each to every subscriber's queue. The reader runs
    supervised: after a failure it starts again with a new client, from the topic's end."""

    def __init__(self, settings: Settings, count: Callable[[str], None] = lambda _: None) -> None:
        self.settings, self.count = settings, count
        self.subscribers: Subscribers[dict[str, Any]] = Subscribers()
        self._positioned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start reading at the end of the topic (once) and wait until the reader is there:
        what happens after this returns is delivered."""
        if self._task is None:
            self._task = asyncio.create_task(
                supervised("live-events", self._read, self.count), name="live-events"
            )
        await asyncio.wait_for(self._positioned.wait(), START_TIMEOUT_S)

    async def _read(self) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=side_fetch_max_wait_ms(s),
            client_id=f"cityops-live-{s.instance}",
        )
        try:
            await consumer.start()
            parts = consumer.partitions_for_topic(topics.CASE_EVENTS)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topics.CASE_EVENTS) or set()
            tps = [TopicPartition(topics.CASE_EVENTS, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the positions now: what follows is delivered
                await consumer.position(tp)
            self._positioned.set()
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in batch.values():
                    for r in records:
                        self._fan_out(r.value)
        finally:
            self._positioned.clear()
            await consumer.stop()

    def _fan_out(self, raw: bytes | None) -> None:
        if not self.subscribers:  # nobody listening: not even parsed (every event comes here)
            return
        try:
            event = json.loads(raw or b"")
        except ValueError:
            return
        if not isinstance(event, dict) or event.get("district_code") != self.settings.district_code:
            return
        self.subscribers.publish({k: event.get(k) for k in SUMMARY})

    async def close(self) -> None:
        self.subscribers.end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


LIVE = web.AppKey("live_events", LiveEvents)


async def context(app: web.Application) -> AsyncIterator[None]:
    retries = app[METRICS].retries
    app[LIVE] = LiveEvents(app[SETTINGS], lambda kind: retries.labels(kind).inc())
    yield
    await app[LIVE].close()


class _Scope:
    """Whether an event is the caller's: every case for district roles, else the unit's."""

    def __init__(self, who: Principal, pool: asyncpg.Pool, case_no: str | None) -> None:
        self.who, self.pool, self.case_no = who, pool, case_no
        self.known: dict[str, bool] = {}

    async def admits(self, ev: dict[str, Any]) -> bool:
        case_no = str(ev["case_no"])
        if self.case_no is not None and case_no != self.case_no:
            return False
        unit = self.who.unit_code
        if not self.who.unit_scoped or unit is None:
            return True
        if ev.get("unit_code") == unit:
            self.known[case_no] = True
        elif case_no not in self.known:
            if len(self.known) > 50_000:
                self.known.clear()
            async with self.pool.acquire() as conn:
                self.known[case_no] = await queue_queries.unit_held(
                    conn, self.who.district_code, case_no, unit
                )
        return self.known[case_no]


@routes.get("/api/v1/events")
async def stream(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    q = params.query(request, EventsQuery)
    live = request.app[LIVE]
    try:
        await live.start()
    except TimeoutError:
        raise web.HTTPServiceUnavailable(
            reason="case events unavailable: the broker does not answer; retry"
        ) from None
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_MAX)
    scope = _Scope(who, request.app[POOL], q.case_no)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    live.subscribers.add(queue)
    try:
        await response.prepare(request)
        await response.write(b": subscribed\n\n")
        admits = await live_resume.replay(request, scope.admits, response)  # Last-Event-ID
        while True:
            try:
                ev = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if ev is None:
                break
            if await admits(ev):
                data = json.dumps(ev, ensure_ascii=False)
                await response.write(
                    f"id: {ev['event_id']}\nevent: case-event\ndata: {data}\n\n".encode()
                )
    except ConnectionResetError:
        pass
    finally:
        live.subscribers.discard(queue)
    return response
