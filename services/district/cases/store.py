"""Decisions on one case as one transaction: lock, decide (pure), write, publish after commit.
Operator commands and timers go through here; the consumer batches the same steps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from services.common import outbox
from services.district.cases import queries
from services.district.cases.model import CaseRec, Changes
from services.district.intake import queries as intake_queries

T = TypeVar("T")


class NotFound(Exception):
    pass


class Duplicate(Exception):
    """The command's idempotency key was applied before: it changes nothing now."""


def committed(
    ch: Changes, pending: outbox.Pending, submit: Callable[[outbox.Pending], None]
) -> None:
    """Once the transaction that wrote `ch` has committed: the decisions' after-commit work
    (metrics move only for what is durable), then the outbox rows to the publisher."""
    for fn in ch.after_commit:
        fn()
    submit(pending)


class CaseStore:
    def __init__(self, pool: asyncpg.Pool, submit: Callable[[outbox.Pending], None]) -> None:
        self.pool, self.submit = pool, submit

    async def _run(
        self,
        work: Callable[[asyncpg.Connection, Changes], Awaitable[T]],
        token_id: str | None = None,
    ) -> T:
        """One transaction: `work` locks and decides, then the changes are written; after
        commit the metrics move and the outbox rows are handed to the publisher. `token_id`:
        the API token of an operator's command, recorded in every event it makes."""
        ch = Changes(token_id=token_id)
        async with self.pool.acquire() as conn, conn.transaction():
            result = await work(conn, ch)
            pending = await queries.save(conn, ch)
        committed(ch, pending, self.submit)
        return result

    async def apply(
        self,
        case_no: str,
        decide: Callable[[CaseRec, Changes], T],
        idempotency_key: str | None = None,
        token_id: str | None = None,
    ) -> T:
        async def work(conn: asyncpg.Connection, ch: Changes) -> T:
            if idempotency_key is not None and not await queries.claim_new_keys(
                conn, [f"op:{idempotency_key}"]
            ):
                raise Duplicate(idempotency_key)
            cases = await queries.lock_cases(conn, [case_no], [])
            if not cases:
                raise NotFound(f"no case {case_no}")
            return decide(cases[0], ch)

        return await self._run(work, token_id)

    async def apply_pair(
        self,
        case_no: str,
        other_no: str,
        decide: Callable[[CaseRec, CaseRec, Changes], T],
        token_id: str | None = None,
    ) -> T:
        """A decision on two cases at once (locked together, in case-number order)."""

        async def work(conn: asyncpg.Connection, ch: Changes) -> T:
            locked = await queries.lock_cases(conn, [case_no, other_no], [])
            found = {c.case_no: c for c in locked}
            for no in (case_no, other_no):
                if no not in found:
                    raise NotFound(f"no case {no}")
            return decide(found[case_no], found[other_no], ch)

        return await self._run(work, token_id)

    async def split(
        self,
        case_no: str,
        source_ref: str,
        decide: Callable[[CaseRec, dict[str, Any], int, Changes], T],
        token_id: str | None = None,
    ) -> T:
        """Take a merged report out of its case: `decide(case, reporter row, new case serial,
        changes)` opens its own case; both cases change in one transaction."""

        async def work(conn: asyncpg.Connection, ch: Changes) -> T:
            cases = await queries.lock_cases(conn, [case_no], [])
            if not cases:
                raise NotFound(f"no case {case_no}")
            row = await intake_queries.reporter(conn, case_no, source_ref)
            if row is None:
                raise NotFound(f"{source_ref} is not a merged report of case {case_no}")
            [serial] = await queries.next_case_numbers(conn, 1)
            return decide(cases[0], row, serial, ch)

        return await self._run(work, token_id)
