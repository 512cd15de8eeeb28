-- Identity verifications (document → liveness → compare → duplicate search → enrolment),
-- the webhooks customers register, and the outbox their events are delivered from.
-- Templates and images are sealed (AES-256-GCM) by honnin-core; nothing here is plaintext
-- biometric data. The decision record (JSON) holds scores, thresholds and reasons only.

-- A finished liveness session that belongs to a verification keeps the live face's sealed
-- template until the verification has used it (then it is cleared).
ALTER TABLE liveness_sessions ADD COLUMN live_template BLOB;
ALTER TABLE liveness_sessions ADD COLUMN verification_id TEXT;

CREATE TABLE verifications (
    verification_id TEXT PRIMARY KEY,
    owner_key TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    external_user_id TEXT NOT NULL,
    policy TEXT NOT NULL,
    liveness_session_id TEXT NOT NULL,
    -- awaiting_document | awaiting_liveness | processing | approved | rejected | needs_review | expired
    status TEXT NOT NULL,
    -- Sealed template of the document portrait, until the decision.
    document BLOB,
    -- What was found on the document (box, size, quality; JSON, no biometrics).
    document_info TEXT,
    decision TEXT,
    -- Sealed images, only when the policy keeps them, until images_until_ms.
    images BLOB,
    images_until_ms BIGINT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    decided_ms BIGINT,
    retain_until_ms BIGINT NOT NULL
);
CREATE INDEX verifications_by_status ON verifications (status, expires_ms);
CREATE INDEX verifications_by_retention ON verifications (retain_until_ms);
CREATE INDEX verifications_by_liveness ON verifications (liveness_session_id);

CREATE TABLE webhooks (
    webhook_id TEXT PRIMARY KEY,
    owner_key TEXT NOT NULL,
    url TEXT NOT NULL,
    -- Sealed HMAC-SHA256 secret.
    secret BLOB NOT NULL,
    events TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX webhooks_by_owner ON webhooks (owner_key);

-- At-least-once delivery: a row per (event, webhook), claimed with a lease, retried with
-- back-off until delivered or out of attempts.
CREATE TABLE webhook_outbox (
    delivery_id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms BIGINT,
    delivered_ms BIGINT,
    failed_ms BIGINT,
    last_error TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX outbox_due ON webhook_outbox (delivered_ms, failed_ms, next_attempt_ms);
