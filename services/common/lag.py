"""Consumer lag per assigned partition, as `cityops_consumer_lag{consumer, topic, partition}`:
the highwater of the last fetch minus the consumer's position, plus the records fetched but
not yet handled (`waiting`), so the gauge reads "records not yet durably applied"."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import Gauge


class LagGauge:
    """Refreshed at most every `every_s`; partitions no longer assigned (a rebalance moved them
    to another instance, which reports them now) lose their series."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        gauge: Gauge,
        name: str,
        waiting: Callable[[TopicPartition], int] = lambda _: 0,
        every_s: float = 1.0,
    ) -> None:
        self.consumer, self.gauge, self.name, self.every_s = consumer, gauge, name, every_s
        self.waiting = waiting
        self._shown: set[TopicPartition] = set()
        self._due = 0.0

    async def refresh(self) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.every_s
        shown = set()
        for tp in sorted(self.consumer.assignment()):
            lag = await self._lag(tp)
            if lag is not None:
                self.gauge.labels(self.name, tp.topic, str(tp.partition)).set(lag)
                shown.add(tp)
        for gone in self._shown - shown:
            self._forget(gone)
        self._shown = shown

    async def _lag(self, tp: TopicPartition) -> int | None:
        """None until a fetch has told the highwater (which also makes the position valid)."""
        if tp not in self.consumer.assignment():  # revoked while we awaited another partition
            return None
        highwater: int | None = self.consumer.highwater(tp)
        if highwater is None:
            return None
        try:
            position: int = await self.consumer.position(tp)
        except IllegalStateError:
            return None
        return max(highwater - position, 0) + self.waiting(tp)

    def clear(self) -> None:
        for tp in self._shown:
            self._forget(tp)
        self._shown = set()

    def _forget(self, tp: TopicPartition) -> None:
        try:
            self.gauge.remove(self.name, tp.topic, str(tp.partition))
        except KeyError:
            pass
