-- Face login (issue 14).
--
-- * A liveness session keeps its live face (sealed template, and the pose and quality
--   of the frame it came from) until it is consumed by one login or one profile
--   enrolment (consumed_ms: a session is used once), or until its images' time runs out.
-- * login_profiles: a person's enrolment profile, the templates a login compares with,
--   sealed with the collection's data key; enrolled only from a passed liveness session
--   (or, where an operator allows it, a photo for migration). Erased with the user or
--   the collection.
-- * login_attempts: one row per attempt, the decision and its numbers, never an image;
--   deleted at retain_until_ms.
-- * login_lockouts: consecutive failures and the back-off per user and per client.
-- * login_signing_keys: the keys that sign login assertions (ES256), the private key
--   sealed with the service key `service:login-signing`; published until retire_ms.
ALTER TABLE liveness_sessions ADD COLUMN live_face TEXT;
ALTER TABLE liveness_sessions ADD COLUMN consumed_ms BIGINT;

CREATE TABLE login_profiles (
    template_id TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections (collection_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    template BYTEA NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    details TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX login_profiles_by_user ON login_profiles (collection_id, user_id);

CREATE TABLE login_attempts (
    attempt_id TEXT PRIMARY KEY,
    owner_key TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    user_id TEXT,
    client_id TEXT,
    outcome TEXT NOT NULL,
    record TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    retain_until_ms BIGINT NOT NULL
);
CREATE INDEX login_attempts_by_user ON login_attempts (collection_id, user_id, created_ms);
CREATE INDEX login_attempts_by_retention ON login_attempts (retain_until_ms);

CREATE TABLE login_lockouts (
    collection_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    failures BIGINT NOT NULL,
    lockouts BIGINT NOT NULL,
    locked_until_ms BIGINT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (collection_id, subject)
);

CREATE TABLE login_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    retire_ms BIGINT NOT NULL
);

-- OpenID Connect provider: registered relying parties (the client secret's SHA-256
-- only), and authorization grants (a pending request bound to its liveness session,
-- then an issued code, stored as its SHA-256, with the ID token it is traded for,
-- redeemed once).
CREATE TABLE oidc_clients (
    client_id TEXT PRIMARY KEY,
    secret_hash BYTEA NOT NULL,
    name TEXT NOT NULL,
    owner_key TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    level TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX oidc_clients_by_owner ON oidc_clients (owner_key);
CREATE INDEX oidc_clients_by_collection ON oidc_clients (collection_id);

CREATE TABLE oidc_grants (
    grant_id TEXT PRIMARY KEY,
    code_hash TEXT UNIQUE,
    client_id TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    state TEXT,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    login_hint TEXT,
    liveness_session_id TEXT NOT NULL,
    user_id TEXT,
    login_id TEXT,
    auth_time_ms BIGINT,
    id_token TEXT,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX oidc_grants_by_expiry ON oidc_grants (expires_ms);
CREATE INDEX oidc_grants_by_collection ON oidc_grants (collection_id, user_id);
