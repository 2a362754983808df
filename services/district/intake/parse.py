"""From raw Kafka records to typed commands, or to a dead letter with the reason. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ValidationError

from contracts import topics
from contracts.hotline import Feedback, OrderAction, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import TaskFeedback
from services.common.crypto import mask_text
from services.district.routing.geo import plausibility_error

MAX_MESSAGE_BYTES = 256 * 1024
#: how far in the future a sender's clock may be before its timestamp is refused.
CLOCK_SKEW = timedelta(minutes=10)

FEEDS = {
    topics.WORKORDERS: "hotline12345",
    topics.ROADCHIEF_REPORTS: "roadchief",
    topics.HOTLINE_FEEDBACK: "feedback",
    topics.TASK_FEEDBACK: "task_feedback",
}
_MODELS: dict[str, type[BaseModel]] = {
    topics.WORKORDERS: WorkOrder,
    topics.ROADCHIEF_REPORTS: Report,
    topics.HOTLINE_FEEDBACK: Feedback,
    topics.TASK_FEEDBACK: TaskFeedback,
}

#: the sender's timestamps of each message type, which must not lie in the future
_STAMP_FIELDS = ("sent_at", "reported_at", "visited_at", "at")
#: the free text of each message type, where a phone number (the caller's or anyone's) may be
#: written; kept masked (a merged report keeps its original sealed, `case_reporters.message`)
_FREE_TEXT: dict[type[BaseModel], tuple[str, ...]] = {
    WorkOrder: ("title", "content", "address", "note"),
    Report: ("road", "segment", "description"),
    Feedback: ("comment",),
    TaskFeedback: ("note", "result.summary"),
}
_STAMPS: dict[type[BaseModel], tuple[str, ...]] = {
    model: tuple(n for n in _STAMP_FIELDS if n in model.model_fields) for model in _MODELS.values()
}


class Invalid(Exception):
    """A message that cannot be accepted; `kind` is a short machine-readable reason."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass(frozen=True, slots=True)
class Command:
    """One accepted inbound message, with its idempotency key and Kafka timestamp."""

    feed: str
    key: str
    message: BaseModel
    origin_ms: int | None

    @property
    def opens_case(self) -> bool:
        m = self.message
        return isinstance(m, Report) or (
            isinstance(m, WorkOrder) and m.action is OrderAction.DISPATCH
        )

    def case_lookup(self) -> tuple[str, str] | str:
        """(source, source_ref) for upstream messages, or the case number for unit feedback."""
        m = self.message
        if isinstance(m, TaskFeedback):
            return m.case_no
        if isinstance(m, Report):
            return ("roadchief", m.report_id)
        assert isinstance(m, WorkOrder | Feedback)
        return ("hotline12345", m.order_no)


def parse(record: ConsumerRecord[bytes, bytes], now: datetime) -> Command:
    """Validate one record at the boundary; raise Invalid with the reason."""
    model = _MODELS.get(record.topic)
    if model is None:
        raise Invalid("unknown_topic", f"no handler for topic {record.topic}")
    raw = record.value or b""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Invalid("oversized", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("not_utf8", str(exc)) from None
    try:
        message = model.model_validate_json(text)
    except ValidationError as exc:
        raise _invalid(exc) from None
    _check_semantics(message, now)
    message = _masked(message)
    return Command(FEEDS[record.topic], _idempotency_key(message), message, record.timestamp)


def _masked(m: BaseModel, fields: tuple[str, ...] | None = None) -> BaseModel:
    """`m` with every phone number in its free text masked (the same object when none is);
    `fields` are its free-text fields, `a.b` naming field `b` of the model in field `a`."""
    update: dict[str, object] = {}
    for path in _FREE_TEXT[type(m)] if fields is None else fields:
        name, _, inner = path.partition(".")
        value = getattr(m, name)
        if isinstance(value, BaseModel) and inner:
            masked: object = _masked(value, (inner,))
        else:
            masked = mask_text(value) if isinstance(value, str) else value
        if masked is not value:
            update[name] = masked
    return m.model_copy(update=update) if update else m


def _invalid(exc: ValidationError) -> Invalid:
    """Tell apart broken JSON, a JSON value that is not an object, and a schema violation."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return Invalid("not_json", first["msg"])
    if first["type"] == "model_type" and not first["loc"]:
        return Invalid("not_object", "expected a JSON object")
    return Invalid("schema", _summary(exc))


def _summary(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)


def _idempotency_key(m: BaseModel) -> str:
    if isinstance(m, WorkOrder):
        return f"wo:{m.order_no}:{m.action}:{m.revision}"
    if isinstance(m, Report):
        return f"rc:{m.report_id}"
    if isinstance(m, Feedback):
        return f"hf:{m.order_no}:{m.visited_at.isoformat()}"
    assert isinstance(m, TaskFeedback)
    return f"tf:{m.feedback_id}"


def _check_semantics(m: BaseModel, now: datetime) -> None:
    location = getattr(m, "location", None) if "location" in type(m).model_fields else None
    if location is not None:
        reason = plausibility_error(location.lon, location.lat)
        if reason:
            raise Invalid("bad_location", reason)
    latest = now + CLOCK_SKEW
    for name in _STAMPS[type(m)]:
        stamp = getattr(m, name)
        if stamp is not None and stamp > latest:
            raise Invalid("future_timestamp", f"{name} {stamp.isoformat()} is in the future")
