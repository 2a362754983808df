-- Operator API bearer tokens (services/common/auth.py). Only the SHA-256 of the secret is kept:
-- the token itself is printed once by `cityops token create` and never stored.

CREATE TABLE api_tokens (
    id            text PRIMARY KEY,
    token_sha256  bytea NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('district_operator', 'district_supervisor',
                                                'street_operator', 'department_operator',
                                                'auditor')),
    unit_code     text REFERENCES units,   -- required for street / department operators
    district_code text NOT NULL,
    name          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((role IN ('street_operator', 'department_operator')) = (unit_code IS NOT NULL))
);

-- The operator API's case search: newest first by district, and "cases my unit held a task for".
CREATE INDEX IF NOT EXISTS cases_opened ON cases (district_code, opened_at DESC, case_no DESC);
CREATE INDEX IF NOT EXISTS tasks_unit_case ON tasks (district_code, unit_code, case_no);
