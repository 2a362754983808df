"""Decisions on one case as one transaction: lock, decide (pure), write, publish after commit.
Operator commands and timers go through here; the consumer batches the same steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import asyncpg

from services.common import outbox
from services.district import queries
from services.district.model import CaseRec, Changes

T = TypeVar("T")


class NotFound(Exception):
    pass


class Duplicate(Exception):
    """The command's idempotency key was applied before: it changes nothing now."""


class CaseStore:
    def __init__(self, pool: asyncpg.Pool, submit: Callable[[outbox.Pending], None]) -> None:
        self.pool, self.submit = pool, submit

    async def apply(
        self,
        case_no: str,
        decide: Callable[[CaseRec, Changes], T],
        idempotency_key: str | None = None,
    ) -> T:
        ch = Changes()
        async with self.pool.acquire() as conn, conn.transaction():
            if idempotency_key is not None and not await queries.claim_new_keys(
                conn, [f"op:{idempotency_key}"]
            ):
                raise Duplicate(idempotency_key)
            cases = await queries.lock_cases(conn, [case_no], [])
            if not cases:
                raise NotFound(case_no)
            result = decide(cases[0], ch)
            pending = await queries.save(conn, ch)
        for fn in ch.after_commit:
            fn()
        self.submit(pending)
        return result
