-- `cityops deadletter replay` (services/ops/deadletters.py): every dead letter re-sent to its
-- source topic, by whom and when, so that a replay is not repeated by accident (`--force`).
CREATE TABLE deadletter_replays (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,        -- the dead letter's source: topic, partition, offset
    "partition"   integer NOT NULL,
    "offset"      bigint NOT NULL,
    kind          text NOT NULL,        -- why it was dead-lettered (error.kind)
    replayed_by   text NOT NULL,
    replayed_at   timestamptz NOT NULL DEFAULT now(),
    note          text NOT NULL DEFAULT '',
    forced        boolean NOT NULL DEFAULT false,
    sent_partition integer,             -- where the re-sent record landed
    sent_offset   bigint
);
CREATE INDEX deadletter_replays_source ON deadletter_replays (topic, "partition", "offset");
