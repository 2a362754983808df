"""The full-process record and the dead-letter envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from contracts.common import Message


class CaseEvent(Message):
    """`cityops.case-event/v1` on `cityops.case-events`, keyed by case_no."""

    schema_: Literal["cityops.case-event/v1"] = Field(
        default="cityops.case-event/v1", alias="schema"
    )
    event_id: str
    case_no: str
    seq: int = Field(ge=1)
    type: str
    at: datetime
    actor: str
    from_state: str | None
    to_state: str
    unit_code: str | None = None
    district_code: str
    data: dict[str, Any] = Field(default_factory=dict)


class DeadLetterError(Message):
    kind: str
    detail: str


class DeadLetter(Message):
    """`cityops.deadletter/v1` on `cityops.deadletter`, keyed by the source key."""

    schema_: Literal["cityops.deadletter/v1"] = Field(
        default="cityops.deadletter/v1", alias="schema"
    )
    topic: str
    partition: int
    offset: int
    key: str | None = Field(description="base64 of the original key bytes")
    value: str | None = Field(
        description="base64 of the original value bytes; when `redacted`, of the original with"
        " every phone number masked"
    )
    error: DeadLetterError
    at: datetime
    redacted: bool = Field(
        default=False, description="the original held a phone number: `value` has it masked"
    )
    value_sealed: str | None = Field(
        default=None,
        description="when `redacted`: base64 of the original bytes sealed with the phone key"
        " (AES-GCM; the first byte is the key id), for an operator holding the key to read and"
        " replay",
    )
