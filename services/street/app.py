"""The reference street platform: consumes its units' tasks, offers the operator's actions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from contracts import topics
from services.common import auth, db
from services.common.config import Settings
from services.common.consumer import BatchConsumer
from services.common.health import KafkaProbe, PostgresProbe
from services.common.http import HEALTH, METRICS, READY_CHECKS, base_app
from services.common.kafka import make_consumer, make_producer
from services.common.metrics import Metrics
from services.common.outbox import Publisher
from services.common.tasks import background
from services.district.deadlines.workcal import WorkCalendar
from services.street import api, openapi, queries
from services.street.console import install as install_console
from services.street.consumer import TaskInbox
from services.street.desk import OUTBOX
from services.street.keys import CALENDAR, CONSUMER, POOL, PRODUCER, PUBLISHER, SETTINGS, UNITS


def create_app(settings: Settings, metrics: Metrics | None = None) -> web.Application:
    app = base_app(metrics or Metrics())
    app[SETTINGS] = settings
    app[CALENDAR] = WorkCalendar()
    app.router.add_routes(api.routes)
    app.router.add_routes(openapi.routes)  # GET /api/v1/openapi.json
    app.cleanup_ctx.extend(
        [
            _pool,
            _producer,
            background("health", lambda a: a[HEALTH].run()),
            background("street-outbox", lambda a: a[PUBLISHER].run()),
            _consumer,
            background("street-consumer", lambda a: a[CONSUMER].run()),
        ]
    )
    app[READY_CHECKS].append(lambda: None if app[CONSUMER].ready else "consumer not yet polling")
    install_console(app)  # GET /: the street desk's screen (services/street/console.py)
    # bearer tokens (per-token rate limit), JSON errors
    auth.install(app, POOL, settings.district_code, settings.token_rate, settings.token_burst)
    return app


async def _pool(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    pool = app[POOL] = await db.create_pool(s.database_url, s.db_pool_size)
    app[METRICS].watch_pool(pool)  # cityops_db_pool_connections
    app[HEALTH].add("postgres", probe := PostgresProbe(s.database_url))
    async with pool.acquire() as conn:
        app[UNITS] = list(s.street_units) or await queries.desk_units(conn, s.district_code)
    yield
    probe.close()
    await pool.close()


async def _producer(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    producer = app[PRODUCER] = make_producer(s)
    await producer.start()
    app[HEALTH].add("kafka", kafka := KafkaProbe(s.kafka_bootstrap))
    retries = app[METRICS].retries
    app[PUBLISHER] = Publisher(
        app[POOL],
        producer,
        table=OUTBOX,
        batch=s.outbox_batch,
        retries=lambda kind: retries.labels(kind).inc(),
    )
    yield
    await kafka.close()
    await producer.stop()


async def _consumer(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    units = [topics.task_topic(u) for u in app[UNITS]]
    app[CONSUMER] = BatchConsumer(
        lambda: make_consumer(s, "street", *units),
        TaskInbox(app[POOL], app[METRICS], app[PUBLISHER].submit),
        app[METRICS],
        "street",
        max_records=s.batch_max_records,
        healthy=app[HEALTH].healthy,
    )
    yield
