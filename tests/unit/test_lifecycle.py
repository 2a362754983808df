"""The case state machine: every allowed transition and every refused one."""

from __future__ import annotations

import pytest

from services.district.cases.lifecycle import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    CaseState,
    Event,
    IllegalTransition,
    allowed_events,
    next_state,
)

ALLOWED = [(s, e) for e, table in TRANSITIONS.items() for s in table]
REFUSED = [(s, e) for e in Event for s in [None, *CaseState] if s not in TRANSITIONS[e]]


@pytest.mark.parametrize(("state", "event"), ALLOWED)
def test_allowed_transitions(state: CaseState | None, event: Event) -> None:
    allowed = TRANSITIONS[event][state]
    if isinstance(allowed, frozenset):  # the caller chooses the target among these
        for target in allowed:
            assert next_state(state, event, target) is target
        with pytest.raises(IllegalTransition):
            next_state(state, event)
        with pytest.raises(IllegalTransition):
            next_state(state, event, CaseState.CLOSED)
        return
    after = next_state(state, event)
    assert isinstance(after, CaseState)
    assert after is allowed or after is state


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_refused_transitions_say_why(state: CaseState | None, event: Event) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_state(state, event)
    assert str(event) in str(info.value) and "allowed from" in str(info.value)


def test_the_happy_loop() -> None:
    state = None
    path = [
        Event.OPENED,
        Event.DISPATCHED,
        Event.ACCEPTED,
        Event.CONTACTED,
        Event.RESOLVED,
        Event.FOLLOWED_UP,
        Event.CLOSED,
    ]
    seen = []
    for event in path:
        state = next_state(state, event)
        seen.append(state)
    assert seen == [
        CaseState.RECEIVED,
        CaseState.DISPATCHED,
        CaseState.ACCEPTED,
        CaseState.IN_PROGRESS,
        CaseState.RESOLVED,
        CaseState.RESOLVED,
        CaseState.CLOSED,
    ]


def test_reopen_goes_back_to_work() -> None:
    assert next_state(CaseState.RESOLVED, Event.REOPENED) is CaseState.REOPENED
    assert next_state(CaseState.REOPENED, Event.CONTACTED) is CaseState.IN_PROGRESS
    assert next_state(CaseState.REOPENED, Event.RESOLVED) is CaseState.RESOLVED


def test_events_that_keep_the_state() -> None:
    for state in OPEN:
        assert next_state(state, Event.URGED) is state
    assert next_state(CaseState.ACCEPTED, Event.EXTENSION_REQUESTED) is CaseState.ACCEPTED


def test_terminal_states_accept_nothing_but_reopen_after_close() -> None:
    for state in TERMINAL:
        events = allowed_events(state)
        assert events <= {Event.REOPENED, Event.FOLLOWED_UP}
    assert allowed_events(CaseState.NOT_OURS) == frozenset()


def test_parking_resumes_where_the_work_stood() -> None:
    assert next_state(CaseState.IN_PROGRESS, Event.PARKED) is CaseState.PARKED
    assert (
        next_state(CaseState.PARKED, Event.UNPARKED, CaseState.IN_PROGRESS) is CaseState.IN_PROGRESS
    )
    with pytest.raises(IllegalTransition):
        next_state(CaseState.PARKED, Event.ACCEPTED)


def test_joint_escalation_and_verification() -> None:
    assert next_state(CaseState.IN_PROGRESS, Event.ESCALATED) is CaseState.ESCALATED
    assert next_state(CaseState.ESCALATED, Event.JOINT_DISPATCHED) is CaseState.DISPATCHED
    assert next_state(CaseState.RESOLVED, Event.VERIFIED) is CaseState.CLOSED
    assert next_state(CaseState.RESOLVED, Event.VERIFY_FAILED) is CaseState.REOPENED
    with pytest.raises(IllegalTransition):
        next_state(CaseState.IN_PROGRESS, Event.VERIFIED)
