"""The municipal 12345 hotline: work orders and follow-ups in, replies out."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.common import (
    AwareDatetime,
    DistrictCode,
    Location,
    LongText,
    Message,
    ShortText,
    Urgency,
)


class OrderAction(StrEnum):
    DISPATCH = "dispatch"
    SUPPLEMENT = "supplement"
    URGE = "urge"
    REOPEN = "reopen"
    WITHDRAW = "withdraw"


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    APP = "app"
    WECHAT = "wechat"
    MAILBOX = "mailbox"


class RequestType(StrEnum):
    CONSULTATION = "consultation"
    HELP = "help"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    PRAISE = "praise"


class Caller(Message):
    name: ShortText = ""
    phone: str = Field(default="", max_length=40)
    anonymous: bool = False
    callback: bool = True


class Attachment(Message):
    url: str = Field(max_length=2000)
    kind: ShortText = "image"


class WorkOrder(Message):
    """`hotline12345.workorder/v1` on `upstream.hotline12345.workorders`, keyed by order_no."""

    schema_: Literal["hotline12345.workorder/v1"] = Field(alias="schema")
    order_no: str = Field(min_length=1, max_length=64)
    action: OrderAction
    revision: int = Field(ge=1)
    sent_at: AwareDatetime
    received_at: AwareDatetime
    channel: Channel
    request_type: RequestType
    urgency: Urgency
    title: ShortText
    content: LongText
    category_hint: ShortText | None = None
    address: ShortText
    district_code: DistrictCode
    location: Location | None = None
    caller: Caller
    due_at: AwareDatetime | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    note: LongText | None = None


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"
    UNREACHABLE = "unreachable"


class Feedback(Message):
    """`hotline12345.feedback/v1` on `upstream.hotline12345.feedback`: the follow-up (回访)."""

    schema_: Literal["hotline12345.feedback/v1"] = Field(alias="schema")
    order_no: str = Field(min_length=1, max_length=64)
    visited_at: AwareDatetime
    resolved: bool
    satisfaction: Satisfaction
    comment: LongText = ""

    @property
    def reopens(self) -> bool:
        """Dissatisfied or not resolved reopens the case; unreachable changes nothing."""
        if self.satisfaction == Satisfaction.UNREACHABLE:
            return False
        return self.satisfaction == Satisfaction.DISSATISFIED or not self.resolved


class ReplyKind(StrEnum):
    ACCEPTED = "accepted"
    FIRST_CONTACT = "first_contact"
    RESULT = "result"
    RETURNED = "returned"
    EXTENSION = "extension"
    NOT_OUR_DISTRICT = "not_our_district"


class Reply(Message):
    """`hotline12345.reply/v1` on `upstream.hotline12345.replies`, keyed by order_no."""

    schema_: Literal["hotline12345.reply/v1"] = Field(
        default="hotline12345.reply/v1", alias="schema"
    )
    reply_id: str
    order_no: str
    case_no: str
    kind: ReplyKind
    at: AwareDatetime
    unit_code: str
    unit_name: str
    text: LongText
