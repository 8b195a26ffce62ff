-- A model's traffic split as its TrafficSplitSet events and the fold's rule
-- make it (modelog_contract.domain.splits): {"routes": [{"version", "weight"}],
-- "shadows": [...], "production_version": n}, or {} when there is none and the
-- Production version serves every request. No model had one before this column.
ALTER TABLE models ADD COLUMN traffic_split jsonb NOT NULL DEFAULT '{}';
