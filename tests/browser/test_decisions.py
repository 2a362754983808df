"""The district's decisions in real headless Chromium: a unit's return (退单), published as its
task feedback, waits in the decisions panel; the supervisor opens it, approves it to another
unit in the drawer; the panel empties, the timeline shows the approval, the new unit gets
the task and the month's return share counts it; then a co-unit is added through the drawer
(after the API's refusal of a unit already holding a task is shown) and gets its task. Also:
a co-unit's return replaced, a lead's refused (a reason required); a return sent where
routing suggests, a co-unit's dismissed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts import topics
from services.common.config import Settings
from services.district.app import create_app as district_app
from tests.browser.test_console import STEP_MS, closing_pages, shot, sign_in
from tests.support import Topics, case_record, dispatched, running, task_feedback

pytest.importorskip("playwright.async_api", reason="playwright is a dev extra")
pytestmark = pytest.mark.timeout(240)

SMOKE, BUREAU = "HL2026112700123", "310106-STHJ"  # 油烟: the ecology bureau
TIANMU, NANJING = "310106015000", "310106012000"  # 天目西路街道, 南京西路街道
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: the KPI tiles (and the exception shares) are re-read at most every 10 s
KPI_MS = 25_000


async def assigned(t: Topics, unit: str, case_no: str) -> dict[str, Any]:
    [task] = await t.wait_for(
        topics.task_topic(unit),
        lambda m: m["kind"] == "assigned" and m["case_no"] == case_no,
        f"{case_no} assigned to {unit}",
    )
    return task


async def submit(drawer: Any, says: str) -> None:
    await drawer.get_by_test_id("submit-action").click()
    await drawer.get_by_role("status").filter(has_text=says).wait_for(timeout=STEP_MS)


async def test_a_return_is_approved_to_another_unit_and_a_co_unit_added_in_the_drawer(
    settings: Settings, browser: Any
) -> None:
    async with (
        running(district_app(settings)) as district,
        Topics(settings) as t,
        closing_pages(browser),
    ):
        page = await browser.new_page()
        await sign_in(page, district)
        panel = page.get_by_test_id("decisions")
        await panel.filter(has_text="暂无待决事项").wait_for(timeout=STEP_MS)

        # the bureau returns its task: not its duty; the panel lists it with its reason
        task = await dispatched(t, SMOKE, BUREAU)
        no = task["case_no"]
        back = task_feedback(task, "return", datetime.now(SHANGHAI), reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, task["task_id"], back)
        row = panel.locator(f"li[data-case='{no}'][data-kind=return]")
        await row.wait_for(timeout=STEP_MS)
        text = await row.inner_text()
        assert "静安区生态环境局" in text and "非本单位职责" in text and "已等" in text
        assert await panel.get_by_test_id("decisions-count").inner_text() == "1"
        await shot(page, "console-district-decisions")

        # the supervisor opens it and approves it to 天目西路 (routing would say 南京西路)
        await row.click()
        drawer = page.get_by_test_id("drawer")
        await drawer.get_by_test_id("case-state").filter(has_text="已退回").wait_for()
        await drawer.locator("[data-action=return-decision]").click()
        assert "非本单位职责" in await drawer.get_by_test_id("pending-return").inner_text()
        await drawer.locator("[data-verdict=approve]").check()
        await drawer.get_by_test_id("redispatch-unit").select_option(TIANMU)
        await drawer.locator("textarea").fill("油烟点位在天目西路辖区")
        await shot(page, "console-district-return-decision")
        await submit(drawer, "退单审批：已提交")
        again = await assigned(t, TIANMU, no)
        assert again["role"] == "lead"

        # the panel empties; the timeline shows the approval with its reason, then the dispatch
        await panel.filter(has_text="暂无待决事项").wait_for(timeout=STEP_MS)
        assert await panel.locator("li").count() == 0
        await drawer.get_by_test_id("case-state").filter(has_text="待签收").wait_for()
        approval = drawer.locator(".timeline li", has_text="退单批准")
        await approval.filter(has_text="油烟点位在天目西路辖区").wait_for(timeout=STEP_MS)
        assert await drawer.locator("[data-action=return-decision]").count() == 0
        shares = page.get_by_test_id("exception-shares")
        await shares.locator("[data-testid=granted] td[data-kind=return]", has_text="1").wait_for(
            timeout=KPI_MS
        )

        # add a co-unit: the unit already holding the lead task is refused by the API, shown
        await drawer.locator("[data-action=add-co-units]").click()
        await drawer.get_by_test_id("co-units").select_option([TIANMU])
        await submit(drawer, "409 refused")
        await drawer.get_by_test_id("co-units").select_option([NANJING])
        await drawer.locator("textarea").fill("联勤联动：协助劝导")
        await submit(drawer, "增派协办：已提交")
        co = await assigned(t, NANJING, no)
        assert co["role"] == "co" and co["task_id"] != again["task_id"]
        await drawer.locator(".timeline li", has_text="增派协办").wait_for(timeout=STEP_MS)
        await drawer.locator(".tasks li", has_text="南京西路街道（协办）").wait_for()
        detail = await case_record(district, no)
        assert {(x["unit_code"], x["role"]) for x in detail["tasks"]} >= {
            (TIANMU, "lead"),
            (NANJING, "co"),
        }
        await shot(page, "console-district-co-units")


async def test_a_co_units_return_is_replaced_and_a_lead_return_refused_in_the_drawer(
    settings: Settings, browser: Any
) -> None:
    async with (
        running(district_app(settings)) as district,
        Topics(settings) as t,
        closing_pages(browser),
    ):
        page = await browser.new_page()
        await sign_in(page, district)
        panel, drawer = page.get_by_test_id("decisions"), page.get_by_test_id("drawer")
        lead = await dispatched(t, SMOKE, BUREAU)
        no = lead["case_no"]
        added = {"co_units": [NANJING], "actor": "sup-1", "reason": "联勤联动"}
        status, body = await district.post(f"/api/v1/cases/{no}/add-co-units", added)
        assert status == 200, body
        co = await assigned(t, NANJING, no)

        # the co-unit returns its task: "replace co-unit"; replaced by 天目西路 in the drawer
        now = datetime.now(SHANGHAI)
        back = task_feedback(co, "return", now, reason="not_our_territory")
        await t.publish(topics.TASK_FEEDBACK, co["task_id"], back)
        row = panel.locator(f"li[data-case='{no}'][data-kind=replace_co_unit]")
        await row.wait_for(timeout=STEP_MS)
        assert "南京西路街道" in await row.inner_text()
        await row.click()
        await drawer.locator("[data-action=return-decision]").click()
        assert await drawer.locator("[data-verdict=replace]").is_checked()
        await drawer.get_by_test_id("redispatch-unit").select_option(TIANMU)
        await drawer.locator("textarea").fill("由天目西路街道协助")
        await submit(drawer, "退单审批：已提交")
        replacement = await assigned(t, TIANMU, no)
        assert replacement["role"] == "co"
        await panel.filter(has_text="暂无待决事项").wait_for(timeout=STEP_MS)
        replaced = drawer.locator(".timeline li", has_text="协办退单批准")
        await replaced.filter(has_text="替换为 天目西路街道").wait_for(timeout=STEP_MS)

        # the lead returns it; refused, which needs a reason; the bureau is told why
        back = task_feedback(lead, "return", now, reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, lead["task_id"], back)
        await panel.locator(f"li[data-case='{no}'][data-kind=return]").click(timeout=STEP_MS)
        await drawer.locator("[data-action=return-decision]").click()
        await drawer.locator("[data-verdict=refuse]").check()
        assert await drawer.get_by_test_id("redispatch-unit").count() == 0
        await drawer.get_by_test_id("submit-action").click()
        reason = drawer.locator("textarea")
        assert await reason.evaluate("t => t.validity.valueMissing")  # not sent without one
        await reason.fill("油烟污染属生态环境局职责")
        await submit(drawer, "退单审批：已提交")
        [told] = await t.wait_for(
            topics.task_topic(BUREAU),
            lambda m: m["kind"] == "updated" and m["case_no"] == no,
            "the bureau told its return was refused",
        )
        assert told["reason"] == "return_refused" and "油烟污染属生态环境局职责" in told["note"]
        await panel.filter(has_text="暂无待决事项").wait_for(timeout=STEP_MS)
        refused = drawer.locator(".timeline li", has_text="退单未批准")
        await refused.filter(has_text="油烟污染属生态环境局职责").wait_for(timeout=STEP_MS)
        shares = page.get_by_test_id("exception-shares")
        await shares.locator("[data-testid=refused] td[data-kind=return]", has_text="1").wait_for(
            timeout=KPI_MS
        )
        await shot(page, "console-district-return-refused")


async def test_a_return_sent_where_routing_suggests_and_a_co_unit_dismissed(
    settings: Settings, browser: Any
) -> None:
    async with (
        running(district_app(settings)) as district,
        Topics(settings) as t,
        closing_pages(browser),
    ):
        page = await browser.new_page()
        await sign_in(page, district)
        panel, drawer = page.get_by_test_id("decisions"), page.get_by_test_id("drawer")
        lead = await dispatched(t, SMOKE, BUREAU)
        no = lead["case_no"]
        added = {"co_units": [TIANMU], "actor": "sup-1", "reason": "联勤联动"}
        status, body = await district.post(f"/api/v1/cases/{no}/add-co-units", added)
        assert status == 200, body
        co = await assigned(t, TIANMU, no)

        # the lead's return approved without a unit: where routing suggests (the category's
        # other owner for not_our_duty, 南京西路)
        now = datetime.now(SHANGHAI)
        back = task_feedback(lead, "return", now, reason="not_our_duty")
        await t.publish(topics.TASK_FEEDBACK, lead["task_id"], back)
        await panel.locator(f"li[data-case='{no}'][data-kind=return]").click(timeout=STEP_MS)
        await drawer.locator("[data-action=return-decision]").click()
        assert await drawer.get_by_test_id("redispatch-unit").input_value() == ""  # 按路由建议
        await drawer.locator("textarea").fill("确非生态环境局职责")
        await submit(drawer, "退单审批：已提交")
        again = await assigned(t, NANJING, no)
        assert again["role"] == "lead"
        await panel.filter(has_text="暂无待决事项").wait_for(timeout=STEP_MS)

        # the co-unit's return, dismissed: its task withdrawn (return taken), no replacement
        back = task_feedback(co, "return", now, reason="not_our_territory")
        await t.publish(topics.TASK_FEEDBACK, co["task_id"], back)
        row = panel.locator(f"li[data-case='{no}'][data-kind=replace_co_unit]")
        await row.click(timeout=STEP_MS)
        await drawer.locator("[data-action=return-decision]").click()
        await drawer.locator("[data-verdict=dismiss]").check()
        assert await drawer.get_by_test_id("redispatch-unit").count() == 0
        await drawer.locator("textarea").fill("无需协办")
        await submit(drawer, "退单审批：已提交")
        [taken] = await t.wait_for(
            topics.task_topic(TIANMU),
            lambda m: m["kind"] == "withdrawn" and m["case_no"] == no,
            "the co-unit's return taken",
        )
        assert taken["task_id"] == co["task_id"] and taken["reason"] == "returned"
        dismissed = drawer.locator(".timeline li", has_text="协办退单批准")
        await dismissed.filter(has_text="撤销该协办").wait_for(timeout=STEP_MS)
        await panel.filter(has_text="暂无待决事项").wait_for(timeout=STEP_MS)
        tasks = (await case_record(district, no))["tasks"]
        assert [x["unit_code"] for x in tasks if x["role"] == "co"] == [TIANMU]  # no other
