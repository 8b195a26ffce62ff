-- MLflow-style webhooks beside modelog's own: the same outbox and delivery,
-- another body (MLflow's {entity, action, timestamp, data}) and MLflow's
-- headers. `kind` says which; `events` holds the MLflow-style events
-- (`model_version.created`) an MLflow webhook is subscribed to; name,
-- description and updated_at are what MLflow's API shows of it. An MLflow
-- webhook watches every model and may have no secret ('': sent unsigned).
ALTER TABLE webhooks
    ADD COLUMN kind        text   NOT NULL DEFAULT 'cloudevents' CHECK (kind IN ('cloudevents', 'mlflow')),
    ADD COLUMN name        text,
    ADD COLUMN description text,
    ADD COLUMN events      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at  timestamptz;
