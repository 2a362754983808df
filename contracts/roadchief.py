"""Road-chief (路长) patrol reports."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.common import AwareDatetime, Location, LongText, Message, ShortText, Urgency


class RoadChief(Message):
    id: ShortText
    name: ShortText
    level: int = Field(ge=1, le=2, description="1 district, 2 street")
    unit_code: ShortText


class Report(Message):
    """`roadchief.report/v1` on `upstream.roadchief.reports`, keyed by report_id."""

    schema_: Literal["roadchief.report/v1"] = Field(alias="schema")
    report_id: str = Field(min_length=1, max_length=64)
    reported_at: AwareDatetime
    road_chief: RoadChief
    road: ShortText
    segment: ShortText = ""
    category_hint: ShortText | None = None
    description: LongText
    location: Location
    photos: list[str] = Field(default_factory=list, max_length=50)
    handled_on_site: bool = False
    urgency: Urgency = Urgency.NORMAL
