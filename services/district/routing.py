"""Who handles a case: category -> owner, location -> street (属地). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from services.district.reference import Category, Reference

FALLBACK_CATEGORY = "9901"
_URGENCY_RANK = {"normal": 0, "urgent": 1, "critical": 2}


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


def effective_urgency(reported: str, category: Category) -> str:
    """The higher of what was reported and the category's default (積水 is urgent by default)."""
    return max(reported, category.default_urgency, key=_URGENCY_RANK.__getitem__)


def route(category: Category, street_code: str | None, ref: Reference) -> Route:
    """以条为主、街镇托底: a department leads on its categories, the street is the backstop."""
    owner = category.default_owner
    if owner != "street":
        if owner in ref.units:
            return Route(owner, f"category {category.code} is owned by {owner}")
        return Route(street_code, f"owner {owner} unknown; territorial backstop")
    if street_code is None:
        return Route(None, "location unknown: manual triage")
    return Route(street_code, f"category {category.code} is territorial: street {street_code}")
