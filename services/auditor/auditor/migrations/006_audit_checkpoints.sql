-- Each model's state at every Nth seq (MODELOG_AUDIT_CHECKPOINT_EVERY), as
-- the auditor records its events: an as-of answer reads the nearest one and
-- folds at most N events, also on the first question after a restart.
-- A state at seq n of an append-only chain never goes stale, so rows are only
-- added. `state` is the state's JSON exactly as the contract wrote it (bytea,
-- not jsonb: jsonb would reorder the keys of maps whose order means
-- something), `digest` its SHA-256, `state_schema` the contract's name for
-- the shape of that JSON: a row of another shape is never read. The owner may
-- delete rows of shapes the running auditor no longer reads.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    model        text        NOT NULL,
    state_schema text        NOT NULL,
    seq          bigint      NOT NULL,
    state        bytea       NOT NULL,
    digest       text        NOT NULL,
    written_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, state_schema, seq)
);

CREATE FUNCTION audit_checkpoints_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints rows never change: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_update();

-- Only the auditor writes and reads them, and only by adding: the answers it
-- serves rest on them. No other serving role is granted anything.
GRANT SELECT, INSERT ON audit_checkpoints TO modelog_auditor;
