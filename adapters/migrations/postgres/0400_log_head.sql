-- The log's head, one row, moved by every append in its own transaction.
-- It replaces the per-stream version records: a stream's version is its
-- last stored event's (one backward scan of the (stream, stream_version)
-- key), so an append no longer updates a row per stream it writes. What
-- the version records also gave, `lethe verify` gets from this row: a
-- log whose last events were removed records a head past its last event.
CREATE TABLE log_head (
    only_row  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    position  BIGINT  NOT NULL
);
INSERT INTO log_head (position) SELECT COALESCE(MAX(position), 0) FROM events;
DROP TABLE streams;
