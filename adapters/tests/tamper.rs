//! Altering the stored log with plain SQL must make `verify` fail and
//! name the first bad position.

mod support;

use std::sync::Arc;

use adapters::store::{self, VerifyError};
use commands::log::{EventStore, ExpectedVersion, StoreError};
use support::{alter, broken_at, event, refused_as_corrupt, request, Harness, Kind};

const EVENTS: u64 = 10;

/// Appends ten events, the event at position p tagged `tag:a` and
/// `tag:{p - 1}`, and checks the log intact.
async fn ten_tagged_events(h: &Harness) {
    for i in 0..EVENTS {
        h.store
            .append(request(
                &format!("s{}", i % 3),
                ExpectedVersion::Any,
                vec![event("T", &["tag:a", &format!("tag:{i}")])],
            ))
            .await
            .unwrap();
    }
    assert_eq!(h.assert_intact().await, EVENTS);
}

/// A log of ten tagged events ([`ten_tagged_events`]) altered by `sql`;
/// verify must break at `position`.
async fn tampered(kind: Kind, sql: &str, position: u64) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    ten_tagged_events(&h).await;

    alter(&h, kind, sql).await;

    broken_at(h.db.as_ref().unwrap(), position).await;
    h.finish().await;
}

macro_rules! tamper_tests {
    ($($name:ident: $sql:expr => $position:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::tampered(super::Kind::Sqlite, $sql, $position).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::tampered(super::Kind::Postgres, $sql, $position).await;
                }
            )*
        }
    };
}

tamper_tests!(
    one_payload_byte_changed:
        "UPDATE events SET payload = replace(payload, '\"abc\"', '\"abd\"') WHERE position = 4" => 4,
    payload_reformatted_with_the_same_value:
        "UPDATE events SET payload = ' ' || payload WHERE position = 2" => 2,
    one_row_deleted:
        "DELETE FROM events WHERE position = 6" => 6,
    last_row_deleted:
        "DELETE FROM events WHERE position = 10; DELETE FROM event_tags WHERE position = 10" => 10,
    two_rows_swapped:
        "UPDATE events SET position = -1 WHERE position = 3; \
         UPDATE events SET position = 3 WHERE position = 7; \
         UPDATE events SET position = 7 WHERE position = -1" => 3,
    tag_index_entry_removed:
        "DELETE FROM event_tags WHERE position = 5 AND tag = 'tag:a'" => 5,
    recorded_time_changed:
        "UPDATE events SET occurred_at = '2001-01-01T00:00:00.000000Z' WHERE position = 8" => 8,
    event_added_before_the_first:
        "INSERT INTO events (position, stream, stream_version, event_id, event_type, \
             schema_version, occurred_at, recorded_at, payload, metadata, tags, hash, \
             append_first, append_last) \
         SELECT 0, 'forged', 1, '00000000-0000-4000-8000-000000000000', event_type, \
             schema_version, occurred_at, recorded_at, payload, metadata, tags, hash, 0, 0 \
         FROM events WHERE position = 1" => 0,
    tag_index_row_added_to_an_event:
        "INSERT INTO event_tags (tag, position) VALUES ('tag:z', 4)" => 4,
    tag_index_entry_renamed:
        "DELETE FROM event_tags WHERE position = 6 AND tag = 'tag:a'; \
         INSERT INTO event_tags (tag, position) VALUES ('tag:b', 6)" => 6,
    tag_index_entry_moved_to_an_earlier_event:
        "DELETE FROM event_tags WHERE position = 8 AND tag = 'tag:7'; \
         INSERT INTO event_tags (tag, position) VALUES ('tag:7', 2)" => 2,
    tag_index_row_added_before_an_altered_event:
        "INSERT INTO event_tags (tag, position) VALUES ('tag:z', 3); \
         UPDATE events SET payload = ' ' || payload WHERE position = 7" => 3,
    tag_index_entry_removed_before_an_altered_event:
        "DELETE FROM event_tags WHERE position = 2 AND tag = 'tag:1'; \
         UPDATE events SET payload = ' ' || payload WHERE position = 3" => 2,
    tag_index_row_past_the_head:
        "INSERT INTO event_tags (tag, position) VALUES ('tag:a', 99)" => 99,
    head_record_removed:
        "DELETE FROM log_head" => 11,
    head_record_lowered:
        "UPDATE log_head SET position = 8" => 9,
);

/// A page read ahead, long enough to be read and decoded on a task of its
/// own, still refuses an altered event and names its position, as a plain
/// read does; shorter reads before it are unaffected.
async fn long_read_refuses_an_altered_event(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    let events: Vec<_> = (0..400).map(|_| event("T", &["tag:a"])).collect();
    h.store
        .append(request("s", ExpectedVersion::NoStream, events))
        .await
        .unwrap();
    alter(
        &h,
        kind,
        "UPDATE events SET payload = ' ' || payload WHERE position = 333",
    )
    .await;
    assert_eq!(h.store.read_all_ahead(0, 300).await.unwrap().len(), 300);
    assert_eq!(h.store.read_all_ahead(330, 2).await.unwrap().len(), 2);
    for read in [
        h.store.read_all_ahead(0, 1_000).await,
        h.store.read_all(0, 1_000).await,
    ] {
        match read {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("position 333"), "{why}"),
            other => panic!("the read should be refused as corrupt, got {other:?}"),
        }
    }
    h.finish().await;
}

/// An idempotency key describes one append: its first and last positions
/// and its stream's version after it. A log with keyed appends verifies
/// intact; a key row moved to another append, or past the head, breaks
/// at the key's first position, since a retry would be answered with it.
async fn idempotency_keys_are_checked_against_their_appends(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    for (i, key) in ["k-1", "k-2", "k-3"].into_iter().enumerate() {
        let mut keyed = request(
            &format!("s{i}"),
            ExpectedVersion::NoStream,
            vec![event("T", &["tag:a"]), event("T", &["tag:b"])],
        );
        keyed.idempotency_key = Some(key.to_owned());
        h.store.append(keyed).await.unwrap();
    }
    assert_eq!(h.assert_intact().await, 6);
    // Each alteration names an earlier position than the one before, so
    // that verify, which names the first, names the newest.
    for (sql, position) in [
        (
            "INSERT INTO idempotency_keys (key, first_position, last_position, stream_version) \
             VALUES ('k-forged', 12, 13, 2)",
            12,
        ),
        (
            "UPDATE idempotency_keys SET last_position = 4 WHERE key = 'k-3'",
            5,
        ),
        (
            "UPDATE idempotency_keys SET stream_version = 1 WHERE key = 'k-2'",
            3,
        ),
    ] {
        alter(&h, kind, sql).await;
        match store::verify(h.db.as_ref().unwrap()).await {
            Err(VerifyError::Broken(chain_break)) => {
                assert_eq!(chain_break.position, position, "{sql}: {chain_break}");
                assert!(
                    chain_break.reason.contains("idempotency key"),
                    "{chain_break}"
                );
            }
            other => panic!("{sql}: verify should fail at {position}, got {other:?}"),
        }
    }
    h.finish().await;
}

/// A log whose last event was removed is not extended: an append would
/// record its own head over the evidence. The store refuses as corrupt,
/// and verify still names the missing position afterwards.
async fn no_append_hides_a_removed_tail(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    for _ in 0..3 {
        h.store
            .append(request(
                "s",
                ExpectedVersion::Any,
                vec![event("T", &["tag:a"])],
            ))
            .await
            .unwrap();
    }
    alter(
        &h,
        kind,
        "DELETE FROM event_tags WHERE position = 3; DELETE FROM events WHERE position = 3",
    )
    .await;
    // A second store: the first remembers its head and would find out
    // only through its insert's guard, which the test checks too.
    let reopened: Arc<dyn EventStore> =
        Arc::new(store::open(h.url.as_deref().unwrap()).await.unwrap());
    for store in [h.store.clone(), reopened] {
        refused_as_corrupt(
            store.as_ref(),
            request("s", ExpectedVersion::Any, vec![event("T", &[])]),
            "records its head at 3",
        )
        .await;
    }
    broken_at(h.db.as_ref().unwrap(), 3).await;
    h.finish().await;
}

/// `appends` appends of 100 events each, all tagged `tag:a`.
async fn appends_of_a_hundred(h: &Harness, appends: usize) {
    for _ in 0..appends {
        let events = (0..100).map(|_| event("T", &["tag:a"])).collect();
        h.store
            .append(request("s", ExpectedVersion::Any, events))
            .await
            .unwrap();
    }
}

/// Verify reads the log in pages of 1,000 events. A tag index row that no
/// event carries, on the first page, is named before a break on a later
/// page: an altered event, or a tag row missing there.
async fn a_stray_tag_row_is_named_before_a_later_page(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    appends_of_a_hundred(&h, 12).await;
    assert_eq!(h.assert_intact().await, 1_200);
    alter(
        &h,
        kind,
        "DELETE FROM event_tags WHERE position = 1050 AND tag = 'tag:a'",
    )
    .await;
    broken_at(h.db.as_ref().unwrap(), 1_050).await;
    alter(
        &h,
        kind,
        "UPDATE events SET payload = ' ' || payload WHERE position = 1100; \
         INSERT INTO event_tags (tag, position) VALUES ('tag:z', 5)",
    )
    .await;
    let named = broken_at(h.db.as_ref().unwrap(), 5).await;
    assert!(named.reason.contains("tag:z"), "{named}");
    h.finish().await;
}

/// A tag row held by both of SQLite's tag tables (the recent rows and the
/// settled ones) is one row of the index: reads return it once, and
/// verify counts it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_tag_row_in_both_tables_counts_once() {
    let kind = Kind::Sqlite;
    let h = Harness::new(kind).await.unwrap();
    ten_tagged_events(&h).await;
    alter(
        &h,
        kind,
        "INSERT INTO event_tags_settled SELECT tag, position FROM event_tags_recent \
         WHERE position = 3",
    )
    .await;
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(h.url.as_deref().unwrap())
        .await
        .unwrap();
    let in_both: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM event_tags_settled s JOIN event_tags_recent r \
         ON r.tag = s.tag AND r.position = s.position",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    sqlx::Connection::close(db).await.unwrap();
    assert_eq!(in_both, 2, "position 3's two rows are in both tables");
    let read = h
        .store
        .read_by_tags(&[commands::log::Tag::new("tag:a")], 0, 100)
        .await
        .unwrap();
    let positions: Vec<u64> = read.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=EVENTS).collect::<Vec<_>>());
    assert_eq!(h.assert_intact().await, EVENTS);
    // A row beside them that no event carries still breaks it.
    alter(
        &h,
        kind,
        "INSERT INTO event_tags_recent (tag, position) VALUES ('tag:z', 7)",
    )
    .await;
    broken_at(h.db.as_ref().unwrap(), 7).await;
    h.finish().await;
}

/// Verify says how far it has walked after every page of 1,000 events.
async fn verify_reports_its_progress_page_by_page(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    appends_of_a_hundred(&h, 25).await;
    let mut walked = Vec::new();
    let report = store::verify_with_progress(h.db.as_ref().unwrap(), |p| walked.push(p))
        .await
        .unwrap();
    assert_eq!(report.events, 2_500);
    assert_eq!(walked, [1_000, 2_000, 2_500]);
    h.finish().await;
}

/// The tests above of a whole log, beside `tamper_tests!`'s own
/// `sqlite` and `postgres` modules.
mod whole_log {
    use super::*;

    support::on_both_backends!(
        long_read_refuses_an_altered_event,
        idempotency_keys_are_checked_against_their_appends,
        no_append_hides_a_removed_tail,
        a_stray_tag_row_is_named_before_a_later_page,
        verify_reports_its_progress_page_by_page,
    );
}
