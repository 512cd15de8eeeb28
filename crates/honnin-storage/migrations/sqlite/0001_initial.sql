CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    role TEXT NOT NULL,
    collection_id TEXT,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE collections (
    collection_id TEXT PRIMARY KEY,
    face_model TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE faces (
    face_id TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections (collection_id) ON DELETE CASCADE,
    user_id TEXT,
    external_image_id TEXT,
    image_id TEXT NOT NULL,
    details TEXT NOT NULL,
    template BLOB NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX faces_by_collection ON faces (collection_id, face_id);
CREATE INDEX faces_by_user ON faces (collection_id, user_id);
CREATE INDEX faces_by_update ON faces (updated_ms);

CREATE TABLE users (
    collection_id TEXT NOT NULL REFERENCES collections (collection_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (collection_id, user_id)
);

CREATE TABLE transient_faces (
    face_id TEXT PRIMARY KEY,
    owner_key TEXT NOT NULL,
    template BLOB NOT NULL,
    details TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX transient_by_expiry ON transient_faces (expires_ms);

CREATE TABLE tombstones (
    face_id TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL,
    deleted_ms BIGINT NOT NULL
);
CREATE INDEX tombstones_by_time ON tombstones (deleted_ms);
