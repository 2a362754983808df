"""A Kafka consume loop that commits offsets only after the batch's effects are durable.

A transient error (`faults`: database or broker unavailable, a timeout) retries the same batch,
whole, with backoff. Any other error splits the batch down to the record that causes it; that
record is tried once more, and dead-lettered by the handler only if it fails again while every
dependency answers its probe. So a poison message never blocks a partition, and a valid one is
never dead-lettered because the database restarted under it. Records are handled in lanes
(`Lanes`): a partition is in one lane at a time and in order, each lane's batch is one
transaction whose offsets are committed once it is durable, and lanes never wait for one
another, so one lane's database round trips overlap with another's deciding, across fetches.
Each `BatchConsumer.run` starts a fresh Kafka client, so a crashed run is simply run again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.common import faults
from services.common.lag import LagGauge
from services.common.metrics import Metrics

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Offsets: TypeAlias = dict[TopicPartition, int]


async def _always_healthy() -> bool:
    return True


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
        healthy: Callable[[], Awaitable[bool]] = _always_healthy,
        retries: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.handler, self.n, self.done, self.timed = handler, max(1, n), done, timed
        self.healthy, self.retries = healthy, retries
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
        retries = faults.Retries("batch", self.retries)
        await faults.retrying(lambda: self._split_on_error(records), retries)

    async def _split_on_error(self, records: Sequence[Record]) -> None:
        """Handle `records`; on an error that is not transient, handle each half on its own,
        down to the one record that fails, which `_judge` decides about."""
        try:
            await self.handler.handle(records)
        except Exception as exc:
            if faults.transient(exc):
                raise
            if len(records) == 1:
                await self._judge(records[0], exc)
                return
            half = len(records) // 2
            log.warning("batch failed; splitting", extra={"size": len(records), "error": repr(exc)})
            await self._split_on_error(records[:half])
            await self._split_on_error(records[half:])

    async def _judge(self, record: Record, error: Exception) -> None:
        """One record failed with an error that is not transient. It is poison only if it
        fails again while the database and the broker answer; while one does not, the whole
        batch is retried (raising `faults.Transient`), since a server going away can surface
        as an error of any class."""
        await self._require_healthy(error)
        try:
            await self.handler.handle([record])
            return
        except Exception as again:
            if faults.transient(again):
                raise
            await self._require_healthy(again)
            error = again
        log.error(
            "poison message dead-lettered",
            extra={"topic": record.topic, "offset": record.offset, "error": repr(error)},
        )
        await self.handler.poison(record, error)

    async def _require_healthy(self, error: Exception) -> None:
        if not await self.healthy():
            raise faults.Transient("dependency", f"a dependency is down ({error!r})")


class BatchConsumer:
    """Fetches with a consumer from `connect` and hands the records to `Lanes`. Each `run` makes
    a new client (aiokafka's cannot be started twice) and new lanes (records a failed run held
    are fetched again from the committed offsets)."""

    def __init__(
        self,
        connect: Callable[[], AIOKafkaConsumer],
        handler: BatchHandler,
        metrics: Metrics,
        name: str,
        *,
        max_records: int = 2000,
        lanes: int = 1,
        commit_every_s: float = 0.2,
        healthy: Callable[[], Awaitable[bool]] = _always_healthy,
    ) -> None:
        self.connect, self.handler, self.metrics, self.name = connect, handler, metrics, name
        self.max_records, self.n_lanes, self.commit_every_s = max_records, lanes, commit_every_s
        self.healthy = healthy
        self.ready = False
        self._due: Offsets = {}  # durable, not yet committed: the next offset per partition
        self._committing = asyncio.Event()

    async def run(self) -> None:
        consumer = self.connect()
        lanes = Lanes(
            self.handler,
            self.n_lanes,
            self._applied,
            max_records=self.max_records,
            timed=self.metrics.batch_seconds.labels(self.name).observe,
            healthy=self.healthy,
            retries=lambda kind: self.metrics.retries.labels(kind).inc(),
        )
        lag = LagGauge(consumer, self.metrics.consumer_lag, self.name, lanes.waiting)
        try:
            await consumer.start()
            async with asyncio.TaskGroup() as group:
                group.create_task(lanes.run())
                group.create_task(self._fetch(consumer, lanes, lag))
                group.create_task(self._committer(consumer))
        finally:
            self.ready = False
            lag.clear()
            try:  # what is durable, so a successor starts after it
                await _uncancelled(self._commit(consumer))
            finally:
                await consumer.stop()

    async def _fetch(self, consumer: AIOKafkaConsumer, lanes: Lanes, lag: LagGauge) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
            self.ready = True
            if batch:
                await lanes.put(batch)
            await lag.refresh()

    async def _applied(self, offsets: Offsets) -> None:
        """A lane's batch is durable: its offsets are committed with the next commit."""
        for tp, offset in offsets.items():  # a partition's offsets only grow
            self._due[tp] = max(offset, self._due.get(tp, offset))
        self._committing.set()

    async def _committer(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what is durable at most every `commit_every_s`: off the lanes' path, and
        one request for all of them (redelivery after a crash repeats at most that much,
        which the idempotency keys absorb)."""
        while True:
            await self._committing.wait()
            await asyncio.sleep(self.commit_every_s)
            self._committing.clear()
            await _uncancelled(self._commit(consumer))

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        due, self._due = self._due, {}
        assigned = consumer.assignment()
        mine = {tp: offset for tp, offset in due.items() if tp in assigned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except CommitFailedError as exc:  # a rebalance moved them: their new owner goes on
            log.warning("offsets not committed", extra={"error": repr(exc)})
        except Exception as exc:
            if not faults.transient(exc):
                raise
            # the broker is away: keep them for the next try (newer offsets win)
            log.warning("commit failed; will retry", extra={"error": repr(exc)})
            self.metrics.retries.labels(faults.kind(exc) or "broker").inc()
            for tp, offset in mine.items():
                self._due[tp] = max(offset, self._due.get(tp, offset))
            self._committing.set()


async def _uncancelled(commit: Coroutine[Any, Any, None], grace_s: float = 5.0) -> None:
    """Await a commit that a cancellation (shutdown, a sibling's failure) must not cut short:
    aiokafka shields the request inside it, so a cancelled caller would leave it running
    against a client about to stop, its failure never retrieved. On cancellation the commit
    gets `grace_s` to finish, then the cancellation goes on."""
    task = asyncio.ensure_future(commit)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its failure is seen
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        done, _ = await asyncio.wait([task], timeout=grace_s)
        if done and not task.cancelled() and task.exception() is not None:
            log.warning("commit failed at shutdown", extra={"error": repr(task.exception())})
        raise
