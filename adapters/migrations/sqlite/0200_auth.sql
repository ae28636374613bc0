-- Bearer tokens of the HTTP API. Only the SHA-256 of a token is kept;
-- the token itself is shown once, when it is created.
CREATE TABLE tokens (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('service', 'legal', 'auditor', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
