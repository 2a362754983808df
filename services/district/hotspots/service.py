"""Hotspots: the counting consumer of `cityops.case-events`, the detection rounds, and the API
route. The district service serves the route (`install`) and, unless told otherwise, runs the
loops too; `cityops hotspots` (`create_app`) runs the loops alone, in a process of their own,
so that a detection round (pure CPU over every key that saw reports) never holds up the
district's intake on the same event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from contracts import topics
from services.common.clock import Clock
from services.common.config import Settings
from services.common.consumer import BatchConsumer
from services.common.http import HEALTH, READY_CHECKS, base_app
from services.common.http import METRICS as METRICS_KEY
from services.common.kafka import make_consumer
from services.common.metrics import Metrics
from services.common.tasks import background
from services.district import resources
from services.district.hotspots import api, rules
from services.district.hotspots.counting import Counting
from services.district.hotspots.worker import Detector
from services.district.keys import CLOCK, POOL, PUBLISHER, SETTINGS
from services.district.routing.queries import load_categories

COUNTING = web.AppKey("hotspot_counting", BatchConsumer)
DETECTOR = web.AppKey("hotspot_detector", Detector)
#: the consumer group counting reports (one per district deployment)
GROUP = "district-hotspots"


def install(app: web.Application, *, loops: bool = True) -> None:
    """Register the route, and the two loops when `loops` (after the pool and the publisher)."""
    app.router.add_routes(api.routes)
    if loops:
        _install_loops(app)


def create_app(
    settings: Settings, metrics: Metrics | None = None, clock: Clock | None = None
) -> web.Application:
    """`cityops hotspots`: the loops alone, with /healthz, /readyz and /metrics. As many
    processes as wanted: counting shares the case-events partitions through its consumer
    group, and one process at a time runs a round (an advisory lock)."""
    app = base_app(metrics or Metrics())
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app.cleanup_ctx.extend(
        [
            resources.pool,
            resources.publisher,
            background("health", lambda a: a[HEALTH].run()),
            background("outbox-publisher", lambda a: a[PUBLISHER].run()),
        ]
    )
    _install_loops(app)
    app[READY_CHECKS].append(lambda: None if app[COUNTING].ready else "counting not yet polling")
    return app


def _install_loops(app: web.Application) -> None:
    app.cleanup_ctx.extend(
        [
            _context,
            background("hotspot-counting", lambda a: a[COUNTING].run()),
            background("hotspot-detector", lambda a: a[DETECTOR].run()),
        ]
    )


async def _context(app: web.Application) -> AsyncIterator[None]:
    s, metrics = app[SETTINGS], app[METRICS_KEY]
    th = rules.load(s.reference_dir)
    app[COUNTING] = BatchConsumer(
        lambda: make_consumer(s, GROUP, topics.CASE_EVENTS, side=True),
        Counting(app[POOL], s.district_code),
        metrics,
        "hotspots",
        max_records=s.batch_max_records,
        lanes=1,
        healthy=app[HEALTH].healthy,
    )
    async with app[POOL].acquire() as conn:
        categories = await load_categories(conn, s.district_code)
    names = {c.code: c.name for c in categories.values()}
    app[DETECTOR] = Detector(
        app[POOL], s.district_code, th, app[CLOCK], metrics, app[PUBLISHER].submit, names
    )
    yield
