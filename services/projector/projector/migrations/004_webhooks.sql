-- Webhooks: a serving system registers a URL and a secret; every committed
-- event that matches is put in the outbox in the same transaction as the read
-- models, so nothing committed is ever missed (at-least-once), and a worker
-- delivers each webhook's outbox in log order.
CREATE TABLE webhooks (
    id         uuid        PRIMARY KEY,
    url        text        NOT NULL,
    secret     text        NOT NULL,
    model      text,                           -- NULL: every model
    types      text[]      NOT NULL DEFAULT '{}', -- empty: every event type
    created_at timestamptz NOT NULL,
    active     boolean     NOT NULL DEFAULT true
);

CREATE TABLE webhook_outbox (
    id              bigserial   PRIMARY KEY,   -- the delivery order: log order per partition
    webhook_id      uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    model           text        NOT NULL,
    seq             bigint      NOT NULL,
    body            jsonb       NOT NULL,
    delivered_at    timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (webhook_id, id) WHERE delivered_at IS NULL;

-- Every delivery attempt, for the receiver's owner to read back.
CREATE TABLE webhook_attempts (
    outbox_id   bigint      NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer,
    error       text,
    duration_ms real        NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);
