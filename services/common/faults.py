"""Which errors are the infrastructure's (retry) and which are the input's (poison): one place.

A transient error says nothing about the record being handled: the database restarted, is
shutting down or starting, dropped the connection, ran out of connections, cancelled a
statement that ran too long, or the broker is unreachable or still electing a leader. Work that
meets one is retried whole, with backoff, and never split or dead-lettered. Everything else is
a fault of the work itself (a bug, or input the code cannot handle), which only the repeated
failure of one record while every dependency answers turns into a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

log = logging.getLogger(__name__)

#: SQLSTATE classes and codes that name the server's condition, not the statement's:
#: 08 connection exception, 53 insufficient resources (too many connections, out of memory or
#: disk), 57 operator intervention (admin/crash shutdown, cannot connect now, statement
#: timeout), 58 system error (I/O), 40 transaction rollback (serialization failure, deadlock),
#: 55P03 lock timeout, 25006 read-only transaction (a standby answered during a failover).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "58", "40")
_TRANSIENT_SQLSTATES = frozenset({"55P03", "25006"})

#: asyncpg's client-side errors: the connection is closed, the pool is closing, a protocol
#: state was lost with the connection, a standby answered where a primary was asked...
_CLIENT = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
#: ...except the caller's own mistakes, which no retry mends
_CLIENT_MISTAKES = (
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)

#: aiokafka errors that are transient even where aiokafka's own `retriable` flag says no
_TRANSIENT_KAFKA = (KafkaConnectionError, KafkaTimeoutError)


def kind(exc: BaseException) -> str | None:
    """`database`, `broker`, `network` or `timeout` when `exc` is transient, else None. An
    exception group is transient when every error in it is (the first one's kind is given)."""
    if isinstance(exc, BaseExceptionGroup):
        kinds = [kind(e) for e in exc.exceptions]
        return kinds[0] if kinds and all(kinds) else None
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state in _TRANSIENT_SQLSTATES or state[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return "database"
        return None
    if isinstance(exc, Transient):
        return exc.kind
    if isinstance(exc, _CLIENT):
        return None if isinstance(exc, _CLIENT_MISTAKES) else "database"
    if isinstance(exc, _TRANSIENT_KAFKA):
        return "broker"
    if isinstance(exc, KafkaError):
        return "broker" if exc.retriable else None
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError (3.11)
        return "timeout"
    if isinstance(exc, OSError):  # refused, reset, unreachable: the network or a peer gone
        return "network"
    return None


def transient(exc: BaseException) -> bool:
    return kind(exc) is not None


class Transient(Exception):
    """Raised where a failure would otherwise look like the input's fault while a dependency
    is down: retry the work, do not judge the record."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class Retries:
    """Backoff for retrying transient errors: 0.1 s doubling to `cap_s`, reset on success;
    each retry is counted by kind (`cityops_retries_total{kind}`) when a counter is given."""

    def __init__(
        self, what: str, count: Callable[[str], None] = lambda _: None, cap_s: float = 2.0
    ) -> None:
        self.what, self._count, self.cap_s = what, count, cap_s
        self.delay = 0.1

    def reset(self) -> None:
        self.delay = 0.1

    async def pause(self, exc: BaseException) -> None:
        """Log and count `exc`, then wait out the current delay and lengthen the next one."""
        what = kind(exc) or "transient"
        self._count(what)
        log.warning(
            "transient error; retrying",
            extra={"work": self.what, "kind": what, "error": repr(exc), "delay": self.delay},
        )
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap_s)


async def retrying(step: Callable[[], Awaitable[None]], retries: Retries) -> None:
    """Run `step` until it finishes without a transient error; anything else propagates."""
    while True:
        try:
            await step()
        except Exception as exc:
            if not transient(exc):
                raise
            await retries.pause(exc)
        else:
            retries.reset()
            return
