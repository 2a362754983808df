"""Opening a case from a new 12345 order or road-chief report: classified, located, then
routed (or closed at once when the road chief handled it on site, or answered as not this
district's). Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from contracts.common import ANONYMOUS, mask_phone
from contracts.hotline import ReplyKind, WorkOrder
from contracts.roadchief import Report
from services.district.cases.lifecycle import CaseState, Event
from services.district.cases.model import CaseRec, Changes
from services.district.decisions.context import Context
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.log import CaseLog
from services.district.routing.edge import TRIAGE, Placement, place
from services.district.routing.geo import to_wgs84
from services.district.routing.reference import SHANGHAI_DISTRICTS, Category
from services.district.routing.rules import classify, effective_urgency


class Opening:
    def __init__(self, ctx: Context, log: CaseLog, dispatch: Dispatch) -> None:
        self.ctx, self.log, self.dispatch = ctx, log, dispatch

    def open_order(
        self, order: WorkOrder, case_no: str, now: datetime, origin_ms: int | None, ch: Changes
    ) -> CaseRec:
        ref = self.ctx.ref
        category, matched = classify(order.category_hint, ref)
        case = self._order_case(order, category, case_no, now)
        self._open(case, now, ch, {"category_matched": matched, "hint": order.category_hint})
        # not ours only when sure (routing/edge.py); no coordinates: the street the address
        # names, if it names exactly one
        placed = place(ref, self.ctx.edge, case.lon, case.lat, order.address, order.district_code)
        self.record_edge(case, placed, now, ch)
        if placed.not_ours:
            self.not_ours(case, placed.district_code or "", now, ch)
            return case
        case.street_code = placed.street_code
        self.dispatch.route(case, now, origin_ms, ch)
        return case

    def record_edge(self, case: CaseRec, placed: Placement, now: datetime, ch: Changes) -> None:
        """Counted and recorded when the case lay outside or named another district."""
        if placed.outcome is None:
            return
        m, labels = self.ctx.metrics, (case.source, placed.outcome, placed.reason or "")
        self.log.after(ch, lambda: m.district_edge.labels(*labels).inc())
        if not placed.not_ours:
            self.log.record(
                case, "near_edge", now, "routing", ch, placed.street_code, placed.data()
            )

    def _order_case(
        self, order: WorkOrder, category: Category, case_no: str, now: datetime
    ) -> CaseRec:
        lon = lat = None
        if order.location is not None:
            lon, lat = to_wgs84(order.location.lon, order.location.lat, order.location.crs)
        phone = order.caller.phone
        return CaseRec(
            case_no=case_no,
            district_code=self.ctx.ref.district_code,
            source="hotline12345",
            source_ref=order.order_no,
            state=CaseState.RECEIVED,
            category_code=category.code,
            category_name=category.name,
            urgency=effective_urgency(order.urgency, category),
            title=order.title,
            description=order.content,
            address=order.address,
            received_at=order.received_at,
            opened_at=now,
            request_type=order.request_type,
            lon=lon,
            lat=lat,
            caller_name=ANONYMOUS if order.caller.anonymous else order.caller.name,
            caller_phone_sealed=self.ctx.vault.seal(phone) if phone else None,
            caller_phone_masked=mask_phone(phone),
            caller_anonymous=order.caller.anonymous,
            caller_callback=order.caller.callback,
            revision=order.revision,
            municipal_due=order.due_at,
        )

    def open_report(
        self, report: Report, case_no: str, now: datetime, origin_ms: int | None, ch: Changes
    ) -> CaseRec:
        ref = self.ctx.ref
        category, matched = classify(report.category_hint, ref)
        lon, lat = to_wgs84(report.location.lon, report.location.lat, report.location.crs)
        # a road chief's report is ours: far outside, a district operator decides (triage)
        placed = place(ref, self.ctx.edge, lon, lat, None)
        where = f"{report.road} {report.segment}".strip()
        case = CaseRec(
            case_no=case_no,
            district_code=ref.district_code,
            source="roadchief",
            source_ref=report.report_id,
            state=CaseState.RECEIVED,
            category_code=category.code,
            category_name=category.name,
            urgency=effective_urgency(report.urgency, category),
            title=where,
            description=report.description,
            address=where,
            received_at=report.reported_at,
            opened_at=now,
            lon=lon,
            lat=lat,
            street_code=placed.street_code,
        )
        self._open(
            case,
            now,
            ch,
            {
                "category_matched": matched,
                "road_chief": report.road_chief.id,
                "road_chief_unit": report.road_chief.unit_code,  # whose 自处置率 it counts in
            },
        )
        if placed.not_ours:  # far outside: kept for triage, counted as such
            placed = replace(placed, not_ours=False, outcome=TRIAGE)
        self.record_edge(case, placed, now, ch)
        if report.handled_on_site:
            self._handled_on_site(case, report, now, ch)
            return case
        self.dispatch.route(case, now, origin_ms, ch)
        return case

    def _handled_on_site(self, case: CaseRec, report: Report, now: datetime, ch: Changes) -> None:
        unit = report.road_chief.unit_code
        case.resolved_at = case.closed_at = now
        case.closed_on_time = True
        self.log.transition(case, Event.SELF_HANDLED, now, report.road_chief.id, ch, unit_code=unit)
        m = self.ctx.metrics
        self.log.after(ch, lambda: m.cases_closed.labels(unit, "true").inc())

    def _open(self, case: CaseRec, now: datetime, ch: Changes, data: dict[str, Any]) -> None:
        ch.new_cases.append(case)
        self.log.transition(case, Event.OPENED, now, "intake", ch, data=data)
        m = self.ctx.metrics
        self.log.after(ch, lambda: m.cases_opened.labels(case.source).inc())
        stage = (now - case.received_at).total_seconds()
        self.log.after(ch, lambda: m.stage_duration.labels("dispatch").observe(max(stage, 0)))

    def not_ours(self, case: CaseRec, district: str, now: datetime, ch: Changes) -> None:
        named = SHANGHAI_DISTRICTS.get(district) if district != case.district_code else None
        text = (
            f"非本区事项，请转{named}。" if named else "经核实，事发地点不在本区范围，请重新派发。"
        )
        data = {"district_code": district, "named": named}
        event = self.log.transition(case, Event.NOT_OURS, now, "intake", ch, data=data)
        self.log.reply_center(case, event, ReplyKind.NOT_OUR_DISTRICT, text, ch)
