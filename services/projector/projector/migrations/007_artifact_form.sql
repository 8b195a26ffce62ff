-- What a version's artifact digest covers, as its VersionRegistered says:
-- 'file' (the bytes of one uploaded file), 'manifest' (a tree's manifest,
-- pinning every file of the tree) or 'unverified' (a source modelog could not
-- read, kept as given; the digest is of its uri's text). Readers serve a
-- version by this column, never by what its stored bytes look like: an
-- uploaded file whose bytes happen to be a manifest stays one file.
ALTER TABLE model_versions
    ADD COLUMN artifact_form text NOT NULL DEFAULT 'file'
        CHECK (artifact_form IN ('file', 'manifest', 'unverified'));

-- Rows written before this column: an unverified source is known exactly
-- (size 0, and the digest of its uri's text; no stored artifact is empty).
-- A tree's manifest cannot be told from SQL: `modelog projections rebuild
-- --switch` folds every form from the log.
UPDATE model_versions SET artifact_form = 'unverified'
    WHERE artifact_size = 0
      AND artifact_sha256 = encode(sha256(convert_to(artifact_uri, 'UTF8')), 'hex');
