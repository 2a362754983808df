"""Demo feed for `make run`: plays every party around CityOps so the loop closes.

- the municipal 12345 system: work orders at a steady rate (CITYOPS_DEMO_RATE per second,
  default 2) and a follow-up (回访) some time after each `result` reply;
- road chiefs: one patrol report for every five work orders;
- the units: for each `assigned` task, accept → contact → resolve (5% return it instead);
- now and then (CITYOPS_DEMO_CLUSTER_EVERY seconds, default 600, the first after a minute;
  0: never) a cluster: 30 orders about one problem within 60 m, over five minutes, which the
  district shows as a hotspot (`GET /api/v1/hotspots`, topic `cityops.hotspots`).

Delays are seconds divided by CITYOPS_DEMO_SPEED (default 1.0: larger is faster).
CITYOPS_DEMO_SEED makes the generated content repeatable. Stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from feedgen import SHANGHAI, FeedGenerator

from contracts import topics
from services.common import logs
from services.common.config import Settings
from services.common.kafka import ensure_topics, make_consumer, make_producer

log = logging.getLogger("demo-feed")

TASKS_PATTERN = r"^cityops\.tasks\..*"
REPORT_EVERY = 5  # one road-chief report per this many work orders
RETURN_SHARE = 0.05
UNIT_STEPS = (("accept", 1.0, 5.0), ("contact", 2.0, 10.0), ("resolve", 5.0, 30.0))
STOP_TIMEOUT_S = 5.0
CLUSTER_FIRST_S, CLUSTER_SPREAD_S = 60.0, 300.0  # the first demo cluster; how long one lasts


@dataclass(frozen=True)
class DemoConfig:
    rate: float
    seed: int
    speed: float
    cluster_every_s: float = 600.0

    @classmethod
    def from_env(cls) -> DemoConfig:
        seed = os.environ.get("CITYOPS_DEMO_SEED") or str(time.time_ns() % 2**31)
        return cls(
            rate=float(os.environ.get("CITYOPS_DEMO_RATE", "2")),
            seed=int(seed),
            speed=max(float(os.environ.get("CITYOPS_DEMO_SPEED", "1.0")), 1e-3),
            cluster_every_s=float(os.environ.get("CITYOPS_DEMO_CLUSTER_EVERY", "600")),
        )


def _now() -> datetime:
    return datetime.now(SHANGHAI)


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


class DemoFeed:
    """The producer, the two consumers and the scripted replies of the simulated parties."""

    def __init__(self, settings: Settings, config: DemoConfig) -> None:
        self.settings, self.config = settings, config
        # a per-run tag keeps order numbers and feedback ids unique across restarts.
        tag = f"{int(time.time()) % 10**6:06d}"
        self.gen = FeedGenerator(
            config.seed, settings.district_code, settings.reference_dir, prefix=tag
        )
        self.rng = random.Random(config.seed + 1)
        self.producer = make_producer(settings)
        self.units = make_consumer(settings, "demo-units")
        self.units.subscribe(pattern=TASKS_PATTERN)
        self.municipal = make_consumer(settings, "demo-municipal", topics.REPLIES)
        self.scripts: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        inbound = [topics.WORKORDERS, topics.ROADCHIEF_REPORTS, topics.HOTLINE_FEEDBACK]
        await ensure_topics(self.settings, [*inbound, topics.TASK_FEEDBACK, topics.REPLIES])
        await self.producer.start()
        await self.units.start()
        await self.municipal.start()

    async def stop(self) -> None:
        """Cancel scripted replies, then stop every client; each step is attempted."""
        for script in self.scripts:
            script.cancel()
        await asyncio.gather(*self.scripts, return_exceptions=True)
        for client in (self.municipal, self.units, self.producer):
            try:
                await asyncio.wait_for(client.stop(), STOP_TIMEOUT_S)
            except Exception:
                log.warning("client did not stop cleanly", exc_info=True)

    # -- the municipal system and the road chiefs ------------------------------------------

    async def publish(self) -> None:
        """Send work orders at a steady rate, catching up after a slow tick."""
        if self.config.rate <= 0:
            await asyncio.Event().wait()
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        logged, next_cluster = started, started + CLUSTER_FIRST_S
        while True:
            if self.config.cluster_every_s > 0 and loop.time() >= next_cluster:
                next_cluster = loop.time() + self.config.cluster_every_s
                self._schedule(self._play_cluster())
            due = min(int((loop.time() - started) * self.config.rate) + 1 - sent, 1000)
            pending = []
            for _ in range(max(due, 0)):
                sent += 1
                pending.append(await self._order())
                if sent % REPORT_EVERY == 0:
                    pending.append(await self._report())
            await asyncio.gather(*pending)
            if loop.time() - logged >= 60.0:
                logged = loop.time()
                log.info("demo orders published", extra={"orders": sent})
            await asyncio.sleep(min(0.2, 1.0 / self.config.rate))

    async def _order(self) -> asyncio.Future[Any]:
        order = self.gen.work_order(_now())
        key = order["order_no"].encode()
        sent: asyncio.Future[Any] = await self.producer.send(
            topics.WORKORDERS, _encode(order), key=key
        )
        return sent

    async def _report(self) -> asyncio.Future[Any]:
        report = self.gen.road_chief_report(_now())
        key = report["report_id"].encode()
        sent: asyncio.Future[Any] = await self.producer.send(
            topics.ROADCHIEF_REPORTS, _encode(report), key=key
        )
        return sent

    async def _play_cluster(self) -> None:
        """Thirty orders about one problem at one spot, over five minutes."""
        orders = self.gen.cluster(_now())
        log.info(
            "demo cluster",
            extra={"category": orders[0]["category_hint"], "orders": len(orders)},
        )
        for order in orders:
            order["sent_at"] = order["received_at"] = _now().isoformat(timespec="seconds")
            key = order["order_no"].encode()
            await self.producer.send_and_wait(topics.WORKORDERS, _encode(order), key=key)
            await asyncio.sleep(CLUSTER_SPREAD_S / len(orders))

    # -- consuming tasks and replies ---------------------------------------------------------

    async def consume(
        self, consumer: AIOKafkaConsumer, handle: Callable[[dict[str, Any]], None]
    ) -> None:
        """Hand every record to `handle` (which only schedules), then commit the batch."""
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batch.values():
                for record in records:
                    message = self._decode(record)
                    if message is not None:
                        handle(message)
            if batch:
                await consumer.commit()

    @staticmethod
    def _decode(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any] | None:
        try:
            message = json.loads(record.value or b"")
        except ValueError:
            message = None
        if not isinstance(message, dict):
            log.warning(
                "undecodable record skipped", extra={"topic": record.topic, "offset": record.offset}
            )
            return None
        return message

    def on_task(self, task: dict[str, Any]) -> None:
        if task.get("kind") == "assigned" and task.get("task_id") and task.get("unit_code"):
            self._schedule(self._play_unit(task))

    def on_reply(self, reply: dict[str, Any]) -> None:
        if reply.get("kind") == "result" and reply.get("order_no"):
            self._schedule(self._play_followup(str(reply["order_no"])))

    def _schedule(self, script: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(script)
        self.scripts.add(task)
        task.add_done_callback(self._script_done)

    def _script_done(self, task: asyncio.Task[None]) -> None:
        self.scripts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("demo script failed", exc_info=task.exception())

    # -- the simulated parties ---------------------------------------------------------------

    async def _pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high) / self.config.speed)

    async def _play_unit(self, task: dict[str, Any]) -> None:
        if self.rng.random() < RETURN_SHARE:
            await self._pause(2.0, 8.0)
            await self._feedback(task, "return")
            return
        for action, low, high in UNIT_STEPS:
            await self._pause(low, high)
            await self._feedback(task, action)

    async def _feedback(self, task: dict[str, Any], action: str) -> None:
        feedback = self.gen.unit_feedback(task, action, _now())
        key = str(task["task_id"]).encode()
        await self.producer.send_and_wait(topics.TASK_FEEDBACK, _encode(feedback), key=key)
        log.info(
            "demo unit feedback",
            extra={"task_id": task["task_id"], "case_no": task.get("case_no"), "action": action},
        )

    async def _play_followup(self, order_no: str) -> None:
        await self._pause(10.0, 60.0)
        followup = self.gen.followup(order_no, _now())
        key = order_no.encode()
        await self.producer.send_and_wait(topics.HOTLINE_FEEDBACK, _encode(followup), key=key)
        log.info(
            "demo follow-up", extra={"order_no": order_no, "satisfaction": followup["satisfaction"]}
        )


Started = tuple[asyncio.Task[Any], list[asyncio.Task[Any]]]


async def _first(*aws: Coroutine[Any, Any, Any]) -> Started:
    """Run `aws` until the first finishes; cancel and await the rest."""
    tasks = [asyncio.create_task(a) for a in aws]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done.pop(), tasks


async def run(settings: Settings, config: DemoConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    feed = DemoFeed(settings, config)
    try:
        first, tasks = await _first(stop.wait(), feed.start())
        if first is tasks[0]:
            return 0
        first.result()
        print(
            f"cityops: demo-feed publishing {config.rate:g} orders/s to {settings.kafka_bootstrap}",
            flush=True,
        )
        log.info("demo feed started", extra={"rate": config.rate, "seed": config.seed})
        first, tasks = await _first(
            stop.wait(),
            feed.publish(),
            feed.consume(feed.units, feed.on_task),
            feed.consume(feed.municipal, feed.on_reply),
        )
        if first is not tasks[0]:
            log.error("demo feed worker stopped", exc_info=first.exception())
            return 1
        return 0
    finally:
        await feed.stop()
        log.info("demo feed stopped")


def main() -> int:
    settings = Settings()
    logs.setup("demo-feed", settings.log_level)
    if not settings.kafka_bootstrap:
        print("cityops: demo-feed needs CITYOPS_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    return asyncio.run(run(settings, DemoConfig.from_env()))


if __name__ == "__main__":
    sys.exit(main())
