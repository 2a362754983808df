"""CityOps benchmarks: intake->task throughput and dispatch latency beside the raw loop.

Runs on the embedded broker and database (or CITYOPS_KAFKA_BOOTSTRAP / CITYOPS_DATABASE_URL),
the district service as its own process, exactly as `make run` starts it. Prints a table and
writes bench-results/bench.json. `--orders N` (default 20,000), `--rate R` (default 500/s);
`--only console`: the console's row alone.
Run as `PYTHONPATH=scripts python -m bench` (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import report
from bench.scenarios import run_all
from services.common.config import Settings
from services.devstack import EmbeddedKafka, EmbeddedPostgres
from services.ops.bootstrap import bootstrap


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instances", type=int, default=1, help="district processes")
    parser.add_argument("--only", choices=["console"], help="just this row")
    args = parser.parse_args()
    base = Settings()
    cleanup: list[Callable[[], None]] = []
    stack: list[Any] = []
    try:
        dsn, kafka = base.database_url, base.kafka_bootstrap
        if not dsn:  # a throwaway cluster: nothing left behind to vacuum in the next run
            scratch = Path(tempfile.mkdtemp(prefix="cityops-bench-"))
            pg = EmbeddedPostgres(scratch / "pgdata")
            stack.append(pg)
            cleanup.append(lambda: shutil.rmtree(scratch, ignore_errors=True))
            dsn = await pg.create_database("bench")
        if not kafka:
            broker = EmbeddedKafka()
            stack.append(broker)
            kafka = broker.bootstrap
        embedded = not base.kafka_bootstrap
        settings = replace(
            base,
            database_url=dsn,
            kafka_bootstrap=kafka,
            fetch_max_wait_ms=10 if embedded else base.fetch_max_wait_ms,
            session_timeout_ms=2000 if embedded else base.session_timeout_ms,
            group_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        )
        await bootstrap(settings)
        results, skipped = await run_all(settings, args)
    finally:
        for dep in reversed(stack):
            dep.stop()
        for fn in cleanup:
            fn()
    report(results, skipped, args)


if __name__ == "__main__":
    asyncio.run(main())
