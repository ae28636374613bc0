//! A log written by an earlier schema opens under the current one and
//! loses nothing.

mod support;

use adapters::store;
use commands::log::{AppendCondition, EventStore, ExpectedVersion, StoreError, StreamId, Tag};
use support::{alter, broken_at, event, refused_as_corrupt, request, Harness, Kind};

/// The schema before the head record: a version row per stream, moved
/// by every append, and no `log_head`.
const BEFORE_HEAD_RECORD: &str = "DROP TABLE log_head; \
     CREATE TABLE streams (stream TEXT PRIMARY KEY, version BIGINT NOT NULL); \
     INSERT INTO streams SELECT stream, MAX(stream_version) FROM events GROUP BY stream; \
     DELETE FROM _sqlx_migrations WHERE version = 400";

/// Streams `s0` (three events) and `s1` (two), in a database taken back
/// to the schema before the head record; `None` when the PostgreSQL
/// suite is skipped.
async fn log_before_the_head_record(kind: Kind) -> Option<Harness> {
    let h = Harness::new(kind).await?;
    for (stream, events) in [("s0", 3), ("s1", 2)] {
        let events = (0..events).map(|_| event("T", &["tag:a"])).collect();
        h.store
            .append(request(stream, ExpectedVersion::NoStream, events))
            .await
            .unwrap();
    }
    alter(&h, kind, BEFORE_HEAD_RECORD).await;
    Some(h)
}

/// The log of [`log_before_the_head_record`] opened by a second store:
/// the migration records the head, the log verifies, and appends are
/// judged against the versions the streams had.
async fn versions_survive_the_head_record_migration(kind: Kind) {
    let Some(h) = log_before_the_head_record(kind).await else {
        return;
    };

    let reopened = store::open(h.url.as_deref().unwrap()).await.unwrap();
    let report = store::verify(&reopened).await.expect("the log verifies");
    assert_eq!(report.events, 5);

    let appended = reopened
        .append(request(
            "s0",
            ExpectedVersion::Exact(3),
            vec![event("T", &[])],
        ))
        .await
        .unwrap();
    assert_eq!((appended.first_position, appended.stream_version), (6, 4));
    match reopened
        .append(request(
            "s1",
            ExpectedVersion::Exact(1),
            vec![event("T", &[])],
        ))
        .await
    {
        Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
            assert_eq!((stream, actual), (StreamId::new("s1"), 2));
        }
        other => panic!("s1 is at version 2, got {other:?}"),
    }
    match reopened
        .append(request(
            "s1",
            ExpectedVersion::NoStream,
            vec![event("T", &[])],
        ))
        .await
    {
        Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, 2),
        other => panic!("s1 exists, got {other:?}"),
    }
    assert_eq!(store::verify(&reopened).await.unwrap().events, 6);
    reopened.close().await;
    h.finish().await;
}

/// The log of [`log_before_the_head_record`] with its last event
/// removed (the record of `s1` says 2, its events stop at 1) keeps that
/// evidence through the migration: verify names the missing position,
/// and appends are refused.
async fn a_removed_tail_survives_the_head_record_migration(kind: Kind) {
    let Some(h) = log_before_the_head_record(kind).await else {
        return;
    };
    alter(
        &h,
        kind,
        "DELETE FROM event_tags WHERE position = 5; DELETE FROM events WHERE position = 5",
    )
    .await;

    let reopened = store::open(h.url.as_deref().unwrap()).await.unwrap();
    broken_at(&reopened, 5).await;
    refused_as_corrupt(
        &reopened,
        request("s0", ExpectedVersion::Exact(3), vec![event("T", &[])]),
        "records its head at 5",
    )
    .await;
    reopened.close().await;
    h.finish().await;
}

/// The log of [`log_before_the_head_record`] with the version record of
/// `s1` (positions 4 and 5) removed, as if its events had been added
/// without an append: the migration keeps that, and verify names the
/// first of them.
async fn unrecorded_events_survive_the_head_record_migration(kind: Kind) {
    let Some(h) = log_before_the_head_record(kind).await else {
        return;
    };
    alter(&h, kind, "DELETE FROM streams WHERE stream = 's1'").await;

    let reopened = store::open(h.url.as_deref().unwrap()).await.unwrap();
    let chain_break = broken_at(&reopened, 4).await;
    assert!(
        chain_break.reason.contains("without an append"),
        "{chain_break}"
    );
    reopened.close().await;
    h.finish().await;
}

support::on_both_backends!(
    versions_survive_the_head_record_migration,
    a_removed_tail_survives_the_head_record_migration,
    unrecorded_events_survive_the_head_record_migration,
);

/// SQLite's tag index before migration 0500: one table, `event_tags`.
const BEFORE_RECENT_TAGS: &str = "DROP TRIGGER event_tags_insert; \
     DROP TRIGGER event_tags_delete; \
     DROP VIEW event_tags; \
     INSERT INTO event_tags_settled SELECT tag, position FROM event_tags_recent; \
     DROP TABLE event_tags_recent; \
     ALTER TABLE event_tags_settled RENAME TO event_tags; \
     DELETE FROM _sqlx_migrations WHERE version = 500";

/// A SQLite log whose tag index is one table opens with its rows in the
/// settled table: every tag finds its events, conditions see them, the
/// log verifies, and appends go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tags_survive_the_recent_tags_migration() {
    let h = Harness::new(Kind::Sqlite).await.unwrap();
    for stream in ["s0", "s1", "s2"] {
        let events = (0..3).map(|_| event("T", &["tag:a", stream])).collect();
        h.store
            .append(request(stream, ExpectedVersion::NoStream, events))
            .await
            .unwrap();
    }
    alter(&h, Kind::Sqlite, BEFORE_RECENT_TAGS).await;

    let reopened = store::open(h.url.as_deref().unwrap()).await.unwrap();
    let report = store::verify(&reopened).await.expect("the log verifies");
    assert_eq!(report.events, 9);
    let positions = |tag: &'static str| {
        let reopened = &reopened;
        async move {
            reopened
                .read_by_tags(&[Tag::new(tag)], 0, 100)
                .await
                .unwrap()
                .iter()
                .map(|event| event.position)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(positions("tag:a").await, (1..=9).collect::<Vec<_>>());
    assert_eq!(positions("s1").await, [4, 5, 6]);
    let mut guarded = request("s3", ExpectedVersion::NoStream, vec![event("T", &["s1"])]);
    guarded.condition = Some(AppendCondition {
        tags: vec![Tag::new("s1")],
        after: 5,
    });
    match reopened.append(guarded).await {
        Err(StoreError::ConditionFailed { position, .. }) => assert_eq!(position, 6),
        other => panic!("expected a condition refusal, got {other:?}"),
    }
    reopened
        .append(request(
            "s1",
            ExpectedVersion::Exact(3),
            vec![event("T", &["s1"])],
        ))
        .await
        .unwrap();
    assert_eq!(positions("s1").await, [4, 5, 6, 10]);
    reopened.close().await;
    h.finish().await;
}
