-- The event log. Positions are assigned by the single writer under
-- BEGIN IMMEDIATE, never by AUTOINCREMENT, so that they are gap-free and
-- in commit order. Payload, metadata and tags are the exact JSON text
-- that was hashed.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream          TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    tags            TEXT    NOT NULL,
    hash            BLOB    NOT NULL,
    -- The positions of the append this event came with, so that a retried
    -- append (same event id) returns the first result. Not hashed.
    append_first    INTEGER NOT NULL,
    append_last     INTEGER NOT NULL,
    UNIQUE (stream, stream_version)
);

-- One row per distinct tag of an event: read_by_tags and the append
-- condition ("any event with these tags after position P").
CREATE TABLE event_tags (
    tag       TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;

CREATE TABLE streams (
    stream   TEXT    PRIMARY KEY,
    version  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    key             TEXT    PRIMARY KEY,
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    stream_version  INTEGER NOT NULL
) WITHOUT ROWID;
