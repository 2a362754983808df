"""Hotspots and surges found across cases (态势感知): one message stream per hotspot."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.common import Message


class HotspotKind(StrEnum):
    CLUSTER = "cluster"  # many reports of one category in one small area (~600 m block)
    SURGE = "surge"  # a street's category far above its own history
    REPEAT = "repeat"  # one place reported again and again (重复投诉)


class HotspotStatus(StrEnum):
    OPEN = "open"
    UPDATED = "updated"
    CLOSED = "closed"


class Centroid(Message):
    lon: float = Field(ge=-180, le=180, description="WGS-84")
    lat: float = Field(ge=-90, le=90, description="WGS-84")


class Window(Message):
    from_: datetime = Field(alias="from")
    to: datetime


class Hotspot(Message):
    """`cityops.hotspot/v1` on `cityops.hotspots`, keyed by hotspot_id: open → updated … →
    closed, never one message per case. `seq` numbers a hotspot's messages (1, 2, 3 …):
    `hotspot_id` + `seq` is the idempotency key."""

    schema_: Literal["cityops.hotspot/v1"] = Field(default="cityops.hotspot/v1", alias="schema")
    hotspot_id: str
    seq: int = Field(ge=1)
    status: HotspotStatus
    kind: HotspotKind
    district_code: str
    category_code: str
    category_name: str = ""
    street_code: str | None = Field(description="the street most of its reports lie in")
    centroid: Centroid | None = Field(description="mean point of its reports in the window")
    radius_m: float = Field(ge=0, description="distance from the centroid holding 90% of them")
    window: Window = Field(description="the window whose count was judged")
    count: int = Field(ge=0, description="reports (orders and road-chief reports) in the window")
    baseline: float = Field(ge=0, description="the count expected in such a window")
    score: float = Field(ge=0, description="-log10 of the Poisson tail P(X >= count | baseline)")
    case_nos: list[str] = Field(description="a sample of the cases its reports opened or joined")
    at: datetime
