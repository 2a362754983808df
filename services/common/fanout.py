"""Live streams' subscribers: one bounded queue per client, fed by one reader."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscribers(set[asyncio.Queue[T | None]], Generic[T]):
    """The queues of the clients streaming now. `None` in a queue ends that client's stream."""

    def publish(self, item: T) -> None:
        """Hand `item` to every client; one whose queue is full (it does not read) has its
        stream ended instead: it may reconnect."""
        for queue in list(self):
            if queue.full():
                self.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
                continue
            queue.put_nowait(item)

    def end_all(self) -> None:
        """End every client's stream (the service is stopping)."""
        for queue in self:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
