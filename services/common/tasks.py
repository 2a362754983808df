"""Background work owned by an aiohttp app: started in order, cancelled and awaited in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


async def supervised(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run `run` forever: an unexpected crash is logged and restarted with backoff."""
    delay = 0.5
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
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
        task = asyncio.create_task(supervised(name, lambda: run(app)), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
