-- The event log. Positions are assigned by the writer while it holds the
-- append advisory lock, never by a sequence, so that they are gap-free
-- and in commit order. Payload, metadata and tags are the exact JSON text
-- that was hashed (TEXT, not JSONB, which would rewrite it).
CREATE TABLE events (
    position        BIGINT      PRIMARY KEY,
    stream          TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL,
    event_id        UUID        NOT NULL UNIQUE,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    payload         TEXT        NOT NULL,
    metadata        TEXT        NOT NULL,
    tags            TEXT        NOT NULL,
    hash            BYTEA       NOT NULL,
    -- The positions of the append this event came with, so that a retried
    -- append (same event id) returns the first result. Not hashed.
    append_first    BIGINT      NOT NULL,
    append_last     BIGINT      NOT NULL,
    UNIQUE (stream, stream_version)
);

-- One row per distinct tag of an event: read_by_tags and the append
-- condition ("any event with these tags after position P").
CREATE TABLE event_tags (
    tag       TEXT   NOT NULL,
    position  BIGINT NOT NULL,
    PRIMARY KEY (tag, position)
);

CREATE TABLE streams (
    stream   TEXT   PRIMARY KEY,
    version  BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    key             TEXT   PRIMARY KEY,
    first_position  BIGINT NOT NULL,
    last_position   BIGINT NOT NULL,
    stream_version  BIGINT NOT NULL
);
