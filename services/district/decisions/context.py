"""What every decision reads (reference data, working calendar, deadline policy, phone vault,
metrics, the not-ours margin), and the two ways a decision says no."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.crypto import PhoneVault
from services.common.metrics import Metrics
from services.district.deadlines.policy import DeadlinePolicy
from services.district.deadlines.workcal import WorkCalendar
from services.district.routing.edge import EdgePolicy
from services.district.routing.reference import Reference


@dataclass
class Context:
    """Shared by every group of decisions; `ref` is replaced when the routing rules change."""

    ref: Reference
    calendar: WorkCalendar
    policy: DeadlinePolicy
    vault: PhoneVault
    metrics: Metrics
    #: not ours only when sure (CITYOPS_NOT_OURS_MARGIN_M, CITYOPS_NEAR_EDGE)
    edge: EdgePolicy = field(default_factory=EdgePolicy)


class Refused(Exception):
    """The input is well-formed but not acceptable for this case (dead-lettered as refused)."""


class Forbidden(Exception):
    """The acting unit may not do this to the case (HTTP 403)."""


class Withheld(Exception):
    """Personal data no one may have: an anonymous caller's, or one who asked for no call-back
    (HTTP 403 with the reason)."""
