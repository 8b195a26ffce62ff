-- Where each projection has read modelog.events to, per partition. Updated in
-- the same transaction as the projection's rows: that is its exactly-once.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);
