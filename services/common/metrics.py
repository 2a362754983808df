"""Prometheus metrics of the contract (one registry per process, cityops_ prefix)."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 432000, 1296000)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Pool(Protocol):
    """What the pool gauges read (asyncpg.Pool has it)."""

    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


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
        self._decisions(r)
        self._operational(r)

    def _decisions(self, r: CollectorRegistry) -> None:
        """What the district decided: publications, dead letters, extensions, supervision,
        missed municipal deadlines, the district's edge, alarms, the calendar."""
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
        self.exceptions = Counter(
            "cityops_exceptions",
            "Decisions on exception paths (退单, 延期, 缓办, 作废), by kind and decision",
            ["kind", "decision"],
            registry=r,
        )
        self.supervisions = Counter(
            "cityops_supervisions", "Cases supervised (督办)", ["unit", "mode"], registry=r
        )
        self.municipal_missed = Counter(
            "cityops_municipal_due_missed",
            "Cases that missed the municipal due time (a task was due after it)",
            ["unit"],
            registry=r,
        )
        self.district_edge = Counter(
            "cityops_district_edge",
            "Cases outside the district boundary or naming another district: not ours, or kept "
            "(the nearest street, or triage)",
            ["source", "outcome", "reason"],
            registry=r,
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

    def _operational(self, r: CollectorRegistry) -> None:
        """The process's plumbing: consumer lag, outbox backlog, database pool, dependencies,
        retries, HTTP."""
        self.consumer_lag = Gauge(
            "cityops_consumer_lag",
            "Records between the consumer's committed position and the partition's highwater",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "cityops_outbox_backlog",
            "Outbox rows older than 5 s, not yet published",
            registry=r,
        )
        self.db_pool = Gauge(
            "cityops_db_pool_connections",
            "Connections of the process's PostgreSQL pool: in use, idle, and the maximum",
            ["state"],
            registry=r,
        )
        self.dependency_up = Gauge(
            "cityops_dependency_up",
            "1 while the dependency (postgres, kafka) answers a probe within its timeout, else 0",
            ["dependency"],
            registry=r,
        )
        self.retries = Counter(
            "cityops_retries",
            "Work retried after a transient error, by kind (database, broker, network, timeout)",
            ["kind"],
            registry=r,
        )
        self.http_requests = Counter(
            "cityops_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "cityops_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )

    def watch_pool(self, pool: Pool) -> None:
        """The pool gauges read the pool at each scrape."""
        self.db_pool.labels("in_use").set_function(lambda: pool.get_size() - pool.get_idle_size())
        self.db_pool.labels("idle").set_function(pool.get_idle_size)
        self.db_pool.labels("max").set_function(pool.get_max_size)
