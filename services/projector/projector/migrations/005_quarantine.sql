-- Events of modelog.events not proven to come from the log's writer (unsigned,
-- signed by a key the projector does not trust, or changed after signing).
-- They change no read model and queue no webhook: each is kept here, in the
-- batch's transaction, as the evidence for whoever the alert pages.
CREATE TABLE quarantined_events (
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    model           text,                    -- NULL: the record did not say (or not readably)
    seq             bigint,
    event_id        uuid,
    problem         text        NOT NULL,
    record          jsonb       NOT NULL,    -- the record's fields as stored ({} if unreadable)
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kafka_partition, kafka_offset)
);
