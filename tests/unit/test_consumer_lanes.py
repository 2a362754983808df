"""How a consumed batch is split into lanes (services/common/consumer.py `lanes`)."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord, TopicPartition

from services.common.consumer import MIN_LANE, Record, lanes


def _batch(sizes: list[int]) -> dict[TopicPartition, list[Record]]:
    return {
        TopicPartition("t", p): [
            ConsumerRecord("t", p, o, 0, 0, b"k", b"v", None, 1, 1, ()) for o in range(n)
        ]
        for p, n in enumerate(sizes)
    }


def test_partitions_stay_whole_and_in_order_and_lanes_are_balanced() -> None:
    batch = _batch([400, 300, 250, 200, 150, 100])
    out = lanes(batch, 2)
    assert len(out) == 2
    assert sorted(len(lane) for lane in out) == [700, 700]
    for lane in out:
        for p in {r.partition for r in lane}:
            offsets = [r.offset for r in lane if r.partition == p]
            assert offsets == list(range(len(batch[TopicPartition("t", p)])))
    assert sorted((r.partition, r.offset) for lane in out for r in lane) == sorted(
        (r.partition, r.offset) for part in batch.values() for r in part
    )


def test_small_batches_and_single_partitions_use_one_lane() -> None:
    assert len(lanes(_batch([MIN_LANE - 1, 1]), 2)) == 1
    assert len(lanes(_batch([5 * MIN_LANE]), 3)) == 1
    assert len(lanes(_batch([MIN_LANE, MIN_LANE, MIN_LANE]), 3)) == 3
    assert lanes({}, 2) == [[]]
