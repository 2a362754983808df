"""How centres read the KPIs: a trend (one row per day, week or month) and a ranking of
streets and departments. Their JSON (API) and tables (`cityops kpis`). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.district.kpis import formulas as kpis
from services.district.kpis.ranking import Ranked
from services.district.kpis.report import SHANGHAI, aligned, cell, figures
from services.district.kpis.trend import Bucket


def trend_json(
    step: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    rows: Sequence[tuple[Bucket, kpis.Counts]],
    unit: str | None = None,
    district: Sequence[kpis.Counts] | None = None,
) -> dict[str, Any]:
    """One entry per bucket with its counts and KPIs; for a unit's view the unit's own, and
    the district's totals of the same bucket beside them."""
    out = []
    for i, (bucket, counts) in enumerate(rows):
        entry = {
            "label": bucket.label,
            "from": bucket.start.isoformat(),
            "to": bucket.end.isoformat(),
            **figures(counts),
        }
        if district is not None:
            entry["district_total"] = figures(district[i])
        out.append(entry)
    return {**_head(start, end, as_of, unit), "step": step, "buckets": out}


def ranking_json(
    kind: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    ranked: Sequence[Ranked],
    weights: Mapping[str, float],
    unit: str | None = None,
) -> dict[str, Any]:
    """The ranking, best first; a unit's view holds its own row only (and how many ranked)."""
    items = [
        {
            "rank": r.rank,
            "key": r.key,
            "name": r.name,
            "score": r.score,
            "volume": r.volume,
            "parts": r.parts,
        }
        for r in ranked
        if unit is None or r.key == unit
    ]
    return {
        **_head(start, end, as_of, unit),
        "kind": kind,
        "weights": dict(weights),
        "ranked": len(ranked),
        "items": items,
    }


def _head(start: datetime, end: datetime, as_of: datetime, unit: str | None) -> dict[str, Any]:
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": as_of.isoformat(),
        "scope": {"unit": unit} if unit else {"district": True},
    }


def render_trend(
    step: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    rows: Sequence[tuple[Bucket, kpis.Counts]],
) -> str:
    """One row per bucket, each rate with its counts behind it."""
    header = [step, *(name for _, name, *_ in kpis.FORMULAS)]
    table = [header] + [[b.label, *map(cell, kpis.compute(c))] for b, c in rows]
    title = (
        f"closed-loop KPIs per {step}, [{start.isoformat()}, {end.isoformat()}), {_as_of(as_of)}"
    )
    return "\n".join([title, "", *aligned(table, left=1)])


def render_ranking(
    kind: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    ranked: Sequence[Ranked],
    weights: Mapping[str, float],
) -> str:
    """Rank, unit, name, score, each weighted figure's value and the volume."""
    header = ["rank", kind, "name", "score", *(f"{k}×{w:g}" for k, w in weights.items())]
    table = [header]
    for r in ranked:
        score = "–" if r.score is None else f"{r.score:.1f}"
        parts = ["–" if v is None else f"{v:.1%}" for v in r.parts.values()]
        table.append([str(r.rank or "–"), r.key, r.name, score, *parts])
    title = (
        f"{kind} ranking, [{start.isoformat()}, {end.isoformat()}), {_as_of(as_of)};"
        " score = 100 × Σ weight × value / Σ weight (figures with a value)"
    )
    return "\n".join([title, "", *aligned(table, left=3)])


def _as_of(as_of: datetime) -> str:
    return f"as of {as_of.astimezone(SHANGHAI).isoformat(timespec='seconds')}"
