"""A Kafka consume loop that commits offsets only after the batch's effects are durable.

Retriable errors (database or broker unavailable) retry the same batch with backoff. Any other
error splits the batch down to the record that causes it, which the handler dead-letters, so a
poison message never blocks a partition and never crash-loops the service. Records are handled
in lanes (`Lanes`): each partition always goes to the same lane, each lane handles its
partitions in order, one transaction per batch, and commits their offsets when that batch is
durable. Lanes never wait for one another, so one lane's database round trips overlap with
another's deciding, across fetches.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeAlias

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.common.lag import LagGauge
from services.common.metrics import Metrics

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Offsets: TypeAlias = dict[TopicPartition, int]
RETRIABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InterfaceError,
    KafkaError,
    TimeoutError,
)


class BatchHandler:
    """What a service does with a batch; `poison` must dead-letter a single failing record."""

    async def handle(self, records: Sequence[Record]) -> None:
        raise NotImplementedError

    async def poison(self, record: Record, error: BaseException) -> None:
        raise NotImplementedError


def lane_of(tp: TopicPartition, n: int) -> int:
    """The lane a partition always goes to: the same in every process and every run."""
    return (zlib.crc32(str(tp.topic).encode()) + int(tp.partition)) % n


class Lanes:
    """`n` lanes handling fetched records. `put` hands a batch's partitions to their lanes,
    and waits while a lane still holds its share of `max_records` it has not started on (the
    slowest lane paces the fetching). Each lane takes all it holds as one batch, handles it
    (`handler.handle`, split down to the failing record on error, retried while the error is
    retriable), then passes the batch's next offsets to `done` and its duration to `timed`."""

    def __init__(
        self,
        handler: BatchHandler,
        n: int,
        done: Callable[[Offsets], Awaitable[None]],
        *,
        max_records: int = 2000,
        timed: Callable[[float], None] = lambda _: None,
    ) -> None:
        self.handler, self.n, self.done, self.timed = handler, max(1, n), done, timed
        #: a lane's share of a fetch: what it may hold before the next fetch waits
        self._per_lane = max(1, max_records // self.n)
        self._held: list[dict[TopicPartition, list[Record]]] = [{} for _ in range(self.n)]
        self._count = [0] * self.n
        self._busy = [False] * self.n
        self._changed = asyncio.Condition()

    async def put(self, batch: Mapping[TopicPartition, list[Record]]) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: max(self._count) < self._per_lane)
            for tp, records in batch.items():
                lane = lane_of(tp, self.n)
                self._held[lane].setdefault(tp, []).extend(records)
                self._count[lane] += len(records)
            self._changed.notify_all()

    async def idle(self) -> None:
        """Until every record put so far has been handled and its offsets passed on."""
        async with self._changed:
            await self._changed.wait_for(lambda: not any(self._count) and not any(self._busy))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for lane in range(self.n):
                group.create_task(self._lane(lane))

    async def _lane(self, lane: int) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._count[lane] > 0)
                work, self._held[lane], self._count[lane] = self._held[lane], {}, 0
                self._busy[lane] = True
                self._changed.notify_all()
            started = time.perf_counter()
            await self._handle([r for part in work.values() for r in part])
            await self.done({tp: part[-1].offset + 1 for tp, part in work.items()})
            self.timed(time.perf_counter() - started)
            async with self._changed:
                self._busy[lane] = False
                self._changed.notify_all()

    async def _handle(self, records: list[Record]) -> None:
        await _retrying(lambda: self._split_on_error(records))

    async def _split_on_error(self, records: Sequence[Record]) -> None:
        try:
            await self.handler.handle(records)
        except RETRIABLE:
            raise
        except Exception as exc:
            if len(records) == 1:
                log.exception(
                    "poison message dead-lettered",
                    extra={"topic": records[0].topic, "offset": records[0].offset},
                )
                await self.handler.poison(records[0], exc)
                return
            half = len(records) // 2
            log.warning("batch failed; splitting", extra={"size": len(records), "error": repr(exc)})
            await self._split_on_error(records[:half])
            await self._split_on_error(records[half:])


class BatchConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handler: BatchHandler,
        metrics: Metrics,
        name: str,
        *,
        max_records: int = 2000,
        lanes: int = 1,
    ) -> None:
        self.consumer, self.handler, self.metrics, self.name = consumer, handler, metrics, name
        self.max_records = max_records
        self.lanes = Lanes(
            handler,
            lanes,
            self._commit,
            max_records=max_records,
            timed=metrics.batch_seconds.labels(name).observe,
        )
        self.ready = False
        self.lag = LagGauge(consumer, metrics.consumer_lag, name)

    async def run(self) -> None:
        await self.consumer.start()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.lanes.run())
                group.create_task(self._fetch())
        finally:
            self.ready = False
            self.lag.clear()
            await self.consumer.stop()

    async def _fetch(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
            self.ready = True
            if batch:
                await self.lanes.put(batch)
            await self.lag.refresh()

    async def _commit(self, offsets: Offsets) -> None:
        await self.consumer.commit(offsets)


async def _retrying(step: Callable[[], Awaitable[None]]) -> None:
    delay = 0.1
    while True:
        try:
            await step()
            return
        except RETRIABLE as exc:
            log.warning(
                "retriable error; retrying batch", extra={"error": repr(exc), "delay": delay}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
