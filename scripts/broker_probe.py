"""How the broker alone behaves over time: order-sized records produced at a fixed rate and
consumed by a plain consumer, in consecutive runs, nothing else running. Prints the records'
age at the consumer (p50/p99/max) per run.

    .venv/bin/python scripts/broker_probe.py [--rate 500] [--seconds 10] [--runs 4]

With the embedded broker (tansu) the age grows run after run as the topic fills: it keeps
every record in memory, and its fetches slow down with what it holds. Point
CITYOPS_KAFKA_BOOTSTRAP at a Kafka cluster to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.config import Settings
from services.common.kafka import PARTITIONS
from services.devstack import EmbeddedKafka


async def probe(bootstrap: str, fetch_wait_ms: int, rate: float, seconds: float, runs: int) -> None:
    topic = f"probe.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"probe-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_wait_ms,
        session_timeout_ms=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        await consumer.getmany(timeout_ms=3000)  # joined and assigned
        value, n = b"x" * 900, int(rate * seconds)
        for run in range(runs):
            ages: list[float] = []
            receiver = asyncio.create_task(_receive(consumer, n, ages))
            start = time.perf_counter()
            for i in range(n):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send(topic, value, key=f"{run}-{i}".encode())
            await asyncio.wait_for(receiver, 120)
            ages.sort()
            print(
                f"run {run + 1}: {n * (run + 1):,} records held  age p50 {ages[n // 2]:.1f} ms"
                f"  p99 {ages[int(n * 0.99)]:.1f} ms  max {ages[-1]:.1f} ms",
                flush=True,
            )
    finally:
        await producer.stop()
        await consumer.stop()


async def _receive(consumer: AIOKafkaConsumer, n: int, ages: list[float]) -> None:
    while len(ages) < n:
        batch = await consumer.getmany(timeout_ms=200)
        now = time.time() * 1000
        ages.extend(now - r.timestamp for part in batch.values() for r in part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    settings = Settings()
    broker = None if settings.kafka_bootstrap else EmbeddedKafka()
    try:
        bootstrap = settings.kafka_bootstrap or broker.bootstrap  # type: ignore[union-attr]
        wait = settings.fetch_max_wait_ms if broker is None else 10
        asyncio.run(probe(bootstrap, wait, args.rate, args.seconds, args.runs))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
