"""Transient vs. poison (services/common/faults.py) and how the lanes act on it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from services.common import faults
from services.common.consumer import BatchHandler, Lanes, Record
from services.common.health import Health
from services.common.metrics import Metrics
from services.common.tasks import supervised
from tests.unit.test_consumer_lanes import Commits, _batch, _run


def _pg(cls: type[asyncpg.PostgresError], message: str = "x") -> asyncpg.PostgresError:
    return cls(message)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            _pg(asyncpg.exceptions.CannotConnectNowError, "the database system is shutting down"),
            "database",
        ),
        (_pg(asyncpg.exceptions.AdminShutdownError), "database"),
        (_pg(asyncpg.exceptions.CrashShutdownError), "database"),
        (_pg(asyncpg.exceptions.QueryCanceledError, "statement timeout"), "database"),
        (_pg(asyncpg.exceptions.TooManyConnectionsError), "database"),
        (_pg(asyncpg.exceptions.ConnectionDoesNotExistError), "database"),
        (_pg(asyncpg.exceptions.SerializationError), "database"),
        (_pg(asyncpg.exceptions.DeadlockDetectedError), "database"),
        (_pg(asyncpg.exceptions.ReadOnlySQLTransactionError), "database"),
        (_pg(asyncpg.exceptions.LockNotAvailableError), "database"),
        (asyncpg.InterfaceError("connection is closed"), "database"),
        (asyncpg.exceptions.ProtocolError("lost"), "database"),
        (kafka_errors.KafkaConnectionError("refused"), "broker"),
        (kafka_errors.KafkaTimeoutError(), "broker"),
        (kafka_errors.RequestTimedOutError(), "broker"),
        (kafka_errors.NotLeaderForPartitionError(), "broker"),
        (ConnectionResetError(), "network"),
        (ConnectionRefusedError(), "network"),
        (TimeoutError(), "timeout"),
        (TimeoutError(), "timeout"),
        (faults.Transient("dependency", "postgres down"), "dependency"),
    ],
)
def test_infrastructure_errors_are_transient(error: BaseException, kind: str) -> None:
    assert faults.kind(error) == kind
    assert faults.transient(error)


@pytest.mark.parametrize(
    "error",
    [
        _pg(asyncpg.exceptions.UniqueViolationError),
        _pg(asyncpg.exceptions.NotNullViolationError),
        _pg(asyncpg.exceptions.InvalidTextRepresentationError),
        _pg(asyncpg.exceptions.UndefinedColumnError),
        asyncpg.exceptions.ClientConfigurationError("bad dsn"),
        kafka_errors.MessageSizeTooLargeError(),
        ValueError("bad input"),
        KeyError("x"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ],
)
def test_errors_of_the_work_itself_are_not(error: BaseException) -> None:
    assert faults.kind(error) is None


def test_a_group_is_transient_only_when_every_error_in_it_is() -> None:
    down = _pg(asyncpg.exceptions.AdminShutdownError)
    assert faults.kind(ExceptionGroup("g", [down, ConnectionResetError()])) == "database"
    assert faults.kind(ExceptionGroup("g", [down, ValueError()])) is None


class Flaky(BatchHandler):
    """Fails the first `outages` calls with `error`; a record in `poison_at` always fails."""

    def __init__(self, error: Exception, outages: int, poison_at: int | None = None) -> None:
        self.error, self.outages, self.poison_at = error, outages, poison_at
        self.calls: list[list[int]] = []
        self.applied: list[int] = []
        self.poisoned: list[int] = []

    async def handle(self, records: Sequence[Record]) -> None:
        offsets = [r.offset for r in records]
        self.calls.append(offsets)
        await asyncio.sleep(0)
        if self.outages > 0:
            self.outages -= 1
            raise self.error
        if self.poison_at in offsets:
            raise ValueError("cannot handle this record")
        self.applied.extend(offsets)

    async def poison(self, record: Record, error: BaseException) -> None:
        self.poisoned.append(record.offset)


async def test_a_database_shutting_down_retries_the_batch_whole_and_dead_letters_nothing() -> None:
    shutting_down = _pg(asyncpg.exceptions.CannotConnectNowError, "the database is shutting down")
    handler, commits, retried = Flaky(shutting_down, outages=3), Commits(), []
    lanes = Lanes(handler, 1, commits, max_records=100, retries=retried.append)
    await _run(lanes, _batch({0: 8}))
    assert handler.calls == [list(range(8))] * 4  # never split
    assert handler.applied == list(range(8)) and handler.poisoned == []
    assert retried == ["database"] * 3
    assert commits.last() == {0: 8}


async def test_a_record_failing_while_every_dependency_answers_is_poison_after_a_second_try() -> (
    None
):
    handler, commits = Flaky(ValueError(), outages=0, poison_at=5), Commits()
    lanes = Lanes(handler, 1, commits, max_records=100)
    await _run(lanes, _batch({0: 8}))
    assert handler.poisoned == [5]
    assert sorted(handler.applied) == [0, 1, 2, 3, 4, 6, 7]
    assert handler.calls.count([5]) == 2  # tried alone twice before it is judged
    assert commits.last() == {0: 8}


async def test_a_record_is_never_judged_while_a_dependency_is_down() -> None:
    """An unexpected error while the database does not answer is the database's: the batch is
    retried until the dependency is back, and only then is the record judged."""
    handler, commits = Flaky(ValueError(), outages=0, poison_at=2), Commits()
    probes: list[bool] = []

    async def healthy() -> bool:
        probes.append(len(probes) >= 3)  # down for the first three probes
        return probes[-1]

    lanes = Lanes(handler, 1, commits, max_records=100, healthy=healthy)
    await _run(lanes, _batch({0: 4}))
    assert probes[:4] == [False, False, False, True]
    assert handler.poisoned == [2]
    assert sorted(set(handler.applied)) == [0, 1, 3]
    assert commits.last() == {0: 4}


async def test_supervised_restarts_a_loop_after_transient_errors_and_counts_them() -> None:
    runs, counted = [], []

    async def run() -> None:
        runs.append(1)
        if len(runs) < 4:
            raise kafka_errors.KafkaConnectionError("broker away")

    await asyncio.wait_for(supervised("loop", run, counted.append), 5)
    assert len(runs) == 4 and counted == ["broker"] * 3


async def test_readiness_names_the_dependency_that_is_down_and_recovers_by_itself() -> None:
    metrics = Metrics()
    health = Health(metrics, timeout_s=0.2)
    up = {"postgres": True}

    async def postgres() -> None:
        if not up["postgres"]:
            await asyncio.sleep(10)  # frozen: never answers

    async def kafka() -> None:
        pass

    health.add("postgres", postgres)
    health.add("kafka", kafka)
    assert health.problems() == ["kafka down: not yet probed", "postgres down: not yet probed"]
    assert await health.healthy()
    assert health.problems() == []
    up["postgres"] = False
    assert not await health.healthy()
    assert health.problems() == ["postgres down: no answer within 0.2 s"]
    assert _up(metrics, "postgres") == 0
    up["postgres"] = True
    assert await health.healthy()
    assert health.problems() == []
    assert _up(metrics, "postgres") == 1


def _up(metrics: Metrics, dependency: str) -> float | None:
    return metrics.registry.get_sample_value("cityops_dependency_up", {"dependency": dependency})
