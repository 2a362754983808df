"""`make simulate`: 30 simulated days of the district (with a public holiday) on a fake clock.

The demo feed's parties (12345 orders, road-chief reports, the units' answers, follow-ups,
returns, escalations, extension requests) go through the district's own intake, decisions,
case store and timer worker on an embedded PostgreSQL (or --database-url: an empty database
it may fill). Prints the report and writes it as JSON; exits 1 when a task was born overdue or
a stage that was not owed was supervised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from simulation.parties import Volume
from simulation.report import summarise, table
from simulation.run import Window, simulate
from simulation.world import prepare

from services.common.config import ROOT, Settings

#: 2026-09-21 .. 10-20: the Mid-Autumn Festival and National Day (9-25..27, 10-01..07) with
#: their make-up working days, all inside the calendar's data
DEFAULT_START = date(2026, 9, 21)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--step-minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument(
        "--orders",
        type=int,
        nargs=2,
        default=(200, 320),
        metavar=("LOW", "HIGH"),
        help="12345 orders on a working day (other days 60%%); +1 report per 5",
    )
    p.add_argument("--out", type=Path, default=ROOT / ".cityops" / "simulate-month.json")
    p.add_argument("--database-url", default="", help="an empty database (default: embedded)")
    return p.parse_args(argv)


async def _run(args: argparse.Namespace, dsn: str) -> int:
    settings = replace(Settings(), database_url=dsn)
    await prepare(settings)
    tz = ZoneInfo("Asia/Shanghai")
    start = datetime.combine(args.start, time(), tzinfo=tz)
    window = Window(start, args.days, timedelta(minutes=args.step_minutes))
    volume = Volume(orders_low=args.orders[0], orders_high=args.orders[1])
    district, outcome = await simulate(
        settings, window, args.seed, volume, progress=lambda line: print(line, file=sys.stderr)
    )
    try:
        summary = await summarise(district, outcome)
    finally:
        await district.close()
    print(table(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"report written to {args.out}")
    inv = summary["invariants"]
    return 1 if inv["tasks_born_overdue"] or inv["supervisions_of_stage_not_owed"] else 0


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.database_url:
        return asyncio.run(_run(args, args.database_url))
    from services.devstack import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="cityops-sim-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata")
        try:
            dsn = asyncio.run(pg.create_database("simulate"))
            return asyncio.run(_run(args, dsn))
        finally:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
