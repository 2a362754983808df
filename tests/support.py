"""Helpers for tests against the real broker, database and services."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import topics
from services.common.auth import TOKENS, Role
from services.common.config import ROOT, Settings

DATA = Path(__file__).parent / "data"


def samples(name: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


#: the sample 12345 orders that open a case, by order number
ORDERS = {o["order_no"]: o for o in samples("hotline12345.workorders") if o["action"] == "dispatch"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def wait_until(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = 15.0, every: float = 0.05
) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Service:
    """An aiohttp app running in the test's loop on a free loopback port."""

    def __init__(self, runner: web.AppRunner, url: str, token: str | None = None) -> None:
        self.runner, self.url, self.token = runner, url, token
        self.app = runner.app

    @property
    def token_id(self) -> str:
        """The id part of `cityops_<id>_<secret>`: what the record keeps of the token."""
        return (self.token or "").split("_")[1]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def as_role(self, role: Role, unit: str | None = None) -> Service:
        """The same service called with a fresh token of `role` (and `unit`)."""
        token = await self.app[TOKENS].mint(role, unit, f"test {role.value}")
        return Service(self.runner, self.url, token)

    async def get(self, path: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.get(self.url + path, headers=self.auth) as r:
            body = await r.text()
            return r.status, (json.loads(body) if r.content_type == "application/json" else body)

    async def post(self, path: str, body: Any, **headers: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as s,
            s.post(self.url + path, json=body, headers={**self.auth, **headers}) as r,
        ):
            return r.status, await r.json()

    async def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of the service's /metrics (0 when absent)."""
        _, text = await self.get("/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] != name:
                continue
            got = series.partition("{")[2].rstrip("}")
            if ",".join(sorted(got.split(","))) == want or (not want and not got):
                return float(value)
        return 0.0


@asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[Service]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    service = Service(runner, f"http://127.0.0.1:{port}")
    try:
        await wait_until(lambda: _ready(service), "service ready")
        if TOKENS in app:  # the operator API needs a token: a district supervisor's by default
            service = await service.as_role(Role.DISTRICT_SUPERVISOR)
        yield service
    finally:
        await runner.cleanup()


async def _ready(service: Service) -> bool:
    status, _ = await service.get("/readyz")
    return status == 200


class Topics:
    """Publish to and read from topics of one broker; reading always starts at the beginning."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=1)

    async def __aenter__(self) -> Topics:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, key: str, value: bytes | dict[str, Any]) -> None:
        raw = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()
        await self._producer.send_and_wait(topic, raw, key=key.encode())

    async def publish_all(self, topic: str, messages: list[tuple[str, bytes]]) -> None:
        """Send every (key, value) at once, then wait until the broker has them all."""
        sent = [await self._producer.send(topic, v, key=k.encode()) for k, v in messages]
        await asyncio.gather(*sent)

    async def read(self, topic: str) -> list[dict[str, Any]]:
        """Every message on the topic so far, as JSON, in per-partition order."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                return []
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[dict[str, Any]] = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    out.extend(json.loads(r.value) for r in records)
            return out
        finally:
            await consumer.stop()

    async def wait_for(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool],
        what: str,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[dict[str, Any]]:
        async def found() -> list[dict[str, Any]] | None:
            hits = [m for m in await self.read(topic) if match(m)]
            return hits if len(hits) >= count else None

        return await wait_until(found, what, timeout, every=0.1)  # type: ignore[no-any-return]


def task_feedback(
    task: dict[str, Any], action: str, at: datetime | str, **extra: Any
) -> dict[str, Any]:
    """A `cityops.task-feedback/v1` message from the unit holding `task`."""
    return {
        "schema": "cityops.task-feedback/v1",
        "feedback_id": uuid.uuid4().hex,
        "task_id": task["task_id"],
        "case_no": task["case_no"],
        "unit_code": task["unit_code"],
        "actor": {"id": f"op-{task['unit_code']}", "name": "值班员"},
        "action": action,
        "at": at if isinstance(at, str) else at.isoformat(),
        **extra,
    }


async def dispatched(t: Topics, order_no: str, unit: str) -> dict[str, Any]:
    """Publish the sample order `order_no` and wait for its task on `unit`'s topic."""
    await t.publish(topics.WORKORDERS, order_no, ORDERS[order_no])
    [task] = await t.wait_for(
        topics.task_topic(unit), lambda m: m["case"]["source_ref"] == order_no, f"{order_no} task"
    )
    return task


async def case_record(district: Service, case_no: str) -> dict[str, Any]:
    """The case as `GET /api/v1/cases/{case_no}` shows it (asserting it is there)."""
    status, body = await district.get(f"/api/v1/cases/{case_no}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def lagging_partitions(bootstrap: str, group: str, names: Iterable[str]) -> dict[str, int]:
    """Partitions of `names` whose group's committed offset is behind the end: "topic/p": lag.
    (Read through a consumer of the group that joins nothing: tansu drops the admin client's
    OffsetFetch.)"""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in sorted(set(names))
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        ends = await consumer.end_offsets(tps)
        behind = {}
        for tp in tps:
            at = await consumer.committed(tp) or 0
            if at < ends[tp]:
                behind[f"{tp.topic}/{tp.partition}"] = ends[tp] - at
        return behind
    finally:
        await consumer.stop()


async def run_cityops(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """The `cityops` command in a process of its own, with exactly `env`: its exit code,
    stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.ops.cli", *argv, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
