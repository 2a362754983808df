-- Row types for set-based writes (services/common/sql.py): a batch's rows of a table travel
-- as one array parameter of the table's row type, which asyncpg encodes row by row; an array
-- per column costs it a Python-level check per value. Each type lists the columns its
-- `Table` in the code writes, in the same order (tests/integration/test_row_types.py checks).
-- A column added to a table and to its `Table` is added here with ALTER TYPE ... ADD ATTRIBUTE.

CREATE TYPE cases_row AS (
    case_no text,
    district_code text,
    source text,
    source_ref text,
    state text,
    category_code text,
    category_name text,
    urgency text,
    title text,
    description text,
    address text,
    received_at timestamptz,
    opened_at timestamptz,
    street_code text,
    request_type text,
    lon float8,
    lat float8,
    caller_name text,
    caller_phone_sealed bytea,
    caller_phone_masked text,
    caller_anonymous bool,
    caller_callback bool,
    reporters int4,
    revision int4,
    municipal_due timestamptz,
    resolve_by timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    closed_on_time bool,
    last_seq int4,
    supervised bool,
    returns int4
);

CREATE TYPE tasks_row AS (
    task_id text,
    case_no text,
    district_code text,
    unit_code text,
    role text,
    state text,
    dispatched_at timestamptz,
    accept_by timestamptz,
    first_contact_by timestamptz,
    resolve_by timestamptz,
    accepted_at timestamptz,
    contacted_at timestamptz,
    resolved_at timestamptz,
    summary text
);

CREATE TYPE case_events_row AS (
    case_no text,
    seq int4,
    event_id text,
    district_code text,
    type text,
    at timestamptz,
    actor text,
    from_state text,
    to_state text,
    unit_code text,
    data jsonb
);

CREATE TYPE task_timers_row AS (
    task_id text,
    case_no text,
    district_code text,
    next_at timestamptz
);

CREATE TYPE case_counts_row AS (
    district_code text,
    unit_code text,
    state text,
    n int8
);

CREATE TYPE case_reporters_row AS (
    case_no text,
    source text,
    source_ref text,
    caller_phone_masked text,
    caller_phone_sealed bytea,
    joined_at timestamptz,
    message jsonb
);

CREATE TYPE parked_messages_row AS (
    district_code text,
    lookup text,
    topic text,
    kafka_partition int4,
    kafka_offset int8,
    key bytea,
    value bytea,
    timestamp_ms int8,
    received_at timestamptz
);

CREATE TYPE outbox_row AS (
    shard int2,
    topic text,
    key bytea,
    value bytea,
    origin_ms int8
);
