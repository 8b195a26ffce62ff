-- The audit store: every event of modelog.events exactly once, never changed.
CREATE TABLE audit_events (
    model          text        NOT NULL,
    seq            bigint      NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor_subject  text        NOT NULL,
    command_id     uuid        NOT NULL,
    hash           text        NOT NULL,
    prev_hash      text        NOT NULL,
    kafka_partition integer    NOT NULL,
    kafka_offset   bigint      NOT NULL,
    event          jsonb       NOT NULL,
    PRIMARY KEY (model, seq)
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_subject, occurred_at);
CREATE INDEX audit_events_type ON audit_events (type, occurred_at);

-- Append-only, enforced by the database itself rather than by our good manners.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
