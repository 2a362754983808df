"""并案: a new report joins an open case of the same problem, an operator merges two cases or
splits a report out again. Pure. (Which open case a report duplicates: `intake.duplicates`.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.common import ANONYMOUS, mask_phone
from contracts.hotline import ReplyKind, WorkOrder
from contracts.roadchief import Report
from contracts.tasks import TaskKind
from services.district.cases import messages
from services.district.cases.lifecycle import TERMINAL, Event
from services.district.cases.model import CaseRec, Changes, ReporterRec, source_of
from services.district.decisions.context import Context, Refused
from services.district.decisions.log import CaseLog
from services.district.decisions.opening import Opening
from services.district.routing.geo import to_wgs84
from services.district.routing.rules import classify, effective_urgency, higher_urgency


class Merging:
    def __init__(self, ctx: Context, log: CaseLog, opening: Opening) -> None:
        self.ctx, self.log, self.opening = ctx, log, opening

    def duplicate_key(self, m: WorkOrder | Report) -> tuple[str, float, float] | None:
        """The category and WGS-84 point a new report would open its case with, to look for an
        open duplicate; None without a point or for another district's order."""
        district = self.ctx.ref.district_code
        if m.location is None or (isinstance(m, WorkOrder) and m.district_code != district):
            return None
        category, _ = classify(m.category_hint, self.ctx.ref)
        lon, lat = to_wgs84(m.location.lon, m.location.lat, m.location.crs)
        return category.code, lon, lat

    def join_report(self, case: CaseRec, m: WorkOrder | Report, now: datetime, ch: Changes) -> None:
        """The report joins the open case: one more reporter (kept), the urgency may rise to
        the report's, the units hear of it, a 12345 order is told which case it joined."""
        source, ref = source_of(m)
        before = case.urgency
        reported = effective_urgency(m.urgency, self.ctx.ref.categories[case.category_code])
        case.urgency = higher_urgency(before, reported)
        case.reporters += 1
        ch.reporters.append(self._reporter(case, m, now))
        if source == "hotline12345":
            case.merged_orders.append(ref)
        data = {
            "source": source,
            "source_ref": ref,
            "reporters": case.reporters,
            "urgency_before": before,
            "urgency_after": case.urgency,
        }
        unit = case.handling_unit()
        ev = self.log.record(case, "merged_report", now, "intake", ch, unit, data)
        self.log.tell_units(case, TaskKind.UPDATED, f"并案: {ref}，共{case.reporters}人反映", ch)
        if source == "hotline12345":
            center = self.ctx.ref.center
            text = f"经核实，与已受理案件{case.case_no}为同一问题，已并案办理。"
            ch.outbox.append(
                messages.reply_message(
                    case, ev, ReplyKind.ACCEPTED, center.unit_code, center.name, text, ref
                )
            )

    def _reporter(self, case: CaseRec, m: WorkOrder | Report, now: datetime) -> ReporterRec:
        """The joined report as kept: its phone sealed beside it, masked in the message."""
        source, ref = source_of(m)
        phone = m.caller.phone if isinstance(m, WorkOrder) else None
        message = m.model_dump(mode="json", by_alias=True)
        if phone:
            message["caller"]["phone"] = mask_phone(phone)
        if isinstance(m, WorkOrder) and m.caller.anonymous:
            message["caller"]["name"] = ANONYMOUS
        return ReporterRec(
            case.case_no,
            source,
            ref,
            mask_phone(phone) if phone else None,
            self.ctx.vault.seal(phone) if phone else None,
            now,
            message,
        )

    def kept_report(self, row: dict[str, Any]) -> WorkOrder | Report:
        """A joined report as it came, its phone unsealed (`row`: its `case_reporters` row)."""
        message, sealed = row["message"], row.get("caller_phone_sealed")
        if "merged_case" in message:
            raise Refused(f"{row['source_ref']} came with case {message['merged_case']}")
        if row["source"] != "hotline12345":
            return Report.model_validate(message)
        if sealed is not None:
            caller = {**message["caller"], "phone": self.ctx.vault.open(bytes(sealed))}
            message = {**message, "caller": caller}
        return WorkOrder.model_validate(message)

    def split(
        self,
        case: CaseRec,
        report: WorkOrder | Report,
        new_case_no: str,
        actor: str,
        reason: str,
        now: datetime,
        ch: Changes,
    ) -> CaseRec:
        """Undo a merge: the report leaves the case and opens its own, routed and dispatched
        like any new report."""
        source, ref = source_of(report)
        case.reporters = max(case.reporters - 1, 1)
        ch.split.append((source, ref))
        if ref in case.merged_orders:
            case.merged_orders.remove(ref)
        data = {"source": source, "source_ref": ref, "new_case_no": new_case_no, "reason": reason}
        self.log.record(case, "report_split", now, actor, ch, case.handling_unit(), data)
        if isinstance(report, WorkOrder):
            return self.opening.open_order(report, new_case_no, now, None, ch)
        return self.opening.open_report(report, new_case_no, now, None, ch)

    def merge_case(
        self, case: CaseRec, into: CaseRec, actor: str, reason: str, now: datetime, ch: Changes
    ) -> None:
        """By an operator: `case` reports the same problem as `into`; it ends as merged, its
        units' tasks are withdrawn, and `into` carries its reporters and answers its 12345
        orders (its own and those merged into it) as its own."""
        if case.case_no == into.case_no or into.state in TERMINAL:
            raise Refused(f"cannot merge {case.case_no} into {into.case_no} ({into.state})")
        note = f"并入{into.case_no}: {reason}"
        self.log.tell_units(case, TaskKind.WITHDRAWN, note, ch)
        data = {"into": into.case_no, "reason": reason}
        ev = self.log.transition(case, Event.MERGED, now, actor, ch, data=data)
        text, center = f"已并入工单{into.case_no}办理。", self.ctx.ref.center
        for order_no in case.orders():  # each order hears which case answers it now
            ch.outbox.append(
                messages.reply_message(
                    case, ev, ReplyKind.ACCEPTED, center.unit_code, center.name, text, order_no
                )
            )
        into.reporters += case.reporters
        into.merged_orders.extend(case.orders())
        ch.moved.append((case.case_no, into.case_no))
        ch.reporters.append(
            ReporterRec(
                into.case_no,
                case.source,
                case.source_ref,
                case.caller_phone_masked,
                case.caller_phone_sealed,
                now,
                {"merged_case": case.case_no},
            )
        )
        joined = {"case_no": case.case_no, "reporters": into.reporters, "reason": reason}
        self.log.record(into, "merged_case", now, actor, ch, into.handling_unit(), joined)
        self.log.tell_units(into, TaskKind.UPDATED, f"并案: {case.case_no}", ch)
