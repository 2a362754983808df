"""Personal data never in clear where it rests or travels: dead letters carry the phone masked
and the original sealed, raw inbound copies (parked messages, merged reports) keep it sealed,
and the phone key rotates with every sealed phone still readable."""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

import asyncpg

from contracts import topics
from services.common.config import Settings
from services.common.crypto import PhoneVault, load_vault
from services.district.app import create_app as district_app
from services.ops import keys
from tests.integration.test_intake import BUREAU, SMOKE, nearby, urge
from tests.support import ORDERS, Topics, running, wait_until
from tests.support import case_record as case

PHONE = "13800000001"  # the caller of the sample order SMOKE


async def rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_dead_letters_and_raw_copies_keep_the_phone_sealed(settings: Settings) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        bad = {**ORDERS[SMOKE], "order_no": "HL-BAD-1", "urgency": "whenever"}
        await t.publish(topics.WORKORDERS, "HL-BAD-1", bad)
        [letter] = await t.wait_for(topics.DEADLETTER, lambda m: True, "the dead letter")
        value = base64.b64decode(letter["value"])
        assert PHONE.encode() not in value and b"138****0001" in value
        assert letter["redacted"] is True and PHONE not in json.dumps(letter)
        original = load_vault(settings).open_bytes(base64.b64decode(letter["value_sealed"]))
        assert json.loads(original) == bad

        # an urge before its order: parked with the phone sealed, applied once the case opens
        await t.publish(topics.WORKORDERS, SMOKE, urge())
        await wait_until(
            lambda: rows(settings, "SELECT value, value_sealed FROM parked_messages"), "parked"
        )
        [parked] = await rows(settings, "SELECT value, value_sealed FROM parked_messages")
        assert urge()["caller"]["phone"] == PHONE
        assert PHONE.encode() not in parked["value"] and parked["value_sealed"]
        await t.publish(topics.WORKORDERS, SMOKE, ORDERS[SMOKE])
        await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "urged", "the parked urge applied"
        )

        # a merged report's kept message has the phone masked; split out, it is sealed again
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 60))
        await t.wait_for(topics.REPLIES, lambda m: m["order_no"] == "HL-DUP-1", "joined")
        [kept] = await rows(settings, "SELECT message::text AS m FROM case_reporters")
        assert "13900000077" not in kept["m"] and "139****0077" in kept["m"]
        [task] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["kind"] == "assigned", "the task"
        )
        status, split = await district.post(
            f"/api/v1/cases/{task['case_no']}/split",
            {"source_ref": "HL-DUP-1", "actor": "op", "reason": "不同饭店"},
        )
        assert status == 200, split
        [sealed] = await rows(
            settings,
            f"SELECT caller_phone_sealed FROM cases WHERE case_no = '{split['case_no']}'",
        )
        assert load_vault(settings).open(sealed["caller_phone_sealed"]) == "13900000077"


async def test_the_phone_key_rotates_and_every_sealed_phone_stays_readable(
    settings: Settings,
) -> None:
    async with running(district_app(settings)) as district, Topics(settings) as t:
        await t.publish(topics.WORKORDERS, SMOKE, ORDERS[SMOKE])
        [task] = await t.wait_for(
            topics.task_topic(BUREAU), lambda m: m["case"]["source_ref"] == SMOKE, "task"
        )
        await t.publish(topics.WORKORDERS, "HL-DUP-1", nearby("HL-DUP-1", 60))
        await t.wait_for(topics.REPLIES, lambda m: m["order_no"] == "HL-DUP-1", "joined")
        await t.publish(topics.WORKORDERS, "HL-LATE", urge("HL-LATE"))
        await wait_until(lambda: rows(settings, "SELECT id FROM parked_messages"), "parked")

    parser = argparse.ArgumentParser()
    keys.add_arguments(parser)
    assert await keys.main(settings, parser.parse_args(["rotate"])) == 0
    vault = load_vault(settings)
    assert vault.key_ids == [1, 2] and vault.current == 2
    sealed = [
        *(r["s"] for r in await rows(settings, "SELECT caller_phone_sealed AS s FROM cases")),
        *(
            r["s"]
            for r in await rows(settings, "SELECT caller_phone_sealed AS s FROM case_reporters")
        ),
    ]
    assert sealed and all(PhoneVault.key_id(s) == 2 for s in sealed)
    assert sorted(vault.open(s) for s in sealed) == ["13800000001", "13900000077"]
    [parked] = await rows(settings, "SELECT value_sealed FROM parked_messages")
    assert PhoneVault.key_id(parked["value_sealed"]) == 2

    async with running(district_app(settings)) as district:  # restarted with the new ring
        path = f"/api/v1/cases/{task['case_no']}/reveal-phone"
        status, body = await district.post(
            path, {"unit_code": BUREAU, "actor": "op", "reason": "回访"}
        )
        assert status == 200 and body["phone"] == PHONE, body
        assert (await case(district, task["case_no"]))["reporters"] == 2
