-- Face Liveness sessions. One row per session; any server of the deployment can serve it.
-- Images and the reference template are sealed (AES-256-GCM) by honnin-core; they are
-- cleared when the results are first read or their time runs out, and the whole row is
-- deleted at retain_until_ms (results metadata kept at most 48 h by default).
CREATE TABLE liveness_sessions (
    session_id TEXT PRIMARY KEY,
    owner_key TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    device_id TEXT,
    settings TEXT NOT NULL,
    reference BLOB,
    status TEXT NOT NULL,
    result TEXT,
    images BLOB,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    images_until_ms BIGINT,
    retain_until_ms BIGINT NOT NULL
);
CREATE INDEX liveness_by_device ON liveness_sessions (device_id, created_ms);
CREATE INDEX liveness_by_owner ON liveness_sessions (owner_key, created_ms);
CREATE INDEX liveness_by_expiry ON liveness_sessions (expires_ms);
CREATE INDEX liveness_by_retention ON liveness_sessions (retain_until_ms);
