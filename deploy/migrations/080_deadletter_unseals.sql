-- `cityops deadletter show REF --reason …` (services/ops/deadletters.py): every dead letter whose
-- sealed original was unsealed for an operator, by whom, when and why (the phone reveal's ledger
-- for dead letters).
CREATE TABLE deadletter_unseals (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,        -- the dead letter's source: topic, partition, offset
    "partition"   integer NOT NULL,
    "offset"      bigint NOT NULL,
    unsealed_by   text NOT NULL,
    unsealed_at   timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL CHECK (reason <> '')
);
CREATE INDEX deadletter_unseals_source ON deadletter_unseals (topic, "partition", "offset");
