-- The log's head, one row, moved by every append in its own transaction.
-- It replaces the per-stream version records: a stream's version is its
-- last stored event's (one backward scan of the (stream, stream_version)
-- key), so an append no longer updates a row per stream it writes. What
-- the version records also gave, `lethe verify` gets from this row: a
-- log whose last events were removed records a head past its last event.
CREATE TABLE log_head (
    only_row  INTEGER PRIMARY KEY DEFAULT 1 CHECK (only_row = 1),
    position  INTEGER NOT NULL
);
-- The head of an existing log is its last stored event, unless the version
-- records disagree with the events; that evidence is kept as a head that
-- `lethe verify` reports and appends refuse:
-- - a stream whose record is past its last event (events removed from the
--   end): one past the last event;
-- - events whose stream has no record (added without an append): just
--   before the first of them, so that verify names it.
INSERT INTO log_head (position)
SELECT CASE
    WHEN EXISTS (
        SELECT 1 FROM streams s
        WHERE s.version <> COALESCE(
            (SELECT MAX(e.stream_version) FROM events e WHERE e.stream = s.stream), 0))
    THEN (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
    ELSE COALESCE(
        (SELECT MIN(e.position) - 1 FROM events e
         WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.stream = e.stream)),
        (SELECT MAX(position) FROM events),
        0)
END;
DROP TABLE streams;
