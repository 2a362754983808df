"""KPI formulas (domain.md, Closed-loop KPIs) and the report's shapes: pure, no database."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.district.kpis.formulas import KEYS, Counts, Kpi, compute, total
from services.district.kpis.queries import Gathered
from services.district.kpis.report import (
    SHANGHAI,
    BadPeriod,
    _width,
    parse_period,
    render_table,
    to_json,
)


def kpi(counts: Counts, key: str) -> Kpi:
    return {k.key: k for k in compute(counts)}[key]


def test_every_kpi_of_the_domain_in_its_order() -> None:
    names = [k.name for k in compute(Counts())]
    assert names == [
        "结案率",
        "按期结案率",
        "先行联系率",
        "实际解决率",
        "满意率",
        "返工率",
        "延期率",
        "退单率",
        "派遣准确率",
        "按时签收率",
        "自处置率",
    ]
    assert [k.key for k in compute(Counts())] == list(KEYS)


def test_nothing_due_is_none_not_zero_or_a_hundred_percent() -> None:
    for k in compute(Counts()):
        assert (k.value, k.numerator, k.denominator) == (None, 0, 0), k.key


def test_the_published_figures() -> None:
    """A 2016 city report: closure 93.72% (911/972), on-time closure 75.82% (737/972)."""
    counts = Counts(closed=911, closed_on_time=737, open_overdue=61)
    closure, on_time = kpi(counts, "closure_rate"), kpi(counts, "on_time_closure_rate")
    assert (closure.numerator, closure.denominator) == (911, 972)
    assert round(closure.value or 0, 4) == 0.9372
    assert (on_time.numerator, on_time.denominator) == (737, 972)
    assert round(on_time.value or 0, 4) == 0.7582


def test_on_time_closure_counts_late_cases_still_open() -> None:
    """Ten closed, all on time, ten more open past their deadline: 50%, not 100%."""
    counts = Counts(closed=10, closed_on_time=10, open_overdue=10)
    assert kpi(counts, "on_time_closure_rate").value == 0.5
    nothing_closed = Counts(open_overdue=3)
    assert kpi(nothing_closed, "on_time_closure_rate").value == 0.0


@pytest.mark.parametrize(
    ("key", "counts", "numerator", "denominator"),
    [
        ("closure_rate", Counts(closed=3, open_overdue=1), 3, 4),
        ("first_contact_rate", Counts(contacted_on_time=7, contact_required=9), 7, 9),
        ("resolution_rate", Counts(rated_resolved=4, followed_up=5), 4, 5),
        ("satisfaction_rate", Counts(satisfied=8, rated=10, followed_up=10), 8, 10),
        ("rework_rate", Counts(reopened=1, resolved=20), 1, 20),
        ("extension_rate", Counts(extended=2, closed=5, open_overdue=3), 2, 8),
        ("return_rate", Counts(returned=3, dispatched=30), 3, 30),
        ("dispatch_accuracy", Counts(accurate=26, dispatched=30), 26, 30),
        ("on_time_accept_rate", Counts(accepted_on_time=12, accept_decided=16), 12, 16),
        ("self_handled_rate", Counts(self_handled=3, roadchief_reports=4), 3, 4),
    ],
)
def test_each_formula(key: str, counts: Counts, numerator: int, denominator: int) -> None:
    got = kpi(counts, key)
    assert (got.numerator, got.denominator) == (numerator, denominator)
    assert got.value == numerator / denominator
    assert got.as_dict() == {
        "name": got.name,
        "value": numerator / denominator,
        "numerator": numerator,
        "denominator": denominator,
    }


_counts = st.builds(Counts, **{f.name: st.integers(0, 10_000) for f in fields(Counts)})


@given(st.dictionaries(st.text(min_size=1, max_size=8), _counts, max_size=6))
def test_the_total_is_the_sum_of_the_groups(groups: dict[str, Counts]) -> None:
    whole = total(groups)
    for f in fields(Counts):
        assert getattr(whole, f.name) == sum(getattr(c, f.name) for c in groups.values())


# -- the report --------------------------------------------------------------------------------


def test_a_day_is_its_midnight_in_shanghai() -> None:
    start, end = parse_period("2026-11-01", "2026-12-01")
    assert start == datetime(2026, 11, 1, tzinfo=SHANGHAI)
    assert start.astimezone(UTC) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert end - start == timedelta(days=30)
    start, _ = parse_period("2026-11-01T08:30", "2026-11-01T09:00:00+08:00")
    assert start == datetime(2026, 11, 1, 8, 30, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-12-01", "2026-11-01"),
        ("2026-11-01", "2026-11-01"),
        ("last week", "2026-11-01"),
        ("0001-01-01", "2026-11-01"),
        ("2026-11-01", "9999-12-31"),
    ],
)
def test_a_bad_period_is_refused(start: str, end: str) -> None:
    with pytest.raises(BadPeriod):
        parse_period(start, end)


AS_OF = datetime(2026, 11, 28, 9, tzinfo=SHANGHAI)
START, END = parse_period("2026-11-01", "2026-12-01")
GATHERED = Gathered(
    AS_OF,
    {
        "310106-JSGL": Counts(closed=2, closed_on_time=1, open_overdue=1, dispatched=7),
        "310106012000": Counts(closed=1, closed_on_time=1, dispatched=1, returned=1),
    },
    {"310106-JSGL": "静安区建设和管理委员会", "310106012000": "南京西路街道"},
)


def test_json_carries_counts_rates_and_the_total() -> None:
    body = to_json(GATHERED, "unit", START, END)
    assert body["by"] == "unit" and body["from"] == "2026-11-01T00:00:00+08:00"
    assert body["as_of"] == AS_OF.isoformat()
    jsgl = body["groups"][0]
    assert (jsgl["key"], jsgl["name"]) == ("310106-JSGL", "静安区建设和管理委员会")
    assert jsgl["counts"]["open_overdue"] == 1
    assert jsgl["kpis"]["on_time_closure_rate"] == {
        "name": "按期结案率",
        "value": 1 / 3,
        "numerator": 1,
        "denominator": 3,
    }
    assert body["total"]["kpis"]["return_rate"]["numerator"] == 1
    assert body["total"]["kpis"]["return_rate"]["denominator"] == 8
    assert body["total"]["kpis"]["satisfaction_rate"]["value"] is None


def test_the_table_is_aligned_with_the_counts_behind_each_rate() -> None:
    lines = render_table(GATHERED, "unit", START, END).splitlines()
    assert lines[0].startswith("closed-loop KPIs by unit, [2026-11-01T00:00:00+08:00,")
    assert lines[0].endswith("as of 2026-11-28T09:00:00+08:00")
    header, jsgl, street, whole = lines[2:]
    assert header.split()[:4] == ["unit", "name", "结案率", "按期结案率"]
    assert "66.7% 2/3" in jsgl and "33.3% 1/3" in jsgl and "– 0/0" in jsgl
    assert "100.0% 1/1" in street
    assert whole.startswith("total") and "75.0% 3/4" in whole
    # CJK characters take two columns: each rate ends in the column its header ends in
    for column in ("结案率", "派遣准确率"):
        end = _width(header[: header.index(column) + len(column)])
        for row in (jsgl, street, whole):
            cut = _cut(row, end)
            assert row[cut - 1] != " " and row[cut : cut + 1] in ("", " "), (column, row)


def _cut(row: str, columns: int) -> int:
    """The index in `row` at which `columns` terminal columns end."""
    width = 0
    for i, ch in enumerate(row):
        if width >= columns:
            return i
        width += _width(ch)
    return len(row)
