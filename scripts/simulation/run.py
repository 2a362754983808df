"""The simulated month: the parties' messages through the district's intake, the operators'
commands through its case store and its timers fired, step by step on a fake clock."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from feedgen import FeedGenerator

from contracts.events import CaseEvent
from contracts.hotline import Reply
from contracts.tasks import Task
from services.common.clock import FakeClock
from services.common.config import Settings
from simulation.ledger import Ledger
from simulation.operator import DefaultDesk, Desk, Planned
from simulation.parties import Agenda, Conduct, Inbound, Make, Municipal, Units, Volume
from simulation.world import District

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """Simulated time: `days` from `start` (a local midnight), in steps of `step`."""

    start: datetime
    days: int
    step: timedelta = timedelta(minutes=10)

    @property
    def end(self) -> datetime:
        return self.start + self.days * DAY


@dataclass
class Outcome:
    """What the run leaves for the report: the ledger, the commands given, the run time."""

    ledger: Ledger
    window: Window
    commands: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


class Simulation:
    def __init__(
        self,
        district: District,
        seed: int,
        volume: Volume | None = None,
        conduct: Conduct | None = None,
        desk: Desk | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.district, self.agenda, self.progress = district, Agenda(), progress
        ctx = district.decisions.ctx
        gen = FeedGenerator(seed, ctx.ref.district_code, prefix=f"{seed % 1000:03d}")
        self.municipal = Municipal(gen, random.Random(seed + 1), self.agenda, volume or Volume())
        self.units = Units(gen, random.Random(seed + 2), self.agenda, conduct or Conduct())
        self.desk = desk or DefaultDesk(ctx.ref, random.Random(seed + 3))

    async def run(self, window: Window) -> Outcome:
        out, began = Outcome(Ledger(), window), time.monotonic()
        calendar = self.district.decisions.ctx.calendar
        for day in range(window.days):
            start = window.start + day * DAY
            self.municipal.plan_day(start, calendar.is_workday(start.date()))
        now = window.start
        await self.district.advance(now)
        while now < window.end:
            now = min(now + window.step, window.end)
            await self.district.advance(now)
            await self._step(now, out)
            if (now - window.start) % DAY == timedelta(0):
                self.progress(f"{now:%Y-%m-%d} {len(out.ledger.tasks)} tasks so far")
        out.seconds = time.monotonic() - began
        return out

    async def _step(self, now: datetime, out: Outcome) -> None:
        """What fell due: the parties' messages as one batch, the desk's commands, then the
        alarms due (what was done in time is in before the timer looks)."""
        inbound: list[Inbound] = []
        commands: list[Planned] = []
        for when, item in self.agenda.due(now):
            if isinstance(item, Planned):
                commands.append(item)
            else:
                made = _make(item, when)
                if made is not None:
                    inbound.append(made)
        await self.district.deliver(inbound)
        self._hand_out(now, out)
        for planned in commands:
            applied = await self.district.command(planned.case_no, planned.decide)
            (out.commands if applied else out.stale)[planned.name] += 1
            self._hand_out(now, out)
        await self.district.fire_timers()
        self._hand_out(now, out)
        await self.district.sweep_outbox()

    def _hand_out(self, now: datetime, out: Outcome) -> None:
        """The committed messages to whoever would consume them: by key (each case's in the
        order committed), so that the parties draw their chances in the same order in every
        run of a seed, whatever order the database returned rows of equal rank in."""
        published = sorted(self.district.take_published(), key=lambda m: m.key or b"")
        for message in published:
            seen = out.ledger.see(message.topic, message.value, now)
            if isinstance(seen, Task):
                self.units.on_task(seen, now)
            elif isinstance(seen, CaseEvent):
                for planned in self.desk.on_event(seen):
                    self.agenda.at(max(planned.at, now), planned)
            elif isinstance(seen, Reply):
                self.municipal.on_reply(seen, now)


def _make(item: object, when: datetime) -> Inbound | None:
    """What a party sends now (the agenda holds its builders and the desk's commands)."""
    return cast(Make, item)(when)


async def simulate(
    settings: Settings,
    window: Window,
    seed: int,
    volume: Volume | None = None,
    conduct: Conduct | None = None,
    progress: Callable[[str], None] = lambda _: None,
    desk: Callable[[District], Desk] | None = None,
) -> tuple[District, Outcome]:
    """Open the district on `settings`' database and run the window; the caller closes it.
    `desk`: the operators' policy for this district (default: `DefaultDesk`)."""
    district = await District.open(settings, FakeClock(window.start))
    chosen = desk(district) if desk is not None else None
    sim = Simulation(district, seed, volume, conduct, chosen, progress)
    return district, await sim.run(window)
