"""The case state machine: which event may move a case from which state to which; and the
states of a task. Pure."""

from __future__ import annotations

from enum import StrEnum


class CaseState(StrEnum):
    RECEIVED = "received"
    TRIAGE = "triage"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    RETURNED = "returned"
    ESCALATED = "escalated"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"
    NOT_OURS = "not_ours"
    PARKED = "parked"
    REJECTED = "rejected"
    MERGED = "merged"


class TaskState(StrEnum):
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    RETURNED = "returned"  # handed back (returned or escalated)
    WITHDRAWN = "withdrawn"
    PARKED = "parked"


class ExceptionKind(StrEnum):
    """The exception paths the district decides and keeps a ledger of."""

    RETURN = "return"  # 退单 / 回退: a unit hands its task back
    EXTENSION = "extension"  # 延期
    PARKING = "parking"  # 缓办 / 挂账
    CANCELLATION = "cancellation"  # 作废: the order returned upstream, not handled


class ExceptionDecision(StrEnum):
    APPROVED = "approved"
    REFUSED = "refused"
    AUTO = "auto"  # approved by a routing rule (`auto_redispatch_returns`), no operator


#: task states in which the unit still works on the task (its deadlines run)
ACTIVE_TASK = frozenset({TaskState.ASSIGNED, TaskState.ACCEPTED, TaskState.CONTACTED})


#: the case state work resumes in (unparked, a return refused), by its lead task's state
RESUMED = {
    TaskState.ASSIGNED: CaseState.DISPATCHED,
    TaskState.ACCEPTED: CaseState.ACCEPTED,
    TaskState.CONTACTED: CaseState.IN_PROGRESS,
}


class Event(StrEnum):
    OPENED = "opened"
    DISPATCHED = "dispatched"
    TO_TRIAGE = "to_triage"
    NOT_OURS = "not_ours"
    SELF_HANDLED = "self_handled"
    ACCEPTED = "accepted"
    CONTACTED = "contacted"
    PROGRESSED = "progressed"
    RESOLVED = "resolved"
    RETURNED = "returned"
    ESCALATED = "escalated"
    EXTENSION_REQUESTED = "extension_requested"
    CLOSED = "closed"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"
    URGED = "urged"
    SUPPLEMENTED = "supplemented"
    FOLLOWED_UP = "followed_up"
    JOINT_DISPATCHED = "joint_dispatched"
    CO_REPORTED = "co_reported"
    EXTENSION_APPROVED = "extension_approved"
    EXTENSION_REFUSED = "extension_refused"
    SUPERVISED = "supervised"
    DEADLINE_WARNING = "deadline_warning"
    PARKED = "parked"
    UNPARKED = "unparked"
    VERIFIED = "verified"
    VERIFY_FAILED = "verify_failed"
    REJECTED = "rejected"
    MERGED = "merged"
    RECLASSIFIED = "reclassified"
    RETURN_APPROVED = "return_approved"
    RETURN_REFUSED = "return_refused"
    CO_UNITS_ADDED = "co_units_added"
    REROUTED = "rerouted"


TERMINAL = frozenset(
    {
        CaseState.CLOSED,
        CaseState.WITHDRAWN,
        CaseState.NOT_OURS,
        CaseState.REJECTED,
        CaseState.MERGED,
    }
)
#: states in which a unit holds the case and works on it.
WORKING = frozenset(
    {CaseState.DISPATCHED, CaseState.ACCEPTED, CaseState.IN_PROGRESS, CaseState.REOPENED}
)
OPEN = frozenset(CaseState) - TERMINAL
#: states in which a case waits for a district operator
AT_DISTRICT = frozenset({CaseState.TRIAGE, CaseState.RETURNED, CaseState.ESCALATED})
_ANY_OPEN = object()  # marker: the event keeps the state it finds

_S = CaseState
#: event -> {from state: to state | _ANY_OPEN | the set of targets the caller chooses from}
TRANSITIONS: dict[Event, dict[CaseState | None, CaseState | object]] = {
    Event.OPENED: {None: _S.RECEIVED},
    Event.DISPATCHED: {
        s: _S.DISPATCHED for s in (_S.RECEIVED, _S.TRIAGE, _S.RETURNED, _S.ESCALATED)
    },
    Event.TO_TRIAGE: {s: _S.TRIAGE for s in (_S.RECEIVED, _S.RETURNED, _S.ESCALATED)},
    Event.JOINT_DISPATCHED: {s: _S.DISPATCHED for s in (_S.ESCALATED, _S.TRIAGE, _S.RECEIVED)},
    Event.CO_REPORTED: {s: _ANY_OPEN for s in (*WORKING, _S.RESOLVED)},
    Event.EXTENSION_APPROVED: {s: _ANY_OPEN for s in WORKING},
    Event.EXTENSION_REFUSED: {s: _ANY_OPEN for s in WORKING},
    Event.SUPERVISED: {s: _ANY_OPEN for s in (*WORKING, _S.TRIAGE, _S.ESCALATED)},
    Event.DEADLINE_WARNING: {s: _ANY_OPEN for s in WORKING},
    Event.PARKED: {s: _S.PARKED for s in (*WORKING, _S.TRIAGE, _S.ESCALATED)},
    Event.UNPARKED: {_S.PARKED: frozenset({_S.TRIAGE, _S.DISPATCHED, _S.ACCEPTED, _S.IN_PROGRESS})},
    Event.VERIFIED: {_S.RESOLVED: _S.CLOSED},
    Event.VERIFY_FAILED: {_S.RESOLVED: _S.REOPENED},
    Event.REJECTED: {s: _S.REJECTED for s in (_S.RECEIVED, _S.TRIAGE, _S.RETURNED, _S.ESCALATED)},
    Event.MERGED: {s: _S.MERGED for s in (_S.RECEIVED, _S.TRIAGE, *WORKING)},
    # a district operator's new category: back to received, routed again at once
    Event.RECLASSIFIED: {s: _S.RECEIVED for s in (*AT_DISTRICT, *WORKING)},
    # a 12345 supplement moved the case to another owner's territory: routed again at once
    Event.REROUTED: {s: _S.RECEIVED for s in (_S.TRIAGE, *WORKING)},
    Event.NOT_OURS: {_S.RECEIVED: _S.NOT_OURS, _S.TRIAGE: _S.NOT_OURS},
    Event.SELF_HANDLED: {_S.RECEIVED: _S.CLOSED},
    Event.ACCEPTED: {_S.DISPATCHED: _S.ACCEPTED, _S.REOPENED: _S.ACCEPTED},
    Event.CONTACTED: {
        _S.DISPATCHED: _S.IN_PROGRESS,
        _S.ACCEPTED: _S.IN_PROGRESS,
        _S.REOPENED: _S.IN_PROGRESS,
        _S.IN_PROGRESS: _S.IN_PROGRESS,
    },
    Event.PROGRESSED: {s: _S.IN_PROGRESS for s in WORKING},
    Event.RESOLVED: {s: _S.RESOLVED for s in WORKING},
    # the district takes a return (the case is then dispatched again, or waits in triage) or
    # refuses it: the work resumes where it stood
    Event.RETURN_APPROVED: {_S.RETURNED: _S.RETURNED},
    Event.RETURN_REFUSED: {
        _S.RETURNED: frozenset({_S.DISPATCHED, _S.ACCEPTED, _S.IN_PROGRESS, _S.REOPENED})
    },
    Event.CO_UNITS_ADDED: {s: _ANY_OPEN for s in WORKING},
    Event.RETURNED: {s: _S.RETURNED for s in WORKING},
    Event.ESCALATED: {s: _S.ESCALATED for s in WORKING},
    Event.EXTENSION_REQUESTED: {s: _ANY_OPEN for s in WORKING},
    Event.CLOSED: {_S.RESOLVED: _S.CLOSED},
    Event.REOPENED: {_S.RESOLVED: _S.REOPENED, _S.CLOSED: _S.REOPENED},
    Event.WITHDRAWN: {s: _S.WITHDRAWN for s in OPEN},
    Event.URGED: {s: _ANY_OPEN for s in OPEN},
    Event.SUPPLEMENTED: {s: _ANY_OPEN for s in OPEN},
    Event.FOLLOWED_UP: {_S.RESOLVED: _S.RESOLVED, _S.CLOSED: _S.CLOSED},
}


class IllegalTransition(ValueError):
    """The event cannot happen in the case's current state; `reason` says why."""

    def __init__(self, state: CaseState | None, event: Event) -> None:
        self.state, self.event = state, event
        allowed = ", ".join(sorted(str(s) for s in TRANSITIONS[event] if s is not None)) or "none"
        super().__init__(
            f"cannot apply {event} to a case in state {state}; allowed from: {allowed}"
        )


def next_state(state: CaseState | None, event: Event, target: CaseState | None = None) -> CaseState:
    """The state after `event`, or IllegalTransition. Events with several possible targets
    (unparking resumes where the work stood) take the caller's `target`."""
    allowed = TRANSITIONS[event].get(state)
    if allowed is None:
        raise IllegalTransition(state, event)
    if allowed is _ANY_OPEN:
        assert state is not None
        return state
    if isinstance(allowed, frozenset):
        if target is None or target not in allowed:
            raise IllegalTransition(state, event)
        return target
    assert isinstance(allowed, CaseState)
    return allowed


def allowed_events(state: CaseState | None) -> frozenset[Event]:
    return frozenset(e for e, table in TRANSITIONS.items() if state in table)
