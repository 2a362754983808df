-- Open cases per handling unit and state, kept exact by the transactions that change cases,
-- so the gauges never scan the case table. Terminal states are not counted.
CREATE TABLE case_counts (
    district_code text NOT NULL,
    unit_code     text NOT NULL,   -- the lead unit holding the case, or 'unassigned'
    state         text NOT NULL,
    n             bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (district_code, unit_code, state)
);

-- Overdue tasks are found by range scans over the open tasks' deadlines.
CREATE INDEX tasks_accept_due ON tasks (district_code, accept_by) WHERE state = 'assigned';
CREATE INDEX tasks_contact_due ON tasks (district_code, first_contact_by)
    WHERE state IN ('assigned', 'accepted');
CREATE INDEX tasks_resolve_due ON tasks (district_code, resolve_by)
    WHERE state IN ('assigned', 'accepted', 'contacted');

-- Backfill from the cases already recorded.
INSERT INTO case_counts (district_code, unit_code, state, n)
SELECT c.district_code, coalesce(t.unit_code, 'unassigned'), c.state, count(*)
FROM cases c
LEFT JOIN tasks t ON t.case_no = c.case_no AND t.role = 'lead'
     AND t.state IN ('assigned', 'accepted', 'contacted')
WHERE c.state NOT IN ('closed', 'withdrawn', 'not_ours')
GROUP BY 1, 2, 3;
