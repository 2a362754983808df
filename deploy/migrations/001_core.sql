-- CityOps core schema. Every record carries its district; hot-path indexes lead with it.

CREATE TABLE units (
    unit_code     text PRIMARY KEY,
    district_code text NOT NULL,
    name          text NOT NULL,
    name_en       text NOT NULL DEFAULT '',
    tier          text NOT NULL CHECK (tier IN ('district', 'street', 'department'))
);
CREATE INDEX units_district ON units (district_code, tier);

CREATE TABLE categories (
    district_code   text NOT NULL,
    code            text NOT NULL,
    object_type     text NOT NULL,
    major           text NOT NULL,
    minor           text NOT NULL,
    default_owner   text NOT NULL,          -- 'street' (属地) or a department unit code
    handle_sla      text NOT NULL,          -- e.g. 4WH, 7WD
    default_urgency text NOT NULL DEFAULT 'normal',
    notes           text NOT NULL DEFAULT '',
    PRIMARY KEY (district_code, code)
);

CREATE TABLE street_anchors (
    district_code text NOT NULL,
    unit_code     text NOT NULL REFERENCES units,
    lon           double precision NOT NULL,
    lat           double precision NOT NULL
);
CREATE INDEX street_anchors_district ON street_anchors (district_code);

CREATE SEQUENCE case_no_seq;

CREATE TABLE cases (
    case_no             text PRIMARY KEY,
    district_code       text NOT NULL,
    street_code         text,
    source              text NOT NULL,      -- hotline12345 | roadchief
    source_ref          text NOT NULL,      -- order_no | report_id
    state               text NOT NULL,
    category_code       text NOT NULL,
    category_name       text NOT NULL,
    urgency             text NOT NULL,
    request_type        text,
    title               text NOT NULL,
    description         text NOT NULL,
    address             text NOT NULL,
    lon                 double precision,   -- WGS-84
    lat                 double precision,
    caller_name         text,
    caller_phone_sealed bytea,              -- AES-GCM, see services/common/crypto.py
    caller_phone_masked text,
    caller_anonymous    boolean NOT NULL DEFAULT false,
    caller_callback     boolean NOT NULL DEFAULT true,
    reporters           integer NOT NULL DEFAULT 1,
    revision            integer NOT NULL DEFAULT 1,   -- last upstream revision applied
    received_at         timestamptz NOT NULL,         -- when the citizen / road chief reported
    opened_at           timestamptz NOT NULL,         -- when the district opened the case
    municipal_due       timestamptz,
    resolve_by          timestamptz,
    resolved_at         timestamptz,
    closed_at           timestamptz,
    closed_on_time      boolean,
    last_seq            integer NOT NULL,
    UNIQUE (source, source_ref)
);
CREATE INDEX cases_open ON cases (district_code, state)
    WHERE state NOT IN ('closed', 'not_ours', 'withdrawn', 'merged', 'cancelled');
CREATE INDEX cases_street ON cases (district_code, street_code, opened_at);

CREATE TABLE tasks (
    task_id          text PRIMARY KEY,
    case_no          text NOT NULL REFERENCES cases,
    district_code    text NOT NULL,
    unit_code        text NOT NULL,
    role             text NOT NULL CHECK (role IN ('lead', 'co')),
    state            text NOT NULL,   -- assigned accepted contacted resolved returned withdrawn
    dispatched_at    timestamptz NOT NULL,
    accept_by        timestamptz NOT NULL,
    first_contact_by timestamptz NOT NULL,
    resolve_by       timestamptz NOT NULL,
    accepted_at      timestamptz,
    contacted_at     timestamptz,
    resolved_at      timestamptz
);
CREATE INDEX tasks_case ON tasks (case_no);
CREATE INDEX tasks_open ON tasks (district_code, unit_code, state)
    WHERE state IN ('assigned', 'accepted', 'contacted');

CREATE TABLE case_events (
    case_no       text NOT NULL,
    seq           integer NOT NULL,
    event_id      text NOT NULL,
    district_code text NOT NULL,
    type          text NOT NULL,
    at            timestamptz NOT NULL,
    actor         text NOT NULL,
    from_state    text,
    to_state      text NOT NULL,
    unit_code     text,
    data          jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (case_no, seq)
);

-- Idempotency keys of every inbound message applied (order_no+action+revision, report_id, ...).
CREATE TABLE processed_messages (
    key          text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written with the state change, published after commit, then deleted.
-- One publisher per shard at a time (advisory lock) keeps each key's messages in order.
CREATE TABLE outbox (
    id        bigserial PRIMARY KEY,
    shard     smallint NOT NULL,
    topic     text NOT NULL,
    key       bytea,
    value     bytea NOT NULL,
    origin_ms bigint,        -- Kafka timestamp of the inbound record that caused it
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_shard ON outbox (shard, id);

-- The reference street platform's own state (a street system would keep this in its own database).
CREATE SCHEMA street;
CREATE TABLE street.tasks (
    task_id       text PRIMARY KEY,
    case_no       text NOT NULL,
    unit_code     text NOT NULL,
    kind          text NOT NULL,
    role          text NOT NULL,
    state         text NOT NULL,   -- open accepted contacted resolved returned escalated withdrawn
    deadlines     jsonb NOT NULL,
    snapshot      jsonb NOT NULL,
    dispatched_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX street_tasks_unit ON street.tasks (unit_code, state, dispatched_at);
CREATE TABLE street.outbox (
    id         bigserial PRIMARY KEY,
    shard      smallint NOT NULL,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    origin_ms  bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX street_outbox_shard ON street.outbox (shard, id);
