"""The detection round, every `every_s` seconds: the keys that saw reports and the open
hotspots are judged (`plan.decide`, pure) on the buckets they need, and what changed is
written — hotspots and their messages through the transactional outbox — in one transaction.
One instance at a time runs a district's round (an advisory lock); every instance keeps the
gauge `cityops_hotspots_open{kind,street}` fresh from the table."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Gauge

from contracts.hotspots import HotspotKind
from services.common import outbox
from services.common.clock import Clock
from services.common.metrics import Metrics
from services.district.hotspots import messages, queries
from services.district.hotspots.areas import AreaKind
from services.district.hotspots.detector import Peers, Step
from services.district.hotspots.plan import AREA_OF, Decision, Key, candidates, decide, needed
from services.district.hotspots.rules import Thresholds, WindowRule
from services.district.hotspots.stats import DAY, SHANGHAI, Series, window_count

log = logging.getLogger(__name__)

_LOCK_NAMESPACE = zlib.crc32(b"hotspots") & 0x7FFFFFFF
#: peer counts are recounted at most this often (they move slowly)
PEERS_TTL = timedelta(seconds=60)
PRUNE_EVERY = timedelta(hours=1)
#: a round waits at least this many times as long as it took before the next one
DUTY = 4.0
Buckets = tuple[dict[datetime, int], dict[datetime, int]]


class Loaded:
    """The buckets and peer counts one round reads (a `plan.Lookup`)."""

    def __init__(self, peers: Mapping[tuple[WindowRule, str], Peers]) -> None:
        self.buckets: dict[tuple[AreaKind, str, str], Buckets] = {}
        self._peers = peers

    def add(self, kind: AreaKind, rows: Iterable[asyncpg.Record]) -> None:
        for r in rows:
            hours, days = self.buckets.setdefault((kind, r["area"], r["category_code"]), ({}, {}))
            (hours if r["grain"] == "hour" else days)[r["bucket"]] = r["n"]

    def series(self, kind: AreaKind, area: str, category_code: str) -> Series:
        hours, days = self.buckets.get((kind, area, category_code), ({}, {}))
        return Series(hours, days)

    def peers(self, rule: WindowRule, category_code: str) -> Peers:
        return self._peers.get((rule, category_code), Peers())


class PeerCache:
    """Peer counts per window rule and category, recounted after `PEERS_TTL`."""

    def __init__(self) -> None:
        self.found: dict[tuple[WindowRule, str], tuple[datetime, Peers]] = {}

    async def load(
        self,
        conn: asyncpg.Connection,
        district: str,
        needs: set[tuple[WindowRule, str]],
        now: datetime,
    ) -> dict[tuple[WindowRule, str], Peers]:
        for rule, category in needs:
            hit = self.found.get((rule, category))
            if hit is None or not now - PEERS_TTL <= hit[0] <= now:
                grain, size = ("hour", timedelta(hours=1)) if rule.hourly else ("day", DAY)
                since = now - timedelta(hours=rule.hours) - 2 * size
                rows = await queries.peer_buckets(
                    conn, district, AREA_OF[rule.kind], category, grain, since
                )
                by_area: dict[str, dict[datetime, int]] = {}
                for r in rows:
                    by_area.setdefault(r["area"], {})[r["bucket"]] = r["n"]
                counts = {
                    a: window_count(
                        Series(b, {}) if rule.hourly else Series({}, b),
                        rule.hours,
                        now,
                        rule.hourly,
                    )
                    for a, b in by_area.items()
                }
                self.found[(rule, category)] = (now, Peers.of(counts))
        return {k: self.found[k][1] for k in needs}


class Detector:
    def __init__(
        self,
        pool: asyncpg.Pool,
        district: str,
        th: Thresholds,
        clock: Clock,
        metrics: Metrics,
        submit: Callable[[outbox.Pending], None],
        category_names: Mapping[str, str],
    ) -> None:
        self.pool, self.district, self.th, self.clock = pool, district, th, clock
        self.submit, self.names = submit, category_names
        self.peers = PeerCache()
        self.gauge = Gauge(
            "cityops_hotspots_open",
            "Open hotspots by kind and street (none: no street)",
            ["kind", "street"],
            registry=metrics.registry,
        )
        self._labels: set[tuple[str, str]] = set()
        self._pruned: datetime | None = None

    async def run(self) -> None:
        """A round every `every_s`; a round that took long waits `DUTY` times as long, so a
        surge of reports costs the rounds a fifth of a core, not all of it: the keys it dirties
        wait for the next round, each judged once however many reports it saw."""
        while True:
            started = time.perf_counter()
            await self.round()
            spent = time.perf_counter() - started
            await self.refresh_gauge()
            await asyncio.sleep(max(self.th.every_s, DUTY * spent))

    async def round(self) -> list[Decision]:
        """One detection round (nothing when another instance holds the district's)."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, $2)",
                _LOCK_NAMESPACE,
                zlib.crc32(self.district.encode()) & 0x7FFFFFFF,
            )
            if not locked:
                return []
            decisions = await self._decide(conn, now)
            pending = await self._write(conn, decisions, now)
            await self._prune(conn, now)
        self.submit(pending)
        return decisions

    async def _decide(self, conn: asyncpg.Connection, now: datetime) -> list[Decision]:
        dirty = await queries.take_dirty(conn, self.district)
        spots = await queries.open_spots(conn, self.district)
        keys = [s.key for s in spots] + candidates(dirty, spots)
        if not keys:
            return []
        since = await queries.counting_since(conn, self.district)
        loaded = await self._load(conn, keys, now)
        return decide(dirty, spots, loaded, now, since, self.th)

    async def _load(self, conn: asyncpg.Connection, keys: list[Key], now: datetime) -> Loaded:
        oldest = now - timedelta(hours=self.th.longest_h) - 2 * DAY
        pairs: dict[AreaKind, set[tuple[str, str]]] = {}
        needs: set[tuple[WindowRule, str]] = set()
        for key in keys:
            for kind, area in needed(key):
                pairs.setdefault(kind, set()).add((key.category_code, area))
            needs.update(
                (rule, key.category_code)
                for rule in self.th.of(key.kind)
                if rule.peer and key.kind is not HotspotKind.REPEAT
            )
        loaded = Loaded(await self.peers.load(conn, self.district, needs, now))
        for kind, wanted in pairs.items():
            rows = await queries.buckets(conn, self.district, kind, sorted(wanted), oldest)
            loaded.add(kind, rows)
        return loaded

    async def _write(
        self, conn: asyncpg.Connection, decisions: list[Decision], now: datetime
    ) -> outbox.Pending:
        rows, out = [], []
        for d in decisions:
            previous = await self._previous(conn, d)
            hotspot_id = previous["hotspot_id"] if previous else await self._new_id(conn, now)
            j, key = d.verdict.best, d.key
            reports = await queries.window_reports(conn, self.district, key, key.areas(), j.start)
            where = messages.Where.of(reports, self.th.sample_cases)
            r = messages.row(d, where, now, self.district, hotspot_id, previous)
            rows.append(r)
            out.append(messages.message(r, d.step, self.names.get(key.category_code, "")))
            log.info(
                "hotspot %s",
                d.step.value,
                extra={"hotspot_id": hotspot_id, "kind": key.kind.value, "count": j.count},
            )
        if rows:
            await queries.save(conn, rows)
        return await outbox.write(conn, out)

    async def _previous(self, conn: asyncpg.Connection, d: Decision) -> dict[str, Any] | None:
        if d.spot is None or d.step is Step.OPEN:
            return None
        found = await conn.fetchrow(
            "SELECT hotspot_id, seq, case_nos, opened_at FROM hotspots WHERE hotspot_id = $1",
            d.spot.hotspot_id,
        )
        return dict(found) if found else None

    async def _new_id(self, conn: asyncpg.Connection, now: datetime) -> str:
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        return f"HS{self.district}{day}{await queries.next_number(conn):06d}"

    async def _prune(self, conn: asyncpg.Connection, now: datetime) -> None:
        if self._pruned is not None and now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        await queries.prune(conn, self.district, now, self.th.longest_h // 24 + 2)

    async def refresh_gauge(self) -> None:
        async with self.pool.acquire() as conn:
            rows = await queries.open_gauge(conn, self.district)
        now = {(r["kind"], r["street"] or "none"): r["n"] for r in rows}
        for labels in self._labels - set(now):
            self.gauge.labels(*labels).set(0)
        for labels, n in now.items():
            self.gauge.labels(*labels).set(n)
        self._labels |= set(now)
