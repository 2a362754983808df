-- Intake that never loses and never duplicates: messages waiting for their case, and the
-- reporters of merged duplicate reports (并案).

-- An action about a case not yet seen (an urge before its dispatch, feedback for an unknown
-- case) waits here, original bytes and all, until the case opens or it expires (dead-lettered
-- as unknown_case). `lookup` is 'source:source_ref' or a case number.
CREATE TABLE parked_messages (
    id            bigserial PRIMARY KEY,
    district_code text NOT NULL,
    lookup        text NOT NULL,
    topic         text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset  bigint NOT NULL,
    key           bytea,
    value         bytea NOT NULL,
    timestamp_ms  bigint,
    received_at   timestamptz NOT NULL
);
CREATE INDEX parked_messages_lookup ON parked_messages (lookup, id);
CREATE INDEX parked_messages_age ON parked_messages (district_code, received_at);

-- Reports joined to an open case as duplicates; the case's own reporter stays on the case.
-- `message` is the validated report, so an operator can split it out into its own case.
CREATE TABLE case_reporters (
    case_no             text NOT NULL REFERENCES cases,
    source              text NOT NULL,
    source_ref          text NOT NULL,
    caller_phone_masked text,
    caller_phone_sealed bytea,              -- AES-GCM, see services/common/crypto.py
    joined_at           timestamptz NOT NULL,
    message             jsonb NOT NULL,
    PRIMARY KEY (source, source_ref)
);
CREATE INDEX case_reporters_case ON case_reporters (case_no);

-- Duplicate candidates: open cases of one category opened in the window, then a lon/lat box.
CREATE INDEX cases_nearby ON cases (district_code, category_code, opened_at)
    WHERE state NOT IN ('closed', 'not_ours', 'withdrawn', 'merged', 'rejected', 'resolved');
