"""The month's report: the invariants (must be zero), the overdue share per stage, the counts,
and what the public holiday did to the deadlines; printed as a table and kept as JSON."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from contracts.common import Urgency
from services.district.cases.lifecycle import TERMINAL
from services.district.deadlines.workcal import WorkCalendar
from simulation import checks, queries
from simulation.checks import Done, Finding, Share
from simulation.ledger import TaskSeen
from simulation.run import Outcome
from simulation.world import District

#: case events counted in the report, by the name it gives them
COUNTED = {
    "closures": ("closed", "verified", "self_handled"),
    "reopens": ("reopened", "verify_failed"),
    "returns": ("returned",),
    "escalations": ("escalated",),
    "extension_requests": ("extension_requested",),
    "extensions_approved": ("extension_approved",),
    "extensions_refused": ("extension_refused",),
    "warnings": ("deadline_warning",),
    "triaged": ("to_triage",),
    "reclassified": ("reclassified",),
    "merged": ("merged_report", "merged_case"),
    "withdrawn": ("withdrawn",),
    "not_ours": ("not_ours",),
    "municipal_due_missed": ("municipal_due_missed",),
    "follow_ups": ("followed_up",),
}


async def summarise(district: District, out: Outcome) -> dict[str, Any]:
    code = district.decisions.ctx.ref.district_code
    async with district.pool.acquire() as conn:
        task_rows = await queries.tasks(conn, code)
        case_rows = await queries.cases(conn, code)
    done = {
        r["task_id"]: Done(r["accepted_at"], r["contacted_at"], r["resolved_at"]) for r in task_rows
    }
    seen = list(out.ledger.tasks.values())
    events, end = out.ledger.events, out.window.end
    ctx = district.decisions.ctx
    urgency = {r["case_no"]: Urgency(r["urgency"]) for r in case_rows}
    findings = checks.born_overdue(checks.seen_births(seen)) + checks.born_overdue(
        (r["task_id"], r["case_no"], r["dispatched_at"], _row_deadlines(r)) for r in task_rows
    )
    unowed = checks.unowed_supervisions(events, seen, done)
    stages = checks.stage_shares(seen, done, end)
    stages |= checks.district_shares(events, urgency, ctx.policy, ctx.calendar, end)
    return {
        "window": _window(out, ctx.calendar),
        "invariants": {
            "tasks_born_overdue": len({f.task_id for f in findings}),
            "supervisions_of_stage_not_owed": len(unowed),
            "examples": [_finding(f) for f in (findings + unowed)[:10]],
        },
        "overdue_share_by_stage": {k: _share(v) for k, v in stages.items()},
        "counts": _counts(out, case_rows, task_rows),
        "holiday": _holiday(seen, done, out, ctx.calendar),
        "commands": {"applied": dict(out.commands), "no_longer_applicable": dict(out.stale)},
        "run_seconds": round(out.seconds, 1),
    }


def _row_deadlines(row: Any) -> dict[str, datetime | None]:
    return {
        "accept": row["accept_by"],
        "first_contact": row["first_contact_by"],
        "resolve": row["resolve_by"],
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "case_no": f.case_no,
        "task_id": f.task_id,
        "stage": f.stage,
        "detail": f.detail,
    }


def _share(s: Share) -> dict[str, Any]:
    return {"owed": s.owed, "overdue": s.overdue, "share": round(s.share, 4)}


def _counts(out: Outcome, case_rows: list[Any], task_rows: list[Any]) -> dict[str, Any]:
    types = Counter(e.type for e in out.ledger.events)
    supervised = Counter(
        str(e.data.get("mode")) for e in out.ledger.events if e.type == "supervised"
    )
    counts: dict[str, Any] = {
        "cases": len(case_rows),
        "cases_by_source": dict(Counter(r["source"] for r in case_rows)),
        "cases_open_at_end": sum(r["state"] not in _TERMINAL for r in case_rows),
        "tasks": len(task_rows),
        "supervisions": dict(supervised),
        "dead_letters": sum(out.ledger.deadletters.values()),
        "dead_letters_by_reason": dict(out.ledger.deadletters.most_common()),
        "replies": dict(out.ledger.replies),
    }
    for name, kinds in COUNTED.items():
        counts[name] = sum(types[k] for k in kinds)
    return counts


_TERMINAL = {state.value for state in TERMINAL}


def _window(out: Outcome, calendar: WorkCalendar) -> dict[str, Any]:
    w = out.window
    days = [w.start.date() + timedelta(days=i) for i in range(w.days)]
    return {
        "start": w.start.isoformat(),
        "end": w.end.isoformat(),
        "days": w.days,
        "step_minutes": w.step.total_seconds() / 60,
        "working_days": sum(calendar.is_workday(d) for d in days),
        "public_holidays": [d.isoformat() for d in _holidays(days, calendar)],
        "make_up_working_days": [
            d.isoformat() for d in days if d.weekday() >= 5 and calendar.is_workday(d)
        ],
    }


def _holidays(days: list[date], calendar: WorkCalendar) -> list[date]:
    """Days off that are not weekends (the statutory holidays themselves)."""
    return [d for d in days if d.weekday() < 5 and not calendar.is_workday(d)]


def _holiday(
    seen: list[TaskSeen], done: dict[str, Done], out: Outcome, calendar: WorkCalendar
) -> dict[str, Any]:
    """Tasks whose resolve deadline spans a holiday day, against the others."""
    days = [out.window.start.date() + timedelta(days=i) for i in range(out.window.days)]
    off = set(_holidays(days, calendar))
    spanning: list[TaskSeen] = []
    other: list[TaskSeen] = []
    for t in seen:
        first, last = t.dispatched_at.astimezone(calendar.tz), t.born.resolve_by
        last = last.astimezone(calendar.tz)
        span = {first.date() + timedelta(days=i) for i in range((last.date() - first.date()).days)}
        (spanning if span & off else other).append(t)
    return {
        "tasks_with_resolve_deadline_spanning_holiday": len(spanning),
        "their_resolve_overdue_share": _late_share(spanning, done, out.window.end),
        "other_tasks_resolve_overdue_share": _late_share(other, done, out.window.end),
        "longest_resolve_window_days": round(
            max(
                ((t.born.resolve_by - t.dispatched_at) / timedelta(days=1) for t in spanning),
                default=0.0,
            ),
            2,
        ),
    }


def _late_share(tasks: list[TaskSeen], done: dict[str, Done], end: datetime) -> float:
    late = sum(checks.task_late(t, "resolve", done.get(t.task_id, Done()), end) for t in tasks)
    return round(late / len(tasks), 4) if tasks else 0.0


def table(summary: dict[str, Any]) -> str:
    """The report as text."""
    w, inv = summary["window"], summary["invariants"]
    lines = [
        f"simulated {w['days']} days {w['start']} .. {w['end']} "
        f"({w['working_days']} working days; holidays {', '.join(w['public_holidays']) or '-'})",
        f"  tasks born overdue               {inv['tasks_born_overdue']:>8}",
        f"  supervisions of a stage not owed {inv['supervisions_of_stage_not_owed']:>8}",
        "  stage                 owed  overdue    share",
    ]
    for stage, s in summary["overdue_share_by_stage"].items():
        lines.append(f"  {stage:<20}{s['owed']:>6}{s['overdue']:>9}{s['share']:>9.1%}")
    counts = summary["counts"]
    scalars = [f"{k} {v}" for k, v in counts.items() if not isinstance(v, dict)]
    lines += ["  counts: " + ", ".join(scalars[i : i + 6]) for i in range(0, len(scalars), 6)]
    lines += [f"  {k}: {v}" for k, v in counts.items() if isinstance(v, dict)]
    lines.append("  holiday: " + ", ".join(f"{k} {v}" for k, v in summary["holiday"].items()))
    lines.append(f"  commands: {summary['commands']}")
    lines.append(f"  run time {summary['run_seconds']} s")
    return "\n".join(lines)
