-- Crypto-shredding, outside the log. One data key per subject, wrapped by
-- the master key; `wrapped` is NULL once the key is destroyed (forgotten).
-- The row that stays is a tombstone: values sealed for a forgotten subject
-- later are erased at once.
CREATE TABLE data_keys (
    owner        TEXT PRIMARY KEY,
    wrapped      TEXT,
    master_id    TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    destroyed_at TIMESTAMPTZ
);

-- The plain id of each keyed-hash external account id, sealed under the
-- account's own data key, so readers can show it until it is forgotten.
CREATE TABLE external_ids (
    pseudonym TEXT PRIMARY KEY,
    sealed    TEXT NOT NULL
);
