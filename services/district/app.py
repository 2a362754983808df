"""The district operations centre: intake, triage, dispatch, the case record, replies upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from contracts import topics
from services.common import db
from services.common.config import Settings
from services.common.consumer import BatchConsumer
from services.common.crypto import load_vault
from services.common.http import METRICS as METRICS_KEY
from services.common.http import READY_CHECKS, base_app
from services.common.kafka import make_consumer, make_producer
from services.common.metrics import Metrics
from services.common.outbox import Publisher, now_ms
from services.common.tasks import background
from services.district import gauges, queries
from services.district.consumer import Intake
from services.district.deadlines import DeadlinePolicy
from services.district.workcal import WorkCalendar
from services.district.workflow import Context, Workflow

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
WORKFLOW = web.AppKey("workflow", Workflow)
PUBLISHER = web.AppKey("publisher", Publisher)
CONSUMER = web.AppKey("consumer", BatchConsumer)


def create_app(settings: Settings, metrics: Metrics | None = None) -> web.Application:
    app = base_app(metrics or Metrics())
    app[SETTINGS] = settings
    app.cleanup_ctx.extend(
        [
            _pool,
            _workflow,
            _producer,
            background("outbox-publisher", lambda a: a[PUBLISHER].run()),
            _consumer,
            background("district-consumer", lambda a: a[CONSUMER].run()),
            background("gauges", _gauges),
        ]
    )
    app[READY_CHECKS].append(lambda: None if app[CONSUMER].ready else "consumer not yet polling")
    return app


async def _pool(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    app[POOL] = await db.create_pool(s.database_url, s.db_pool_size)
    yield
    await app[POOL].close()


async def _workflow(app: web.Application) -> AsyncIterator[None]:
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    async with app[POOL].acquire() as conn:
        ref = await queries.load_reference(conn, s.district_code)
    calendar = WorkCalendar(
        on_fallback=lambda year: metrics.calendar_fallback.labels(str(year)).set(1)
    )
    ctx = Context(ref, calendar, DeadlinePolicy(), load_vault(s), metrics)
    app[WORKFLOW] = Workflow(ctx)
    yield


async def _producer(app: web.Application) -> AsyncIterator[None]:
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    producer = app[PRODUCER] = make_producer(s)
    await producer.start()
    app[PUBLISHER] = Publisher(
        app[POOL],
        producer,
        batch=s.outbox_batch,
        on_published=lambda topic, origin_ms: _observe(metrics, topic, origin_ms),
    )
    yield
    await producer.stop()


def _observe(metrics: Metrics, topic: str, origin_ms: int | None) -> None:
    kind = "task" if topic.startswith(topics.TASKS_PREFIX) else topic.rsplit(".", 1)[-1]
    metrics.outbox_published.labels(kind).inc()
    if origin_ms is not None and kind == "task":
        metrics.dispatch_latency.observe(max(now_ms() - origin_ms, 0) / 1000)


async def _consumer(app: web.Application) -> AsyncIterator[None]:
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    intake = Intake(
        app[POOL], app[WORKFLOW], metrics, s.district_code, on_commit=app[PUBLISHER].submit
    )
    kafka = make_consumer(s, "district", *topics.INBOUND)
    app[CONSUMER] = BatchConsumer(
        kafka, intake, metrics, "district", max_records=s.batch_max_records
    )
    yield


async def _gauges(app: web.Application) -> None:
    await gauges.keep_fresh(app[POOL], app[METRICS_KEY], app[SETTINGS].district_code)
