-- Indexes for the auditor's questions. Each matches one query's WHERE and
-- ORDER BY, so pages are read by keyset from the index, not sorted.
-- IF NOT EXISTS keeps a rerun harmless. Not CONCURRENTLY: a migration runs
-- in one transaction, and the service builds them before it consumes.

-- Everything one actor did, paged by (occurred_at, model, seq).
CREATE INDEX IF NOT EXISTS audit_events_actor_page
    ON audit_events (actor_subject, occurred_at, model, seq);
DROP INDEX IF EXISTS audit_events_actor;  -- a prefix of the one above

-- Events of one type across models (every approval last week), paged likewise.
CREATE INDEX IF NOT EXISTS audit_events_type_page
    ON audit_events (type, occurred_at, model, seq);
DROP INDEX IF EXISTS audit_events_type;

-- The export over a time range, paged likewise.
CREATE INDEX IF NOT EXISTS audit_events_time_page
    ON audit_events (occurred_at, model, seq);
DROP INDEX IF EXISTS audit_events_time;

-- As of an instant: the first event of a model after it.
CREATE INDEX IF NOT EXISTS audit_events_model_time
    ON audit_events (model, occurred_at, seq);

-- One version's story (registration, requests, approvals, stage changes).
CREATE INDEX IF NOT EXISTS audit_events_model_version
    ON audit_events (model, ((event -> 'payload' ->> 'version')::integer), seq);
