"""Whether PostgreSQL and the broker answer: probed every second with a short timeout.

A frozen server accepts connections and then never answers, so only a request that must come
back within its timeout tells "up" from "down". The probes feed
`cityops_dependency_up{dependency}`, `/readyz` (which names the dependency that is down, and is
200 again as soon as the next probe succeeds) and the consumer's poison rule (a record is
dead-lettered only while every dependency answers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka.client import AIOKafkaClient

from services.common.metrics import Metrics

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]


class Health:
    """Named probes, each run every `every_s` and given `timeout_s` to answer."""

    def __init__(self, metrics: Metrics, *, every_s: float = 1.0, timeout_s: float = 3.0) -> None:
        self.metrics, self.every_s, self.timeout_s = metrics, every_s, timeout_s
        self._probes: dict[str, Probe] = {}
        self._down: dict[str, str] = {}  # dependency -> why, for those that did not answer
        self._locks: dict[str, asyncio.Lock] = {}  # one probe of a dependency at a time

    def add(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe
        self._locks[name] = asyncio.Lock()
        self.metrics.dependency_up.labels(name).set(0)
        self._down[name] = "not yet probed"

    def problems(self) -> list[str]:
        """What `/readyz` reports: one line per dependency that is down."""
        return [f"{name} down: {why}" for name, why in sorted(self._down.items())]

    async def healthy(self) -> bool:
        """Probe every dependency now: True when all answer."""
        results = await asyncio.gather(*(self._probe(n) for n in self._probes))
        return all(results)

    async def run(self) -> None:
        while True:
            await self.healthy()
            await asyncio.sleep(self.every_s)

    async def _probe(self, name: str) -> bool:
        try:
            async with self._locks[name], asyncio.timeout(self.timeout_s):
                await self._probes[name]()
        except Exception as exc:  # every failure of a probe means "down", whatever its class
            timed_out = isinstance(exc, TimeoutError)
            why = f"no answer within {self.timeout_s:g} s" if timed_out else type(exc).__name__
            if name not in self._down:
                log.warning("dependency down", extra={"dependency": name, "error": repr(exc)})
            self._down[name] = why
            self.metrics.dependency_up.labels(name).set(0)
            return False
        if self._down.pop(name, None) is not None:
            log.info("dependency up", extra={"dependency": name})
        self.metrics.dependency_up.labels(name).set(1)
        return True


class PostgresProbe:
    """`SELECT 1` on a connection of its own (not the pool's: a pool exhausted by a frozen
    server must not hide whether the server answers now); reconnects after any failure."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def __call__(self) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.dsn)
            await self._conn.fetchval("SELECT 1")
        except BaseException:  # timeouts included: the connection's state is unknown now
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


class KafkaProbe:
    """A metadata request on a client of its own: answered only by a live broker, and never
    queued behind the producer's batches on a busy connection (which would read as "down")."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._client: AIOKafkaClient | None = None

    async def __call__(self) -> None:
        try:
            if self._client is None:
                self._client = AIOKafkaClient(bootstrap_servers=self.bootstrap)
                await self._client.bootstrap()
            await self._client.fetch_all_metadata()
        except BaseException:  # timeouts included: start from a new client next time
            await self.close()
            raise

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
