-- The auditor's role records and reads; it can neither change nor remove a
-- record (no UPDATE, DELETE or TRUNCATE is granted; audit_events' trigger
-- refuses them even to the owner). New audit tables grant the same here.
GRANT SELECT, INSERT ON audit_events, audit_alerts, audit_denials TO modelog_auditor;
GRANT USAGE ON SEQUENCE audit_alerts_id_seq TO modelog_auditor;
