"""Background work owned by an aiohttp app: started in order, cancelled and awaited in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from services.common import faults
from services.common.http import METRICS

log = logging.getLogger(__name__)

#: a run that lasted this long was healthy: a crash after it starts the backoff afresh
_HEALTHY_RUN_S = 60.0


async def supervised(
    name: str, run: Callable[[], Awaitable[None]], count: Callable[[str], None] = lambda _: None
) -> None:
    """Run `run` until it returns: a crash is logged and `run` is called again after a backoff,
    short (0.1 s to 2 s) for a transient error (`faults.kind`, counted by `count`), longer (to
    30 s) for anything else. `run` must start afresh on each call (a new client, no state of
    the failed run), so every loop comes back by itself once its dependency does."""
    transient = faults.Retries(name, count)
    delay = 0.5
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started > _HEALTHY_RUN_S:
                transient.reset()
                delay = 0.5
            if faults.transient(exc):
                await transient.pause(exc)
                continue
            log.exception(
                "background task crashed; restarting", extra={"task": name, "delay": delay}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def background(
    name: str, run: Callable[[web.Application], Awaitable[None]]
) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    """A cleanup context running `run(app)` as a supervised task for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        count = app[METRICS].retries.labels
        task = asyncio.create_task(
            supervised(name, lambda: run(app), lambda kind: count(kind).inc()), name=name
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
