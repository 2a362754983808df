"""The case state machine: every allowed transition and every refused one."""

from __future__ import annotations

import pytest

from services.district.cases.lifecycle import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
    allowed_events,
    next_state,
)

ALLOWED = [(s, e) for e, table in TRANSITIONS.items() for s in table]
REFUSED = [(s, e) for e in Event for s in [None, *State] if s not in TRANSITIONS[e]]


@pytest.mark.parametrize(("state", "event"), ALLOWED)
def test_allowed_transitions(state: State | None, event: Event) -> None:
    allowed = TRANSITIONS[event][state]
    if isinstance(allowed, frozenset):  # the caller chooses the target among these
        for target in allowed:
            assert next_state(state, event, target) is target
        with pytest.raises(IllegalTransition):
            next_state(state, event)
        with pytest.raises(IllegalTransition):
            next_state(state, event, State.CLOSED)
        return
    after = next_state(state, event)
    assert isinstance(after, State)
    assert after is allowed or after is state


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_refused_transitions_say_why(state: State | None, event: Event) -> None:
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
        State.RECEIVED,
        State.DISPATCHED,
        State.ACCEPTED,
        State.IN_PROGRESS,
        State.RESOLVED,
        State.RESOLVED,
        State.CLOSED,
    ]


def test_reopen_goes_back_to_work() -> None:
    assert next_state(State.RESOLVED, Event.REOPENED) is State.REOPENED
    assert next_state(State.REOPENED, Event.CONTACTED) is State.IN_PROGRESS
    assert next_state(State.REOPENED, Event.RESOLVED) is State.RESOLVED


def test_events_that_keep_the_state() -> None:
    for state in OPEN:
        assert next_state(state, Event.URGED) is state
    assert next_state(State.ACCEPTED, Event.EXTENSION_REQUESTED) is State.ACCEPTED


def test_terminal_states_accept_nothing_but_reopen_after_close() -> None:
    for state in TERMINAL:
        events = allowed_events(state)
        assert events <= {Event.REOPENED, Event.FOLLOWED_UP}
    assert allowed_events(State.NOT_OURS) == frozenset()


def test_parking_resumes_where_the_work_stood() -> None:
    assert next_state(State.IN_PROGRESS, Event.PARKED) is State.PARKED
    assert next_state(State.PARKED, Event.UNPARKED, State.IN_PROGRESS) is State.IN_PROGRESS
    with pytest.raises(IllegalTransition):
        next_state(State.PARKED, Event.ACCEPTED)


def test_joint_escalation_and_verification() -> None:
    assert next_state(State.IN_PROGRESS, Event.ESCALATED) is State.ESCALATED
    assert next_state(State.ESCALATED, Event.JOINT_DISPATCHED) is State.DISPATCHED
    assert next_state(State.RESOLVED, Event.VERIFIED) is State.CLOSED
    assert next_state(State.RESOLVED, Event.VERIFY_FAILED) is State.REOPENED
    with pytest.raises(IllegalTransition):
        next_state(State.IN_PROGRESS, Event.VERIFIED)
