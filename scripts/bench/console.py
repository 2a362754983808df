"""The console's row: the district screen (services/console/) in headless Chromium, driven by
Playwright on Debian's chromium as the browser tests drive it, with 10,000 open cases.

Per run, in a fresh browser context (nothing cached) signed in with a supervisor's token:
- first contentful paint (the Performance API's `paint` entry) and the time until the map's
  points are drawn (the screen's `cityops:map-drawn` user-timing mark, set when the canvas holds
  every open case's point), both from navigation start;
- the time from an order's publication on the upstream topic to its point on the map, for an
  order arriving alone: the publisher's clock when it hands the order to the broker, the
  page's when the mark counts one point more (one machine, one clock);
- responsiveness: long tasks (PerformanceObserver `longtask`) while the page loads, and while
  it stays live (a burst of orders arriving) as the operator zooms the map and scrolls the
  overdue list; and the frames' pace over that time (requestAnimationFrame intervals).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import shapely
from aiokafka import AIOKafkaProducer

from bench.harness import District, dispatchable_orders
from contracts import topics
from services.common.auth import Role, TokenStore
from services.common.config import Settings
from services.common.static import DIST
from services.district.queues.console import OFF_MAP
from services.district.routing import queries as routing_queries

OPEN_CASES = 10_000
LIVE_ORDERS = 5  # per run, one at a time: publication -> point on the map
SETTLE_S = 1.5  # before each: the console redraws a burst's points once a second (store.ts)
BURST_ORDERS, BURST_RATE = 60, 20.0  # per run, while the operator zooms and scrolls
LOAD_TIMEOUT_MS = 120_000
LIVE_TIMEOUT_MS = 30_000
#: the console keeps its token here (services/console/src/common/session.ts)
TOKEN_KEY = "cityops.token"

#: before any of the page's scripts: the token as if signed in, and observers of long tasks,
#: the screen's marks and (when asked) the frames
OBSERVE = """
([key, token]) => {
  sessionStorage.setItem(key, token);
  const b = (window.__bench = { long: [], marks: [], frames: [], framing: false });
  new PerformanceObserver((l) =>
      l.getEntries().forEach((e) => b.long.push([e.startTime, e.duration])))
    .observe({ type: "longtask", buffered: true });
  new PerformanceObserver((l) => l.getEntries().forEach((e) =>
      e.name === "cityops:map-drawn" && b.marks.push([e.startTime, e.detail.points])))
    .observe({ type: "mark", buffered: true });
  b.frame = (t) => {
    if (!b.framing) return;
    if (b.last !== undefined) b.frames.push(t - b.last);
    b.last = t;
    requestAnimationFrame(b.frame);
  };
}
"""

#: the time (ms after navigation start) the map first held at least n points
DRAWN_AT = "n => (window.__bench.marks.find(([, p]) => p >= n) || [])[0]"
#: the wall-clock time (ms) the map first held more than n points
DRAWN_MORE_AT = """n => {
  const m = window.__bench.marks.find(([, p]) => p > n);
  return m && performance.timeOrigin + m[0];
}"""
DRAWN_NOW = "() => { const m = window.__bench.marks; return m.length ? m[m.length - 1][1] : 0; }"


def unavailable() -> str:
    """Why the console's row cannot run here, or "" when it can."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (the dev extra: `make venv`)"
    from tests.chromium import BROWSER

    if not BROWSER.exists() and shutil.which("chromium") is None:
        return f"no chromium ({BROWSER}): install Debian's `chromium` package"
    if not (DIST / "district.html").is_file():
        return "the console is not built: `make console` (needs npm)"
    return ""


SEED_CASES = """
INSERT INTO cases (case_no, district_code, street_code, source, source_ref, state,
                   category_code, category_name, urgency, title, description, address,
                   lon, lat, received_at, opened_at, resolve_by, last_seq)
SELECT $1 || '-CONSOLE-' || $2 || '-' || s.i, $1, s.street, 'hotline12345',
       'CONSOLE' || $2 || '-' || s.i, s.state, '0102', '暴露垃圾', s.urgency, '基准测试',
       '基准测试工单', '静安区', s.lon, s.lat, s.opened, s.opened, s.resolve_by, 2
  FROM unnest($3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[],
              $8::timestamptz[], $9::timestamptz[])
       WITH ORDINALITY AS s(street, lon, lat, state, urgency, opened, resolve_by, i)
"""
SEED_TASKS = """
INSERT INTO tasks (task_id, case_no, district_code, unit_code, role, state, dispatched_at,
                   accept_by, first_contact_by, resolve_by)
SELECT case_no || '-T1', case_no, district_code, street_code, 'lead',
       CASE state WHEN 'dispatched' THEN 'assigned' WHEN 'accepted' THEN 'accepted'
                  WHEN 'in_progress' THEN 'contacted' ELSE 'resolved' END,
       opened_at, opened_at + interval '1 hour', opened_at + interval '1 day', resolve_by
  FROM cases WHERE district_code = $1 AND source_ref LIKE 'CONSOLE' || $2 || '-%'
   AND state <> 'triage'
"""
#: the open cases on the map (as GET /api/v1/case-points finds them, with a location)
ON_MAP = "SELECT count(*) FROM cases WHERE district_code = $1 AND state <> ALL($2::text[])"
ON_MAP_LOCATED = ON_MAP + " AND lon IS NOT NULL AND lat IS NOT NULL"
#: states and urgencies of the seeded cases, with their weights
STATES = {"dispatched": 40, "accepted": 25, "in_progress": 25, "triage": 5, "resolved": 5}
URGENCIES = {"normal": 80, "urgent": 15, "critical": 5}


async def seed_open_cases(dsn: str, district: str, total: int) -> int:
    """Add located open cases (with their tasks) until the district has `total` open cases,
    spread at random over the streets' territories; return how many are on the map."""
    from bench_api import RECOUNT_SQL

    conn = await asyncpg.connect(dsn)
    try:
        need = total - await conn.fetchval(ON_MAP, district, OFF_MAP)
        if need > 0:
            ref = await routing_queries.load_reference(conn, district)
            rng, now = random.Random(16), datetime.now(UTC)
            areas = [ref.territory.area(u) for u in ref.territory.units]
            west, south, east, north = (float(v) for v in shapely.total_bounds(areas))
            streets: list[str] = []
            lons: list[float] = []
            lats: list[float] = []
            while len(streets) < need:
                lon, lat = rng.uniform(west, east), rng.uniform(south, north)
                if found := ref.territory.locate(lon, lat):
                    streets.append(found.unit_code)
                    lons.append(lon)
                    lats.append(lat)
            states = rng.choices(list(STATES), list(STATES.values()), k=need)
            urgencies = rng.choices(list(URGENCIES), list(URGENCIES.values()), k=need)
            # opened in the last week, due five days later: about a quarter overdue
            opened = [now - timedelta(seconds=rng.uniform(0, 7 * 86400)) for _ in range(need)]
            due = [at + timedelta(days=5) for at in opened]
            stamp = f"{int(time.time())}"
            async with conn.transaction():
                await conn.execute(
                    SEED_CASES, district, stamp, streets, lons, lats, states, urgencies, opened, due
                )
                await conn.execute(SEED_TASKS, district, stamp)
                await conn.execute(RECOUNT_SQL.replace("$1", f"'{int(district)}'"))
            await conn.execute("ANALYZE cases; ANALYZE tasks; ANALYZE case_counts")
        located: int = await conn.fetchval(ON_MAP_LOCATED, district, OFF_MAP)
        return located
    finally:
        await conn.close()


def _long_tasks(entries: list[list[float]], since: float, until: float) -> tuple[float, float]:
    """The longest task and the total blocking time (the part of each task over 50 ms) between
    two page times, in ms."""
    inside = [d for at, d in entries if since <= at <= until]
    return max(inside, default=0.0), sum(max(0.0, d - 50) for d in inside)


async def bench_console(
    settings: Settings, district: District, repeat: int
) -> dict[str, list[float]]:
    """The console row's figures (ms unless named otherwise), `repeat` runs of each."""
    from playwright.async_api import async_playwright

    from tests.chromium import ARGS, BROWSER

    on_map = await seed_open_cases(settings.database_url, settings.district_code, OPEN_CASES)
    conn = await asyncpg.connect(settings.database_url)
    try:
        token = await TokenStore(conn, settings.district_code).mint(
            Role.DISTRICT_SUPERVISOR, None, "bench console"
        )
    finally:
        await conn.close()
    orders = iter(dispatchable_orders(repeat * (LIVE_ORDERS + BURST_ORDERS), seed=600))
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "console_fcp",
            "console_points",
            "console_live",
            "console_load_longest",
            "console_load_blocking",
            "console_busy_longest",
            "console_busy_blocking",
            "console_busy_frame_p95",
        )
    }
    out["console_open_cases"] = [float(on_map)]
    url = f"http://127.0.0.1:{district.port}/"
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
    await producer.start()
    try:
        async with async_playwright() as pw:
            executable = str(BROWSER) if BROWSER.exists() else shutil.which("chromium")
            browser = await pw.chromium.launch(executable_path=executable, args=ARGS)
            try:
                for _ in range(repeat):
                    context = await browser.new_context(
                        viewport={"width": 1920, "height": 1080},
                        locale="zh-CN",
                        timezone_id="Asia/Shanghai",
                    )
                    try:
                        await _run(context, url, token, on_map, producer, orders, out)
                    finally:
                        await context.close()
            finally:
                await browser.close()
    finally:
        await producer.stop()
    return out


async def _run(
    context: Any,
    url: str,
    token: str,
    on_map: int,
    producer: AIOKafkaProducer,
    orders: Any,
    out: dict[str, list[float]],
) -> None:
    await context.add_init_script(
        script=f"({OBSERVE})({json.dumps([TOKEN_KEY, token])})",
    )
    page = await context.new_page()
    # first paint, and every open case's point on the map
    await page.goto(url)
    drawn = await page.wait_for_function(DRAWN_AT, arg=on_map, timeout=LOAD_TIMEOUT_MS)
    points_at = float(await drawn.json_value())
    fcp = await page.evaluate(
        "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
    )
    out["console_fcp"].append(float(fcp))
    out["console_points"].append(points_at)
    await asyncio.sleep(1.0)  # the other panels' first answers settle
    longest, blocking = _long_tasks(await page.evaluate("() => window.__bench.long"), 0, 1e12)
    out["console_load_longest"].append(longest)
    out["console_load_blocking"].append(blocking)

    # an order's publication to its point on the map, each alone (a burst is redrawn once a
    # second: the previous order's events are let settle first)
    for _ in range(LIVE_ORDERS):
        await asyncio.sleep(SETTLE_S)
        key, value = next(orders)
        before = await page.evaluate(DRAWN_NOW)
        published = time.time() * 1000
        await producer.send_and_wait(topics.WORKORDERS, value, key=key)
        shown = await page.wait_for_function(DRAWN_MORE_AT, arg=before, timeout=LIVE_TIMEOUT_MS)
        out["console_live"].append(float(await shown.json_value()) - published)

    # live and busy: a burst of orders while the operator zooms the map and scrolls the list
    before = await page.evaluate(DRAWN_NOW)
    since = await page.evaluate(
        "() => { const b = window.__bench; b.frames = []; b.last = undefined; b.framing = true;"
        " requestAnimationFrame(b.frame); return performance.now(); }"
    )
    burst = [next(orders) for _ in range(BURST_ORDERS)]
    sending = asyncio.create_task(_paced(producer, burst, BURST_RATE))
    box = await page.get_by_test_id("map").bounding_box()
    overdue = page.locator("[data-testid=overdue] .vlist")
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for step in range(12):
        await page.mouse.wheel(0, -240 if step < 6 else 240)  # zoom in, then out
        await overdue.evaluate("el => { el.scrollTop += 600; }")
        await asyncio.sleep(0.25)
    await sending
    await page.wait_for_function(
        DRAWN_MORE_AT, arg=before + BURST_ORDERS - 1, timeout=LIVE_TIMEOUT_MS
    )
    until = await page.evaluate(
        "() => { window.__bench.framing = false; return performance.now(); }"
    )
    longest, blocking = _long_tasks(await page.evaluate("() => window.__bench.long"), since, until)
    frames = sorted(await page.evaluate("() => window.__bench.frames"))
    out["console_busy_longest"].append(longest)
    out["console_busy_blocking"].append(blocking)
    out["console_busy_frame_p95"].append(frames[int(len(frames) * 0.95)] if frames else 0.0)
    await page.close()  # its event stream ends before the next run


async def _paced(
    producer: AIOKafkaProducer, orders: list[tuple[bytes, bytes]], rate: float
) -> None:
    start = time.perf_counter()
    for i, (key, value) in enumerate(orders):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await producer.send(topics.WORKORDERS, value, key=key)
    await producer.flush()


def summary(results: dict[str, list[float]]) -> dict[str, float]:
    """Medians of the console's figures."""
    return {k: statistics.median(v) for k, v in results.items() if k.startswith("console_") and v}
