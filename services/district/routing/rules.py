"""Who handles a case: category -> owner, location -> street (属地). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.common import Urgency
from services.district.cases.model import CaseRec
from services.district.routing.geo import haversine_m
from services.district.routing.reference import Category, Reference

FALLBACK_CATEGORY = "9901"


@dataclass(frozen=True, slots=True)
class Route:
    """Dispatch to `unit_code`, or leave to manual triage when it is None (`reason` says why)."""

    unit_code: str | None
    reason: str


def classify(hint: str | None, ref: Reference) -> tuple[Category, bool]:
    """The taxonomy category for an operator's free-text label, and whether it matched."""
    text = (hint or "").strip()
    if text:
        for cat in ref.categories.values():
            if text == cat.name:
                return cat, True
        for cat in ref.categories.values():
            if cat.name in text or (len(text) >= 2 and text in cat.name):
                return cat, True
    return ref.categories[FALLBACK_CATEGORY], False


def effective_urgency(reported: Urgency, category: Category) -> Urgency:
    """The higher of what was reported and the category's default (積水 is urgent by default)."""
    return higher_urgency(reported, category.default_urgency)


def higher_urgency(a: Urgency, b: Urgency) -> Urgency:
    """The more urgent of the two (the first when they are equal)."""
    a, b = Urgency(a), Urgency(b)
    return b if b.rank > a.rank else a


def route(
    category: Category,
    street_code: str | None,
    ref: Reference,
    urgency: Urgency = Urgency.NORMAL,
    source: str = "*",
) -> Route:
    """以条为主、街镇托底: a department leads on its categories, the street is the backstop.
    The owner comes from the active routing rule (data, editable at run time). Unclassified
    (9901) goes to district triage, where an operator classifies it (`reclassify`)."""
    if category.code == FALLBACK_CATEGORY:
        return Route(None, "unclassified (9901): a district operator classifies it")
    owner = ref.rule(category, urgency, source).owner
    if owner != "street":
        if owner in ref.units:
            return Route(owner, f"category {category.code} is owned by {owner}")
        return Route(street_code, f"owner {owner} unknown; territorial backstop")
    if street_code is None:
        return Route(None, "location unknown: manual triage")
    return Route(street_code, f"category {category.code} is territorial: street {street_code}")


def redispatch_target(
    case: CaseRec, returned_by: str, reason: str, ref: Reference
) -> tuple[str | None, str]:
    """Where a returned case goes next, and why; None: a district operator decides (triage).
    `not_our_territory` re-resolves the street without the returning one; `not_our_duty` goes
    to the category's other owner; a second return always goes to an operator."""
    if case.returns >= 2:
        return None, f"returned {case.returns} times: a district operator decides"
    if reason == "not_our_territory":
        street = _other_street(case, returned_by, ref)
        return street, (
            f"not {returned_by}'s territory: nearest other street {street}"
            if street
            else "not our territory and no other street near: triage"
        )
    if reason == "not_our_duty":
        category = ref.categories[case.category_code]
        rule = ref.rule(category, case.urgency, case.source)
        for owner in (rule.owner, rule.alt_owner):
            unit = case.street_code if owner == "street" else owner
            if unit and unit != returned_by and unit in ref.units:
                return unit, f"not {returned_by}'s duty: category {category.code} goes to {unit}"
        return None, "not our duty and no other owner: triage"
    return None, f"returned by {returned_by} ({reason}): triage"


def _other_street(case: CaseRec, excluded: str, ref: Reference) -> str | None:
    if case.lon is None or case.lat is None:
        return None
    best = min(
        (
            (haversine_m(case.lon, case.lat, a.lon, a.lat), a.unit_code)
            for a in ref.anchors
            if a.unit_code != excluded
        ),
        default=None,
    )
    return best[1] if best and best[0] <= ref.locator.max_distance_m else None
