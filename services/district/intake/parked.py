"""Parked messages after the fact.

- A message parked while its case was opening in a concurrent transaction (another instance's
  batch) finds its case within seconds: every `adopt_every_s` the sweeper has the intake apply
  parked messages whose case exists now (`Intake.adopt`).
- A message whose case never came is dead-lettered as `unknown_case` after the configured age
  (default 7 days), original bytes and source offset kept.

Several instances may sweep at once: rows are claimed with SKIP LOCKED, each goes once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from contracts import topics
from services.common import outbox
from services.common.clock import Clock
from services.common.crypto import PhoneVault
from services.common.kafka import dead_letter
from services.common.metrics import Metrics
from services.district.intake import queries as iq
from services.district.intake.parse import FEEDS


class ParkedSweeper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        submit: Callable[[outbox.Pending], None],
        clock: Clock,
        district_code: str,
        vault: PhoneVault,
        *,
        adopt: Callable[[], Awaitable[int]] | None = None,
        max_age: timedelta = timedelta(days=7),
        batch: int = 500,
        every_s: float = 30.0,
        adopt_every_s: float = 2.0,
    ) -> None:
        self.pool, self.metrics, self.submit, self.clock = pool, metrics, submit, clock
        self.district_code, self.max_age, self.adopt = district_code, max_age, adopt
        self.vault = vault
        self.batch, self.every_s, self.adopt_every_s = batch, every_s, adopt_every_s

    async def run(self) -> None:
        next_sweep = 0.0
        while True:
            busy = self.adopt is not None and await self.adopt() > 0
            if time.monotonic() >= next_sweep:
                if await self.sweep() < self.batch:
                    next_sweep = time.monotonic() + self.every_s
                else:
                    busy = True
            if not busy:
                await asyncio.sleep(self.adopt_every_s)

    async def sweep(self) -> int:
        """One pass: dead-letter up to `batch` expired parked messages; return how many."""
        before = self.clock.now() - self.max_age
        async with self.pool.acquire() as conn, conn.transaction():
            records = await iq.take_expired(
                conn, self.district_code, before, self.batch, self.vault
            )
            detail = f"no case appeared within {self.max_age}"
            letters = [
                outbox.OutMessage.of(
                    topics.DEADLETTER,
                    (r.key or b"").decode("utf-8", "replace"),
                    dead_letter(r, "unknown_case", detail, self.vault),
                )
                for r in records
            ]
            pending = await outbox.write(conn, letters)
        for r in records:
            feed = FEEDS.get(r.topic, r.topic)
            self.metrics.deadletters.labels(feed, "unknown_case").inc()
            self.metrics.intake_messages.labels(feed, "refused").inc()
        self.submit(pending)
        return len(records)
