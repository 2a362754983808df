"""Routing: category -> owner, street by territory, urgency."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.district.routing.reference import load_csv
from services.district.routing.rules import classify, effective_urgency, route

REF = load_csv(Path(__file__).resolve().parents[2] / "deploy" / "reference", "310106")


@pytest.mark.parametrize(
    ("hint", "code", "matched"),
    [
        ("油烟污染", "0106", True),
        ("井盖缺损", "1101", True),
        ("井盖", "1101", True),  # a shorter operator label
        ("小区群租问题", "0401", True),  # the taxonomy name inside a longer label
        ("垃圾分类", "9901", False),  # not in the taxonomy: unclassified
        (None, "9901", False),
        ("", "9901", False),
    ],
)
def test_classify(hint: str | None, code: str, matched: bool) -> None:
    category, ok = classify(hint, REF)
    assert (category.code, ok) == (code, matched)


def test_department_owned_category_goes_to_the_department_wherever_it_is() -> None:
    category, _ = classify("食品安全", REF)
    assert route(category, "310106016000", REF).unit_code == "310106-SCJG"
    assert route(category, None, REF).unit_code == "310106-SCJG"


def test_territorial_category_goes_to_the_street_or_to_triage() -> None:
    category, _ = classify("占道经营", REF)
    assert route(category, "310106013000", REF).unit_code == "310106013000"
    decision = route(category, None, REF)
    assert decision.unit_code is None and "triage" in decision.reason


def test_urgent_by_default_categories_raise_urgency_but_never_lower_it() -> None:
    flooding, _ = classify("道路积水", REF)
    litter, _ = classify("暴露垃圾", REF)
    assert effective_urgency("normal", flooding) == "urgent"
    assert effective_urgency("critical", flooding) == "critical"
    assert effective_urgency("normal", litter) == "normal"


def test_unclassified_goes_to_district_triage_not_a_street() -> None:
    decision = route(REF.categories["9901"], "310106012000", REF)
    assert decision.unit_code is None
    assert decision.reason.startswith("unclassified (9901)")
