"""The bench's report: a table on stdout and bench-results/bench.json."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from datetime import UTC, datetime

from services.common.config import ROOT

OUT = ROOT / "bench-results"


def report(
    results: dict[str, list[float]], skipped: dict[str, str], args: argparse.Namespace
) -> None:
    med = {k: statistics.median(v) for k, v in results.items() if v}
    rows = _loop_rows(med, args) + _console_rows(med, results, skipped)
    width = max((len(r[0]) for r in rows), default=0)
    print(
        f"\nCityOps bench: {args.orders:,} orders, medians of {args.repeat} runs, "
        f"{os.cpu_count()} cores, broker and database on this machine"
    )
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>16}  {note}")
    OUT.mkdir(exist_ok=True)
    doc = {
        "at": datetime.now(UTC).isoformat(),
        "orders": args.orders,
        "rate": args.rate,
        "runs": results,
        "median": med,
        "ratio_to_raw": med["loop"] / med["raw"] if "loop" in med else None,
        "two_to_one": (
            med["two_processes"] / med["one_process"] if "two_processes" in med else None
        ),
        "skipped": skipped,
    }
    (OUT / "bench.json").write_text(json.dumps(doc, indent=2))
    print(f"  written to {OUT / 'bench.json'}")


def _loop_rows(med: dict[str, float], args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """The rows whose figures this run measured (`--only` measures some)."""
    rows: list[tuple[str, str, str]] = []
    for needs, build in _ROWS:
        if all(k in med for k in needs):
            rows += build(med, args)
    return rows


def _throughput(med: dict[str, float], _: argparse.Namespace) -> list[tuple[str, str, str]]:
    ratio = med["loop"] / med["raw"]
    return [
        ("raw consume-upsert-produce loop", f"{med['raw']:,.0f} msg/s", ""),
        ("intake -> task (sustained)", f"{med['loop']:,.0f} orders/s", f"{ratio:.2f} x raw"),
        (
            "  the same, decisions precomputed",
            f"{med['floor']:,.0f} orders/s",
            f"{med['floor'] / med['raw']:.2f} x raw: the loop's I/O alone (its floor)",
        ),
    ]


def _footprint(med: dict[str, float], _: argparse.Namespace) -> list[tuple[str, str, str]]:
    def top(prefix: str) -> str:
        parts = sorted(((v, k) for k, v in med.items() if k.startswith(prefix)), reverse=True)
        return ", ".join(f"{k[len(prefix) :]} {v:.2f}" for v, k in parts[:6])

    return [
        ("  rows written per order", f"{med['rows_per_order']:.2f}", top("rows.")),
        (
            "  messages published per order",
            f"{med['messages_per_order']:.2f}",
            f"(the service's count: {med.get('published_per_order', 0):.2f}) " + top("messages."),
        ),
    ]


def _intake(med: dict[str, float], _: argparse.Namespace) -> list[tuple[str, str, str]]:
    return [
        (
            "intake only (parse + transaction)",
            f"{med['intake']:,.0f} orders/s",
            "publishing excluded",
        ),
        (
            "  the same, 并案 on",
            f"{med['intake_merging']:,.0f} orders/s",
            "most generated orders join an open case (they cluster at the anchors)",
        ),
    ]


def _latency(med: dict[str, float], args: argparse.Namespace) -> list[tuple[str, str, str]]:
    offered = f"@ {args.rate:,.0f}/s for {args.seconds:.0f} s"
    note = "order produced -> its task's Kafka timestamp"
    return [
        (f"dispatch latency p50 {offered}", f"{med['p50']:.1f} ms", note),
        (f"dispatch latency p99 {offered}", f"{med['p99']:.1f} ms", note),
        (
            "  of which the broker, inbound only",
            f"{med['broker_p99']:.1f} ms",
            f"p99 (p50 {med['broker_p50']:.1f} ms) of the same orders' age at a plain consumer",
        ),
    ]


def _day(med: dict[str, float], args: argparse.Namespace) -> list[tuple[str, str, str]]:
    return [
        (
            f"{args.day:,} orders offered at once",
            f"{med['day_s']:,.1f} s",
            f"cleared end to end ({args.day / med['day_s']:,.0f} orders/s), district start-up"
            " included"
            + (f"; {med['day_missing']:,.0f} without a task" if med.get("day_missing") else ""),
        )
    ]


def _instances(med: dict[str, float], _: argparse.Namespace) -> list[tuple[str, str, str]]:
    ratio = med["two_processes"] / med["one_process"]
    return [
        ("intake -> task, one district process", f"{med['one_process']:,.0f} orders/s", ""),
        (
            "  two processes, one consumer group",
            f"{med['two_processes']:,.0f} orders/s",
            f"{ratio:.2f} x one",
        ),
    ]


def _others(med: dict[str, float], _: argparse.Namespace) -> list[tuple[str, str, str]]:
    return [
        ("deadline timers fired", f"{med['timers']:,.0f} tasks/s", "all open tasks due at once"),
        (
            "GET /api/v1/queues (16 clients)",
            f"{med['queues_per_s']:,.0f} req/s",
            f"p99 {med['queues_p99']:.1f} ms, 100,000 cases",
        ),
        (
            "GET /api/v1/cases/{no} (16 clients)",
            f"{med['case_detail_per_s']:,.0f} req/s",
            f"p99 {med['case_detail_p99']:.1f} ms",
        ),
    ]


_Build = Callable[[dict[str, float], argparse.Namespace], list[tuple[str, str, str]]]
_ROWS: list[tuple[tuple[str, ...], _Build]] = [
    (("raw", "loop", "floor"), _throughput),
    (("rows_per_order", "messages_per_order"), _footprint),
    (("intake", "intake_merging"), _intake),
    (("p50", "p99", "broker_p50", "broker_p99"), _latency),
    (("day_s",), _day),
    (("one_process", "two_processes"), _instances),
    (("timers", "queues_per_s", "case_detail_per_s"), _others),
]


def _console_rows(
    med: dict[str, float], results: dict[str, list[float]], skipped: dict[str, str]
) -> list[tuple[str, str, str]]:
    if "console" in skipped:
        return [("console (district screen, Chromium)", "skipped", skipped["console"])]
    if "console_fcp" not in med:
        return []
    return [
        (
            "console: first contentful paint",
            f"{med['console_fcp']:,.0f} ms",
            f"signed in, {med['console_open_cases']:,.0f} open cases, nothing cached",
        ),
        ("  every open case's point drawn", f"{med['console_points']:,.0f} ms", "from navigation"),
        (
            "  longest task while loading",
            f"{med['console_load_longest']:,.0f} ms",
            f"blocking {med['console_load_blocking']:,.0f} ms in all (each task's part over 50 ms)",
        ),
        (
            "  order published -> its point on the map",
            f"{med['console_live']:,.0f} ms",
            f"max {max(results['console_live']):,.0f} ms",
        ),
        (
            "  longest task, live and busy",
            f"{med['console_busy_longest']:,.0f} ms",
            f"orders arriving, map zoomed, list scrolled: blocking "
            f"{med['console_busy_blocking']:,.0f} ms, "
            f"p95 frame {med['console_busy_frame_p95']:,.0f} ms",
        ),
    ]
