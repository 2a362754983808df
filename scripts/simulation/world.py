"""The district as the services run it, on a fake clock: the same intake (parse, decide,
write), the same timer worker claiming due alarms from PostgreSQL, the same case store for
operator commands. Only the Kafka edges are replaced by direct calls: inbound messages are
handed to the intake as consumer records, and the messages each transaction committed to the
outbox are handed to the simulated parties (and deleted, as the publisher would)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import asyncpg
from aiokafka.structs import ConsumerRecord

from services.common import db, outbox
from services.common.clock import FakeClock
from services.common.config import Settings
from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.cases.lifecycle import IllegalTransition
from services.district.cases.model import CaseRec, Changes
from services.district.cases.store import CaseStore, NotFound
from services.district.deadlines.policy_file import load_policy
from services.district.deadlines.timers import TimerWorker
from services.district.decisions import Decisions
from services.district.decisions.context import Context, Refused
from services.district.intake.duplicates import DuplicatePolicy
from services.district.intake.handler import Intake
from services.district.routing import queries as routing
from services.district.routing.edge import EdgePolicy, NearEdge
from services.district.routing.reference import load_csv
from simulation import queries

#: an operator's decision on one case, as the district's command routes take it
Decide = Callable[[Decisions, CaseRec, datetime, Changes], object]


async def prepare(settings: Settings) -> None:
    """Migrations and reference data, as `cityops` bootstrap does (no topics: no broker)."""
    await db.migrate(settings.database_url)
    ref = load_csv(settings.reference_dir, settings.district_code, settings.territory_geojson)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await routing.store_reference(conn, ref)
    finally:
        await conn.close()


class District:
    """The district service's decision and timer code over one database and a fake clock."""

    def __init__(
        self, pool: asyncpg.Pool, decisions: Decisions, settings: Settings, clock: FakeClock
    ) -> None:
        self.pool, self.decisions, self.clock = pool, decisions, clock
        self.published: list[outbox.OutMessage] = []
        self._sent: list[int] = []
        self.intake = Intake(
            pool,
            decisions,
            decisions.ctx.metrics,
            settings.district_code,
            on_commit=self._submit,
            clock=clock,
            duplicates=DuplicatePolicy(
                settings.merge_radius_m, timedelta(hours=settings.merge_window_h)
            ),
        )
        self.timers = TimerWorker(pool, decisions, self._submit, clock, settings.district_code)
        self.store = CaseStore(pool, self._submit)
        self._offset = 0

    @classmethod
    async def open(cls, settings: Settings, clock: FakeClock) -> District:
        """As the service's start does: reference data, the policy file, the calendar, the
        not-ours margin (a fresh phone key: nothing sealed here is read again)."""
        pool = await db.create_pool(settings.database_url, 4)
        async with pool.acquire() as conn:
            ref = await routing.load_reference(conn, settings.district_code)
        policy = load_policy(settings.deadline_policy_path, ref.categories)
        edge = EdgePolicy(settings.not_ours_margin_m, cast(NearEdge, settings.near_edge))
        vault = PhoneVault(os.urandom(32))
        ctx = Context(ref, policy.calendar(), policy, vault, Metrics(), edge)
        return cls(pool, Decisions(ctx), settings, clock)

    async def close(self) -> None:
        await self.pool.close()

    def _submit(self, pending: outbox.Pending) -> None:
        """The publisher's fast lane: the committed messages go out in commit order."""
        self.published.extend(pending.messages)
        self._sent.extend(pending.ids)

    def take_published(self) -> list[outbox.OutMessage]:
        out, self.published = self.published, []
        return out

    async def deliver(self, messages: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Inbound (topic, key, message) as one consumed batch through the intake."""
        if not messages:
            return
        stamp = int(self.clock.now().timestamp() * 1000)
        records = []
        for topic, key, message in messages:
            raw = json.dumps(message, ensure_ascii=False).encode()
            self._offset += 1
            records.append(
                ConsumerRecord(
                    topic, 0, self._offset, stamp, 0, key.encode(), raw, None, 1, len(raw), ()
                )
            )
        await self.intake.handle(records)

    async def fire_timers(self) -> None:
        """Every alarm due now, through the timer worker's claim (as many passes as it takes)."""
        while await self.timers.fire_due() >= self.timers.batch:
            pass

    async def command(self, case_no: str, decide: Decide) -> bool:
        """An operator's command on a case, as the API takes it; False when the case has
        moved on and the decision no longer applies (the API's 409/422)."""
        decisions, now = self.decisions, self.clock.now()
        try:
            await self.store.apply(case_no, lambda case, ch: decide(decisions, case, now, ch))
        except (Refused, IllegalTransition, NotFound):
            return False
        return True

    async def sweep_outbox(self) -> None:
        """Delete the rows handed out (the publisher does once Kafka has them)."""
        if self._sent:
            async with self.pool.acquire() as conn:
                await queries.delete_sent(conn, self._sent)
            self._sent = []

    async def advance(self, to: datetime) -> None:
        delta = to - self.clock.now()
        if delta > timedelta(0):
            self.clock.advance(delta)
