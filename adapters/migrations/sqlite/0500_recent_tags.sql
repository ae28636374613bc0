-- The tag index in two tables: `event_tags_settled`, the large one, and
-- `event_tags_recent`, which every append writes and which a later
-- append moves into the settled one once it holds a few thousand rows.
--
-- Why: a batch of one-event appends from many callers carries tags that
-- lie all over the (tag, position) key (each workspace, each resource),
-- so inserting them into one large index changed a leaf page per tag row,
-- a hundred or more 4 KiB pages written to the WAL by every commit, for
-- rows of some 40 bytes. The recent table is a few dozen pages, which
-- every batch changes anyway; the move inserts a few thousand rows in key
-- order, so each settled leaf is written once for many batches' rows.
--
-- `event_tags` stays the name to read the whole index by: a view of both
-- tables. Its triggers let a repair (or a test) delete rows from it and
-- insert rows into it as into one table with one key: a row either
-- table holds is refused, with the same error either way.
ALTER TABLE event_tags RENAME TO event_tags_settled;

CREATE TABLE event_tags_recent (
    tag       TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;

CREATE VIEW event_tags (tag, position) AS
    SELECT tag, position FROM event_tags_settled
    UNION ALL
    SELECT tag, position FROM event_tags_recent;

CREATE TRIGGER event_tags_delete INSTEAD OF DELETE ON event_tags
BEGIN
    DELETE FROM event_tags_settled WHERE tag = OLD.tag AND position = OLD.position;
    DELETE FROM event_tags_recent WHERE tag = OLD.tag AND position = OLD.position;
END;

CREATE TRIGGER event_tags_insert INSTEAD OF INSERT ON event_tags
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: event_tags.tag, event_tags.position')
        WHERE EXISTS (SELECT 1 FROM event_tags
            WHERE tag = NEW.tag AND position = NEW.position);
    INSERT INTO event_tags_settled (tag, position) VALUES (NEW.tag, NEW.position);
END;
