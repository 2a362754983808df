"""`cityops run`: every service starts, says where it listens, the demo feed's cases reach
the units' topics, and SIGTERM stops everything."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import pytest

from contracts import topics
from services.common.config import Settings
from services.devstack import free_port
from tests.support import Topics, wait_until


def start_run(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def test_run_starts_everything_feeds_the_loop_and_stops_on_sigterm(
    settings: Settings,
) -> None:
    ports = {
        "CITYOPS_DISTRICT_PORT": str(free_port()),
        "CITYOPS_STREET_PORT": str(free_port()),
        "CITYOPS_HOTSPOTS_PORT": str(free_port()),
    }
    env = {
        **os.environ,
        **ports,
        "CITYOPS_DATABASE_URL": settings.database_url,
        "CITYOPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CITYOPS_FETCH_MAX_WAIT_MS": "10",
        "CITYOPS_SESSION_TIMEOUT_MS": "2000",
        "CITYOPS_PHONE_KEY_FILE": settings.phone_key_file,
        "CITYOPS_DEMO_RATE": "20",
        "CITYOPS_DEMO_SPEED": "20",
        "CITYOPS_LOG_LEVEL": "WARNING",
    }
    proc = start_run(env)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()

        async def listening() -> bool:
            line = await loop.run_in_executor(None, proc.stdout.readline)  # type: ignore[union-attr]
            lines.append(line.strip())
            return sum("listening on http://" in x for x in lines) >= 3

        await wait_until(listening, "the three services listening", timeout=60, every=0)
        assert (
            f"cityops: district listening on http://127.0.0.1:{ports['CITYOPS_DISTRICT_PORT']}"
            in lines
        )
        assert (
            f"cityops: street listening on http://127.0.0.1:{ports['CITYOPS_STREET_PORT']}" in lines
        )
        hotspots = ports["CITYOPS_HOTSPOTS_PORT"]
        assert f"cityops: hotspots listening on http://127.0.0.1:{hotspots}" in lines
        async with Topics(settings) as t:

            async def demo_tasks() -> bool:
                units = ("310106-JSGL", "310106012000", "310106016000", "310106-SCJG")
                return any([await t.read(topics.task_topic(u)) for u in units])

            await wait_until(
                demo_tasks, "demo-feed cases dispatched to units", timeout=60, every=0.5
            )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for port in ports.values():  # the services are gone with it
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
