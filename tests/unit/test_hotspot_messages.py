"""Hotspots: which case events count as reports, and the messages a decision sends (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from contracts.hotspots import Hotspot, HotspotKind
from services.common.config import ROOT
from services.district.hotspots import messages
from services.district.hotspots.areas import block, cell_bbox, cell_of, near, place_of
from services.district.hotspots.counting import report_event
from services.district.hotspots.detector import Judged, Step, Verdict
from services.district.hotspots.plan import Decision, Key
from services.district.hotspots.rules import load

AT = datetime(2026, 11, 27, 2, tzinfo=UTC)


def _event(type_: str, district: str = "310106") -> bytes:
    return json.dumps(
        {
            "schema": "cityops.case-event/v1",
            "event_id": "310106-20261127-0000001:1",
            "case_no": "310106-20261127-0000001",
            "type": type_,
            "at": AT.isoformat(),
            "district_code": district,
        }
    ).encode()


def test_opened_and_merged_reports_count_nothing_else_does() -> None:
    assert report_event(_event("opened"), "310106") == (
        "310106-20261127-0000001:1",
        "310106-20261127-0000001",
        AT,
    )
    assert report_event(_event("merged_report"), "310106") is not None
    assert report_event(_event("accepted"), "310106") is None
    assert report_event(_event("opened", "310104"), "310106") is None  # another district's
    assert report_event(b'{"type": "opened"', "310106") is None  # not JSON: not ours to count
    assert report_event(None, "310106") is None


def test_places_blocks_and_reach() -> None:
    assert place_of(121.45152, 31.25006, "x") == place_of(121.45155, 31.25003, "y")  # ~4 m
    assert place_of(None, None, "静安区 南京西路1266号 附近") == "a南京西路1266号"
    assert place_of(None, None, "静安区南京西路某小区") is None  # names no building
    c = cell_of(121.45152, 31.25006)
    assert c in block(c) and len(set(block(c))) == 9
    assert near(c, c + 2_000_000 + 2) and not near(c, c + 3)
    west, south, east, north = cell_bbox(block(c))
    assert round((east - west) / 0.002) == 3 and round((north - south) / 0.002) == 3


def test_a_decision_becomes_the_next_message_of_its_stream() -> None:
    th = load(ROOT / "deploy" / "reference")
    rule = th.of(HotspotKind.CLUSTER)[0]
    judged = Judged(rule, 30, 0.2, 53.5, True, True, AT - timedelta(hours=1), AT)
    cell = str(cell_of(121.45152, 31.25006))
    d = Decision(
        Step.OPEN, Key(HotspotKind.CLUSTER, cell, "0203"), Verdict(judged, True, True), None
    )
    reports = [
        {"case_no": f"C{i % 4}", "street_code": "310106015000", "lon": 121.4515, "lat": 31.25}
        for i in range(30)
    ]
    where = messages.Where.of(reports, th.sample_cases)
    assert where.case_nos == ["C0", "C1", "C2", "C3"] and where.radius_m == 0.0
    row = messages.row(d, where, AT, "310106", "HS1", None)
    sent = Hotspot.model_validate_json(messages.message(row, d.step, "非机动车乱停放").value)
    assert (sent.status, sent.seq, sent.count, sent.street_code) == ("open", 1, 30, "310106015000")
    closing = Decision(Step.CLOSE, d.key, Verdict(judged, False, False), None)
    later = messages.row(closing, messages.Where.of([], 10), AT, "310106", "HS1", row)
    assert (later["seq"], later["state"], later["case_nos"]) == (2, "closed", where.case_nos)
