"""`GET /api/v1/hotspots`: its query and answer (the OpenAPI document is built from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.hotspots import Centroid, HotspotKind


class HotspotQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    state: Literal["open", "closed", "all"] = "open"
    kind: HotspotKind | None = None
    category: str | None = Field(default=None, max_length=64, description="category code")
    street: str | None = Field(default=None, max_length=64, description="street unit code")
    since: AwareDatetime | None = Field(default=None, description="opened at or after")
    limit: int = Field(default=200, ge=1, le=1000)


class HotspotItem(BaseModel):
    """One hotspot, as a map layer draws it (centroid and radius, or the bbox of its cells or
    place) and a list shows it."""

    hotspot_id: str
    kind: HotspotKind
    state: Literal["open", "closed"]
    category_code: str
    category_name: str
    street_code: str | None
    street_name: str | None
    centroid: Centroid | None
    radius_m: float
    bbox: list[float] | None = Field(description="[west, south, east, north], WGS-84")
    count: int
    baseline: float
    score: float
    window_from: AwareDatetime
    window_to: AwareDatetime
    case_nos: list[str]
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    closed_at: AwareDatetime | None


class HotspotList(BaseModel):
    items: list[HotspotItem]
