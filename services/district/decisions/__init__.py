"""What the district decides about a case, one module per group of decisions. Pure: every
decision mutates in-memory records and appends to `Changes`; the caller persists them in one
transaction and applies the after-commit work (metrics) once it has committed.

- `opening`: a new order or report opens a case; `dispatch`: a task for a unit (routing,
  manual triage, joint tasks, co-units added); `feedback`: the unit's actions on its task;
  `returns`: the district's decision on a return (退单); `upstream`: 12345's later actions and
  the follow-up visit; `operator`: extensions, supervision, verification, parking, rejection,
  the caller's phone; `merging`: 并案; `alarms`: deadlines falling due.
- `log.CaseLog`: how each of them records a transition, an event, a reply, the units told.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from services.district.decisions.alarms import Alarms
from services.district.decisions.context import Context
from services.district.decisions.dispatch import Dispatch
from services.district.decisions.feedback import UnitFeedback
from services.district.decisions.log import CaseLog
from services.district.decisions.merging import Merging
from services.district.decisions.opening import Opening
from services.district.decisions.operator import Operator
from services.district.decisions.returns import Returns
from services.district.decisions.upstream import Upstream
from services.district.routing.reference import Rule


class Decisions:
    """Every group of decisions over one shared context (composed, not inherited)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log = CaseLog(ctx)
        self.dispatch = Dispatch(ctx, self.log)
        self.opening = Opening(ctx, self.log, self.dispatch)
        self.returns = Returns(ctx, self.log, self.dispatch)
        self.feedback = UnitFeedback(ctx, self.log, self.dispatch, self.returns)
        self.upstream = Upstream(ctx, self.log, self.dispatch)
        self.operator = Operator(ctx, self.log, self.dispatch, self.upstream)
        self.merging = Merging(ctx, self.log, self.opening)
        self.alarms = Alarms(self.log, self.operator)

    def use_rules(self, rules: Mapping[tuple[str, str, str], Rule]) -> None:
        """Routing rules changed at run time: route new decisions by them."""
        self.ctx.ref = replace(self.ctx.ref, rules=rules)
