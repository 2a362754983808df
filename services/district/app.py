"""The district operations centre: intake, triage, dispatch, the case record, replies upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import cast

from aiohttp import web

from contracts import topics
from services.common import auth, static
from services.common.clock import Clock
from services.common.config import Settings
from services.common.consumer import BatchConsumer
from services.common.crypto import load_vault
from services.common.http import HEALTH, READY_CHECKS, base_app
from services.common.http import METRICS as METRICS_KEY
from services.common.kafka import make_consumer
from services.common.metrics import Metrics
from services.common.tasks import background
from services.district import api, resources
from services.district.api import kpis as kpi_api
from services.district.api import live, openapi
from services.district.api import queues as queue_api
from services.district.api.console import routes as console_routes
from services.district.api.live_resume import keeper as recent_events
from services.district.cases.store import CaseStore
from services.district.deadlines.policy_file import load_policy
from services.district.deadlines.timers import TimerWorker
from services.district.decisions import Decisions
from services.district.decisions.context import Context
from services.district.hotspots import service as hotspots
from services.district.intake.duplicates import DuplicatePolicy
from services.district.intake.handler import Intake
from services.district.intake.parked import ParkedSweeper
from services.district.keys import (
    CLOCK,
    CONSUMER,
    DECISIONS,
    KPI_WEIGHTS,
    PARKED,
    POOL,
    PUBLISHER,
    SETTINGS,
    STORE,
    TIMERS,
)
from services.district.kpis.weights import load_weights
from services.district.queues import gauges
from services.district.routing import queries
from services.district.routing.edge import EdgePolicy, NearEdge

__all__ = ["CLOCK", "DECISIONS", "POOL", "SETTINGS", "create_app"]

#: a parked message is adopted by a case that exists once it has waited this long (until then
#: the batch that opens the case applies it itself)
ADOPT_AFTER = timedelta(seconds=5)


def create_app(
    settings: Settings, metrics: Metrics | None = None, clock: Clock | None = None
) -> web.Application:
    app = base_app(metrics or Metrics())
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app.router.add_routes(api.routes)
    app.router.add_routes(kpi_api.routes)  # GET /api/v1/kpis (services/district/api/kpis.py)
    app.router.add_routes(queue_api.routes)  # queues, case search
    queue_api.setup(app)
    app.router.add_routes(live.routes)  # GET /api/v1/events (server-sent events)
    app.router.add_routes(openapi.routes)  # GET /api/v1/openapi.json
    app.router.add_routes(console_routes)  # the console's reads (services/district/console_api.py)
    static.install(app, "district")  # GET /: the one-screen console (services/console/)
    app.cleanup_ctx.extend(
        [
            resources.pool,
            _decisions,
            resources.publisher,
            _workers,
            background("health", lambda a: a[HEALTH].run()),
            background("outbox-publisher", lambda a: a[PUBLISHER].run()),
            _consumer,
            background("district-consumer", lambda a: a[CONSUMER].run()),
            background("gauges", _gauges),
            background("timers", lambda a: a[TIMERS].run()),
            background("parked-sweeper", lambda a: a[PARKED].run()),
            background("routing-rules", _follow_rules),
        ]
    )
    app[READY_CHECKS].append(lambda: None if app[CONSUMER].ready else "consumer not yet polling")
    app.cleanup_ctx.append(live.context)
    app.cleanup_ctx.append(recent_events(live.LIVE))  # kept for Last-Event-ID (live_resume.py)
    # GET /api/v1/hotspots; the counting and detection loops unless `cityops hotspots` runs them
    hotspots.install(app, loops=settings.hotspots_in_district)
    # bearer tokens (per-token rate limit), JSON errors
    auth.install(app, POOL, settings.district_code, settings.token_rate, settings.token_burst)
    return app


async def _decisions(app: web.Application) -> AsyncIterator[None]:
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    async with app[POOL].acquire() as conn:
        ref = await queries.load_reference(conn, s.district_code)
    # a bad policy file stops the start, naming its line and field
    policy = load_policy(s.deadline_policy_path, ref.categories)
    app[KPI_WEIGHTS] = load_weights(s.kpi_weights_path)  # likewise the ranking's weights
    calendar = policy.calendar(
        on_fallback=lambda year: metrics.calendar_fallback.labels(str(year)).set(1)
    )
    edge = EdgePolicy(s.not_ours_margin_m, cast(NearEdge, s.near_edge))
    ctx = Context(ref, calendar, policy, load_vault(s), metrics, edge)
    app[DECISIONS] = Decisions(ctx)
    yield


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """The case store and the timers (after the decisions and the publisher)."""
    app[STORE] = CaseStore(app[POOL], app[PUBLISHER].submit)
    app[TIMERS] = TimerWorker(
        app[POOL], app[DECISIONS], app[PUBLISHER].submit, app[CLOCK], app[SETTINGS].district_code
    )
    yield


async def _consumer(app: web.Application) -> AsyncIterator[None]:
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    intake = Intake(
        app[POOL],
        app[DECISIONS],
        metrics,
        s.district_code,
        on_commit=app[PUBLISHER].submit,
        clock=app[CLOCK],
        duplicates=DuplicatePolicy(s.merge_radius_m, timedelta(hours=s.merge_window_h)),
    )
    app[PARKED] = ParkedSweeper(  # parked actions: adopted by their case, or dead-lettered
        app[POOL],
        metrics,
        app[PUBLISHER].submit,
        app[CLOCK],
        s.district_code,
        app[DECISIONS].ctx.vault,
        adopt=lambda: intake.adopt(ADOPT_AFTER),
        max_age=timedelta(days=s.parked_max_days),
    )
    app[CONSUMER] = BatchConsumer(
        lambda: make_consumer(s, "district", *topics.INBOUND),
        intake,
        metrics,
        "district",
        max_records=s.batch_max_records,
        lanes=s.intake_lanes,
        healthy=app[HEALTH].healthy,
    )
    yield


async def _gauges(app: web.Application) -> None:
    await gauges.keep_fresh(
        app[POOL],
        app[METRICS_KEY],
        app[SETTINGS].district_code,
        overdue=app[queue_api.OVERDUE_CACHE],
        clock=app[CLOCK],
    )


async def _follow_rules(app: web.Application) -> None:
    """Routing rules changed by another instance take effect here within seconds."""
    pool, district, decisions = app[POOL], app[SETTINGS].district_code, app[DECISIONS]
    async with pool.acquire() as conn:
        seen = await queries.rules_version(conn, district)
    while True:
        await asyncio.sleep(2.0)
        async with pool.acquire() as conn:
            version = await queries.rules_version(conn, district)
            if version != seen:
                decisions.use_rules(await queries.load_rules(conn, district))
                seen = version
