-- Security hardening (issue 12).
--
-- * Collections get an internal identity (collection_uid) that a re-created collection of
--   the same name does not share; collection-limited keys are bound to it (scope_uid), so a
--   key limited to `kyc` loses access for good when `kyc` is deleted. A limited key created
--   before its collection existed has a NULL scope_uid and is bound on first use.
-- * Data keys leave this database for the key vault (`data_keys`, in a separate file on
--   SQLite): `wrapped_key` is emptied by honnin-core once the key is in the vault.
-- * Revoking a key cancels its open liveness sessions (cancelled_ms) and verifications
--   (status 'cancelled') and disables its webhooks (disabled_ms).
-- * Webhooks keep a circuit breaker (consecutive failures, open until).
-- * Outbox rows name what they are about, so erasing a collection or a user erases the
--   events about them too (backfilled from the event body).
ALTER TABLE collections ADD COLUMN collection_uid TEXT;
UPDATE collections SET collection_uid = lower(hex(randomblob(16))) WHERE collection_uid IS NULL;
CREATE UNIQUE INDEX collections_by_uid ON collections (collection_uid);

ALTER TABLE api_keys ADD COLUMN scope_uid TEXT;
UPDATE api_keys SET scope_uid =
    (SELECT c.collection_uid FROM collections c WHERE c.collection_id = api_keys.collection_id)
    WHERE collection_id IS NOT NULL;

ALTER TABLE liveness_sessions ADD COLUMN cancelled_ms BIGINT;
CREATE INDEX liveness_by_owner_status ON liveness_sessions (owner_key, status);
CREATE INDEX verifications_by_owner ON verifications (owner_key, status);
CREATE INDEX verifications_by_collection ON verifications (collection_id, external_user_id);
CREATE INDEX transient_by_owner ON transient_faces (owner_key);

ALTER TABLE webhooks ADD COLUMN disabled_ms BIGINT;
ALTER TABLE webhooks ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN circuit_open_until_ms BIGINT;

ALTER TABLE webhook_outbox ADD COLUMN collection_id TEXT;
ALTER TABLE webhook_outbox ADD COLUMN user_id TEXT;
ALTER TABLE webhook_outbox ADD COLUMN verification_id TEXT;
UPDATE webhook_outbox SET
    collection_id = json_extract(body, '$.collectionId'),
    user_id = json_extract(body, '$.externalUserId'),
    verification_id = json_extract(body, '$.verificationId')
    WHERE json_valid(body);
CREATE INDEX outbox_by_collection ON webhook_outbox (collection_id, user_id);
CREATE INDEX outbox_by_verification ON webhook_outbox (verification_id);
CREATE INDEX tombstones_by_collection ON tombstones (collection_id);
