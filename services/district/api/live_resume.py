"""`Last-Event-ID` for `GET /api/v1/events`: a client that reconnects gets the events it missed.

Each process keeps the summaries of the last `KEEP` case events it streamed (a subscriber of its
own to the live reader, `live.LiveEvents`). A reconnecting client names the last event it saw;
what followed it is sent first (in the client's scope), then the stream goes on live, without
repeating what was just sent. When the named event is no longer kept (another instance, or too
long ago) the stream starts with `event: reset`: the client reloads what it shows."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.common.tasks import supervised

if TYPE_CHECKING:  # live.py imports this module
    from services.district.api.live import LiveEvents

#: summaries kept for reconnecting clients (a few minutes of a busy district)
KEEP = 20_000
#: summaries handed over and not yet kept (the live reader ends a subscriber that falls behind)
PENDING_MAX = 1000

Summary = dict[str, Any]
Admits = Callable[[Summary], Awaitable[bool]]


class Recent:
    """The last `KEEP` summaries the live reader fanned out, oldest first."""

    def __init__(self, keep: int = KEEP) -> None:
        self.events: deque[Summary] = deque(maxlen=keep)
        self.pending: asyncio.Queue[Summary | None] = asyncio.Queue(PENDING_MAX)

    def catch_up(self) -> None:
        """Move what the reader has handed over but this keeper has not yet read."""
        while not self.pending.empty():
            ev = self.pending.get_nowait()
            if ev is None:  # the reader let go of this keeper: `_keep` subscribes again
                self.pending.put_nowait(None)
                return
            self.events.append(ev)

    def after(self, event_id: str) -> list[Summary] | None:
        """The events after `event_id`, or None when it is not kept."""
        self.catch_up()
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i]["event_id"] == event_id:
                return list(self.events)[i + 1 :]
        return None


RECENT = web.AppKey("recent_events", Recent)


def keeper(
    live_key: web.AppKey[LiveEvents],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context keeping the recent events from start to shutdown; registered after
    the one that opens the live reader (`live.context`), so it stops first."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        recent = app[RECENT] = Recent()
        live = app[live_key]
        task = asyncio.create_task(
            supervised("recent-events", lambda: _keep(live, recent)), name="recent-events"
        )
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context


async def _keep(live: LiveEvents, recent: Recent) -> None:
    await live.start()
    while True:
        live.subscribers.add(recent.pending)
        try:
            while (ev := await recent.pending.get()) is not None:
                recent.events.append(ev)
        finally:
            live.subscribers.discard(recent.pending)


async def replay(request: web.Request, admits: Admits, response: web.StreamResponse) -> Admits:
    """Send what the client missed since its `Last-Event-ID` (or `reset`); answer the filter
    for the live events that follow, which drops those already sent."""
    last = request.headers.get("Last-Event-ID", "").strip()
    if not last or RECENT not in request.app:
        return admits
    missed = request.app[RECENT].after(last)
    if missed is None:
        await response.write(b'event: reset\ndata: {"reason": "missed events not kept"}\n\n')
        return admits
    sent: set[str] = set()
    for ev in missed:
        if await admits(ev):
            await response.write(frame(ev))
            sent.add(str(ev["event_id"]))

    async def fresh(ev: Summary) -> bool:
        return str(ev["event_id"]) not in sent and await admits(ev)

    return fresh


def frame(ev: Summary) -> bytes:
    """One server-sent event, as `live.stream` writes them."""
    data = json.dumps(ev, ensure_ascii=False)
    return f"id: {ev['event_id']}\nevent: case-event\ndata: {data}\n\n".encode()
