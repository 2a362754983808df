"""`cityops kpis`: the KPI table of a period, its trend (`--trend day|week|month`) or the
ranking of streets or departments (`--ranking street|department`)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import asyncpg

from services.common.config import Settings
from services.district.kpis import queries, service
from services.district.kpis.boards import render_ranking, render_trend
from services.district.kpis.queries import DIMENSIONS
from services.district.kpis.ranking import RankKind
from services.district.kpis.report import BadPeriod, parse_period, render_table
from services.district.kpis.trend import Step, TooManyBuckets
from services.district.kpis.weights import WeightsFileError, load_weights


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=DIMENSIONS, default="unit", help="group by (unit)")
    parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD, included")
    parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD, excluded")
    view = parser.add_mutually_exclusive_group()
    view.add_argument(
        "--trend", choices=[s.value for s in Step], help="the district's figures per day/week/month"
    )
    view.add_argument(
        "--ranking",
        choices=[k.value for k in RankKind],
        help="streets or departments ranked on the weighted score (kpi_weights.csv)",
    )


async def main(settings: Settings, args: argparse.Namespace) -> int:
    """Print the table asked for; 2 on a bad period, a bad weights file or no database."""
    try:
        start, end = parse_period(args.start, args.end)
        weights = load_weights(settings.kpi_weights_path) if args.ranking else {}
    except (BadPeriod, WeightsFileError) as exc:
        return _fail(str(exc))
    if not settings.database_url:
        return _fail("set CITYOPS_DATABASE_URL (`make run` prints the embedded one)")
    conn = await asyncpg.connect(settings.database_url)
    district, now = settings.district_code, datetime.now(UTC)
    try:
        if args.trend:
            rows, _ = await service.trend(conn, district, Step(args.trend), start, end, now)
            text = render_trend(args.trend, start, end, now, rows)
        elif args.ranking:
            kind = RankKind(args.ranking)
            ranked = await service.ranking(conn, district, kind, start, end, now, weights)
            text = render_ranking(args.ranking, start, end, now, ranked, weights)
        else:
            result = await queries.gather(conn, district, args.by, start, end, now)
            text = render_table(result, args.by, start, end)
    except TooManyBuckets as exc:
        return _fail(str(exc))
    finally:
        await conn.close()
    print(text)
    return 0


def _fail(problem: str) -> int:
    print(f"cityops kpis: {problem}", file=sys.stderr)
    return 2
