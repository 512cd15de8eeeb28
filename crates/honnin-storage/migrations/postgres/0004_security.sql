-- Security hardening (issue 12); see migrations/sqlite/0004_security.sql for the why.
ALTER TABLE collections ADD COLUMN collection_uid TEXT;
UPDATE collections SET collection_uid = replace(gen_random_uuid()::text, '-', '') WHERE collection_uid IS NULL;
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
    collection_id = body::jsonb ->> 'collectionId',
    user_id = body::jsonb ->> 'externalUserId',
    verification_id = body::jsonb ->> 'verificationId';
CREATE INDEX outbox_by_collection ON webhook_outbox (collection_id, user_id);
CREATE INDEX outbox_by_verification ON webhook_outbox (verification_id);
CREATE INDEX tombstones_by_collection ON tombstones (collection_id);
