"""The demo feed's generator (scripts/feedgen.py) produces messages the contracts accept."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from feedgen import FeedGenerator

from contracts.hotline import Feedback, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import FeedbackAction, Task, TaskFeedback
from services.district.routing.geo import haversine_m, to_wgs84

NOW = datetime(2026, 11, 27, 9, 20, tzinfo=timezone(timedelta(hours=8)))
REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference"
N = 500


def _orders(seed: int = 7) -> list[WorkOrder]:
    gen = FeedGenerator(seed, reference_dir=REFERENCE)
    return [WorkOrder.model_validate(gen.work_order(NOW + timedelta(seconds=i))) for i in range(N)]


def _anchors() -> dict[str, list[tuple[float, float]]]:
    gen = FeedGenerator(0, reference_dir=REFERENCE)
    return gen.anchors


def test_work_orders_validate_and_vary() -> None:
    orders = _orders()
    assert len({o.order_no for o in orders}) == N
    assert {o.action.value for o in orders} == {"dispatch"}
    assert {o.revision for o in orders} == {1}
    assert len({o.category_hint for o in orders}) >= 15
    assert len({o.channel for o in orders}) >= 4
    requests = Counter(o.request_type.value for o in orders)
    assert requests.most_common(2)[0][0] in ("complaint", "help")
    urgency = Counter(o.urgency.value for o in orders)
    assert urgency["normal"] > N // 2 and urgency["urgent"] > 0 and urgency["critical"] > 0
    located = [o for o in orders if o.location is not None]
    assert {o.location.crs.value for o in located if o.location} == {"wgs84", "gcj02"}
    assert 0 < N - len(located) < N // 5
    outside = [o for o in orders if o.district_code != "310106"]
    assert 0 < len(outside) < N // 10
    assert all(not o.address.startswith("静安区") for o in outside)


def test_work_order_timestamps_and_caller() -> None:
    for order in _orders():
        assert order.sent_at.utcoffset() == timedelta(hours=8)
        assert timedelta(0) < order.sent_at - order.received_at <= timedelta(minutes=15)
        assert order.caller.phone.startswith("138") and len(order.caller.phone) == 11


def test_locations_lie_near_a_street_anchor() -> None:
    anchors = [p for points in _anchors().values() for p in points]
    for order in _orders():
        if order.location is None or order.district_code != "310106":
            continue
        lon, lat = to_wgs84(order.location.lon, order.location.lat, order.location.crs.value)
        assert min(haversine_m(lon, lat, a, b) for a, b in anchors) <= 260


def test_streets_covered() -> None:
    anchors = _anchors()
    streets = set()
    for order in _orders():
        if order.location is None or order.district_code != "310106":
            continue
        lon, lat = to_wgs84(order.location.lon, order.location.lat, order.location.crs.value)
        nearest = min(
            ((haversine_m(lon, lat, a, b), unit) for unit, pts in anchors.items() for a, b in pts)
        )
        streets.add(nearest[1])
    assert len(streets) >= 12


def test_road_chief_reports_validate() -> None:
    gen = FeedGenerator(11, reference_dir=REFERENCE)
    reports = [Report.model_validate(gen.road_chief_report(NOW)) for _ in range(N)]
    assert len({r.report_id for r in reports}) == N
    assert len({r.road_chief.unit_code for r in reports}) >= 10
    on_site = sum(r.handled_on_site for r in reports)
    assert N * 0.1 < on_site < N * 0.3
    assert {r.location.crs.value for r in reports} == {"wgs84", "gcj02"}


def test_followups_validate_and_are_consistent() -> None:
    gen = FeedGenerator(3, reference_dir=REFERENCE)
    followups = [Feedback.model_validate(gen.followup(f"HL{i}", NOW)) for i in range(N)]
    ratings = Counter(f.satisfaction.value for f in followups)
    assert {"satisfied", "basically_satisfied", "dissatisfied"} <= set(ratings)
    assert ratings["satisfied"] + ratings["basically_satisfied"] > N * 0.75
    for f in followups:
        assert f.resolved == (f.satisfaction.value in ("satisfied", "basically_satisfied"))


def _task() -> dict[str, object]:
    task = {
        "schema": "cityops.task/v1",
        "task_id": "C20261127-0001-T1",
        "case_no": "C20261127-0001",
        "kind": "assigned",
        "role": "lead",
        "unit_code": "310106012000",
        "deadlines": {
            "accept_by": NOW.isoformat(),
            "first_contact_by": NOW.isoformat(),
            "resolve_by": NOW.isoformat(),
        },
        "dispatched_at": NOW.isoformat(),
        "case": {
            "source": "hotline12345",
            "source_ref": "HL1",
            "category_code": "0106",
            "category_name": "油烟污染",
            "title": "t",
            "description": "d",
            "address": "a",
            "urgency": "normal",
            "district_code": "310106",
        },
    }
    Task.model_validate(task)
    return task


def test_unit_feedback_validates() -> None:
    gen = FeedGenerator(5, reference_dir=REFERENCE)
    task = _task()
    seen = set()
    for action in FeedbackAction:
        fb = TaskFeedback.model_validate(gen.unit_feedback(task, action.value, NOW))
        assert fb.missing_field() is None, action
        assert (fb.task_id, fb.case_no, fb.unit_code) == (
            task["task_id"],
            task["case_no"],
            task["unit_code"],
        )
        assert fb.note
        seen.add(fb.feedback_id)
    assert len(seen) == len(FeedbackAction)
    returned = gen.unit_feedback(task, "return", NOW)
    assert returned["reason"] == "not_our_territory"
    resolved = TaskFeedback.model_validate(gen.unit_feedback(task, "resolve", NOW))
    assert resolved.result is not None and resolved.result.resolved


def test_same_seed_same_output() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        gen = FeedGenerator(seed, reference_dir=REFERENCE)
        out = [gen.work_order(NOW) for _ in range(50)] + [gen.road_chief_report(NOW)]
        return [*out, gen.followup("HL1", NOW), gen.unit_feedback(_task(), "resolve", NOW)]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_a_demo_cluster_is_one_problem_within_sixty_metres() -> None:
    for seed in range(5):
        orders = [WorkOrder.model_validate(o) for o in FeedGenerator(seed).cluster(NOW)]
        assert len(orders) == 30 and len({o.order_no for o in orders}) == 30
        assert len({o.category_hint for o in orders}) == 1
        assert {o.district_code for o in orders} == {"310106"}
        points = [
            to_wgs84(o.location.lon, o.location.lat, o.location.crs) for o in orders if o.location
        ]
        assert all(haversine_m(*p, *q) <= 121 for p in points for q in points)
