-- Writes the registrar refused before they became commands, as it recorded
-- them to modelog.denials: a denial, or a summary of a subject's suppressed
-- denials in one window. The Kafka position is the consumer's checkpoint:
-- each record is stored once, and reading resumes after the last one stored.
CREATE TABLE IF NOT EXISTS audit_denials (
    denial_id       uuid        PRIMARY KEY,
    kind            text        NOT NULL,  -- 'denial' or 'summary'
    at              timestamptz NOT NULL,
    subject         text        NOT NULL,
    model           text,
    status          integer,
    code            text,
    suppressed      integer,               -- a summary: how many denials it stands for
    record          jsonb       NOT NULL,  -- the record as the registrar wrote it
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    UNIQUE (kafka_partition, kafka_offset)
);
CREATE INDEX IF NOT EXISTS audit_denials_subject_at ON audit_denials (subject, at);
CREATE INDEX IF NOT EXISTS audit_denials_model_at ON audit_denials (model, at);
CREATE INDEX IF NOT EXISTS audit_denials_at ON audit_denials (at);
