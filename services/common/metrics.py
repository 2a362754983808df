"""Prometheus metrics of the contract (one registry per process, cityops_ prefix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 432000, 1296000)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class Metrics:
    """Every metric a CityOps process exports; services use the ones that concern them."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.intake_messages = Counter(
            "cityops_intake_messages",
            "Inbound messages by feed and outcome",
            ["feed", "outcome"],
            registry=r,
        )
        self.cases_opened = Counter("cityops_cases_opened", "Cases opened", ["source"], registry=r)
        self.tasks_dispatched = Counter(
            "cityops_tasks_dispatched", "Tasks dispatched", ["unit", "role"], registry=r
        )
        self.task_actions = Counter(
            "cityops_task_actions", "Task feedback applied", ["unit", "action"], registry=r
        )
        self.cases_closed = Counter(
            "cityops_cases_closed", "Cases closed", ["unit", "on_time"], registry=r
        )
        self.cases_open = Gauge(
            "cityops_cases_open",
            "Open cases by handling unit and state",
            ["unit", "state"],
            registry=r,
        )
        self.cases_overdue = Gauge(
            "cityops_cases_overdue",
            "Open tasks past a stage deadline",
            ["unit", "stage"],
            registry=r,
        )
        self.stage_duration = Histogram(
            "cityops_stage_duration_seconds",
            "Time each stage of the loop took",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.satisfaction = Counter(
            "cityops_satisfaction", "Follow-up ratings", ["rating"], registry=r
        )
        self.dispatch_latency = Histogram(
            "cityops_dispatch_latency_seconds",
            "From an inbound record's Kafka timestamp to its task's publication",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_published = Counter(
            "cityops_outbox_published",
            "Messages published from the outbox",
            ["topic_kind"],
            registry=r,
        )
        self.deadletters = Counter(
            "cityops_deadletters",
            "Messages sent to the dead-letter topic",
            ["feed", "kind"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "cityops_consumer_batch_seconds",
            "Time to apply one consumed batch",
            ["consumer"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.extensions = Counter(
            "cityops_extensions", "Extension decisions", ["unit", "decision"], registry=r
        )
        self.supervisions = Counter(
            "cityops_supervisions", "Cases supervised (督办)", ["unit", "mode"], registry=r
        )
        self.timer_alarms = Counter(
            "cityops_timer_alarms", "Deadline alarms fired", ["stage", "kind"], registry=r
        )
        self.calendar_fallback = Gauge(
            "cityops_calendar_fallback_year",
            "1 for a year with no official calendar data (Mon-Fri assumed)",
            ["year"],
            registry=r,
        )
