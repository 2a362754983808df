"""Ranking streets and departments on a composite score (街镇排名). Pure.

score = 100 × Σ w·v / Σ w, over the weighted figures that have a value for the group: each
KPI's value (0..1), and volume normalised as the group's share of the largest volume in the
ranking set (volume / max volume). A KPI with nothing to rate (no denominator) leaves its
weight out of both sums, so a unit is neither rewarded nor punished for what it was not asked
to do; a group none of whose weighted KPIs has a value has no score and ranks last (volume
alone says nothing of how the work was done). Equal scores share a rank (1, 2, 2, 4). The
weights are data: `deploy/reference/kpi_weights.csv` (weights.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.district.kpis.formulas import Counts, compute

#: the weight of the group's volume (its tasks dispatched in the period)
VOLUME = "volume"
#: the figures a weight may name: those where more is better (not rework, extension, return)
RANKABLE = (
    "closure_rate",
    "on_time_closure_rate",
    "first_contact_rate",
    "resolution_rate",
    "satisfaction_rate",
    "dispatch_accuracy",
    "on_time_accept_rate",
    "self_handled_rate",
    VOLUME,
)


class RankKind(StrEnum):
    """What is ranked: the streets (街镇) or the departments (委办局), as handling units."""

    STREET = "street"
    DEPARTMENT = "department"


@dataclass(frozen=True, slots=True)
class Ranked:
    key: str
    name: str
    score: float | None
    rank: int | None
    #: each weighted figure's value (0..1; None: nothing to rate), volume as its share
    parts: dict[str, float | None]
    volume: int


def volume(counts: Counts) -> int:
    """The work a unit was given in the period: its tasks dispatched."""
    return counts.dispatched


def score(parts: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """100 × Σ w·v / Σ w over the weighted parts that have a value; None when no weighted
    KPI has one (volume alone says nothing of how the work was done)."""
    rated = [(weights[k], v, k) for k, v in parts.items() if v is not None and weights[k] > 0]
    if not any(k != VOLUME for _, _, k in rated):
        return None
    return 100 * sum(w * v for w, v, _ in rated) / sum(w for w, _, _ in rated)


def rank(
    groups: Mapping[str, Counts], names: Mapping[str, str], weights: Mapping[str, float]
) -> list[Ranked]:
    """Every group scored and ranked, best first (ties by key)."""
    most = max((volume(c) for c in groups.values()), default=0)
    scored = [_scored(key, counts, names, weights, most) for key, counts in groups.items()]
    scored.sort(key=lambda r: (r.score is None, -(r.score or 0.0), r.key))
    out: list[Ranked] = []
    for i, r in enumerate(scored):
        tied = out and out[-1].score == r.score and r.score is not None
        place = (out[-1].rank if tied else i + 1) if r.score is not None else None
        out.append(Ranked(r.key, r.name, r.score, place, r.parts, r.volume))
    return out


def _scored(
    key: str, counts: Counts, names: Mapping[str, str], weights: Mapping[str, float], most: int
) -> Ranked:
    values = {k.key: k.value for k in compute(counts)}
    share = volume(counts) / most if most else None
    parts = {k: share if k == VOLUME else values[k] for k in weights}
    return Ranked(key, names.get(key, ""), score(parts, weights), None, parts, volume(counts))
