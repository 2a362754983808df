"""The parties around the district, played from the demo feed's generator (scripts/feedgen.py)
on simulated time: 12345 (orders through the day, urges, supplements, withdrawals, the
follow-up visit after each result), the road chiefs (patrol reports) and the units (accept,
first contact, resolve; some return, escalate, ask for an extension or run late).

Each party only schedules: what it sends is put on the `Agenda` at the time it is sent, and
built then (a later revision, a task withdrawn meanwhile)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from feedgen import SHANGHAI, FeedGenerator, iso

from contracts import topics
from contracts.hotline import Reply, ReplyKind
from contracts.tasks import Task, TaskKind, TaskRole

Inbound = tuple[str, str, dict[str, Any]]  # topic, key, message
#: builds what is sent at the given time (None: nothing any more)
Make = Callable[[datetime], Inbound | None]

#: orders by hour of day (a day's shape: the morning and afternoon peaks, quiet nights)
HOURLY = [1, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 10, 8, 9, 11, 11, 10, 9, 7, 6, 5, 4, 3, 2]
MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


class Agenda:
    """What is due when: inbound messages and operator commands, in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, object]] = []
        self._seq = 0

    def at(self, when: datetime, item: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, item))

    def due(self, now: datetime) -> list[tuple[datetime, object]]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            when, _, item = heapq.heappop(self._heap)
            out.append((when, item))
        return out


@dataclass(frozen=True)
class Volume:
    """Orders a day (a working day; other days `quiet` of it), reports per order, and the
    shares of 12345's later actions on an order."""

    orders_low: int = 200
    orders_high: int = 320
    quiet: float = 0.6
    report_every: int = 5
    urge: float = 0.05
    supplement: float = 0.03
    withdraw: float = 0.01
    satisfied: float = 0.85


class Municipal:
    """12345 and the road chiefs."""

    def __init__(self, gen: FeedGenerator, rng: random.Random, agenda: Agenda, v: Volume):
        self.gen, self.rng, self.agenda, self.v = gen, rng, agenda, v
        self.orders: dict[str, dict[str, Any]] = {}
        self.revisions: dict[str, int] = {}

    def plan_day(self, start: datetime, workday: bool) -> None:
        """The day's orders spread over its hours, and the road chiefs' patrols (day time)."""
        n = self.rng.randint(self.v.orders_low, self.v.orders_high)
        n = round(n * (1.0 if workday else self.v.quiet))
        hours = self.rng.choices(range(24), HOURLY, k=n)
        for hour in sorted(hours):
            self.agenda.at(start + hour * HOUR + self.rng.random() * HOUR, self._order)
        for _ in range(n // self.v.report_every):
            self.agenda.at(start + (7 + 12 * self.rng.random()) * HOUR, self._report)

    def _order(self, at: datetime) -> Inbound:
        order = self.gen.work_order(at)
        no = order["order_no"]
        self.orders[no], self.revisions[no] = order, 1
        self._later(no, at)
        return topics.WORKORDERS, no, order

    def _later(self, no: str, at: datetime) -> None:
        roll = self.rng.random()
        if roll < self.v.urge:
            self._revise(no, "urge", at + self.rng.uniform(1, 4) * DAY, "市民来电催办。")
        elif roll < self.v.urge + self.v.supplement:
            self._revise(no, "supplement", at + self.rng.uniform(2, 12) * HOUR, "市民补充：")
        elif roll < self.v.urge + self.v.supplement + self.v.withdraw:
            self._revise(no, "withdraw", at + self.rng.uniform(1, 20) * HOUR, "市民撤诉。")

    def _revise(self, no: str, action: str, when: datetime, note: str) -> None:
        def make(at: datetime) -> Inbound:
            self.revisions[no] += 1
            order = self.orders[no]
            message = {**order, "action": action, "revision": self.revisions[no]}
            message.update(sent_at=iso(at), note=note)
            if action == "supplement":
                message["content"] = order["content"] + note + "问题在夜间更严重。"
            return topics.WORKORDERS, no, message

        self.agenda.at(when, make)

    def _report(self, at: datetime) -> Inbound:
        report = self.gen.road_chief_report(at)
        report["reported_at"] = iso(min(at, datetime.fromisoformat(report["reported_at"])))
        return topics.ROADCHIEF_REPORTS, report["report_id"], report

    def on_reply(self, reply: Reply, now: datetime) -> None:
        """A result is followed by the 12345 follow-up visit (回访) some hours later."""
        if reply.kind is not ReplyKind.RESULT:
            return
        no = reply.order_no

        def visit(at: datetime) -> Inbound:
            followup = self.gen.followup(no, at, self.v.satisfied)
            return topics.HOTLINE_FEEDBACK, no, followup

        self.agenda.at(now + self.rng.uniform(2, 36) * HOUR, visit)


@dataclass(frozen=True)
class Conduct:
    """How units behave: the shares of lead tasks returned, escalated or extended; each
    unit's own share of late stages is drawn between `late_low` and `late_high`."""

    returns: float = 0.04
    escalations: float = 0.02
    extensions: float = 0.04
    late_low: float = 0.02
    late_high: float = 0.15


@dataclass
class _Work:
    """A unit's plan for one task: the steps left, and a token that outdates old plans."""

    task: Task
    steps: list[str]
    token: int = 0
    late: set[str] = field(default_factory=set)
    asked: bool = False  # an extension request waits for the district's decision


class Units:
    def __init__(self, gen: FeedGenerator, rng: random.Random, agenda: Agenda, c: Conduct):
        self.gen, self.rng, self.agenda, self.c = gen, rng, agenda, c
        self.work: dict[str, _Work] = {}
        self._lateness: dict[str, float] = {}

    def on_task(self, task: Task, now: datetime) -> None:
        work = self.work.get(task.task_id)
        if task.kind is TaskKind.ASSIGNED:
            self.work[task.task_id] = work = _Work(task, self._steps(task))
            work.late = {s for s in ("accept", "contact", "resolve") if self._is_late(task)}
            self._plan(work, now)
        elif work is None:
            return
        elif task.kind is TaskKind.WITHDRAWN:
            work.token += 1  # nothing more is sent for it
            work.steps = []
        elif task.deadlines != work.task.deadlines or (
            work.asked and task.kind is TaskKind.UPDATED
        ):
            # a new deadline (an extension, supervision's), or the extension refused: the
            # unit works to it, this time
            work.task, work.late, work.asked = task, set(), False
            self._plan(work, now)

    def _steps(self, task: Task) -> list[str]:
        contact = ["contact"] if task.deadlines.first_contact_by is not None else []
        if task.role is TaskRole.CO:
            return ["accept", "resolve"]
        roll = self.rng.random()
        if roll < self.c.returns:
            return ["return"]
        if roll < self.c.returns + self.c.escalations:
            return ["accept", "escalate"]
        if roll < self.c.returns + self.c.escalations + self.c.extensions:
            return ["accept", *contact, "request_extension", "resolve"]
        return ["accept", *contact, "resolve"]

    def _is_late(self, task: Task) -> bool:
        unit = task.unit_code
        if unit not in self._lateness:
            self._lateness[unit] = random.Random(unit).uniform(self.c.late_low, self.c.late_high)
        return self.rng.random() < self._lateness[unit]

    def _plan(self, work: _Work, now: datetime) -> None:
        """Schedule the steps left, each before its deadline (after it, when late)."""
        work.token += 1
        token, prev = work.token, now
        for step in list(work.steps):
            asked = step == "resolve" and "request_extension" in work.steps
            prev = self._when(work, step, prev, asked)
            self.agenda.at(prev, self._sender(work, step, token))

    def _when(self, work: _Work, step: str, prev: datetime, asked: bool) -> datetime:
        d = work.task.deadlines
        deadline = {
            "accept": d.accept_by,
            "return": d.accept_by,
            "contact": d.first_contact_by,
            "escalate": d.first_contact_by or d.accept_by + HOUR,
            "request_extension": prev + (d.resolve_by - prev) / 2,
        }.get(step, d.resolve_by)
        assert deadline is not None
        if asked:  # waits for the decision (the plan is made again when it comes)
            return max(prev, d.resolve_by) + self.rng.uniform(2, 48) * HOUR  # waits for it
        if step in work.late:
            return max(prev, deadline) + self.rng.uniform(10, 360) * MIN
        if deadline <= prev:
            return prev + self.rng.uniform(5, 60) * MIN
        return prev + (deadline - prev) * self.rng.uniform(0.05, 0.85)

    def _sender(self, work: _Work, step: str, token: int) -> Make:
        def make(at: datetime) -> Inbound | None:
            if work.token != token or not work.steps or work.steps[0] != step:
                return None
            work.steps.pop(0)
            work.asked = work.asked or step == "request_extension"
            task = work.task.model_dump(mode="json", by_alias=True)
            feedback = self.gen.unit_feedback(task, step, at.astimezone(SHANGHAI))
            if step == "request_extension":  # some days past the deadline it has
                until = work.task.deadlines.resolve_by + self.rng.uniform(2, 7) * DAY
                feedback["requested_until"] = iso(until)
            return topics.TASK_FEEDBACK, work.task.task_id, feedback

        return make
