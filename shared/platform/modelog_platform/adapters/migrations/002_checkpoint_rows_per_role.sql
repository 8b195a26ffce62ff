-- Each projection's role reads and moves its own checkpoints, and no other
-- projection's: role modelog_<name> has the rows of projection <name>. It may
-- add its rows and move their offsets (the conditional UPDATE of every batch),
-- nothing else; the owner and the admin see every row.
ALTER TABLE projection_checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_checkpoints ON projection_checkpoints TO modelog_projector, modelog_auditor
    USING (projection = substr(current_user, length('modelog_') + 1));
GRANT SELECT, INSERT, UPDATE (next_offset) ON projection_checkpoints TO modelog_projector, modelog_auditor;
