"""What every district process holds: the database pool and the outbox publisher (with its
producer), each with its health probe. The district service and `cityops hotspots` both
start them (`app.cleanup_ctx`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Counter

from contracts import topics
from services.common import db
from services.common.health import KafkaProbe, PostgresProbe
from services.common.http import HEALTH
from services.common.http import METRICS as METRICS_KEY
from services.common.kafka import make_producer
from services.common.metrics import Metrics
from services.common.outbox import Publisher, now_ms
from services.district.keys import POOL, PRODUCER, PUBLISHER, SETTINGS


async def pool(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    app[POOL] = await db.create_pool(s.database_url, s.db_pool_size)
    app[METRICS_KEY].watch_pool(app[POOL])  # cityops_db_pool_connections
    app[HEALTH].add("postgres", probe := PostgresProbe(s.database_url))
    yield
    probe.close()
    await app[POOL].close()


async def publisher(app: web.Application) -> AsyncIterator[None]:
    """The producer and the outbox publisher (after `pool`)."""
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    producer = app[PRODUCER] = make_producer(s)
    await producer.start()
    app[HEALTH].add("kafka", kafka := KafkaProbe(s.kafka_bootstrap))
    app[PUBLISHER] = Publisher(
        app[POOL],
        producer,
        batch=s.outbox_batch,
        on_published=_Observed(metrics),
        retries=lambda kind: metrics.retries.labels(kind).inc(),
    )
    yield
    await kafka.close()
    await producer.stop()


class _Observed:
    """Counts each published message by kind (`cityops_outbox_published_total`) and times a
    task's dispatch from its order (`cityops_dispatch_latency_seconds`); a counter per kind
    and topic, looked up once."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.counters: dict[str, tuple[str, Counter]] = {}

    def __call__(self, topic: str, origin_ms: int | None) -> None:
        found = self.counters.get(topic)
        if found is None:
            kind = "task" if topic.startswith(topics.TASKS_PREFIX) else topic.rsplit(".", 1)[-1]
            found = self.counters[topic] = (kind, self.metrics.outbox_published.labels(kind))
        kind, counter = found
        counter.inc()
        if origin_ms is not None and kind == "task":
            self.metrics.dispatch_latency.observe(max(now_ms() - origin_ms, 0) / 1000)
