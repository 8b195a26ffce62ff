#!/bin/sh
# Run once by the postgres image when its data volume is new: the roles and
# grants the local stack provisions (engines/postgres.py; tests/unit/test_compose.py
# keeps the two in step), each password from its compose secret.
set -eu
secret() { cat "/run/secrets/postgres-$1"; }
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner="$(secret modelog_owner)" -v projector="$(secret modelog_projector)" \
     -v auditor="$(secret modelog_auditor)" <<'SQL'
CREATE ROLE modelog_owner LOGIN PASSWORD :'owner';
CREATE ROLE modelog_projector LOGIN PASSWORD :'projector';
CREATE ROLE modelog_auditor LOGIN PASSWORD :'auditor';
CREATE DATABASE modelog OWNER modelog_owner;
GRANT modelog_projector TO modelog_owner;
\connect modelog
REVOKE ALL ON DATABASE modelog FROM PUBLIC;
GRANT CONNECT ON DATABASE modelog TO modelog_projector, modelog_auditor;
GRANT CREATE ON DATABASE modelog TO modelog_projector;
GRANT CREATE ON SCHEMA public TO modelog_projector;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
