"""Deadline alarms from PostgreSQL: they survive restarts (a restart after downtime fires what
fell due meanwhile), and with several instances each alarm fires once (FOR UPDATE SKIP LOCKED
on the timer rows, SKIP LOCKED on the cases: a case busy elsewhere is retried next pass)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from services.common import outbox
from services.common.clock import Clock
from services.district.cases import queries
from services.district.cases.lifecycle import TaskState
from services.district.cases.model import CaseRec, Changes, TaskRec
from services.district.cases.store import committed
from services.district.deadlines import waits
from services.district.deadlines.alarms import alarms, due
from services.district.deadlines.waits import DistrictStage
from services.district.decisions import Decisions

log = logging.getLogger(__name__)
#: how long a parked task's timer row sleeps before it looks again (unparking re-arms it)
PARKED_WAIT = timedelta(days=30)

CLAIM = """
SELECT task_id, case_no, done FROM task_timers
WHERE district_code = $1 AND next_at <= $2
ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED
"""


@dataclass
class _Pass:
    """One pass's outcome: the changes made and how each claimed timer row goes on."""

    changes: Changes = field(default_factory=Changes)
    later: list[tuple[str, datetime, list[str]]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


class TimerWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        decisions: Decisions,
        submit: Callable[[outbox.Pending], None],
        clock: Clock,
        district_code: str,
        *,
        batch: int = 500,
        every_s: float = 1.0,
    ) -> None:
        self.pool, self.decisions, self.submit, self.clock = pool, decisions, submit, clock
        self.district_code, self.batch, self.every_s = district_code, batch, every_s

    async def run(self) -> None:
        while True:
            if await self.fire_due() < self.batch:
                await asyncio.sleep(self.every_s)

    async def fire_due(self) -> int:
        """One pass: fire every alarm due now on tasks no other instance holds."""
        now, done = self.clock.now(), _Pass()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM, self.district_code, now, self.batch)
            if not rows:
                return 0
            locked = await queries.lock_cases(
                conn, {r["case_no"] for r in rows}, [], skip_locked=True
            )
            cases = {c.case_no: c for c in locked}
            for r in rows:
                case = cases.get(r["case_no"])
                if case is not None:  # else the consumer holds it right now: next pass
                    self._fire(case, r["task_id"], r["done"], now, done)
            pending = await queries.save(conn, done.changes)
            await self._reschedule(conn, done.later, done.finished)
        committed(done.changes, pending, self.submit)
        return len(rows)

    def _fire(
        self, case: CaseRec, task_id: str, fired: list[str], now: datetime, done: _Pass
    ) -> None:
        """The task's alarms due now, and when its next one falls (or that it has none)."""
        wait = waits.parse_timer(task_id)
        if wait is not None:
            self._fire_wait(case, task_id, wait, fired, now, done)
            return
        task, ctx, ch = case.task(task_id), self.decisions.ctx, done.changes
        if task is not None and task.state is TaskState.PARKED:
            # the clock stopped: the row (and the alarms it fired) waits for unparking
            done.later.append((task_id, now + PARKED_WAIT, fired))
            return
        if task is None or not task.active:
            done.finished.append(task_id)
            return
        pending = alarms(task, case.urgency, ctx.calendar, ctx.policy.warn_fraction)
        fire, mark, next_at = due(pending, fired, now)
        for alarm in fire:
            self.decisions.alarms.fire(case, task, alarm, now, ch)
            ch.after_commit.append(self._count(alarm.stage, alarm.kind))
        if next_at is None:
            done.finished.append(task.task_id)
        else:
            done.later.append((task.task_id, next_at, [*fired, *mark]))

    def _fire_wait(
        self,
        case: CaseRec,
        key: str,
        wait: tuple[DistrictStage | None, str],
        fired: list[str],
        now: datetime,
        done: _Pass,
    ) -> None:
        """A district stage's alarms due now (none once the district has decided)."""
        ctx, task = self.decisions.ctx, case.task(wait[1])
        stage, since, deadline = _waiting(case, task if wait[0] else None)
        if stage is None or since is None or deadline is None:
            done.finished.append(key)
            return
        pending = waits.wait_alarms(
            stage, since, deadline, case.urgency, ctx.calendar, ctx.policy.warn_fraction
        )
        fire, mark, next_at = due(pending, fired, now)
        for alarm in fire:
            self.decisions.alarms.district(case, stage, alarm, deadline, now, done.changes, task)
            done.changes.after_commit.append(self._count(alarm.stage, alarm.kind))
        if next_at is None:
            done.finished.append(key)
        else:
            done.later.append((key, next_at, [*fired, *mark]))

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
        metrics = self.decisions.ctx.metrics
        return lambda: metrics.timer_alarms.labels(stage, kind).inc()


def _waiting(
    case: CaseRec, task: TaskRec | None
) -> tuple[DistrictStage | None, datetime | None, datetime | None]:
    """The stage the case (or, given, its task's extension request) waits in, since, due."""
    if task is None:
        stage = DistrictStage(case.waiting_stage) if case.waiting_stage else None
        return stage, case.waiting_since, case.waiting_due
    if not task.active or task.extension_due is None:
        return None, None, None
    return DistrictStage.EXTENSION_DECISION, task.extension_requested_at, task.extension_due
