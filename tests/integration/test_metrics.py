"""What both services expose on /metrics: valid for promtool, and the plumbing a centre runs
on (consumer lag, database pool, outbox backlog, HTTP by route template)."""

from __future__ import annotations

import asyncio

import pytest

from contracts import topics
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.street.app import create_app as street_app
from tests.promtool import promtool
from tests.support import Service, Topics, running, samples, wait_until

ORDER = samples("hotline12345.workorders")[2]  # 井盖缺损 -> 310106-JSGL

pytestmark = pytest.mark.timeout(1200)  # may install promtool first


async def check_metrics(service: Service) -> str:
    """`promtool check metrics` on the service's /metrics; its complaints, if any."""
    _, text = await service.get("/metrics")
    proc = await asyncio.create_subprocess_exec(
        promtool(),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(text.encode()), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_both_services_metrics_pass_promtool(settings: Settings) -> None:
    promtool()  # skip before starting anything when it cannot be had
    async with (
        running(district_app(settings)) as district,
        running(street_app(settings)) as street,
        Topics(settings) as t,
    ):
        await t.publish(topics.WORKORDERS, ORDER["order_no"], ORDER)
        await t.wait_for(topics.task_topic("310106-JSGL"), lambda m: True, "the task")
        await district.get("/api/v1/kpis?by=unit&from=2026-11-01&to=2026-12-01")
        await street.get("/api/v1/tasks/no-such-task")
        for service in (district, street):
            assert await check_metrics(service) == ""

        async def caught_up() -> bool:
            """A lag series per assigned partition of the inbound topics, every one at 0."""
            _, text = await district.get("/metrics")
            lags = [line for line in text.splitlines() if line.startswith("cityops_consumer_lag{")]
            return any(topics.WORKORDERS in line for line in lags) and all(
                line.endswith(" 0.0") for line in lags
            )

        await wait_until(caught_up, "district consumer lag reported and at 0")
        for service in (district, street):
            pool_max = await service.metric("cityops_db_pool_connections", state="max")
            assert pool_max == settings.db_pool_size
        assert await district.metric("cityops_outbox_backlog") == 0
        route = "/api/v1/tasks/{task_id}"
        assert (
            await street.metric(
                "cityops_http_requests_total", route=route, method="GET", status="404"
            )
            == 1
        )
