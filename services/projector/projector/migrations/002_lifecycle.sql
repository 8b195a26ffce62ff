-- Lifecycle read models: aliases, pending transitions, stage history, tombstones.
ALTER TABLE models ADD COLUMN deleted boolean NOT NULL DEFAULT false;
ALTER TABLE model_versions ADD COLUMN deleted boolean NOT NULL DEFAULT false;
ALTER TABLE model_versions ADD COLUMN dataset_uri text;
ALTER TABLE model_versions ADD COLUMN dataset_sha256 text;
ALTER TABLE model_versions ADD COLUMN model_card text;

CREATE TABLE aliases (
    model     text    NOT NULL,
    alias     text    NOT NULL,
    version   integer NOT NULL,
    protected boolean NOT NULL,
    PRIMARY KEY (model, alias)
);

CREATE TABLE pending_transitions (
    request_id         uuid        PRIMARY KEY,
    model              text        NOT NULL,
    version            integer     NOT NULL,
    to_stage           text        NOT NULL,
    archive_existing   boolean     NOT NULL,
    requested_by       text        NOT NULL,
    requested_at       timestamptz NOT NULL,
    approvals_required integer     NOT NULL,
    approvals          jsonb       NOT NULL DEFAULT '[]'
);

CREATE TABLE stage_history (
    model      text        NOT NULL,
    seq        bigint      NOT NULL,
    version    integer     NOT NULL,
    from_stage text        NOT NULL,
    to_stage   text        NOT NULL,
    why        text        NOT NULL,
    actor      text        NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (model, seq)
);
