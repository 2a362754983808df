"""Outbox partitioning (services/common/outbox.py): the same partition as Kafka's producer."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from services.common.outbox import partition


def test_keys_map_to_the_partitions_kafkas_default_partitioner_picks() -> None:
    rng = random.Random(3)
    keys = [rng.randbytes(rng.randint(1, 40)) for _ in range(2000)]
    keys += [f"310106-20261128-{n:07d}".encode() for n in range(2000)]
    for parts in ([0], [0, 1, 2], list(range(12))):
        expected = [DefaultPartitioner()(k, parts, parts) for k in keys]
        assert [partition(k, parts) for k in keys] == expected
        assert [partition(k, parts) for k in keys] == expected  # remembered hashes agree


def test_a_message_without_key_goes_to_one_of_the_partitions() -> None:
    assert {partition(None, [0, 1, 2]) for _ in range(200)} == {0, 1, 2}
