-- The district's own stages on the clock (issue 14): a case waiting in manual triage or for an
-- escalation's decision, and a unit's extension request waiting for approval, each have a
-- deadline from the deadline policy (deploy/reference/deadline_policy.csv), alarms and overdue
-- counts against the district's centre. NULL: nothing waits.
ALTER TABLE cases
    ADD COLUMN waiting_stage text,
    ADD COLUMN waiting_since timestamptz,
    ADD COLUMN waiting_due timestamptz;
ALTER TYPE cases_row
    ADD ATTRIBUTE waiting_stage text,
    ADD ATTRIBUTE waiting_since timestamptz,
    ADD ATTRIBUTE waiting_due timestamptz;
ALTER TABLE tasks
    ADD COLUMN extension_requested_at timestamptz,
    ADD COLUMN extension_due timestamptz;
ALTER TYPE tasks_row
    ADD ATTRIBUTE extension_requested_at timestamptz,
    ADD ATTRIBUTE extension_due timestamptz;
-- the queue view's and the gauges' overdue counts (index range scans, as for the tasks)
CREATE INDEX cases_waiting_due ON cases (district_code, waiting_due)
    WHERE waiting_due IS NOT NULL;
CREATE INDEX tasks_extension_due ON tasks (district_code, extension_due)
    WHERE extension_due IS NOT NULL;
-- their alarms share the task timers' table and claim: a row keyed '<case_no>:district' or
-- '<task_id>:extension' has no task of that id
ALTER TABLE task_timers DROP CONSTRAINT task_timers_task_id_fkey;
