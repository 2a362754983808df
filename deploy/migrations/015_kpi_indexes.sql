-- Closed-loop KPIs (services/district/kpi_queries.py) read one period's closures, deadlines,
-- dispatches and follow-ups: range scans over these indexes, never a scan of the record.
-- (On a large existing table, create them CONCURRENTLY by hand before applying this file;
-- IF NOT EXISTS then makes it a no-op.)

CREATE INDEX IF NOT EXISTS cases_closed_at ON cases (district_code, closed_at)
    WHERE state = 'closed';
CREATE INDEX IF NOT EXISTS cases_resolve_by ON cases (district_code, resolve_by);
CREATE INDEX IF NOT EXISTS tasks_dispatched_at ON tasks (district_code, dispatched_at);
-- Only the events the KPIs count (a fraction of the record): the predicate must stay exactly
-- kpi_queries.KPI_EVENTS for the planner to use it.
CREATE INDEX IF NOT EXISTS case_events_kpi ON case_events (district_code, at)
    WHERE (type = 'followed_up'
           OR (to_state IN ('resolved', 'reopened') AND from_state IS DISTINCT FROM to_state));
-- Per-case lookups of the few events a KPI asks about: was this task returned, was this
-- case's deadline extended.
CREATE INDEX IF NOT EXISTS case_events_marks ON case_events (case_no, type)
    WHERE type IN ('returned', 'extension_approved');
