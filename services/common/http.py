"""What every CityOps HTTP service serves: /healthz, /readyz, /metrics; and how it starts."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.health import Health
from services.common.metrics import Metrics

METRICS = web.AppKey("metrics", Metrics)
HEALTH = web.AppKey("health", Health)
READY_CHECKS = web.AppKey("ready_checks", list[Callable[[], str | None]])
#: label values stay a small fixed set: any other method is counted as "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def instrument(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request by its route template (never the raw path)."""
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        _observe(request, status, time.perf_counter() - started)


def route_template(request: web.Request) -> str:
    """`/api/v1/tasks/{task_id}`, not the path asked for; `unmatched` for 404 and 405."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _observe(request: web.Request, status: int, seconds: float) -> None:
    metrics = request.app[METRICS]
    route = route_template(request)
    method = request.method if request.method in METHODS else "other"
    metrics.http_requests.labels(route, method, str(status)).inc()
    metrics.http_duration.labels(route, method).observe(seconds)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """503 naming what is wrong while a dependency does not answer its probe or a consumer is
    not polling; 200 again as soon as they do."""
    problems = request.app[HEALTH].problems()
    problems += [p for check in request.app[READY_CHECKS] if (p := check()) is not None]
    if problems:
        return web.json_response({"status": "not_ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def base_app(metrics_: Metrics) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024, middlewares=[instrument])
    app[METRICS] = metrics_
    app[HEALTH] = Health(metrics_)
    app[READY_CHECKS] = []
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


#: collect the youngest generation every this many allocations (Python's default is 700: a
#: batch of 2,000 orders allocates hundreds of thousands of short-lived objects)
GC_THRESHOLD = (50_000, 20, 100)


async def _freeze_startup_objects(_: web.Application) -> None:
    """Runs after every startup context: modules, reference data and territories live as long
    as the process, so the collector stops walking them (`gc.freeze`)."""
    gc.collect()
    gc.freeze()


def run(app: web.Application, service: str, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM (web.run_app owns the signals), then run cleanups in reverse."""
    gc.set_threshold(*GC_THRESHOLD)
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        shutdown_timeout=10,
        print=lambda _: print(f"cityops: {service} listening on http://{host}:{port}", flush=True),
    )
