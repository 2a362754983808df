"""Hotspots in the district service: the counting consumer of `cityops.case-events`, the
detection rounds, and the API route (registered by `install`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from contracts import topics
from services.common.consumer import BatchConsumer
from services.common.http import HEALTH
from services.common.http import METRICS as METRICS_KEY
from services.common.kafka import make_consumer
from services.common.tasks import background
from services.district.hotspots import api, rules
from services.district.hotspots.counting import Counting
from services.district.hotspots.worker import Detector
from services.district.keys import CLOCK, DECISIONS, POOL, PUBLISHER, SETTINGS

COUNTING = web.AppKey("hotspot_counting", BatchConsumer)
DETECTOR = web.AppKey("hotspot_detector", Detector)
#: the consumer group counting reports (one per district deployment)
GROUP = "district-hotspots"


def install(app: web.Application) -> None:
    """Register the route and the two loops (after the pool, decisions and the publisher)."""
    app.router.add_routes(api.routes)
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
        lambda: make_consumer(s, GROUP, topics.CASE_EVENTS),
        Counting(app[POOL], s.district_code),
        metrics,
        "hotspots",
        max_records=s.batch_max_records,
        lanes=1,
        healthy=app[HEALTH].healthy,
    )
    names = {c.code: c.name for c in app[DECISIONS].ctx.ref.categories.values()}
    app[DETECTOR] = Detector(
        app[POOL], s.district_code, th, app[CLOCK], metrics, app[PUBLISHER].submit, names
    )
    yield
