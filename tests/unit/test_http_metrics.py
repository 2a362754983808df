"""HTTP metrics by route template (never the raw path) and consumer lag per partition."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import TopicPartition

from services.common.http import base_app
from services.common.lag import LagGauge
from services.common.metrics import Metrics


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    metrics = Metrics()
    app = base_app(metrics)

    async def task(request: web.Request) -> web.Response:
        if request.match_info["task_id"] == "gone":
            raise web.HTTPGone()
        return web.json_response({})

    app.router.add_get("/api/v1/tasks/{task_id}", task)
    async with TestClient(TestServer(app)) as client:
        for path in ("/api/v1/tasks/T-1", "/api/v1/tasks/T-2", "/api/v1/tasks/gone", "/nope"):
            await client.get(path)
        await client.post("/api/v1/tasks/T-1")
        await client.request("PROPFIND", "/api/v1/tasks/T-1")  # WebDAV
    route = "/api/v1/tasks/{task_id}"
    requests = "cityops_http_requests_total"
    assert sample(metrics, requests, route=route, method="GET", status="200") == 2
    assert sample(metrics, requests, route=route, method="GET", status="410") == 1
    assert sample(metrics, requests, route="unmatched", method="GET", status="404") == 1
    assert sample(metrics, requests, route="unmatched", method="POST", status="405") == 1
    assert sample(metrics, requests, route="unmatched", method="other", status="405") == 1
    count = "cityops_http_request_duration_seconds_count"
    assert sample(metrics, count, route=route, method="GET") == 3
    exposed = {s.labels.get("route") for f in metrics.registry.collect() for s in f.samples}
    assert not any(r and "T-1" in r for r in exposed)


class FakeConsumer:
    def __init__(self) -> None:
        self.assigned: dict[TopicPartition, tuple[int | None, int]] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.assigned[tp][0]

    async def position(self, tp: TopicPartition) -> int:
        return self.assigned[tp][1]


async def test_lag_per_assigned_partition_and_none_for_revoked_ones() -> None:
    metrics, consumer = Metrics(), FakeConsumer()
    a, b = TopicPartition("in", 0), TopicPartition("in", 1)
    consumer.assigned = {a: (120, 100), b: (None, 0)}  # b: not fetched yet
    lag = LagGauge(consumer, metrics.consumer_lag, "district", every_s=0)  # type: ignore[arg-type]
    await lag.refresh()
    labels: dict[str, Any] = {"consumer": "district", "topic": "in"}
    assert sample(metrics, "cityops_consumer_lag", **labels, partition="0") == 20
    assert sample(metrics, "cityops_consumer_lag", **labels, partition="1") is None
    consumer.assigned = {b: (7, 7)}  # a rebalance moved partition 0 elsewhere
    await lag.refresh()
    assert sample(metrics, "cityops_consumer_lag", **labels, partition="0") is None
    assert sample(metrics, "cityops_consumer_lag", **labels, partition="1") == 0
    lag.clear()
    assert sample(metrics, "cityops_consumer_lag", **labels, partition="1") is None


async def test_lag_counts_what_was_fetched_but_not_yet_applied() -> None:
    metrics, consumer = Metrics(), FakeConsumer()
    a = TopicPartition("in", 0)
    consumer.assigned = {a: (120, 110)}  # fetched up to 110, of which 25 wait in the lanes
    waiting = {a: 25}
    lag = LagGauge(consumer, metrics.consumer_lag, "district", waiting.__getitem__, every_s=0)  # type: ignore[arg-type]
    await lag.refresh()
    labels: dict[str, Any] = {"consumer": "district", "topic": "in", "partition": "0"}
    assert sample(metrics, "cityops_consumer_lag", **labels) == 35


def test_pool_gauges_read_the_pool_at_scrape_time() -> None:
    class Pool:
        size, idle = 3, 1

        def get_size(self) -> int:
            return self.size

        def get_idle_size(self) -> int:
            return self.idle

        def get_max_size(self) -> int:
            return 8

    metrics, pool = Metrics(), Pool()
    metrics.watch_pool(pool)
    name = "cityops_db_pool_connections"
    assert [sample(metrics, name, state=s) for s in ("in_use", "idle", "max")] == [2, 1, 8]
    pool.size = 5
    assert sample(metrics, name, state="in_use") == 4
