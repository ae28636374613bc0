//! A log written by an earlier schema opens under the current one and
//! loses nothing.

mod support;

use adapters::store;
use commands::log::{EventStore, ExpectedVersion, StoreError, StreamId};
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
