"""Kafka clients configured one way for every service."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from contracts import topics
from contracts.events import DeadLetter, DeadLetterError
from services.common.config import Settings
from services.common.crypto import PhoneVault, mask_numbers

log = logging.getLogger(__name__)

#: partitions for topics keyed by case / order; more instances share them through groups.
PARTITIONS = 6


def make_producer(settings: Settings) -> AIOKafkaProducer:
    # No idempotent producer or transactions: exactly-once comes from PostgreSQL (outbox, keys).
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        client_id=f"cityops-{settings.instance}",
    )


#: the longest fetch wait of a consumer off the dispatch path (the live events, the hotspot
#: counting): Kafka answers a fetch as soon as it has records anyway, while the embedded broker
#: holds each one this long, so these consumers do not ask it a hundred times a second
SIDE_FETCH_MAX_WAIT_MS = 250


def side_fetch_max_wait_ms(settings: Settings) -> int:
    return max(settings.fetch_max_wait_ms, SIDE_FETCH_MAX_WAIT_MS)


def make_consumer(
    settings: Settings, group: str, *subscribe: str, side: bool = False
) -> AIOKafkaConsumer:
    """A consumer of the group; `side`: off the dispatch path (`SIDE_FETCH_MAX_WAIT_MS`)."""
    return AIOKafkaConsumer(
        *subscribe,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.group_prefix}-{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=side_fetch_max_wait_ms(settings) if side else settings.fetch_max_wait_ms,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(settings.session_timeout_ms // 4, 100),
        max_partition_fetch_bytes=4 * 1024 * 1024,
        client_id=f"cityops-{group}-{settings.instance}",
    )


def district_topics(unit_codes: Iterable[str]) -> list[str]:
    """Every topic CityOps uses for one district's units."""
    fixed = [
        *topics.INBOUND,
        topics.REPLIES,
        topics.CASE_EVENTS,
        topics.DEADLETTER,
        topics.HOTSPOTS,
    ]
    return fixed + [topics.task_topic(u) for u in sorted(unit_codes)]


async def ensure_topics(settings: Settings, names: Iterable[str]) -> None:
    """Create the topics that are missing (the broker may still be starting: retry briefly)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    for attempt in range(50):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, PARTITIONS, 1) for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another instance created them meanwhile
            log.info("topics created", extra={"count": len(missing)})
    finally:
        await admin.close()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def dead_letter(
    record: ConsumerRecord[bytes, bytes],
    kind: str,
    detail: str,
    vault: PhoneVault | None = None,
) -> DeadLetter:
    """The dead-letter envelope: where it came from, the original bytes, and why. An original
    holding a phone number travels masked, and sealed whole with the phone key (`vault`; none:
    only masked); the reason is masked too (a validation error may quote its input)."""
    value, sealed = record.value, None
    if value is not None:
        masked = mask_numbers(value)
        if masked != value:
            sealed = None if vault is None else vault.seal_bytes(value)
            value = masked
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=_b64(record.key),
        value=_b64(value),
        error=DeadLetterError(
            kind=kind, detail=mask_numbers(detail[:2000].encode()).decode("utf-8", "replace")
        ),
        at=datetime.now(UTC),
        redacted=value is not record.value,
        value_sealed=_b64(sealed),
    )
