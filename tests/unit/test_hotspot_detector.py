"""The hotspot detector on synthetic series (pure: no database, no broker).

The background is a street of 20 cells of uneven business with the demo feed's category mix,
reports Poisson in time with a day-night rhythm, judged every 10 minutes by the service's own
detection round. Measured with the thresholds as shipped (deploy/reference/
hotspot_thresholds.toml), four streets, 15 days of history, then one week: at 100 reports per
street per day (a busy Shanghai street's 12345 load) no false hotspot; at 400 per day 0.5 per
street-week, all `repeat` (five reports on three days at one ~10 m place happen by chance among
200,000 place × category keys per street). The test runs two streets to stay quick."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from contracts.hotspots import HotspotKind
from services.common.config import ROOT
from services.district.hotspots import areas
from services.district.hotspots.detector import Peers, Sent, Step, judge, step, verdict
from services.district.hotspots.plan import Key, assess, may_open
from services.district.hotspots.rules import Thresholds, WindowRule, load, parse
from services.district.hotspots.stats import Series, hour_start, log10_sf, window_count
from tests.unit.hotspot_sim import START, Run, Street, simulate

TH = load(ROOT / "deploy" / "reference")
WARM_UP, WEEK = timedelta(days=15), timedelta(days=7)


def test_poisson_tail_is_exact_far_into_the_tail() -> None:
    assert 10 ** log10_sf(1, 2.0) == pytest.approx(1 - 0.1353352832, rel=1e-9)
    assert 10 ** log10_sf(5, 1.0) == pytest.approx(0.0036598468, rel=1e-8)
    assert log10_sf(30, 0.2) == pytest.approx(-53.4768, abs=1e-3)  # no underflow to -inf
    assert log10_sf(0, 3.0) == 0.0


def test_a_trailing_window_counts_the_share_of_the_bucket_it_covers() -> None:
    h = hour_start(START)
    s = Series({h - timedelta(hours=1): 10, h: 4}, {})
    assert window_count(s, 1, h + timedelta(minutes=15), hourly=True) == pytest.approx(4 + 7.5)
    assert window_count(s, 1, h + timedelta(minutes=60), hourly=True) == pytest.approx(4)


def test_the_thresholds_file_is_checked() -> None:
    assert {w.kind for w in TH.windows} == set(HotspotKind)
    bad = {"window": [{**_raw(), "p_open": 0.5, "p_keep": 0.1}]}
    with pytest.raises(ValueError, match="easier"):
        parse(bad)
    with pytest.raises(ValueError, match="unknown"):
        parse({"window": [{**_raw(), "colour": "red"}]})


def _raw() -> dict[str, object]:
    w = TH.of(HotspotKind.CLUSTER)[0]
    return {f: getattr(w, f) for f in w.__slots__} | {"kind": "cluster"}


def test_thirty_reports_in_ten_minutes_open_a_cluster_that_closes_when_quiet() -> None:
    rule, now = TH.of(HotspotKind.CLUSTER)[0], START + timedelta(minutes=10)
    burst = Series({hour_start(START): 30}, {})
    v = verdict([judge(r, burst, now, START) for r in TH.of(HotspotKind.CLUSTER)])
    assert v.opens and v.best.rule is rule and v.best.count == 30
    assert step(None, v, now, TH) is Step.OPEN
    later = now + timedelta(days=2)
    quiet = verdict([judge(r, burst, later, START) for r in TH.of(HotspotKind.CLUSTER)])
    assert step(Sent(30, now), quiet, later, TH) is Step.CLOSE


def test_updates_wait_for_min_update_s_unless_the_count_doubles() -> None:
    rules, now = TH.of(HotspotKind.CLUSTER), START + timedelta(minutes=10)
    v = verdict([judge(r, Series({hour_start(START): 12}, {}), now, START) for r in rules])
    assert step(Sent(10, now), v, now, TH) is Step.NONE
    assert step(Sent(10, now - timedelta(minutes=5)), v, now, TH) is Step.UPDATE
    assert step(Sent(6, now), v, now, TH) is Step.UPDATE


def test_busy_peers_raise_the_bar_but_not_the_own_reports() -> None:
    peers = Peers.of({f"c{i}": c for i, c in enumerate([1, 1, 2, 2, 3, 3, 4, 4, 5, 0, 30])})
    assert peers.expected({"c10": 30}) == 5  # the 90th percentile of the others, itself out
    assert peers.expected({"c10": 40, "c9": 2}) == 10  # per active area of the key
    assert Peers.of({"c1": 12}).expected({"c1": 30}) == 0.0  # alone: nothing to compare with


def test_peers_rank_the_others_as_a_sort_of_them_would() -> None:
    """`expected` finds the quantile of the other areas in the counts sorted once; it must
    agree with sorting the others afresh, ties and the key's own areas included."""
    rng = random.Random(5)
    for _ in range(2000):
        counts = {f"c{i}": float(rng.randint(0, 6)) for i in range(rng.randint(0, 30))}
        peers = Peers.of(counts)
        own = {a: float(rng.randint(0, 3)) for a in rng.sample([*counts, "x", "y", "z"], 3)}
        others = sorted(c for a, c in counts.items() if c > 0 and a not in own)
        active = sum(1 for c in own.values() if c > 0)
        want = (
            others[min(int(0.9 * len(others)), len(others) - 1)] * active
            if others and active
            else 0.0
        )
        assert peers.expected(own) == want, (counts, own)


def _false_per_street_week(run: Run, streets: int) -> float:
    return len(run.opened_between(START + WARM_UP, START + WARM_UP + WEEK)) / streets


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("per_day", "at_most"), [(100.0, 0.0), (400.0, 1.0)])
def test_background_alone_opens_fewer_than_one_hotspot_per_street_week(
    per_day: float, at_most: float
) -> None:
    streets = [Street(per_day, seed=i) for i in range(2)]
    run = simulate(streets, TH, days=(WARM_UP + WEEK).days)
    rate = _false_per_street_week(run, len(streets))
    assert rate <= at_most, f"{rate} false hotspots per street-week: {run.opened}"


@pytest.mark.timeout(300)
def test_injected_cluster_surge_and_repeat_are_found_within_their_windows() -> None:
    street = Street(100.0, seed=7)
    cell, busy = street.cells[5], street.cells[len(street.cells) // 2]
    place = areas.place_of(121.4401, 31.2201, "")
    assert place is not None
    cluster_at = START + WARM_UP + timedelta(hours=2)  # 10:00 in Shanghai
    extra = {cluster_at + timedelta(minutes=10 * i): [(cell, "C20", "x")] * 5 for i in range(3)}
    surge_day = START + WARM_UP + timedelta(days=2)
    for i in range(0, 24 * 6, 2):  # a day with 72 more reports of the street's C06
        extra.setdefault(surge_day + timedelta(minutes=10 * i), []).append((busy, "C06", "y"))
    for day in range(5):  # one door, five days running
        at = START + WARM_UP + timedelta(days=day, hours=3)
        extra.setdefault(at, []).append((areas.cell_of(121.4401, 31.2201), "C03", place))
    run = simulate([street], TH, days=(WARM_UP + WEEK).days, extra=extra)
    found: dict[tuple[HotspotKind, str], datetime] = {}
    for at, k in run.opened:
        found.setdefault((k.kind, k.category_code), at)
    assert found[(HotspotKind.CLUSTER, "C20")] <= cluster_at + timedelta(hours=1), run.opened
    assert found[(HotspotKind.SURGE, "C06")] <= surge_day + timedelta(days=1), run.opened
    assert found[(HotspotKind.REPEAT, "C03")] <= START + WARM_UP + timedelta(days=5), run.opened
    clusters = [
        k for _, k in run.opened if (k.kind, k.category_code) == (HotspotKind.CLUSTER, "C20")
    ]
    assert clusters == [Key(HotspotKind.CLUSTER, clusters[0].area, "C20")], run.opened  # one
    assert areas.near(int(clusters[0].area), cell)


def test_thresholds_object_lists_windows_by_kind() -> None:
    assert isinstance(TH, Thresholds)
    assert [w.hours for w in TH.of(HotspotKind.SURGE)] == [24, 168]


class _Buckets:
    """A `plan.Lookup` over hourly buckets per cell, with no peers."""

    def __init__(self, cells: dict[str, Series]) -> None:
        self.cells = cells

    def series(self, kind: areas.AreaKind, area: str, category_code: str) -> Series:
        return self.cells.get(area, Series.empty())

    def peers(self, rule: WindowRule, category_code: str) -> Peers:
        return Peers()


def test_a_key_skipped_as_too_few_reports_could_not_have_opened() -> None:
    """A round judges no further the keys with fewer reports than any window needs: each one
    skipped is one the full judgement would not open, and the busy ones are all judged."""
    rng, now = random.Random(9), START + timedelta(days=3, minutes=17)
    centre = areas.cell_of(121.45, 31.23)
    skipped = 0
    for _ in range(300):
        cells = {
            str(c): Series(
                {hour_start(now) - timedelta(hours=h): rng.randint(0, 2) for h in range(3)}, {}
            )
            for c in rng.sample(areas.block(centre), rng.randint(1, 9))
        }
        lookup, key = _Buckets(cells), Key(HotspotKind.CLUSTER, str(centre), "0203")
        opens = assess(key, lookup, now, START, TH).opens
        if not may_open(key, lookup, now, TH):
            skipped += 1
            assert not opens, cells
    assert 0 < skipped < 300
