"""Deadline alarms from PostgreSQL: they survive restarts (a restart after downtime fires what
fell due meanwhile), and with several instances each alarm fires once (FOR UPDATE SKIP LOCKED
on the timer rows, SKIP LOCKED on the cases: a case busy elsewhere is retried next pass)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.common import outbox
from services.common.clock import Clock
from services.district.cases import queries
from services.district.cases.model import Changes
from services.district.deadlines.alarms import alarms, due
from services.district.decisions.operator import DistrictDesk

log = logging.getLogger(__name__)

CLAIM = """
SELECT task_id, case_no, done FROM task_timers
WHERE district_code = $1 AND next_at <= $2
ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED
"""


class TimerWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        desk: DistrictDesk,
        submit: Callable[[outbox.Pending], None],
        clock: Clock,
        district_code: str,
        *,
        batch: int = 500,
        every_s: float = 1.0,
    ) -> None:
        self.pool, self.desk, self.submit, self.clock = pool, desk, submit, clock
        self.district_code, self.batch, self.every_s = district_code, batch, every_s

    async def run(self) -> None:
        while True:
            if await self.fire_due() < self.batch:
                await asyncio.sleep(self.every_s)

    async def fire_due(self) -> int:
        """One pass: fire every alarm due now on tasks no other instance holds."""
        now, ch = self.clock.now(), Changes()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM, self.district_code, now, self.batch)
            if not rows:
                return 0
            cases = {
                c.case_no: c
                for c in await queries.lock_cases(
                    conn, {r["case_no"] for r in rows}, [], skip_locked=True
                )
            }
            later: list[tuple[str, datetime, list[str]]] = []
            finished: list[str] = []
            for r in rows:
                case = cases.get(r["case_no"])
                if case is None:
                    continue  # the consumer holds it right now: next pass
                task = case.task(r["task_id"])
                if task is None or not task.active:
                    finished.append(r["task_id"])
                    continue
                pending = alarms(
                    task, case.urgency, self.desk.ctx.calendar, self.desk.ctx.policy.warn_fraction
                )
                fire, mark, next_at = due(pending, r["done"], now)
                for alarm in fire:
                    self.desk.alarm(case, task, alarm, now, ch)
                    ch.after_commit.append(self._count(alarm.stage, alarm.kind))
                if next_at is None:
                    finished.append(task.task_id)
                else:
                    later.append((task.task_id, next_at, [*r["done"], *mark]))
            pending_out = await queries.save(conn, ch)
            await self._reschedule(conn, later, finished)
        for fn in ch.after_commit:
            fn()
        self.submit(pending_out)
        return len(rows)

    async def _reschedule(
        self,
        conn: asyncpg.Connection,
        later: list[tuple[str, datetime, list[str]]],
        finished: list[str],
    ) -> None:
        if later:
            await conn.executemany(
                "UPDATE task_timers SET next_at = $2, done = $3 WHERE task_id = $1", later
            )
        if finished:
            await conn.execute("DELETE FROM task_timers WHERE task_id = ANY($1::text[])", finished)

    def _count(self, stage: str, kind: str) -> Callable[[], None]:
        return lambda: self.desk.m.timer_alarms.labels(stage, kind).inc()
