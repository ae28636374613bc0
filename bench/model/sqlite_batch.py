#!/usr/bin/env python3
"""A model of one group-commit batch on SQLite, in plain SQL.

Each transaction stores the next event of each of 64 streams (the
columns of Lethe's `events` table, a payload of about 250 bytes) and,
depending on the variant, their two tag rows, as the store's writer
does with 64 callers; WAL, `synchronous=FULL` unless the variant says
otherwise, statement journals in memory, a checkpoint every 8,000
pages. It prints events/s and the time of the inserts and of the
COMMIT per batch, so that the cost of each index can be told apart.
bench/README.md quotes its figures ("SQLite's tag index in two tables").

    python3 bench/model/sqlite_batch.py [seconds per variant] [--page-sizes]

With --page-sizes it compares SQLite's page sizes instead: today's batch
and the multi-row baseline on pages of 1 to 64 KiB.
"""

import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
EVENT_LOG = os.path.join(HERE, "..", "..", "adapters", "migrations", "sqlite", "0001_event_log.sql")
STREAMS = 64
RECENT = (
    "CREATE TABLE event_tags_recent (tag TEXT NOT NULL, position INTEGER NOT NULL, "
    "PRIMARY KEY (tag, position)) WITHOUT ROWID;"
)
RECENT_STREAMS = (
    "CREATE TABLE stream_recent (stream TEXT NOT NULL, version INTEGER NOT NULL, "
    "position INTEGER NOT NULL, PRIMARY KEY (stream, version)) WITHOUT ROWID; "
    "CREATE TABLE stream_settled (stream TEXT NOT NULL, version INTEGER NOT NULL, "
    "position INTEGER NOT NULL, PRIMARY KEY (stream, version)) WITHOUT ROWID; "
    "CREATE TRIGGER stream_unique BEFORE INSERT ON stream_recent WHEN EXISTS "
    "(SELECT 1 FROM stream_settled WHERE stream = NEW.stream AND version = NEW.version) "
    "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: stream_recent'); END;"
)
PAYLOAD = json.dumps({
    "request_id": str(uuid.uuid4()), "scope": "file:f-1-1", "policy": "gdpr",
    "channel": "in_product", "requested_by": {"member": "acct-1"},
    "due_at": "2026-04-01T10:00:00.000000Z",
    "note": "benchmark event shaped like a deletion request",
})
METADATA = json.dumps({
    "actor": "service:bench", "correlation_id": str(uuid.uuid4()),
    "causation_id": None, "idempotency_key": None, "source_channel": "bench",
})
NOW = "2026-12-01T00:00:00.000000Z"


def connect(directory, synchronous="full", page_size=4096):
    """A new database in `directory`, set as the store's writer sets it."""
    db = sqlite3.connect(os.path.join(directory, "model.db"), isolation_level=None)
    # The page size applies to a database that has no pages yet; the
    # checkpoint comes after the same 32 MB of WAL whatever the page size.
    checkpoint_pages = 8000 * 4096 // page_size
    for pragma in (f"page_size={page_size}", "journal_mode=wal", f"synchronous={synchronous}",
                   "temp_store=memory", f"wal_autocheckpoint={checkpoint_pages}"):
        db.execute(f"PRAGMA {pragma}")
    return db


def run(name, tags="direct", move_every=16, stream_key="key", synchronous="full", seconds=6.0,
        page_size=4096):
    """tags: "direct" (into the one index), "recent" (into a small table
    moved into the large one every `move_every` batches) or "none".
    stream_key: "key" (UNIQUE (stream, stream_version) on the events),
    "none", or "recent" (no key on the events; (stream, version,
    position) rows into a small table, kept unique against the large one
    by a trigger, moved every 32 batches)."""
    with tempfile.TemporaryDirectory() as directory:
        db = connect(directory, synchronous, page_size)
        schema = open(EVENT_LOG).read()
        if stream_key != "key":
            schema = schema.replace(",\n    UNIQUE (stream, stream_version)", "")
        db.executescript(schema)
        db.executescript(RECENT)
        if stream_key == "recent":
            db.executescript(RECENT_STREAMS)
        position, versions, batches = 0, [0] * STREAMS, 0
        inserting = committing = 0.0
        start = time.time()
        while time.time() - start < seconds:
            began = time.perf_counter()
            db.execute("BEGIN")
            events, tag_rows, stream_rows = [], [], []
            for stream in range(STREAMS):
                position += 1
                versions[stream] += 1
                events.append((
                    position, f"raw-{stream}", versions[stream],
                    str(uuid.UUID(int=(position << 64) | stream)), "DeletionRequested", 1,
                    NOW, NOW, PAYLOAD, METADATA, "[]", b"Z" * 32, position, position))
                tag_rows.append((f"workspace:ws-{stream}", position))
                tag_rows.append((f"resource:file:f-{stream}-{versions[stream]}", position))
                stream_rows.append((f"raw-{stream}", versions[stream], position))
            db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", events)
            if tags == "direct":
                db.executemany("INSERT INTO event_tags VALUES (?, ?)", tag_rows)
            elif tags == "recent":
                db.executemany("INSERT INTO event_tags_recent VALUES (?, ?)", tag_rows)
                if (batches + 1) % move_every == 0:
                    db.execute("INSERT INTO event_tags SELECT tag, position FROM event_tags_recent")
                    db.execute("DELETE FROM event_tags_recent")
            if stream_key == "recent":
                db.executemany("INSERT INTO stream_recent VALUES (?, ?, ?)", stream_rows)
                if (batches + 1) % 32 == 0:
                    db.execute("INSERT INTO stream_settled SELECT * FROM stream_recent")
                    db.execute("DELETE FROM stream_recent")
            inserted = time.perf_counter()
            db.execute("COMMIT")
            committed = time.perf_counter()
            inserting += inserted - began
            committing += committed - inserted
            batches += 1
        elapsed = time.time() - start
        db.close()
    print(f"{name:<44} {batches * STREAMS / elapsed:>8.0f} events/s   "
          f"insert {inserting / batches * 1000:.2f} ms   commit {committing / batches * 1000:.2f} ms",
          flush=True)


def multi_row(seconds, page_size=4096):
    """The multi-row baseline: 100 events of one stream per transaction."""
    with tempfile.TemporaryDirectory() as directory:
        db = connect(directory, page_size=page_size)
        db.executescript(open(EVENT_LOG).read())
        position, stored = 0, 0
        start = time.time()
        while time.time() - start < seconds:
            db.execute("BEGIN")
            events = []
            for _ in range(100):
                position += 1
                events.append((
                    position, "raw-0", position, str(uuid.UUID(int=position << 64)),
                    "DeletionRequested", 1, NOW, NOW, PAYLOAD, METADATA, "[]", b"Z" * 32,
                    position, position))
            db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", events)
            db.execute("COMMIT")
            stored += 100
        elapsed = time.time() - start
        db.close()
    name = "100 events of one stream per transaction"
    if page_size != 4096:
        name += f", {page_size // 1024} KiB pages"
    print(f"{name:<44} {stored / elapsed:>8.0f} events/s",
          flush=True)


def page_sizes(seconds):
    """Today's batch (tags through the recent table) and the multi-row
    baseline on each page size, twice."""
    for _ in range(2):
        for size in (1024, 2048, 4096, 8192, 16384, 65536):
            run(f"recent tags, {size // 1024} KiB pages", "recent", 16, seconds=seconds,
                page_size=size)
            multi_row(seconds, page_size=size)


def main():
    numbers = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    seconds = float(numbers[0]) if numbers else 6.0
    if "--page-sizes" in sys.argv:
        page_sizes(seconds)
        return
    for _ in range(2):
        run("tags into the one index", seconds=seconds)
        run("tags into the one index, synchronous=NORMAL", synchronous="normal", seconds=seconds)
        run("tags into the one index, synchronous=OFF", synchronous="off", seconds=seconds)
        for every in (8, 16, 64):
            run(f"tags into a recent table, moved every {every}", "recent", every, seconds=seconds)
        run("recent tags, no (stream, stream_version) key", "recent", 16, "none", seconds=seconds)
        run("recent tags, stream key split the same way", "recent", 16, "recent", seconds=seconds)
        run("no tag rows", "none", seconds=seconds)
        multi_row(seconds)


if __name__ == "__main__":
    main()
