-- What a write's answer needs beyond accepted/refused: the events it produced
-- (did the transition move, or wait for approvals?) and, for a refusal, the
-- gate rules' results.
ALTER TABLE command_outcomes ADD COLUMN events text[] NOT NULL DEFAULT '{}';
ALTER TABLE command_outcomes ADD COLUMN rule_results jsonb NOT NULL DEFAULT '[]';

-- Listing and searching models: by name (prefix or pattern) and by version stage.
CREATE INDEX model_versions_stage ON model_versions (stage, model) WHERE NOT deleted;
CREATE INDEX model_versions_sha256 ON model_versions (artifact_sha256);
