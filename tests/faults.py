"""Fault-injection harness: a steady 12345 load against the district and street services running
as their own processes, a PostgreSQL and a broker the harness owns, and the checks made after a
fault (nothing lost, duplicated or dead-lettered, no stuck partition, timers firing, ready again).

`Rig.up` gives one test its database (cloned from a migrated template, then bootstrapped like
production), a fresh broker (optionally behind a `TcpProxy` that can cut every connection), and
both services (`python -m services.ops.cli district` / `street`) logging to files in the test's
temporary directory. `Rig.ride_through` runs the load, injects the fault, ends it, and checks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from contracts import topics
from services.common.config import ROOT, Settings
from services.devstack import EmbeddedKafka, EmbeddedPostgres, free_port
from services.ops.bootstrap import bootstrap
from tests.support import lagging_partitions, wait_until

sys.path.insert(0, str(ROOT / "scripts"))
from feedgen import FeedGenerator

#: the load: orders per second, seconds before the fault, seconds after it ended
RATE = 100.0
LOAD_BEFORE_S = 10.0
LOAD_AFTER_S = 3.0
#: /readyz must be back to 200 this soon after the fault ended
READY_WITHIN_S = 10.0
#: how long the checks wait for the system to settle once the load has stopped
DRAIN_S = 60.0
SETTLE_S = 20.0
#: task timers moved into the past to see the timer worker take them
TIMERS_PROBED = 20


# --- the broker behind a proxy ------------------------------------------------------------------


class TcpProxy:
    """A TCP proxy on a loopback port in front of `target`. `cut()` aborts every live connection
    and refuses new ones (the listening socket is closed); `restore()` listens again."""

    def __init__(self, target_port: int, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.target_port = host, port or free_port(), target_port
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()
        self.accepted = 0
        self.cuts = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )

    async def cut(self) -> None:
        """Every connection dropped (RST), new ones refused, until `restore`."""
        self.cuts += 1
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        if self._links:  # each ends once its aborted sockets have noticed (never cancelled:
            await asyncio.wait(set(self._links), timeout=5)  # asyncio logs that as an error)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self._transports.add(writer.transport)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
            except OSError:
                return
            if self._server is None:  # cut meanwhile
                up_writer.transport.abort()
                return
            self._transports.add(up_writer.transport)
            self.accepted += 1
            pumps = [
                asyncio.create_task(_pump(reader, up_writer)),
                asyncio.create_task(_pump(up_reader, writer)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                up_writer.transport.abort()
                self._transports.discard(up_writer.transport)
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)
            self._links.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


# --- the load -----------------------------------------------------------------------------------


class Load:
    """12345 work orders offered at `rate` per second, keyed by order_no. A send the broker does
    not acknowledge is sent again until it is (a repeat the broker did keep must be absorbed by
    the district's idempotency: still one case per order)."""

    def __init__(self, bootstrap: str, gen: FeedGenerator, rate: float = RATE) -> None:
        self.bootstrap, self.gen, self.rate = bootstrap, gen, rate
        self.offered: list[str] = []
        self.acked = 0
        self.resent = 0
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=5,
            request_timeout_ms=3000,
            retry_backoff_ms=100,
        )
        self._pending: set[asyncio.Task[None]] = set()
        self._running = False
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._producer.start()
        self._running = True
        self._ticker = asyncio.create_task(self._offer())

    async def stop(self, timeout: float = 60.0) -> int:
        """Offer no more; wait until the broker has acknowledged every order offered. Returns
        how many it has not acknowledged within `timeout` (given up)."""
        self._running = False
        if self._ticker is not None:
            await self._ticker
        try:
            if self._pending:
                await asyncio.wait(set(self._pending), timeout=timeout)
            unacked = len(self._pending)
            for task in list(self._pending):
                task.cancel()
            await asyncio.gather(*self._pending, return_exceptions=True)
        finally:
            await self._producer.stop()
        return unacked

    async def _offer(self) -> None:
        started, n = time.monotonic(), 0
        while self._running:
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # the loop was held up: do not burst to catch up
                started = time.monotonic() - n / self.rate
            order = self.gen.work_order(datetime.now(UTC))
            self.offered.append(order["order_no"])
            task = asyncio.create_task(self._deliver(order))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            n += 1

    async def _deliver(self, order: dict[str, Any]) -> None:
        key, value = order["order_no"].encode(), json.dumps(order, ensure_ascii=False).encode()
        while True:
            try:
                await self._producer.send_and_wait(topics.WORKORDERS, value, key=key)
                self.acked += 1
                return
            except (KafkaError, OSError):
                self.resent += 1
                await asyncio.sleep(0.2)


# --- the services as processes ------------------------------------------------------------------


def _death_signal() -> Callable[[], None] | None:
    """For the child, resolved before any fork: SIGKILL it when the test process dies, so no
    service outlives a crashed run (PR_SET_PDEATHSIG; Linux)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)


_DIE_WITH_PARENT = _death_signal()


class ServiceProc:
    """`python -m services.ops.cli <name>` with its stdout and stderr appended to `log`."""

    def __init__(self, name: str, env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.env, self.port, self.log = name, env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} at {datetime.now(UTC).isoformat()}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.ops.cli", self.name],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_DIE_WITH_PARENT,
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, no goodbye to the group."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    async def readyz(self, session: aiohttp.ClientSession) -> tuple[int, str]:
        """(status, body) of /readyz; (0, why) when it does not answer within a second."""
        try:
            async with asyncio.timeout(1.0), session.get(self.url + "/readyz") as r:
                return r.status, await r.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return 0, type(exc).__name__

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def entries(self) -> list[dict[str, Any]]:
        """The log's JSON lines (other lines as {"raw": line})."""
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        out: list[dict[str, Any]] = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                if line.strip() and not line.startswith("--- start"):
                    out.append({"raw": line.strip()})
                continue
            out.append(entry if isinstance(entry, dict) else {"raw": line.strip()})
        return out

    def digest(self, top: int = 12) -> str:
        """The most frequent (level, message, error) of the log, most frequent first."""
        counts: Counter[str] = Counter()
        for entry in self.entries():
            if "raw" in entry:
                counts[f"(raw) {entry['raw'][:120]}"] += 1
                continue
            msg = str(entry.get("msg", "")).split("\n", 1)[0]
            err = entry.get("error") or _last_error(str(entry.get("exc") or ""))
            counts[f"{entry.get('level')}: {msg}  {str(err)[:160]}".rstrip()] += 1
        return "\n".join(f"{n:6d}  {what}" for what, n in counts.most_common(top))

    def dead_letters_logged(self) -> int:
        """Records the service logged as dead-lettered (`poison message dead-lettered`), even
        if writing the dead letter then failed."""
        return sum("dead-letter" in str(e.get("msg", "")) for e in self.entries())


def _last_error(trace: str) -> str:
    """The exception line of a formatted traceback (exception groups included)."""
    for line in reversed(trace.splitlines()):
        line = line.strip(" |+-")
        if line and not line.startswith(("File ", "Traceback", "^", "~")) and ":" in line:
            return line
    return ""


# --- readiness ----------------------------------------------------------------------------------


class ReadyWatch:
    """Polls both services' /readyz from before the fault until told to stop; remembers what
    they said while the fault lasted and, per service, since when it has answered 200 without a
    break. `ready_after(recovered_at)`: seconds from the fault's end to the moment from which
    every service stayed ready (None: one of them is not ready now)."""

    def __init__(self, services: Iterable[ServiceProc], every: float = 0.1) -> None:
        self.services, self.every = list(services), every
        self.since: dict[str, float | None] = {s.name: None for s in self.services}
        self.seen: dict[str, Counter[str]] = {s.name: Counter() for s in self.services}
        self.all_ready = asyncio.Event()  # set while every service answers 200
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                answers = await asyncio.gather(*(s.readyz(session) for s in self.services))
                now = time.monotonic()
                for service, (status, body) in zip(self.services, answers, strict=True):
                    if status == 200:
                        if self.since[service.name] is None:
                            self.since[service.name] = now
                    else:
                        self.since[service.name] = None
                        self.seen[service.name][f"{status} {body[:160]}"] += 1
                if all(since is not None for since in self.since.values()):
                    self.all_ready.set()
                else:
                    self.all_ready.clear()
                await asyncio.sleep(self.every)

    def ready_after(self, recovered_at: float) -> tuple[float | None, dict[str, float | None]]:
        each = {
            name: None if since is None else max(since - recovered_at, 0.0)
            for name, since in self.since.items()
        }
        values = list(each.values())
        if any(v is None for v in values):
            return None, each
        return max(v for v in values if v is not None), each


# --- what a fault left behind -------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    offered: int = 0
    lost: int = 0
    duplicated: int = 0
    dead_lettered: int = 0
    #: records the services logged as dead-lettered (whether or not the letter got written)
    dead_letters_logged: int = 0
    ready_s: float | None = None
    ready_s_by_service: dict[str, float | None] = field(default_factory=dict)
    fault_s: float = 0.0
    resent: int = 0
    tasks: int = 0
    tasks_published: int = 0
    tasks_stored: int = 0
    timers_probed: int = 0
    timers_fired: int = 0
    not_ready_answers: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        ready = "never" if self.ready_s is None else f"{self.ready_s:.2f}s"
        return (
            f"FAULT {self.fault}: offered={self.offered} lost={self.lost}"
            f" duplicated={self.duplicated} wrongly_dead_lettered={self.dead_lettered}"
            f" recovery_to_ready={ready} (fault {self.fault_s:.1f}s, resent {self.resent},"
            f" dead letters logged {self.dead_letters_logged},"
            f" tasks {self.tasks}/published {self.tasks_published}/stored {self.tasks_stored},"
            f" timers fired {self.timers_fired}/{self.timers_probed})"
            + ("" if not self.failures else f" FAILED: {len(self.failures)} check(s)")
        )

    def report(self) -> None:
        print(self.line(), flush=True)
        path = os.environ.get("CITYOPS_FAULT_REPORT")
        if path:
            entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **asdict(self)}
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")


async def read_topics(bootstrap: str, names: Iterable[str]) -> list[tuple[str, bytes]]:
    """Every record so far on the topics (that exist), as (topic, value)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in sorted(set(names))
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[str, bytes]] = []
        async with asyncio.timeout(60):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
                for tp, records in batch.items():
                    out.extend((tp.topic, r.value or b"") for r in records)
        return out
    finally:
        await consumer.stop()


# --- one test's world ---------------------------------------------------------------------------


Step = Callable[[], Awaitable[object]]


class Rig:
    def __init__(
        self,
        name: str,
        settings: Settings,
        kafka: EmbeddedKafka,
        proxy: TcpProxy | None,
        district: ServiceProc,
        street: ServiceProc,
    ) -> None:
        self.name, self.settings, self.kafka, self.proxy = name, settings, kafka, proxy
        self.district, self.street = district, street
        self.services = [district, street]

    @classmethod
    @contextlib.asynccontextmanager
    async def up(
        cls,
        pg: EmbeddedPostgres,
        template: str,
        tmp_path: Path,
        *,
        proxied: bool = False,
        reap: list[Callable[[], None]] | None = None,
    ) -> AsyncIterator[Rig]:
        """A fresh database and broker, both services started and ready (if they do not get
        ready, the tail of their logs is printed); everything stopped on the way out."""
        name = f"f_{uuid.uuid4().hex[:10]}"
        reap = reap if reap is not None else []
        proxy = TcpProxy(0) if proxied else None
        kafka = EmbeddedKafka(advertised_port=proxy.port if proxy else None)
        reap.append(kafka.stop)
        started: list[ServiceProc] = []
        try:
            if proxy is not None:
                proxy.target_port = kafka.port
                await proxy.start()
            dsn = await _create_database(pg, name, template)
            settings = replace(
                Settings(),
                database_url=dsn,
                kafka_bootstrap=kafka.bootstrap,
                http_host="127.0.0.1",
                fetch_max_wait_ms=10,
                session_timeout_ms=2000,
                phone_key="",
                phone_key_file=str(tmp_path / "phone.key"),
                group_prefix=f"fault-{name}",
                reference_dir=ROOT / "deploy" / "reference",
                merge_radius_m=0,
            )
            await bootstrap(settings)
            env = _service_env(settings)
            for svc in ("district", "street"):
                port = free_port()
                proc = ServiceProc(
                    svc,
                    {**env, f"CITYOPS_{svc.upper()}_PORT": str(port)},
                    port,
                    tmp_path / f"{svc}.log",
                )
                proc.start()
                started.append(proc)
                reap.append(proc.kill)
            rig = cls(name, settings, kafka, proxy, started[0], started[1])
            try:
                await rig.wait_ready(60)
            except BaseException:
                rig.print_logs()
                raise
            yield rig
        finally:
            for proc in started:
                proc.stop()
            if proxy is not None:
                await proxy.close()
            kafka.stop()
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await _drop_database(pg, name)

    # -- observing

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """One query on a connection of its own (a restart drops every connection)."""
        conn = await asyncpg.connect(self.settings.database_url, timeout=5)
        try:
            return list(await conn.fetch(sql, *args, timeout=10))
        finally:
            await conn.close(timeout=5)

    async def fetchval(self, sql: str, *args: object) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def wait_ready(self, timeout: float) -> None:
        async with aiohttp.ClientSession() as session:

            async def all_ready() -> bool:
                for s in self.services:
                    if s.exited is not None:
                        raise AssertionError(f"{s.name} exited with {s.exited}:\n{s.tail()}")
                answers = [await s.readyz(session) for s in self.services]
                return all(status == 200 for status, _ in answers)

            await wait_until(all_ready, "both services ready", timeout, every=0.2)

    def print_logs(self, lines: int = 40) -> None:
        for s in self.services:
            print(f"\n===== {s.name} log: most frequent lines ({s.log}) =====\n{s.digest()}")
            print(f"----- {s.name} log: last {lines} lines -----\n{s.tail(lines)}", flush=True)

    # -- the fault

    async def ride_through(
        self,
        fault: str,
        inject: Step,
        end: Step | None = None,
        hold_s: float = 0.0,
        noticed: str | None = None,
    ) -> Outcome:
        """Load for LOAD_BEFORE_S, `inject`, hold the fault `hold_s`, `end` it, load for
        LOAD_AFTER_S more, stop the load, then check everything (see `check`); with `noticed`,
        also that every service's /readyz named that dependency down while the fault lasted.
        Prints the summary line and raises AssertionError listing every check that failed."""
        try:
            return await self._ride_through(fault, inject, end, hold_s, noticed)
        except BaseException:  # a failed check, a timeout: show what the services said
            self.print_logs()
            raise

    async def _ride_through(
        self, fault: str, inject: Step, end: Step | None, hold_s: float, noticed: str | None
    ) -> Outcome:
        gen = FeedGenerator(12345, prefix="912")  # a fresh database per test: no clash
        load = Load(self.settings.kafka_bootstrap, gen)
        watch = ReadyWatch(self.services)
        outcome = Outcome(fault)
        recovered_at = 0.0
        await load.start()
        try:
            await asyncio.sleep(LOAD_BEFORE_S)  # steady load before the fault (proves nothing)
            await wait_until(
                lambda: self.fetchval("SELECT count(*) > 0 FROM cases"),
                "cases made before the fault",
                timeout=30,
                every=0.25,
            )
            watch.start()
            began = time.monotonic()
            try:
                await inject()
                if hold_s:
                    await asyncio.sleep(hold_s)  # the fault lasts this long
            finally:  # ended whatever happens: a frozen server would hang every later test
                recovered_at = time.monotonic()  # the fault ends as `end` begins
                if end is not None:
                    await end()
            outcome.fault_s = recovered_at - began
            await asyncio.sleep(LOAD_AFTER_S)  # the load goes on after the fault
        finally:
            unacked = await load.stop()
        outcome.offered, outcome.resent = len(load.offered), load.resent
        if unacked:
            outcome.failures.append(f"the broker never acknowledged {unacked} offered orders")
        try:
            await self.check(outcome, load.offered, watch, recovered_at)
        finally:
            await watch.stop()
            outcome.not_ready_answers = {k: dict(v) for k, v in watch.seen.items() if v}
        if noticed is not None:
            for service, answers in watch.seen.items():
                if not any(f"{noticed} down" in answer for answer in answers):
                    outcome.failures.append(
                        f"{service}'s /readyz never said {noticed} was down during the fault"
                    )
        outcome.report()
        if outcome.failures:
            raise AssertionError(
                f"{fault}: " + "\n  ".join(outcome.failures) + f"\n{outcome.line()}"
            )
        return outcome

    # -- the checks

    async def check(
        self, outcome: Outcome, offered: list[str], watch: ReadyWatch, recovered_at: float
    ) -> None:
        """Every order offered has exactly one case; nothing was dead-lettered; every
        dispatched task is on its unit's topic and stored by the street service, and both
        consumer groups have committed every partition to its end; due timers are taken; both
        services have been ready since within READY_WITHIN_S of the fault's end."""
        fails = outcome.failures
        want = set(offered)

        async def applied() -> bool:
            distinct = await self.fetchval("SELECT count(DISTINCT source_ref) FROM cases")
            return bool(distinct >= len(want))

        drained = await _holds(applied, "a case for every order offered", DRAIN_S, fails)
        total, distinct = (
            await self.fetch("SELECT count(*), count(DISTINCT source_ref) FROM cases")
        )[0]
        refs = {r[0] for r in await self.fetch("SELECT DISTINCT source_ref FROM cases")}
        missing = want - refs
        outcome.lost, outcome.duplicated = len(missing), total - distinct
        if missing:
            fails.append(
                f"{len(missing)} of {len(want)} orders have no case (e.g. {sorted(missing)[:3]})"
            )
        if total != distinct:
            dups = await self.fetch(
                "SELECT source_ref, count(*) FROM cases GROUP BY 1 HAVING count(*) > 1 LIMIT 3"
            )
            fails.append(f"{total - distinct} duplicated cases (e.g. {[tuple(r) for r in dups]})")
        if refs - want:
            fails.append(f"{len(refs - want)} cases for orders never offered")

        # readiness: both back to 200 within READY_WITHIN_S of the end of the fault, and still
        patience = SETTLE_S if drained else 2.0
        allowed = recovered_at + READY_WITHIN_S + 0.5 - time.monotonic()
        with contextlib.suppress(TimeoutError):  # (only while the time allowed has not run out)
            async with asyncio.timeout(max(allowed, 0.0)):
                await watch.all_ready.wait()
        outcome.ready_s, outcome.ready_s_by_service = watch.ready_after(recovered_at)
        if outcome.ready_s is None or outcome.ready_s > READY_WITHIN_S:
            fails.append(
                f"/readyz not back to 200 within {READY_WITHIN_S}s of recovery"
                f" (seconds per service: {outcome.ready_s_by_service};"
                f" answers seen: { {k: dict(v.most_common(3)) for k, v in watch.seen.items()} })"
            )

        # dead letters: on the topic, or still waiting in an outbox
        letters = await self._dead_letters()
        outcome.dead_lettered = len(letters)
        outcome.dead_letters_logged = sum(s.dead_letters_logged() for s in self.services)
        if outcome.dead_letters_logged:  # every record offered is valid: none is poison
            fails.append(
                f"{outcome.dead_letters_logged} valid records handled as poison (logged as"
                " dead-lettered, whether or not the letter was written)"
            )
        if letters:
            fails.append(f"{len(letters)} valid messages dead-lettered (e.g. {letters[:2]})")

        # no stuck partition: dispatched tasks published, stored by the street, offsets committed
        await self._check_tasks(outcome, patience)
        await self._check_offsets(outcome, patience)
        await self._check_timers(outcome, patience)

    async def _dead_letters(self) -> list[dict[str, Any]]:
        out: dict[tuple[str, int, int], dict[str, Any]] = {}
        published = await read_topics(self.settings.kafka_bootstrap, [topics.DEADLETTER])
        waiting = [
            r["value"]
            for table in ("outbox", "street.outbox")
            for r in await self.fetch(
                f"SELECT m.value FROM {table}, unnest(topics, payloads) AS m(topic, value)"
                " WHERE m.topic = $1",
                topics.DEADLETTER,
            )
        ]
        for raw in [v for _, v in published] + waiting:
            letter = json.loads(raw)
            origin = (letter.get("topic"), letter.get("partition"), letter.get("offset"))
            key = letter.get("key") and base64.b64decode(letter["key"]).decode("utf-8", "replace")
            error = letter.get("error") or {}
            out[origin] = {
                "topic": origin[0],
                "key": key,
                "kind": error.get("kind"),
                "detail": str(error.get("detail"))[:200],
            }
        return list(out.values())

    async def _check_tasks(self, outcome: Outcome, patience: float) -> None:
        fails = outcome.failures
        units = [r[0] for r in await self.fetch("SELECT DISTINCT unit_code FROM tasks")]
        state: dict[str, Any] = {}

        async def settled() -> bool:
            dispatched = {r[0] for r in await self.fetch("SELECT task_id FROM tasks")}
            outbox = await self.fetchval("SELECT count(*) FROM outbox")
            records = await read_topics(
                self.settings.kafka_bootstrap, [topics.task_topic(u) for u in units]
            )
            published: set[str] = set()
            misplaced = []
            for topic, raw in records:
                task = json.loads(raw)
                published.add(task["task_id"])
                if topic != topics.task_topic(task["unit_code"]):
                    misplaced.append((task["task_id"], topic))
            stored = {r[0] for r in await self.fetch("SELECT task_id FROM street.tasks")}
            state.update(
                dispatched=dispatched,
                published=published,
                stored=stored,
                outbox=outbox,
                misplaced=misplaced,
            )
            return outbox == 0 and published == dispatched and stored == dispatched

        ok = await _holds(settled, "every dispatched task published and stored", patience, fails)
        outcome.tasks = len(state.get("dispatched", ()))
        outcome.tasks_published = len(state.get("published", ()))
        outcome.tasks_stored = len(state.get("stored", ()))
        if not ok and state:
            d, p, s = state["dispatched"], state["published"], state["stored"]
            fails[-1] += (
                f": {state['outbox']} outbox rows unpublished, {len(d - p)} dispatched tasks not"
                f" on their unit's topic, {len(p - d)} published tasks not dispatched,"
                f" {len(d - s)} not stored by the street service"
            )
        if state.get("misplaced"):
            fails.append(f"tasks on another unit's topic: {state['misplaced'][:3]}")

    async def _check_offsets(self, outcome: Outcome, patience: float) -> None:
        prefix, bootstrap = self.settings.group_prefix, self.settings.kafka_bootstrap
        units = [r[0] for r in await self.fetch("SELECT DISTINCT unit_code FROM tasks")]
        groups = {
            f"{prefix}-district": list(topics.INBOUND),
            f"{prefix}-street": [topics.task_topic(u) for u in units],
        }
        behind: dict[str, dict[str, int]] = {}

        async def committed() -> bool:
            for group, names in groups.items():
                behind[group] = await lagging_partitions(bootstrap, group, names)
            return not any(behind.values())

        if not await _holds(committed, "every partition committed to its end", patience, []):
            outcome.failures.append(
                f"stuck partitions (committed offset behind the end): "
                f"{ {g: dict(list(b.items())[:6]) for g, b in behind.items() if b} }"
            )

    async def _check_timers(self, outcome: Outcome, patience: float) -> None:
        rows = await self.fetch(
            "UPDATE task_timers SET next_at = now() - interval '1 second' WHERE task_id IN"
            " (SELECT task_id FROM task_timers ORDER BY task_id LIMIT $1) RETURNING task_id",
            TIMERS_PROBED,
        )
        probed = [r[0] for r in rows]
        outcome.timers_probed = len(probed)
        if not probed:
            outcome.failures.append("no task timers to probe")
            return
        left: list[int] = [len(probed)]

        async def taken() -> bool:
            left[0] = await self.fetchval(
                "SELECT count(*) FROM task_timers WHERE task_id = ANY($1::text[])"
                " AND next_at <= now()",
                probed,
            )
            return left[0] == 0

        await _holds(taken, "the timer worker to take due timers", max(patience, 10.0), [])
        outcome.timers_fired = len(probed) - left[0]
        if left[0]:
            outcome.failures.append(f"{left[0]} of {len(probed)} due timers not taken")


async def _holds(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float, fails: list[str]
) -> bool:
    """`wait_until`, recording a failure instead of raising it."""
    try:
        await wait_until(check, what, timeout, every=0.25)
        return True
    except AssertionError as exc:
        fails.append(str(exc))
        return False


def _service_env(s: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "CITYOPS_DATABASE_URL": s.database_url,
        "CITYOPS_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "CITYOPS_HTTP_HOST": "127.0.0.1",
        "CITYOPS_FETCH_MAX_WAIT_MS": str(s.fetch_max_wait_ms),
        "CITYOPS_SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
        "CITYOPS_GROUP_PREFIX": s.group_prefix,
        "CITYOPS_PHONE_KEY": "",
        "CITYOPS_PHONE_KEY_FILE": s.phone_key_file,
        "CITYOPS_BATCH_MAX_RECORDS": "200",
        "CITYOPS_MERGE_RADIUS_M": "0",  # one case per order: generated orders cluster
        "CITYOPS_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


async def _create_database(pg: EmbeddedPostgres, name: str, template: str) -> str:
    conn = await asyncpg.connect(pg.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return pg.dsn(name)


async def _drop_database(pg: EmbeddedPostgres, name: str) -> None:
    conn = await asyncpg.connect(pg.admin_dsn, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=10)
    finally:
        await conn.close()
