-- Exception paths are decided, not automatic (国办函〔2025〕66号 派单异议 / 退单 / 改派; 数字城管
-- 回退, 延期, 缓办, 作废): every decision on an exception is a row of this ledger, with who
-- approved it (the stated actor and the API token it came with), why, and what was decided.
-- Written in the decision's own transaction (services/district/cases/queries.py save);
-- read by the exception shares (services/district/kpis/exceptions.py).
CREATE TABLE exception_ledger (
    id             bigserial PRIMARY KEY,
    district_code  text NOT NULL,
    case_no        text NOT NULL,
    task_id        text,                   -- the task concerned (none for a case's 作废)
    unit_code      text,                   -- the unit the exception concerns
    kind           text NOT NULL,          -- return | extension | parking | cancellation
    decision       text NOT NULL,          -- approved | refused | auto (a routing rule's)
    approver       text NOT NULL,          -- the stated actor ('routing' for a rule)
    token_id       text,                   -- the API token behind the actor
    reason         text NOT NULL DEFAULT '',
    decided_at     timestamptz NOT NULL,
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX exception_ledger_period ON exception_ledger (district_code, decided_at);
CREATE INDEX exception_ledger_case ON exception_ledger (case_no);

CREATE TYPE exception_ledger_row AS (
    district_code text,
    case_no text,
    task_id text,
    unit_code text,
    kind text,
    decision text,
    approver text,
    token_id text,
    reason text,
    decided_at timestamptz,
    detail jsonb
);

-- A returned task is re-dispatched without a district decision only where its routing rule
-- says so; by default a return waits on the district's queue.
ALTER TABLE routing_rules ADD COLUMN auto_redispatch_returns boolean NOT NULL DEFAULT false;

-- A returned task keeps the unit's reason, for the district's decision (where routing suggests).
ALTER TABLE tasks ADD COLUMN return_reason text;
ALTER TYPE tasks_row ADD ATTRIBUTE return_reason text;

-- The district's queue: co-unit tasks handed back, waiting for a replacement or a dismissal
-- (a taken one is withdrawn, so the set stays small).
CREATE INDEX tasks_co_returned ON tasks (district_code) WHERE role = 'co' AND state = 'returned';
