"""The district's intake: one transaction per consumed batch, every effect exactly once."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import asyncpg

from contracts import topics
from contracts.hotline import Feedback, OrderAction, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import TaskFeedback
from services.common import outbox
from services.common.clock import Clock
from services.common.consumer import BatchHandler, Record
from services.common.kafka import dead_letter
from services.common.metrics import Metrics
from services.district.cases import queries
from services.district.cases.lifecycle import IllegalTransition
from services.district.cases.model import (
    CaseRec,
    case_number,
    lookup_key,
    source_of,
)
from services.district.cases.store import committed
from services.district.decisions import Decisions
from services.district.decisions.context import Refused
from services.district.intake import queries as iq
from services.district.intake.batch import WorkingSet
from services.district.intake.duplicates import DuplicatePolicy, find_duplicate, probe
from services.district.intake.parse import FEEDS, Command, Invalid, parse

log = logging.getLogger(__name__)


class Intake(BatchHandler):
    def __init__(
        self,
        pool: asyncpg.Pool,
        decisions: Decisions,
        metrics: Metrics,
        district_code: str,
        on_commit: Callable[[outbox.Pending], None] = lambda _: None,
        clock: Clock | None = None,
        duplicates: DuplicatePolicy | None = None,
    ) -> None:
        self.pool, self.decisions, self.metrics = pool, decisions, metrics
        self.district_code, self.on_commit = district_code, on_commit
        self.clock = clock or Clock()
        self.duplicates = duplicates or DuplicatePolicy()

    async def handle(self, records: Sequence[Record]) -> None:
        """One transaction for the batch: parse, read, decide, write; after commit, publish."""
        now = self.clock.now()
        batch = WorkingSet()
        commands = self.parse(batch, records, now)
        async with self.pool.acquire() as conn, conn.transaction():
            todo = await self.prepare(conn, batch, commands, now)
            self.decide(batch, todo, now)
            pending = await self.write(conn, batch)
        self.committed(batch, pending)

    # -- the steps of `handle`, public for whoever drives them apart (scripts/bench) ------------

    def parse(
        self, batch: WorkingSet, records: Sequence[Record], now: datetime
    ) -> list[tuple[Record, Command]]:
        """Validate each record at the boundary; an invalid one is dead-lettered."""
        commands: list[tuple[Record, Command]] = []
        for record in records:
            try:
                commands.append((record, parse(record, now)))
            except Invalid as exc:
                self._dead(batch, record, exc.kind, exc.detail, "invalid")
        return commands

    async def prepare(
        self,
        conn: asyncpg.Connection,
        batch: WorkingSet,
        commands: list[tuple[Record, Command]],
        now: datetime,
    ) -> list[tuple[Record, Command]]:
        """The batch's reads: claim the idempotency keys (a repeat is a duplicate; an opening
        claims none: its case, unique by source reference, is its key, and a refused one is
        recorded by `write`), lock the cases the rest touch, reserve the numbers of the cases
        they open (`batch.numbers`) and take what was parked for those; return the commands to
        decide."""
        fresh = await queries.claim_or_seen(
            conn,
            [c.key for _, c in commands if not c.opens_case],
            [c.key for _, c in commands if c.opens_case],
        )
        todo = []
        for record, cmd in commands:
            if cmd.key in fresh:
                fresh.discard(cmd.key)  # a repeat inside the batch is a duplicate too
                todo.append((record, cmd))
            else:
                batch.outcomes.append((cmd.feed, "duplicate"))
        await self._load(conn, batch, [c for _, c in todo], now)
        reserved = await queries.next_case_numbers(conn, sum(c.opens_case for _, c in todo))
        batch.parked_before = await iq.parked_for(
            conn,
            [lookup_key(c.case_lookup()) for _, c in todo if c.opens_case]
            + [case_number(self.district_code, n, now) for n in reserved],
            self.decisions.ctx.vault,
        )
        batch.numbers = iter(reserved)
        return todo

    def decide(self, batch: WorkingSet, todo: list[tuple[Record, Command]], now: datetime) -> None:
        """Apply each command to the batch's cases in memory (pure); what waited for a case
        it opens follows it."""
        for record, cmd in todo:
            self._apply(batch, record, cmd, now, batch.numbers)
            if cmd.opens_case:
                self._unpark(batch, cmd, now, batch.numbers)

    async def write(self, conn: asyncpg.Connection, batch: WorkingSet) -> outbox.Pending:
        """Everything the batch decided, in one statement (and the keys of refused openings,
        which leave no case to say they were handled)."""
        if batch.refused:
            await queries.claim_new_keys(conn, batch.refused)
        return await queries.save(conn, batch.changes)

    def committed(self, batch: WorkingSet, pending: outbox.Pending) -> None:
        """After commit: the outcomes counted, the after-commit work, the outbox published."""
        for (feed, outcome), n in Counter(batch.outcomes).items():
            self.metrics.intake_messages.labels(feed, outcome).inc(n)
        committed(batch.changes, pending, self.on_commit)

    async def adopt(self, older_than: timedelta, limit: int = 500) -> int:
        """Apply parked messages whose case exists after all: it opened in a transaction that
        ran alongside the one that parked them (another instance's batch), so neither saw the
        other. Cases another transaction holds are left for the next pass. Returns how many
        were applied or dead-lettered."""
        now = self.clock.now()
        batch = WorkingSet()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await iq.orphans(
                conn, self.district_code, now - older_than, limit, self.decisions.ctx.vault
            )
            parsed: list[tuple[int, Record, Command]] = []
            for row_id, record in rows:
                try:
                    parsed.append((row_id, record, parse(record, now)))
                except Invalid as exc:  # cannot happen for a message parsed before; kept safe
                    batch.changes.unparked.append(row_id)
                    self._dead(batch, record, exc.kind, exc.detail, "invalid")
            cmds = [cmd for _, _, cmd in parsed]
            await self._load(conn, batch, cmds, now, skip_locked=True)
            for row_id, record, cmd in parsed:
                if batch.find(cmd.case_lookup()) is not None:
                    batch.changes.unparked.append(row_id)
                    self._apply(batch, record, cmd, now, iter(()))
            pending = await queries.save(conn, batch.changes)
        self.committed(batch, pending)
        return len(batch.changes.unparked)

    async def poison(self, record: Record, error: BaseException) -> None:
        batch = WorkingSet()
        self._dead(batch, record, "internal_error", repr(error), "invalid")
        async with self.pool.acquire() as conn, conn.transaction():
            pending = await outbox.write(conn, batch.changes.outbox)
        self.committed(batch, pending)

    async def _load(
        self,
        conn: asyncpg.Connection,
        batch: WorkingSet,
        cmds: list[Command],
        now: datetime,
        *,
        skip_locked: bool = False,
    ) -> None:
        """Lock the cases the batch touches: by number, by reference (a merged report's too),
        and the open cases new reports may duplicate (one query each for the whole batch)."""
        lookups = [c.case_lookup() for c in cmds]
        refs = [x for x in lookups if not isinstance(x, str)]
        joined = await iq.reporter_cases(conn, refs)
        nearby: list[str] = []
        if self.duplicates.enabled:
            probes = [
                probe(*key, self.duplicates.radius_m)
                for c in cmds
                if c.opens_case and (key := self._duplicate_key(c)) is not None
            ]
            since = now - self.duplicates.window
            nearby = await iq.nearby_open_cases(
                conn, self.district_code, probes, since, self.duplicates.radius_m
            )
        numbers = [x for x in lookups if isinstance(x, str)]
        found = await queries.lock_cases(
            conn, [*numbers, *joined.values(), *nearby], refs, skip_locked=skip_locked
        )
        for case in found:
            batch.add(case)
        for ref, case_no in joined.items():
            if case_no in batch.by_no:  # (a case skipped as locked is not in the batch)
                batch.by_ref[ref] = batch.by_no[case_no]

    def _duplicate_key(self, cmd: Command) -> tuple[str, float, float] | None:
        assert isinstance(cmd.message, WorkOrder | Report)
        return self.decisions.merging.duplicate_key(cmd.message)

    def _unpark(
        self, batch: WorkingSet, opener: Command, now: datetime, numbers: Iterator[int]
    ) -> None:
        """The case `opener` opened (or joined) is known now: apply what waited for it, in the
        order it arrived."""
        case = batch.find(opener.case_lookup())
        if case is None:
            return
        waiting: list[tuple[Record, Command | None]] = []
        for key in dict.fromkeys((lookup_key(opener.case_lookup()), case.case_no)):
            for row_id, record in batch.parked_before.pop(key, []):
                batch.changes.unparked.append(row_id)
                waiting.append((record, None))
            for parked, record, cmd in batch.parked_now.pop(key, []):
                batch.changes.parked.remove(parked)
                waiting.append((record, cmd))
        for record, maybe in waiting:
            try:
                cmd = maybe or parse(record, now)
            except Invalid as exc:
                self._dead(batch, record, exc.kind, exc.detail, "invalid")
                continue
            self._apply(batch, record, cmd, now, numbers)

    def _park(self, batch: WorkingSet, record: Record, cmd: Command, now: datetime) -> None:
        """No case yet for this action: keep it until its case opens (or it expires)."""
        lookup = lookup_key(cmd.case_lookup())
        parked = iq.park_record(self.district_code, lookup, record, now, self.decisions.ctx.vault)
        batch.changes.parked.append(parked)
        batch.parked_now.setdefault(lookup, []).append((parked, record, cmd))
        batch.outcomes.append((cmd.feed, "parked"))
        log.info(
            "parked",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )

    def _apply(
        self, batch: WorkingSet, record: Record, cmd: Command, now: datetime, numbers: Iterator[int]
    ) -> None:
        """Decide one command; refused or parked, it leaves nothing but that outcome."""
        ch = batch.changes
        case = batch.find(cmd.case_lookup())
        sp = ch.savepoint(*([case] if case is not None else []))
        try:
            outcome = self._decide(batch, cmd, case, now, numbers)
        except (Refused, IllegalTransition) as exc:
            ch.rollback(sp)
            self._dead(batch, record, "refused", str(exc), "refused")
            if cmd.opens_case:
                batch.refused.append(cmd.key)
            return
        except _Unknown:
            ch.rollback(sp)
            self._park(batch, record, cmd, now)
            return
        batch.outcomes.append((cmd.feed, outcome))

    def _decide(
        self,
        batch: WorkingSet,
        cmd: Command,
        case: CaseRec | None,
        now: datetime,
        numbers: Iterator[int],
    ) -> str:
        m, d, ch = cmd.message, self.decisions, batch.changes
        if cmd.opens_case:
            if case is not None:
                return "duplicate"  # the same order or report dispatched again
            assert isinstance(m, WorkOrder | Report)
            same = self._duplicate_of(batch, cmd, now)
            if same is not None:
                d.merging.join_report(same, m, now, ch)
                batch.by_ref[source_of(m)] = same
                return "accepted"
            case_no = self._case_no(next(numbers), now)
            if isinstance(m, Report):
                case = d.opening.open_report(m, case_no, now, cmd.origin_ms, ch)
            else:
                assert isinstance(m, WorkOrder)
                case = d.opening.open_order(m, case_no, now, cmd.origin_ms, ch)
            batch.add(case)
            return "out_of_district" if case.state == "not_ours" else "accepted"
        if case is None:
            raise _Unknown(f"no case for {cmd.case_lookup()}")
        if isinstance(m, TaskFeedback):
            d.feedback.apply(case, m, now, ch)
        elif isinstance(m, Feedback):
            d.upstream.followup(case, m, now, ch)
        else:
            assert isinstance(m, WorkOrder) and m.action is not OrderAction.DISPATCH
            if not d.upstream.order_action(case, m, now, ch):
                return "stale"
        return "accepted"

    def _duplicate_of(self, batch: WorkingSet, cmd: Command, now: datetime) -> CaseRec | None:
        key = self._duplicate_key(cmd) if self.duplicates.enabled else None
        if key is None:
            return None
        category, lon, lat = key
        candidates = batch.by_category.get(category, ())
        return find_duplicate(
            candidates, self.district_code, category, lon, lat, now, self.duplicates
        )

    def _case_no(self, n: int, now: datetime) -> str:
        return case_number(self.district_code, n, now)

    def _dead(
        self, batch: WorkingSet, record: Record, kind: str, detail: str, outcome: str
    ) -> None:
        feed = FEEDS.get(record.topic, record.topic)
        letter = dead_letter(record, kind, detail, self.decisions.ctx.vault)
        key = (record.key or b"").decode("utf-8", "replace")
        batch.changes.outbox.append(outbox.OutMessage.of(topics.DEADLETTER, key, letter))
        batch.outcomes.append((feed, outcome))
        self.metrics.deadletters.labels(feed, kind)  # create the series; counted after commit
        batch.changes.after_commit.append(lambda: self.metrics.deadletters.labels(feed, kind).inc())
        log.info(
            "dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "kind": kind,
            },
        )


class _Unknown(Exception):
    pass
