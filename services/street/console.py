"""The street desk's screen (services/console/, `street.html`) and what it reads beyond the
desk API: the unit's figures and live notices of its tasks."""

from __future__ import annotations

from aiohttp import web

from services.common import static
from services.street import desk_kpis, desk_live


def install(app: web.Application) -> None:
    """Register the desk's page at `/`, its summary and its event stream."""
    app.router.add_routes(desk_kpis.routes)  # GET /api/v1/desk/summary
    app.router.add_routes(desk_live.routes)  # GET /api/v1/desk/events
    app.cleanup_ctx.append(desk_live.context)
    static.install(app, "street")
