-- Breaks in a model's chain, found as each event is recorded: a missing or
-- repeated seq, a prev_hash that does not link, a hash that does not match.
-- Written in the projection's transaction, so each is found exactly once.
CREATE TABLE IF NOT EXISTS audit_alerts (
    id              bigserial   PRIMARY KEY,
    model           text        NOT NULL,
    seq             bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    problem         text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    event           jsonb       NOT NULL,  -- the evidence, also when the event is not stored
    detected_at     timestamptz NOT NULL DEFAULT now()
);
