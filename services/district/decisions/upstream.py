"""What 12345 does to a case after opening it: supplement (`supplement.py`), urge, reopen,
withdraw (a new revision of the order), and the follow-up visit (回访) that closes or reopens
it. Pure."""

from __future__ import annotations

from datetime import datetime

from contracts.hotline import Feedback, OrderAction, ReplyKind, WorkOrder
from contracts.tasks import TaskKind, TaskReason
from services.district.cases.lifecycle import TERMINAL, CaseState, Event
from services.district.cases.model import CaseRec, Changes
from services.district.decisions.context import Context, Refused
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.log import CaseLog
from services.district.decisions.supplement import Supplement

_EVENTS = {
    OrderAction.SUPPLEMENT: Event.SUPPLEMENTED,
    OrderAction.URGE: Event.URGED,
    OrderAction.WITHDRAW: Event.WITHDRAWN,
    OrderAction.DISPATCH: Event.SUPPLEMENTED,
}
_TASK_KINDS = {Event.WITHDRAWN: TaskKind.WITHDRAWN, Event.URGED: TaskKind.URGED}


class Upstream:
    def __init__(self, ctx: Context, log: CaseLog, dispatch: Dispatch) -> None:
        self.ctx, self.log, self.dispatch = ctx, log, dispatch
        self.supplement = Supplement(ctx, log, dispatch)

    def order_action(self, case: CaseRec, order: WorkOrder, now: datetime, ch: Changes) -> bool:
        """Apply supplement / urge / reopen / withdraw; False when the revision is stale."""
        merged = order.order_no != case.source_ref  # an order merged into the case (并案)
        if not merged:
            if order.revision <= case.revision:
                return False
            case.revision = order.revision
        if order.action is OrderAction.REOPEN:
            unit = case.handling_unit() or case.street_code
            if unit is None:
                raise Refused("no unit has handled this case; nothing to reopen")
            reason = order.note or "12345 reopen"
            self.dispatch.task(case, unit, now, ch, reason=reason, reopened=True)
            return True
        if merged and order.action is OrderAction.WITHDRAW:
            self._leave(case, order, now, ch)
            return True
        if order.action is OrderAction.SUPPLEMENT and (not merged or case.state in TERMINAL):
            self.supplement.apply(case, order, now, ch)
            return True
        event = _EVENTS[order.action]
        lead = case.lead()
        data = {"order_revision": order.revision, "note": order.note or ""}
        if merged:
            data["order_no"] = order.order_no
        unit = lead.unit_code if lead else None
        ev = self.log.transition(case, event, now, "hotline12345", ch, data=data, unit_code=unit)
        kind = _TASK_KINDS.get(event, TaskKind.UPDATED)
        why = TaskReason.UPSTREAM if event is Event.URGED else None
        self.log.tell_units(case, kind, order.note or "", ch, why)
        if event is Event.WITHDRAWN:  # the orders merged into it are returned
            text = f"原工单{case.source_ref}已撤回，并案工单退回。"
            center = self.ctx.ref.center.unit_code
            self.log.reply(case, ev, ReplyKind.RETURNED, center, text, ch, merged_only=True)
        return True

    def _leave(self, case: CaseRec, order: WorkOrder, now: datetime, ch: Changes) -> None:
        """A merged order withdrawn by 12345 leaves the case; the case goes on for the rest."""
        case.merged_orders.remove(order.order_no)
        case.reporters = max(case.reporters - 1, 1)
        ch.split.append(("hotline12345", order.order_no))
        data = {"source": "hotline12345", "source_ref": order.order_no, "note": order.note or ""}
        self.log.record(case, "report_withdrawn", now, "hotline12345", ch, None, data)

    def followup(self, case: CaseRec, fb: Feedback, now: datetime, ch: Changes) -> None:
        """The citizen's verdict: dissatisfied reopens, satisfied closes a resolved case."""
        rating = fb.satisfaction.value
        data = {
            "resolved": fb.resolved,
            "satisfaction": rating,
            "comment": fb.comment,
            "order_no": fb.order_no,
        }
        self.log.transition(case, Event.FOLLOWED_UP, now, "hotline12345", ch, data=data)
        m = self.ctx.metrics
        self.log.after(ch, lambda: m.satisfaction.labels(rating).inc())
        unit = case.handling_unit() or ""
        if fb.reopens:
            reason = f"回访不满意: {fb.comment}"
            self.dispatch.task(case, unit, now, ch, reason=reason, reopened=True)
        elif fb.satisfaction.value != "unreachable" and case.state is CaseState.RESOLVED:
            self.close(case, unit, now, ch)

    def close(
        self,
        case: CaseRec,
        unit: str,
        now: datetime,
        ch: Changes,
        event: Event = Event.CLOSED,
        actor: str = "hotline12345",
    ) -> None:
        """Close the case, on time when it was resolved by the deadline it was first given
        (moved only by an approved extension: a reopen or re-dispatch does not restart it)."""
        due = case.due_by or case.resolve_by
        on_time = bool(case.resolved_at and due and case.resolved_at <= due)
        case.closed_at, case.closed_on_time = now, on_time
        data = {"on_time": on_time}
        self.log.transition(case, event, now, actor, ch, unit_code=unit, data=data)
        took, m = (now - case.opened_at).total_seconds(), self.ctx.metrics
        self.log.after(ch, lambda: m.cases_closed.labels(unit, str(on_time).lower()).inc())
        self.log.after(ch, lambda: m.stage_duration.labels("close").observe(took))
