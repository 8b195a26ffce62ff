-- What is live where: the latest ServingReported per (model, instance), as
-- the fold keeps it. `since` is the instance's own clock (when it swapped the
-- version in); `reported_at` the decision's time; `seq` the report's event.
CREATE TABLE serving_reports (
    model       text        NOT NULL,
    instance    text        NOT NULL,
    version     integer     NOT NULL,
    since       timestamptz NOT NULL,
    host        text,
    target      text,
    reported_by text        NOT NULL,
    reported_at timestamptz NOT NULL,
    seq         bigint      NOT NULL,
    PRIMARY KEY (model, instance)
);
CREATE INDEX serving_reports_by_version ON serving_reports (model, version);
