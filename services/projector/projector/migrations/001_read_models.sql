-- The projector's read models, rebuilt from modelog.events at will.
CREATE TABLE models (
    name        text        PRIMARY KEY,
    seq         bigint      NOT NULL,
    head_hash   text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    tags        jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE model_versions (
    model           text        NOT NULL REFERENCES models (name),
    version         integer     NOT NULL,
    stage           text        NOT NULL DEFAULT 'None',
    artifact_uri    text        NOT NULL,
    artifact_sha256 text        NOT NULL,
    artifact_size   bigint      NOT NULL,
    run_id          text,
    description     text        NOT NULL DEFAULT '',
    params          jsonb       NOT NULL DEFAULT '{}',
    metrics         jsonb       NOT NULL DEFAULT '{}',
    tags            jsonb       NOT NULL DEFAULT '{}',
    registered_by   text        NOT NULL,
    registered_at   timestamptz NOT NULL,
    PRIMARY KEY (model, version)
);

-- What became of each command, for the registrar's read-your-writes answer.
CREATE TABLE command_outcomes (
    command_id  uuid        PRIMARY KEY,
    model       text        NOT NULL,
    accepted    boolean     NOT NULL,
    complete    boolean     NOT NULL,
    last_seq    bigint      NOT NULL,
    reason      text,
    message     text,
    version     integer,
    decided_at  timestamptz NOT NULL
);
