"""A hotspot's row and its `cityops.hotspot/v1` message, from a decision and the reports in
its window. Pure."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import topics
from contracts.hotspots import Centroid, Hotspot, HotspotKind, HotspotStatus, Window
from services.common.outbox import OutMessage
from services.district.hotspots import areas
from services.district.hotspots.detector import Step
from services.district.hotspots.plan import Decision
from services.district.routing.geo import haversine_m

#: the share of a hotspot's reports its radius holds
RADIUS_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class Where:
    """Where a hotspot's reports lie: centroid, radius, the street most lie in, a sample of
    their cases (newest first)."""

    lon: float | None
    lat: float | None
    radius_m: float
    street_code: str | None
    case_nos: list[str]

    @staticmethod
    def of(reports: Sequence[Mapping[str, Any]], sample: int) -> Where:
        points = [(r["lon"], r["lat"]) for r in reports if r["lon"] is not None]
        streets = Counter(r["street_code"] for r in reports if r["street_code"])
        cases = list(dict.fromkeys(r["case_no"] for r in reports))[:sample]
        street = streets.most_common(1)[0][0] if streets else None
        if not points:
            return Where(None, None, 0.0, street, cases)
        lon = statistics.fmean(p[0] for p in points)
        lat = statistics.fmean(p[1] for p in points)
        dist = sorted(haversine_m(lon, lat, *p) for p in points)
        radius = dist[min(int(RADIUS_SHARE * len(dist)), len(dist) - 1)]
        return Where(round(lon, 6), round(lat, 6), round(radius, 1), street, cases)


def bbox(kind: HotspotKind, area: str) -> list[float] | None:
    """[west, south, east, north] of a cluster's block or a point place; None otherwise."""
    if kind is HotspotKind.CLUSTER:
        return list(areas.cell_bbox(areas.block(int(area))))
    point = areas.place_point(area) if kind is HotspotKind.REPEAT else None
    if point is None:
        return None
    half = areas.PLACE_DEG / 2
    return [point[0] - half, point[1] - half, point[0] + half, point[1] + half]


def row(
    d: Decision,
    where: Where,
    now: datetime,
    district: str,
    hotspot_id: str,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The hotspot's row after the decision (`previous`: its row before, None when it opens)."""
    j, key = d.verdict.best, d.key
    closing = d.step is Step.CLOSE
    return {
        "hotspot_id": hotspot_id,
        "district_code": district,
        "kind": key.kind.value,
        "area": key.area,
        "category_code": key.category_code,
        "street_code": key.area if key.kind is HotspotKind.SURGE else where.street_code,
        "state": "closed" if closing else "open",
        "seq": (previous["seq"] if previous else 0) + 1,
        "count": j.count,
        "baseline": j.baseline,
        "score": j.score,
        "window_from": j.start,
        "window_to": j.end,
        "lon": where.lon,
        "lat": where.lat,
        "radius_m": where.radius_m,
        "bbox": bbox(key.kind, key.area),
        "case_nos": where.case_nos or (list(previous["case_nos"]) if previous else []),
        "opened_at": previous["opened_at"] if previous else now,
        "updated_at": now,
        "closed_at": now if closing else None,
    }


STATUS = {Step.OPEN: HotspotStatus.OPEN, Step.UPDATE: HotspotStatus.UPDATED}


def message(r: Mapping[str, Any], step: Step, category_name: str) -> OutMessage:
    """The stream's next message, keyed by hotspot id (one partition: in order)."""
    centroid = None if r["lon"] is None else Centroid(lon=r["lon"], lat=r["lat"])
    msg = Hotspot(
        hotspot_id=r["hotspot_id"],
        seq=r["seq"],
        status=STATUS.get(step, HotspotStatus.CLOSED),
        kind=HotspotKind(r["kind"]),
        district_code=r["district_code"],
        category_code=r["category_code"],
        category_name=category_name,
        street_code=r["street_code"],
        centroid=centroid,
        radius_m=r["radius_m"],
        window=Window.model_validate({"from": r["window_from"], "to": r["window_to"]}),
        count=r["count"],
        baseline=r["baseline"],
        score=r["score"],
        case_nos=list(r["case_nos"]),
        at=r["updated_at"],
    )
    return OutMessage.of(topics.HOTSPOTS, r["hotspot_id"], msg)
