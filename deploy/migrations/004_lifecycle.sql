-- The district's rules: supervision flag, parking, routing rules as versioned data, timers.

ALTER TABLE cases ADD COLUMN supervised boolean NOT NULL DEFAULT false;
ALTER TABLE cases ADD COLUMN returns integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN summary text;   -- the unit's result when it resolved

-- Who handles a category, by urgency and source ('*' matches any). Editable at run time;
-- every change is a new version, the old one kept with who changed it and why.
CREATE TABLE routing_rules (
    district_code text NOT NULL,
    category_code text NOT NULL,
    urgency       text NOT NULL DEFAULT '*',
    source        text NOT NULL DEFAULT '*',
    owner         text NOT NULL,            -- 'street' (属地) or a unit code
    alt_owner     text,                     -- where `not_our_duty` returns go
    version       integer NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    changed_by    text NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (district_code, category_code, urgency, source, version)
);
CREATE UNIQUE INDEX routing_rules_active ON routing_rules (district_code, category_code, urgency, source)
    WHERE active;

-- One alarm row per open task: when its next warning (80%) or deadline falls due.
-- Claimed with FOR UPDATE SKIP LOCKED, so several instances fire each alarm once.
CREATE TABLE task_timers (
    task_id       text PRIMARY KEY REFERENCES tasks,
    case_no       text NOT NULL,
    district_code text NOT NULL,
    next_at       timestamptz NOT NULL,
    done          text[] NOT NULL DEFAULT '{}'   -- 'accept:warn', 'accept:overdue', ...
);
CREATE INDEX task_timers_due ON task_timers (district_code, next_at);
