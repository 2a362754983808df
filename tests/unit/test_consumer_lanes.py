"""How fetched records are handled in lanes (services/common/consumer.py `Lanes`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.common.consumer import BatchHandler, Lanes, Offsets, Record


def _batch(sizes: dict[int, int], first: int = 0) -> dict[TopicPartition, list[Record]]:
    return {
        TopicPartition("t", p): [
            ConsumerRecord("t", p, o, 0, 0, b"k", b"v", None, 1, 1, ())
            for o in range(first, first + n)
        ]
        for p, n in sizes.items()
    }


class Recorder(BatchHandler):
    """Keeps every batch it is given; a batch holding `fail` raises (the record is poison)."""

    def __init__(self, fail: tuple[int, int] | None = None) -> None:
        self.batches: list[list[tuple[int, int]]] = []
        self.poisoned: list[tuple[int, int]] = []
        self.fail = fail
        self.gates: dict[int, asyncio.Event] = {}  # partition -> opened when it may go on
        self.working: set[int] = set()

    async def handle(self, records: Sequence[Record]) -> None:
        parts = {r.partition for r in records}
        assert not parts & self.working, "a partition in two lanes at once"
        self.working |= parts
        try:
            await asyncio.sleep(0)  # as a database round trip lets the other lanes run
            for p in parts:
                if p in self.gates:
                    await self.gates[p].wait()
            keys = [(r.partition, r.offset) for r in records]
            if self.fail in keys:
                raise ValueError("poison")
            self.batches.append(keys)
        finally:
            self.working -= parts

    async def poison(self, record: Record, error: BaseException) -> None:
        self.poisoned.append((record.partition, record.offset))


class Commits:
    def __init__(self) -> None:
        self.offsets: list[Offsets] = []

    async def __call__(self, offsets: Offsets) -> None:
        self.offsets.append(offsets)

    def last(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for offsets in self.offsets:
            for tp, offset in offsets.items():
                assert offset > out.get(tp.partition, -1), "a partition's offsets only grow"
                out[tp.partition] = offset
        return out


async def _run(lanes: Lanes, *batches: dict[TopicPartition, list[Record]]) -> None:
    running = asyncio.create_task(lanes.run())
    try:
        for batch in batches:
            await lanes.put(batch)
        await asyncio.wait_for(lanes.idle(), 5)
    finally:
        running.cancel()


async def test_every_record_is_handled_once_in_partition_order_then_committed() -> None:
    handler, commits = Recorder(), Commits()
    lanes = Lanes(handler, 2, commits, max_records=100)
    await _run(lanes, _batch({p: 30 for p in range(6)}), _batch({p: 30 for p in range(6)}, 30))
    handled = [key for batch in handler.batches for key in batch]
    assert sorted(handled) == [(p, o) for p in range(6) for o in range(60)]
    for p in range(6):
        assert [o for q, o in handled if q == p] == list(range(60))
    assert max(len(batch) for batch in handler.batches) <= 100  # whole partitions, a share each
    assert commits.last() == {p: 60 for p in range(6)}


async def test_a_small_batch_stays_one_transaction() -> None:
    handler, commits = Recorder(), Commits()
    lanes = Lanes(handler, 2, commits, max_records=100)
    await _run(lanes, _batch({p: 3 for p in range(6)}))
    assert len(handler.batches) == 1 and len(handler.batches[0]) == 18
    assert commits.last() == {p: 3 for p in range(6)}


async def test_a_lane_waiting_on_the_database_does_not_hold_up_the_other() -> None:
    slow, fast = 0, 1
    handler, commits = Recorder(), Commits()
    handler.gates[slow] = asyncio.Event()
    lanes = Lanes(handler, 2, commits, max_records=10)  # a lane's share: 5 records
    running = asyncio.create_task(lanes.run())
    try:
        await lanes.put(_batch({slow: 5, fast: 5}))  # one lane each
        await lanes.put(_batch({fast: 5}, 5))
        for _ in range(100):
            if commits.last().get(fast) == 10:
                break
            await asyncio.sleep(0.01)
        assert commits.last() == {fast: 10}  # the slow partition is not committed yet
        assert sorted(k for b in handler.batches for k in b) == [(fast, o) for o in range(10)]
        handler.gates[slow].set()
        await asyncio.wait_for(lanes.idle(), 5)
        assert commits.last() == {fast: 10, slow: 5}
    finally:
        running.cancel()


async def test_a_lane_holding_a_full_batch_makes_the_next_fetch_wait() -> None:
    p = 0
    handler, commits = Recorder(), Commits()
    handler.gates[p] = asyncio.Event()
    lanes = Lanes(handler, 2, commits, max_records=10)
    running = asyncio.create_task(lanes.run())
    try:
        await lanes.put(_batch({p: 10}))  # taken at once: the lane is busy with it
        await asyncio.sleep(0.01)
        await lanes.put(_batch({p: 10}, 10))  # held: the lane has 10 not yet started
        third = asyncio.create_task(lanes.put(_batch({p: 10}, 20)))
        await asyncio.sleep(0.05)
        assert not third.done()
        handler.gates[p].set()
        await asyncio.wait_for(third, 5)
        await asyncio.wait_for(lanes.idle(), 5)
        assert commits.last() == {p: 30}
    finally:
        running.cancel()


@pytest.mark.parametrize("n", [1, 2, 3])
async def test_a_poison_record_is_split_out_and_the_rest_handled(n: int) -> None:
    handler, commits = Recorder(fail=(1, 7)), Commits()
    lanes = Lanes(handler, n, commits, max_records=100)
    await _run(lanes, _batch({0: 20, 1: 20, 2: 20}))
    handled = sorted(key for batch in handler.batches for key in batch)
    expected = [(p, o) for p in range(3) for o in range(20)]
    expected.remove((1, 7))
    assert handled == expected
    assert handler.poisoned == [(1, 7)]
    assert commits.last() == {0: 20, 1: 20, 2: 20}


@pytest.mark.parametrize("seed", range(5))
async def test_many_uneven_fetches_in_three_lanes(seed: int) -> None:
    rng = random.Random(seed)
    handler, commits = Recorder(), Commits()
    lanes = Lanes(handler, 3, commits, max_records=60)
    next_offset = dict.fromkeys(range(8), 0)
    fetches = []
    for _ in range(40):
        fetch = {}
        for p in rng.sample(range(8), rng.randint(1, 8)):
            n = rng.randint(1, 25)  # consecutive offsets per partition, fetch after fetch
            fetch.update(_batch({p: n}, next_offset[p]))
            next_offset[p] += n
        fetches.append(fetch)
    await _run(lanes, *fetches)
    handled = [key for batch in handler.batches for key in batch]
    assert sorted(handled) == [(p, o) for p in range(8) for o in range(next_offset[p])]
    for p in range(8):
        assert [o for q, o in handled if q == p] == list(range(next_offset[p]))
    assert commits.last() == {p: n for p, n in next_offset.items() if n}
