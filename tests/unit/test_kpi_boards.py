"""The KPI trend's calendar buckets, the ranking's score and its weights file: pure."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest

from services.district.kpis.boards import ranking_json, render_ranking, render_trend, trend_json
from services.district.kpis.formulas import Counts
from services.district.kpis.ranking import rank, score
from services.district.kpis.report import SHANGHAI, parse_period
from services.district.kpis.trend import MAX_BUCKETS, Step, TooManyBuckets, buckets
from services.district.kpis.weights import (
    DEFAULT_PATH,
    WeightsFileError,
    load_weights,
    parse_weights,
)

DEFAULT = {"first_contact_rate": 30, "satisfaction_rate": 40, "resolution_rate": 20, "volume": 5}


#: Fri 11-27 .. Fri 12-04 included: eight Shanghai days
DAYS = ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
DAYS += ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]


def sh(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("step", "labels", "cuts"),
    [
        (Step.DAY, [*DAYS], DAYS[1:]),
        # ISO week 48 is Mon 11-23 .. Sun 11-29, week 49 starts Mon 11-30: clipped to the period
        (Step.WEEK, ["2026-W48", "2026-W49"], ["2026-11-30"]),
        (Step.MONTH, ["2026-11", "2026-12"], ["2026-12-01"]),
    ],
)
def test_buckets_tile_the_period_on_the_shanghai_calendar(
    step: Step, labels: list[str], cuts: list[str]
) -> None:
    start, end = parse_period("2026-11-27", "2026-12-05")
    got = buckets(start, end, step)
    assert [b.label for b in got] == labels
    assert got[0].start == start and got[-1].end == end
    assert [b.start for b in got[1:]] == [sh(c) for c in cuts]
    assert all(a.end == b.start for a, b in itertools.pairwise(got))


def test_a_shanghai_day_starts_at_16_utc_the_day_before() -> None:
    start, end = parse_period("2026-12-31T23:30", "2027-01-01T01:00")
    [dec31, jan1] = buckets(start, end, Step.DAY)
    assert (dec31.label, jan1.label) == ("2026-12-31", "2027-01-01")
    assert jan1.start.isoformat() == "2027-01-01T00:00:00+08:00"
    # ISO week 53 of 2026 runs into 2027
    [week] = buckets(start, end, Step.WEEK)
    assert week.label == "2026-W53"


def test_too_long_a_trend_is_refused() -> None:
    start, end = parse_period("2020-01-01", "2026-01-01")
    with pytest.raises(TooManyBuckets):
        buckets(start, end, Step.DAY)
    assert len(buckets(start, end, Step.MONTH)) == 72 < MAX_BUCKETS


def test_score_by_hand() -> None:
    # first contact 4/4, satisfied 2/2, solved 1/2, volume the largest:
    # 100 × (30×1 + 40×1 + 20×0.5 + 5×1) / 95 = 100 × 85/95 = 89.47
    parts = {"first_contact_rate": 1.0, "satisfaction_rate": 1.0, "resolution_rate": 0.5}
    assert score({**parts, "volume": 1.0}, DEFAULT) == pytest.approx(8500 / 95)
    # nothing to rate on first contact (no caller asked for a call back): its weight leaves
    # both sums: 100 × (40 + 10 + 5) / 65
    no_contact = {**parts, "first_contact_rate": None, "volume": 1.0}
    assert score(no_contact, DEFAULT) == pytest.approx(5500 / 65)
    # volume alone says nothing: no score
    nothing = dict.fromkeys(parts, None)
    assert score({**nothing, "volume": 1.0}, DEFAULT) is None


def test_ranking_shares_ranks_and_normalises_volume_to_the_largest() -> None:
    a = Counts(contacted_on_time=1, contact_required=1, satisfied=1, rated=1, dispatched=4)
    b = Counts(contacted_on_time=1, contact_required=1, satisfied=1, rated=1, dispatched=4)
    c = Counts(contacted_on_time=0, contact_required=1, satisfied=1, rated=1, dispatched=2)
    groups = {"A": a, "B": b, "C": c, "D": Counts()}
    ranked = rank(groups, {"A": "甲街道"}, DEFAULT)
    assert [(r.key, r.rank) for r in ranked] == [("A", 1), ("B", 1), ("C", 3), ("D", None)]
    # A: (30×1 + 40×1 + 5×4/4) / 75; C: (30×0 + 40×1 + 5×2/4) / 75
    assert ranked[0].score == pytest.approx(7500 / 75)
    assert ranked[2].score == pytest.approx(100 * 42.5 / 75)
    assert ranked[2].parts["volume"] == 0.5 and ranked[2].volume == 2
    assert ranked[3].score is None and ranked[3].parts["resolution_rate"] is None
    at = datetime(2026, 12, 4, 12, tzinfo=SHANGHAI)
    body = ranking_json("street", at, at, at, ranked, DEFAULT, unit="C")
    assert [i["key"] for i in body["items"]] == ["C"] and body["ranked"] == 4
    table = render_ranking("street", at, at, at, ranked, DEFAULT).splitlines()
    assert table[2].split()[:4] == ["rank", "street", "name", "score"]
    assert table[3].split()[:4] == ["1", "A", "甲街道", "100.0"]
    assert table[6].split()[:2] == ["–", "D"]


def test_the_shipped_weights_are_the_towns_scoring() -> None:
    assert dict(load_weights(DEFAULT_PATH)) == DEFAULT


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("figure,weight\nsatisfaction_rate,40\nreturn_rate,10\n", 3, "figure"),  # less is better
        ("figure,weight\nsatisfaction_rate,40\nsatisfaction_rate,10\n", 3, "figure"),
        ("figure,weight\n# a comment\nsatisfaction_rate,-1\n", 3, "weight"),
        ("figure,weight\nsatisfaction_rate,lots\n", 2, "weight"),
        ("figure,weight\nsatisfaction_rate,40,x\n", 2, None),
        ("kpi,weight\nsatisfaction_rate,40\n", 1, None),
        ("figure,weight\nsatisfaction_rate,0\n", None, None),
    ],
)
def test_a_bad_weights_file_names_its_line(text: str, line: int | None, column: str | None) -> None:
    with pytest.raises(WeightsFileError) as caught:
        parse_weights(text, Path("w.csv"))
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith("KPI weights w.csv")


def test_trend_json_and_table() -> None:
    start, end = parse_period("2026-11-27", "2026-12-05")
    w48, w49 = buckets(start, end, Step.WEEK)
    mine = [Counts(closed=1, closed_on_time=1), Counts(closed=1, open_overdue=1)]
    whole = [Counts(closed=3, closed_on_time=2), Counts(closed=2, open_overdue=2)]
    rows = list(zip([w48, w49], mine, strict=True))
    at = datetime(2026, 12, 4, 12, tzinfo=SHANGHAI)
    body = trend_json("week", start, end, at, rows, "310106-JSGL", whole)
    assert body["scope"] == {"unit": "310106-JSGL"} and body["step"] == "week"
    first, second = body["buckets"]
    assert (first["label"], first["from"], first["to"]) == (
        "2026-W48",
        "2026-11-27T00:00:00+08:00",
        "2026-11-30T00:00:00+08:00",
    )
    # W49: one closed (late) of two due; the district's 2 of 4
    assert second["kpis"]["closure_rate"]["value"] == 0.5
    assert second["district_total"]["kpis"]["on_time_closure_rate"]["denominator"] == 4
    lines = render_trend("week", start, end, at, rows).splitlines()
    assert lines[0].startswith("closed-loop KPIs per week, [2026-11-27T00:00:00+08:00,")
    assert lines[2].split()[:3] == ["week", "结案率", "按期结案率"]
    assert lines[3].split()[:5] == ["2026-W48", "100.0%", "1/1", "100.0%", "1/1"]
    assert lines[4].split()[:5] == ["2026-W49", "50.0%", "1/2", "0.0%", "0/2"]
