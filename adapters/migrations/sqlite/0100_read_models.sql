-- Read models: one checkpoint per projection ("audit", "resources", ...),
-- and "NAME@rebuild" while a rebuild fills the projection's shadow tables.
-- The read-model tables themselves are created by the adapters' code
-- (adapters/src/readmodel/schema.rs), since a rebuild builds a second copy
-- of them beside the live one and swaps it in; they are disposable and
-- rebuilt from the log when their schema version changes.
CREATE TABLE read_model_checkpoints (
    projection      TEXT    PRIMARY KEY,
    -- The last log position applied to the projection's tables.
    position        INTEGER NOT NULL,
    -- Index names carry this number (an index keeps its name when its
    -- table is renamed by a rebuild's swap).
    generation      INTEGER NOT NULL,
    schema_version  INTEGER NOT NULL
) WITHOUT ROWID;
