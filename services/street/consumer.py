"""The street platform consumes its units' task topics into its own task list."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import asyncpg
from pydantic import ValidationError

from contracts import topics
from contracts.tasks import Task
from services.common import outbox
from services.common.consumer import BatchHandler, Record
from services.common.kafka import dead_letter
from services.common.metrics import Metrics
from services.street import queries
from services.street.desk import OUTBOX

log = logging.getLogger(__name__)


class TaskInbox(BatchHandler):
    def __init__(
        self, pool: asyncpg.Pool, metrics: Metrics, submit: Callable[[outbox.Pending], None]
    ) -> None:
        self.pool, self.metrics, self.submit = pool, metrics, submit

    async def handle(self, records: Sequence[Record]) -> None:
        tasks, dead = [], []
        for r in records:
            try:
                tasks.append(Task.model_validate_json(r.value or b""))
            except ValidationError as exc:
                dead.append(
                    self._dead_letter(r, "schema", str(exc.errors(include_url=False))[:500])
                )
        async with self.pool.acquire() as conn, conn.transaction():
            await queries.upsert_tasks(conn, tasks)
            pending = await outbox.write(conn, dead, OUTBOX)
        self.submit(pending)
        for t in tasks:
            self.metrics.intake_messages.labels("tasks", "accepted").inc()
            log.info(
                "task received",
                extra={
                    "task_id": t.task_id,
                    "case_no": t.case_no,
                    "kind": t.kind.value,
                    "unit": t.unit_code,
                },
            )
        for _ in dead:
            self.metrics.intake_messages.labels("tasks", "invalid").inc()

    async def poison(self, record: Record, error: BaseException) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            pending = await outbox.write(
                conn, [self._dead_letter(record, "internal_error", repr(error))], OUTBOX
            )
        self.submit(pending)

    @staticmethod
    def _dead_letter(record: Record, kind: str, detail: str) -> outbox.OutMessage:
        key = (record.key or b"").decode("utf-8", "replace")
        return outbox.OutMessage.of(topics.DEADLETTER, key, dead_letter(record, kind, detail))
