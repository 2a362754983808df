"""Dead letters an operator can work with: `cityops deadletter list | show | replay`. A bug
dead-letters an order; once it is fixed, the replay opens the case, and is recorded so that
it is not repeated by accident."""

from __future__ import annotations

import json
import os
from typing import Any

import asyncpg
import pytest

from contracts import topics
from services.common.config import Settings
from services.district.app import create_app as district_app
from services.district.decisions import opening
from tests.integration.test_intake import BUREAU, SMOKE
from tests.support import ORDERS, Topics, run_cityops, running

PHONE = "13800000001"  # the caller of the sample order SMOKE


async def cityops(settings: Settings, *argv: str, key: bool = True) -> tuple[int, str, str]:
    """Run the `cityops` command against the test's broker and database."""
    env = {
        **os.environ,
        "CITYOPS_DATABASE_URL": settings.database_url,
        "CITYOPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CITYOPS_PHONE_KEY": "",
        "CITYOPS_PHONE_KEY_FILE": settings.phone_key_file if key else "/nonexistent/phone.key",
        "USER": "值班长张三",
    }
    return await run_cityops(env, *argv)


async def unseals(settings: Settings) -> list[tuple[str, str, str]]:
    """Who unsealed which dead letter's original, and why (`deadletter_unseals`)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            'SELECT topic, "partition", "offset", unsealed_by, reason FROM deadletter_unseals'
            " ORDER BY id"
        )
    finally:
        await conn.close()
    return [(f"{r[0]}/{r[1]}/{r[2]}", r["unsealed_by"], r["reason"]) for r in rows]


async def test_a_dead_letter_replayed_after_the_fix_opens_its_case(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    classify = opening.classify

    def buggy(hint: str, ref: Any) -> Any:
        if hint == "油烟污染":
            raise KeyError("油烟污染")  # the bug: this category makes the domain code fail
        return classify(hint, ref)

    monkeypatch.setattr(opening, "classify", buggy)
    order = {**ORDERS[SMOKE], "order_no": "HL-DL-1"}
    async with running(district_app(settings)), Topics(settings) as t:
        await t.publish(topics.WORKORDERS, "HL-DL-1", order)
        [letter] = await t.wait_for(topics.DEADLETTER, lambda m: True, "the dead letter")
        assert letter["error"]["kind"] == "internal_error" and letter["redacted"]
        ref = f"{letter['topic']}/{letter['partition']}/{letter['offset']}"

        code, out, _ = await cityops(settings, "deadletter", "list", "--kind", "internal_error")
        assert code == 0 and out.startswith(ref) and PHONE not in out
        code, out, _ = await cityops(settings, "deadletter", "list", "--kind", "schema")
        assert code == 0 and out == ""
        code, out, _ = await cityops(settings, "deadletter", "list", "--since", "1h")
        assert code == 0 and ref in out

        code, out, err = await cityops(settings, "deadletter", "show", ref, key=False)
        shown = json.loads(out)
        assert code == 0 and shown["original"] is None and "no phone key" in err
        assert PHONE not in out and "138****0001" in shown["value"]
        code, out, err = await cityops(settings, "deadletter", "show", ref)
        assert code == 0 and json.loads(out)["original"] is None and "--reason" in err
        assert PHONE not in out
        code, out, _ = await cityops(settings, "deadletter", "show", ref, "--reason", "核对来源")
        assert code == 0 and json.loads(json.loads(out)["original"]) == order
        assert await unseals(settings) == [(ref, "值班长张三", "核对来源")]

        code, out, _ = await cityops(settings, "deadletter", "replay", ref, key=False)
        assert code == 1 and "no phone key" in out  # masked bytes are never replayed

        monkeypatch.setattr(opening, "classify", classify)  # the fix
        code, out, _ = await cityops(
            settings, "deadletter", "replay", ref, "--note", "classify fixed"
        )
        assert code == 0 and f"{ref}\treplayed to {topics.WORKORDERS}/" in out, out
        [task] = await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["case"]["source_ref"] == "HL-DL-1",
            "the case opened by the replay",
        )
        assert task["kind"] == "assigned"

        code, out, _ = await cityops(settings, "deadletter", "replay", ref)
        assert code == 1 and "skipped: replayed by 值班长张三" in out
        code, out, _ = await cityops(settings, "deadletter", "replay", "--all", "--force")
        assert code == 0 and "replayed to" in out  # forced: the case is not opened twice

    conn = await asyncpg.connect(settings.database_url)
    try:
        done = [dict(r) for r in await conn.fetch("SELECT * FROM deadletter_replays ORDER BY id")]
        opened = await conn.fetchval("SELECT count(*) FROM cases WHERE source_ref = 'HL-DL-1'")
    finally:
        await conn.close()
    assert [(r["replayed_by"], r["kind"], r["note"], r["forced"]) for r in done] == [
        ("值班长张三", "internal_error", "classify fixed", False),
        ("值班长张三", "internal_error", "", True),
    ]
    assert [(r["topic"], r["partition"], r["offset"]) for r in done] == [
        (letter["topic"], letter["partition"], letter["offset"])
    ] * 2
    assert opened == 1
