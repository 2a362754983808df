-- An outbox row is a frame: every message one transaction wrote for one shard, in the order it
-- wrote them (it was one row a message: three rows an order, each inserted then deleted). The
-- publish order is unchanged: frames by id, the messages of a frame in order; a key's messages
-- are all in its shard's frames. Rows already waiting become frames of one message.
DROP TYPE outbox_row;
CREATE TYPE outbox_row AS (
    shard int2,
    topics text[],
    keys bytea[],
    payloads bytea[],
    origins_ms int8[]
);

ALTER TABLE outbox RENAME COLUMN topic TO topics;
ALTER TABLE outbox RENAME COLUMN key TO keys;
ALTER TABLE outbox RENAME COLUMN value TO payloads;
ALTER TABLE outbox RENAME COLUMN origin_ms TO origins_ms;
ALTER TABLE outbox
    ALTER COLUMN topics TYPE text[] USING ARRAY[topics],
    ALTER COLUMN keys TYPE bytea[] USING ARRAY[keys],
    ALTER COLUMN payloads TYPE bytea[] USING ARRAY[payloads],
    ALTER COLUMN origins_ms TYPE int8[] USING ARRAY[origins_ms];

ALTER TABLE street.outbox RENAME COLUMN topic TO topics;
ALTER TABLE street.outbox RENAME COLUMN key TO keys;
ALTER TABLE street.outbox RENAME COLUMN value TO payloads;
ALTER TABLE street.outbox RENAME COLUMN origin_ms TO origins_ms;
ALTER TABLE street.outbox
    ALTER COLUMN topics TYPE text[] USING ARRAY[topics],
    ALTER COLUMN keys TYPE bytea[] USING ARRAY[keys],
    ALTER COLUMN payloads TYPE bytea[] USING ARRAY[payloads],
    ALTER COLUMN origins_ms TYPE int8[] USING ARRAY[origins_ms];
