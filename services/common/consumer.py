"""A Kafka consume loop that commits offsets only after the batch's effects are durable.

Retriable errors (database or broker unavailable) retry the same batch with backoff. Any other
error splits the batch down to the record that causes it, which the handler dead-letters, so a
poison message never blocks a partition and never crash-loops the service. A batch can be
handled in several lanes of whole partitions at once (`lanes`), so that database round trips
overlap with computing; offsets are committed once every lane is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
        self.max_records, self.lanes = max_records, lanes
        self.ready = False
        self.lag = LagGauge(consumer, metrics.consumer_lag, name)

    async def run(self) -> None:
        await self.consumer.start()
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
                self.ready = True
                if batch:
                    started = time.perf_counter()
                    await asyncio.gather(*(self._apply(lane) for lane in lanes(batch, self.lanes)))
                    await self.consumer.commit(
                        {tp: part[-1].offset + 1 for tp, part in batch.items()}
                    )
                    elapsed = time.perf_counter() - started
                    self.metrics.batch_seconds.labels(self.name).observe(elapsed)
                await self.lag.refresh()
        finally:
            self.ready = False
            self.lag.clear()
            await self.consumer.stop()

    async def _apply(self, records: Sequence[Record]) -> None:
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


#: fewer records than this per lane are not worth another transaction's round trips
MIN_LANE = 100


def lanes(batch: Mapping[TopicPartition, list[Record]], n: int) -> list[list[Record]]:
    """The batch in up to `n` groups of whole partitions (each partition's order kept), balanced
    by size, at least `MIN_LANE` records each. Each group is its own transaction: while one
    waits for the database, the next one computes."""
    total = sum(len(part) for part in batch.values())
    out: list[list[Record]] = [[] for _ in range(max(1, min(n, len(batch), total // MIN_LANE)))]
    for part in sorted(batch.values(), key=len, reverse=True):
        min(out, key=len).extend(part)
    return out


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
