"""A Kafka consume loop that commits offsets only after the batch's effects are durable.

Retriable errors (database or broker unavailable) retry the same batch with backoff. Any other
error splits the batch down to the record that causes it, which the handler dead-letters, so a
poison message never blocks a partition and never crash-loops the service. Records are handled
in lanes (`Lanes`): a partition is in one lane at a time and in order, each lane's batch is one
transaction whose offsets are committed once it is durable, and lanes never wait for one
another, so one lane's database round trips overlap with another's deciding, across fetches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeAlias

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
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


class Lanes:
    """Up to `n` lanes handling fetched records side by side. `put` hands over a fetched batch
    (and waits while `max_records` are held that no lane has started on). A free lane takes the
    held records of partitions no other lane is working on, whole partitions up to its share
    (`max_records / n`; everything when little is waiting, so a small batch stays one
    transaction), handles them as one batch (`handler.handle`, split down to the failing record
    on error, retried while the error is retriable), passes their next offsets to `done` and the
    duration to `timed`, and only then lets those partitions go: a partition is in one lane at
    a time, in order, and its offsets only grow. No lane waits for another to finish: one
    lane's database round trips overlap with another's deciding, across fetches."""

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
        self.max_records, self._share = max_records, max(1, max_records // self.n)
        self._held: dict[TopicPartition, list[Record]] = {}
        self._count = 0  # records held
        self._working: dict[TopicPartition, int] = {}  # partitions lanes handle: records
        self._changed = asyncio.Condition()

    async def put(self, batch: Mapping[TopicPartition, list[Record]]) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._count < self.max_records)
            for tp, records in batch.items():
                self._held.setdefault(tp, []).extend(records)
                self._count += len(records)
            self._changed.notify_all()

    def waiting(self, tp: TopicPartition) -> int:
        """Records of `tp` fetched but not yet handled (held, or in a lane's batch)."""
        return len(self._held.get(tp, ())) + self._working.get(tp, 0)

    async def idle(self) -> None:
        """Until every record put so far has been handled and its offsets passed on."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._held and not self._working)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self.n):
                group.create_task(self._lane())

    def _free(self) -> list[TopicPartition]:
        return [tp for tp in self._held if tp not in self._working]

    def _take(self) -> dict[TopicPartition, list[Record]]:
        work: dict[TopicPartition, list[Record]] = {}
        size = 0
        for tp in sorted(self._free(), key=lambda tp: len(self._held[tp]), reverse=True):
            if work and size + len(self._held[tp]) > self._share:
                continue
            work[tp] = self._held.pop(tp)
            size += len(work[tp])
        self._count -= size
        self._working.update((tp, len(part)) for tp, part in work.items())
        return work

    async def _lane(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(self._free)
                work = self._take()
                self._changed.notify_all()
            try:
                started = time.perf_counter()
                await self._handle([r for part in work.values() for r in part])
                await self.done({tp: part[-1].offset + 1 for tp, part in work.items()})
                self.timed(time.perf_counter() - started)
            finally:
                async with self._changed:
                    for tp in work:
                        del self._working[tp]
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
        commit_every_s: float = 0.2,
    ) -> None:
        self.consumer, self.handler, self.metrics, self.name = consumer, handler, metrics, name
        self.max_records, self.commit_every_s = max_records, commit_every_s
        self.lanes = Lanes(
            handler,
            lanes,
            self._applied,
            max_records=max_records,
            timed=metrics.batch_seconds.labels(name).observe,
        )
        self.ready = False
        self.lag = LagGauge(consumer, metrics.consumer_lag, name, self.lanes.waiting)
        self._due: Offsets = {}  # durable, not yet committed: the next offset per partition
        self._committing = asyncio.Event()

    async def run(self) -> None:
        await self.consumer.start()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.lanes.run())
                group.create_task(self._fetch())
                group.create_task(self._committer())
        finally:
            self.ready = False
            self.lag.clear()
            try:
                await self._commit()  # what is durable, so a successor starts after it
            finally:
                await self.consumer.stop()

    async def _fetch(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
            self.ready = True
            if batch:
                await self.lanes.put(batch)
            await self.lag.refresh()

    async def _applied(self, offsets: Offsets) -> None:
        """A lane's batch is durable: its offsets are committed with the next commit."""
        self._due.update(offsets)  # a partition's offsets only grow (one lane at a time)
        self._committing.set()

    async def _committer(self) -> None:
        """Commit what is durable at most every `commit_every_s`: off the lanes' path, and
        one request for all of them (redelivery after a crash repeats at most that much,
        which the idempotency keys absorb)."""
        while True:
            await self._committing.wait()
            await asyncio.sleep(self.commit_every_s)
            self._committing.clear()
            await self._commit()

    async def _commit(self) -> None:
        due, self._due = self._due, {}
        mine = {tp: offset for tp, offset in due.items() if tp in self.consumer.assignment()}
        if not mine:
            return
        try:
            await self.consumer.commit(mine)
        except CommitFailedError as exc:  # a rebalance moved them: their new owner goes on
            log.warning("offsets not committed", extra={"error": repr(exc)})
        except (KafkaError, OSError) as exc:  # the broker is away: keep them for the next try
            log.warning("commit failed; will retry", extra={"error": repr(exc)})
            for tp, offset in mine.items():
                self._due[tp] = max(offset, self._due.get(tp, offset))
            self._committing.set()


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
