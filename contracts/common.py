"""Types shared by every CityOps message."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a UTC offset (e.g. +08:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_offset)]
ShortText = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=8000)]
DistrictCode = Annotated[str, Field(pattern=r"^\d{6}$")]

_PHONE_DIGITS = re.compile(r"\d")


class Message(BaseModel):
    """Base of every message: strict about shape, tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class Crs(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"


class Urgency(StrEnum):
    # in rising order: a case's urgency only ever rises to the higher of two
    NORMAL = "normal"
    URGENT = "urgent"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0, 1, 2: how urgent, for comparing urgencies."""
        return _URGENCY_RANK[self]


_URGENCY_RANK = {u: i for i, u in enumerate(Urgency)}


class Location(Message):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Crs


class Actor(Message):
    id: ShortText
    name: ShortText = ""


#: how an anonymous caller is named everywhere (their name is never kept)
ANONYMOUS = "匿名"


def mask_phone(phone: str) -> str:
    """`13800001234` -> `138****1234`; short numbers keep only their last two digits."""
    digits = "".join(_PHONE_DIGITS.findall(phone))
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 2:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)
