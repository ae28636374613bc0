//! One body of tests for the event-store port, run against every backend:
//! the in-memory reference, SQLite and PostgreSQL.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use commands::log::{
    AppendCondition, AppendRequest, EventStore, ExpectedVersion, Position, StoreError, StreamId,
    Tag, EVENT_PAYLOAD_BYTES_MAX,
};
use support::{event, request, Harness, Kind};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Runs each listed test body against each backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Kind::Memory, super::$name).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Kind::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Kind::Postgres, super::$name).await;
                }
            )*
        }
    };
}

conformance!(
    optimistic_concurrency,
    multi_event_append_is_atomic,
    bad_input_is_refused_and_stores_nothing,
    idempotency_returns_the_first_result,
    conditional_append_on_tags,
    conditional_appends_in_one_batch_have_one_winner,
    read_all_pages,
    read_stream_pages,
    read_by_tags,
    wait_for_wakes_and_times_out,
    concurrent_writers_get_gap_free_positions,
    follower_never_skips_an_event,
    events_read_back_as_appended,
    another_writer_between_appends,
    batches_larger_than_one_statement_store_every_row,
    retries_amid_new_appends_get_their_first_result,
    numbers_read_back_exactly,
    a_condition_sees_every_earlier_batch,
    the_tag_index_is_whole_across_many_batches,
);

async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(harness) = Harness::new(kind).await else {
        return;
    };
    let harness = Arc::new(harness);
    body(harness.clone()).await;
    if let Ok(harness) = Arc::try_unwrap(harness) {
        harness.finish().await;
    }
}

/// What a writer that appended `version` events to its stream expects.
fn expected_at(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name)
}

async fn optimistic_concurrency(h: Arc<Harness>) {
    let store = &h.store;
    let first = store
        .append(request(
            "s",
            ExpectedVersion::NoStream,
            vec![event("A", &[])],
        ))
        .await
        .expect("a new stream accepts NoStream");
    assert_eq!((first.first_position, first.stream_version), (1, 1));

    assert_eq!(
        refused_version(store.as_ref(), "s", ExpectedVersion::NoStream).await,
        1
    );
    let second = store
        .append(request(
            "s",
            ExpectedVersion::Exact(1),
            vec![event("B", &[])],
        ))
        .await
        .expect("the right version is accepted");
    assert_eq!(second.stream_version, 2);

    let stale = store
        .append(request(
            "s",
            ExpectedVersion::Exact(1),
            vec![event("B", &[])],
        ))
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::WrongExpectedVersion {
                actual: 2,
                expected: ExpectedVersion::Exact(1),
                ..
            })
        ),
        "{stale:?}"
    );
    let ahead = store
        .append(request(
            "s",
            ExpectedVersion::Exact(7),
            vec![event("B", &[])],
        ))
        .await;
    assert!(
        ahead.as_ref().is_err_and(StoreError::is_conflict),
        "{ahead:?}"
    );

    let any = store
        .append(request("s", ExpectedVersion::Any, vec![event("C", &[])]))
        .await
        .expect("Any is not checked");
    assert_eq!((any.first_position, any.stream_version), (3, 3));
    let fresh = store
        .append(request(
            "t",
            ExpectedVersion::Exact(0),
            vec![event("C", &[])],
        ))
        .await
        .expect("Exact(0) is a stream that does not exist yet");
    assert_eq!((fresh.first_position, fresh.stream_version), (4, 1));
    assert_eq!(store.head().await.unwrap(), 4);
    assert_eq!(h.assert_intact().await, 4);
}

async fn multi_event_append_is_atomic(h: Arc<Harness>) {
    let store = &h.store;
    let events = vec![event("A", &[]), event("B", &[]), event("C", &[])];
    let appended = store
        .append(request("s", ExpectedVersion::NoStream, events.clone()))
        .await
        .unwrap();
    assert_eq!(
        (
            appended.first_position,
            appended.last_position,
            appended.stream_version
        ),
        (1, 3, 3)
    );
    let stored = store.read_stream(&stream("s"), 0, 100).await.unwrap();
    let versions: Vec<u64> = stored.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [1, 2, 3]);
    let ids: Vec<_> = stored.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, events.iter().map(|e| e.event_id).collect::<Vec<_>>());

    // A failing append of several events stores none of them.
    let failing = store
        .append(request(
            "s",
            ExpectedVersion::Exact(1),
            vec![event("D", &["x"]), event("E", &["x"])],
        ))
        .await;
    assert!(failing.is_err());
    assert_eq!(store.head().await.unwrap(), 3);
    assert!(store
        .read_by_tags(&[Tag::new("x")], 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.assert_intact().await, 3);
}

async fn bad_input_is_refused_and_stores_nothing(h: Arc<Harness>) {
    let store = &h.store;
    let mut big = event("Big", &[]);
    big.payload = serde_json::json!({ "blob": "x".repeat(EVENT_PAYLOAD_BYTES_MAX) });
    let cases = vec![
        request("s", ExpectedVersion::Any, vec![]),
        request("s", ExpectedVersion::Any, vec![event("A", &[]), big]),
        request("", ExpectedVersion::Any, vec![event("A", &[])]),
        request("bad\nname", ExpectedVersion::Any, vec![event("A", &[])]),
        request("s", ExpectedVersion::Any, vec![event("", &[])]),
        request(
            "s",
            ExpectedVersion::Any,
            vec![event("A", &["bad\u{7}tag"])],
        ),
        {
            let twice = event("A", &[]);
            request("s", ExpectedVersion::Any, vec![twice.clone(), twice])
        },
        {
            let mut ancient = event("A", &[]);
            ancient.occurred_at = chrono::DateTime::<chrono::Utc>::MIN_UTC;
            request("s", ExpectedVersion::Any, vec![ancient])
        },
    ];
    for case in cases {
        let outcome = store.append(case.clone()).await;
        assert!(
            matches!(outcome, Err(StoreError::InvalidEvent(_))),
            "{case:?} gave {outcome:?}"
        );
    }
    assert_eq!(store.head().await.unwrap(), 0);
    // The store still works afterwards.
    store
        .append(request(
            "s",
            ExpectedVersion::NoStream,
            vec![event("A", &[])],
        ))
        .await
        .unwrap();
    assert_eq!(h.assert_intact().await, 1);
}

async fn idempotency_returns_the_first_result(h: Arc<Harness>) {
    let store = &h.store;
    store
        .append(request(
            "other",
            ExpectedVersion::Any,
            vec![event("X", &[])],
        ))
        .await
        .unwrap();

    let mut keyed = request(
        "s",
        ExpectedVersion::NoStream,
        vec![event("A", &[]), event("B", &[])],
    );
    keyed.idempotency_key = Some("request-1".into());
    let first = store.append(keyed.clone()).await.unwrap();
    assert!(!first.deduplicated);
    assert_eq!((first.first_position, first.last_position), (2, 3));

    // Same key, new event ids and an expected version that would now
    // fail: still the first result.
    let mut retry = request("s", ExpectedVersion::NoStream, vec![event("A", &[])]);
    retry.idempotency_key = Some("request-1".into());
    let again = store.append(retry).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(
        (
            again.first_position,
            again.last_position,
            again.stream_version
        ),
        (2, 3, 2)
    );

    // Same event ids, no key.
    let events = vec![event("C", &[]), event("D", &[]), event("E", &[])];
    let by_id = store
        .append(request("s", ExpectedVersion::Exact(2), events.clone()))
        .await
        .unwrap();
    let retried = store
        .append(request("s", ExpectedVersion::Exact(2), events.clone()))
        .await
        .unwrap();
    assert!(retried.deduplicated);
    assert_eq!(
        (
            retried.first_position,
            retried.last_position,
            retried.stream_version
        ),
        (
            by_id.first_position,
            by_id.last_position,
            by_id.stream_version
        )
    );
    // A retry that starts at the second event finds the same append.
    let tail = store
        .append(request("s", ExpectedVersion::Any, events[1..].to_vec()))
        .await
        .unwrap();
    assert!(tail.deduplicated);
    assert_eq!(tail.last_position, by_id.last_position);
    assert_eq!(tail.stream_version, 5);

    // A stored id behind a new one is a caller bug, not a retry.
    let mixed = store
        .append(request(
            "s",
            ExpectedVersion::Any,
            vec![event("F", &[]), events[0].clone()],
        ))
        .await;
    assert!(
        matches!(mixed, Err(StoreError::InvalidEvent(_))),
        "{mixed:?}"
    );

    assert_eq!(store.head().await.unwrap(), 6);
    assert_eq!(h.assert_intact().await, 6);

    // Concurrent retries of one key: one append, everyone sees it.
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = h.store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut request = request("k", ExpectedVersion::Any, vec![event("K", &[])]);
            request.idempotency_key = Some("shared-key".into());
            barrier.wait().await;
            store.append(request).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| !r.deduplicated).count(), 1);
    assert!(results.iter().all(|r| r.first_position == 7));
    assert_eq!(store.head().await.unwrap(), 7);
}

fn conditional(stream: &str, tags: &[&str], after: Position, event_tags: &[&str]) -> AppendRequest {
    let mut request = request(stream, ExpectedVersion::Any, vec![event("C", event_tags)]);
    request.condition = Some(AppendCondition {
        tags: tags.iter().map(|tag| Tag::new(*tag)).collect(),
        after,
    });
    request
}

async fn conditional_append_on_tags(h: Arc<Harness>) {
    let store = &h.store;
    store
        .append(request(
            "hold-1",
            ExpectedVersion::Any,
            vec![event("HoldPlaced", &["workspace:W"])],
        ))
        .await
        .unwrap();
    // Read at 1: nothing tagged since, so the decision stands.
    let ok = store
        .append(conditional(
            "deletion-1",
            &["workspace:W", "file:F"],
            1,
            &["file:F"],
        ))
        .await
        .unwrap();
    assert_eq!(ok.first_position, 2);
    let ok = store
        .append(conditional("deletion-2", &["workspace:W"], 1, &["other:X"]))
        .await
        .unwrap();
    assert_eq!(ok.first_position, 3);

    // Read at 0: the hold at 1 came after; the first conflicting event
    // and its first matching tag are named.
    let stale = store
        .append(conditional(
            "deletion-3",
            &["file:F", "workspace:W"],
            0,
            &[],
        ))
        .await;
    match stale {
        Err(StoreError::ConditionFailed { tag, position }) => {
            assert_eq!((tag.as_str(), position), ("workspace:W", 1));
        }
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
    let stale = store
        .append(conditional("deletion-3", &["file:F"], 1, &[]))
        .await;
    match stale {
        Err(StoreError::ConditionFailed { tag, position }) => {
            assert_eq!((tag.as_str(), position), ("file:F", 2));
        }
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
    // Tags nobody used, and a position at the head, pass.
    store
        .append(conditional("deletion-4", &["never:used"], 0, &[]))
        .await
        .unwrap();
    store
        .append(conditional(
            "deletion-5",
            &["file:F", "workspace:W"],
            4,
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(store.head().await.unwrap(), 5);
    assert_eq!(h.assert_intact().await, 5);
}

/// Writers race on one tag, each appending to its own stream (exact
/// versions, so a writer may decide from memory) on the condition that
/// no event carries the tag after the head it read. Every event carries
/// the tag, so an append that succeeds must land right after the head its
/// writer read: one that lands later was decided without seeing an
/// earlier batch, e.g. one still being committed when it was decided. A
/// refusal names the first event after that head, which is the next one.
async fn a_condition_sees_every_earlier_batch(h: Arc<Harness>) {
    const RACERS: usize = 16;
    const ATTEMPTS: usize = 60;
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("racer-{racer}");
            let mut version = 0;
            let mut won = 0;
            for _ in 0..ATTEMPTS {
                let read_at = store.head().await.unwrap();
                let expected = expected_at(version);
                let mut request = request(&stream, expected, vec![event("R", &["race"])]);
                request.condition = Some(AppendCondition {
                    tags: vec![Tag::new("race")],
                    after: read_at,
                });
                match store.append(request).await {
                    Ok(appended) => {
                        assert_eq!(
                            appended.first_position,
                            read_at + 1,
                            "{stream} read the head at {read_at}"
                        );
                        version += 1;
                        won += 1;
                    }
                    Err(StoreError::ConditionFailed { tag, position }) => {
                        assert_eq!(tag.as_str(), "race");
                        assert_eq!(position, read_at + 1, "{stream} read the head at {read_at}");
                    }
                    Err(other) => panic!("unexpected {other}"),
                }
            }
            won
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert!(total > 0, "some appends must win");
    assert_contiguous_log(&*h.store, total).await;
    assert_eq!(h.assert_intact().await, total);
}

/// Concurrent decisions read at the same position, each writing the tag
/// the others are conditioned on: exactly one wins, whether or not the
/// writer puts them in one group-commit batch.
async fn conditional_appends_in_one_batch_have_one_winner(h: Arc<Harness>) {
    let store = &h.store;
    store
        .append(request(
            "setup",
            ExpectedVersion::Any,
            vec![event("S", &["file:F"])],
        ))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = h.store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            // Half are holds, half deletions: both kinds write the tag.
            let stream = format!("decision-{i}");
            let request = conditional(&stream, &["file:F"], 1, &["file:F", "noise"]);
            barrier.wait().await;
            store.append(request).await
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(appended) => winners.push(appended.first_position),
            Err(StoreError::ConditionFailed { tag, position }) => {
                assert_eq!(tag.as_str(), "file:F");
                losers.push(position);
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners, [2]);
    assert!(losers.iter().all(|position| *position == 2), "{losers:?}");
    assert_eq!(store.head().await.unwrap(), 2);
    assert_eq!(h.assert_intact().await, 2);
}

async fn read_all_pages(h: Arc<Harness>) {
    let store = &h.store;
    for i in 0..25 {
        store
            .append(request(
                &format!("s{}", i % 3),
                ExpectedVersion::Any,
                vec![event("A", &[])],
            ))
            .await
            .unwrap();
    }
    let mut after = 0;
    let mut sizes = Vec::new();
    loop {
        let page = store.read_all(after, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        for event in &page {
            assert_eq!(event.position, after + 1);
            after = event.position;
        }
        sizes.push(page.len());
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert!(store.read_all(0, 0).await.unwrap().is_empty());
    assert!(store.read_all(25, 10).await.unwrap().is_empty());
    assert!(store.read_all(u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(store.read_all(20, usize::MAX).await.unwrap().len(), 5);
}

async fn read_stream_pages(h: Arc<Harness>) {
    let store = &h.store;
    for i in 0..12 {
        store
            .append(request(
                &format!("s{}", i % 2),
                ExpectedVersion::Any,
                vec![event("A", &[])],
            ))
            .await
            .unwrap();
    }
    let first = store.read_stream(&stream("s1"), 0, 4).await.unwrap();
    let rest = store.read_stream(&stream("s1"), 4, 100).await.unwrap();
    let versions: Vec<u64> = first
        .iter()
        .chain(&rest)
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    let positions: Vec<u64> = first.iter().chain(&rest).map(|e| e.position).collect();
    assert_eq!(positions, [2, 4, 6, 8, 10, 12]);
    assert!(store
        .read_stream(&stream("none"), 0, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn read_by_tags(h: Arc<Harness>) {
    let store = &h.store;
    let tagged = [
        vec!["a"],
        vec!["b"],
        vec!["a", "b"],
        vec![],
        vec!["c", "a", "a"],
        vec!["b"],
    ];
    for tags in &tagged {
        store
            .append(request("s", ExpectedVersion::Any, vec![event("A", tags)]))
            .await
            .unwrap();
    }
    let positions = |events: Vec<commands::log::RecordedEvent>| -> Vec<u64> {
        events.iter().map(|e| e.position).collect()
    };
    let a = [Tag::new("a")];
    let ab = [Tag::new("a"), Tag::new("b")];
    assert_eq!(
        positions(store.read_by_tags(&a, 0, 100).await.unwrap()),
        [1, 3, 5]
    );
    assert_eq!(
        positions(store.read_by_tags(&ab, 0, 100).await.unwrap()),
        [1, 2, 3, 5, 6]
    );
    assert_eq!(
        positions(store.read_by_tags(&ab, 2, 2).await.unwrap()),
        [3, 5]
    );
    assert!(store
        .read_by_tags(&[Tag::new("z")], 0, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.read_by_tags(&[], 0, 100).await.unwrap().is_empty());
    // Tags come back as they were given, repeats included.
    let fifth = store.read_by_tags(&[Tag::new("c")], 0, 1).await.unwrap();
    assert_eq!(fifth[0].tags, [Tag::new("c"), Tag::new("a"), Tag::new("a")]);
}

/// Thousands of tag rows, from large appends, from many concurrent
/// one-event appends and from one append of more tag rows than SQLite
/// keeps in its recent tag table (SQLite moves those rows into the
/// settled table every couple of thousand rows): every tag still finds
/// each of its events, once and in order, and conditions see them all.
async fn the_tag_index_is_whole_across_many_batches(h: Arc<Harness>) {
    const LARGE_APPENDS: u64 = 25;
    const LARGE_EVENTS: u64 = 100;
    const WRITERS: u64 = 32;
    const WRITER_APPENDS: u64 = 40;
    const HUGE_EVENTS: u64 = 1_100;
    let store = h.store.clone();
    for append in 0..LARGE_APPENDS {
        let events = (0..LARGE_EVENTS)
            .map(|i| event("L", &["all", &format!("n:{}", append * LARGE_EVENTS + i)]))
            .collect();
        store
            .append(request("large", ExpectedVersion::Any, events))
            .await
            .unwrap();
    }
    // On SQLite: 600 recent rows now, and 2,560 more from the writers,
    // so rows move while the writer's batches overlap.
    let settled_before = sqlite_tag_rows(&h, "event_tags_settled").await;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let tag = format!("writer:{writer}");
            for _ in 0..WRITER_APPENDS {
                store
                    .append(request(
                        &tag,
                        ExpectedVersion::Any,
                        vec![event("W", &["all", &tag])],
                    ))
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let settled_after = sqlite_tag_rows(&h, "event_tags_settled").await;
    if h.kind == Kind::Sqlite {
        assert!(
            settled_after > settled_before,
            "no rows moved: {settled_after}"
        );
    }
    let huge = (0..HUGE_EVENTS)
        .map(|i| event("H", &["all", &format!("huge:{i}")]))
        .collect();
    store
        .append(request("huge", ExpectedVersion::Any, huge))
        .await
        .unwrap();
    // The huge append's rows went to the settled table themselves (a
    // later append's move would hide it, so this looks at once).
    let huge_recent = sqlite_tag_rows(
        &h,
        "event_tags_recent WHERE tag >= 'huge:' AND tag < 'huge;'",
    )
    .await;
    assert_eq!(huge_recent, 0);
    let huge_settled = sqlite_tag_rows(
        &h,
        "event_tags_settled WHERE tag >= 'huge:' AND tag < 'huge;'",
    )
    .await;
    if h.kind == Kind::Sqlite {
        assert_eq!(huge_settled, HUGE_EVENTS);
    }
    let total = LARGE_APPENDS * LARGE_EVENTS + WRITERS * WRITER_APPENDS + HUGE_EVENTS;
    assert_eq!(store.head().await.unwrap(), total);

    let mut after = 0;
    while after < total {
        let page = store
            .read_by_tags(&[Tag::new("all")], after, 1_000)
            .await
            .unwrap();
        assert!(!page.is_empty(), "tag `all` lost the events after {after}");
        for event in page {
            assert_eq!(event.position, after + 1, "tag `all`: gap or repeat");
            after = event.position;
        }
    }
    for n in [0, 1_234, 2_499] {
        let found = store
            .read_by_tags(&[Tag::new(format!("n:{n}"))], 0, 10)
            .await
            .unwrap();
        let positions: Vec<Position> = found.iter().map(|event| event.position).collect();
        assert_eq!(positions, [n + 1], "tag n:{n}");
    }
    let one_writer = store
        .read_by_tags(&[Tag::new("writer:7")], 0, 100)
        .await
        .unwrap();
    assert_eq!(one_writer.len() as u64, WRITER_APPENDS);
    let last_huge = store
        .read_by_tags(&[Tag::new(format!("huge:{}", HUGE_EVENTS - 1))], 0, 10)
        .await
        .unwrap();
    assert_eq!(last_huge.len(), 1);
    // The first large append's tags are long settled on SQLite.
    assert_eq!(refused_condition(store.as_ref(), "c1", "n:5", 0).await, 6);
    assert_eq!(
        refused_condition(store.as_ref(), "c2", "all", total - 1).await,
        total
    );
    store
        .append(conditional("c3", &["n:5"], 6, &["n:5"]))
        .await
        .unwrap();

    if h.kind == Kind::Sqlite {
        // Two tags on each event, and one on the last conditional append.
        assert_eq!(sqlite_tag_rows(&h, "event_tags").await, 2 * total + 1);
        let twice = sqlite_tag_rows(
            &h,
            "(SELECT 1 FROM event_tags GROUP BY tag, position HAVING COUNT(*) > 1)",
        )
        .await;
        assert_eq!(twice, 0, "rows in both tables");
        let recent = sqlite_tag_rows(&h, "event_tags_recent").await;
        assert!(recent < 2_048 + 2 * LARGE_EVENTS, "{recent} recent rows");
    }
    h.assert_intact().await;
}

/// `SELECT COUNT(*) FROM {from}` on the harness's SQLite database; 0 on
/// the other backends.
async fn sqlite_tag_rows(h: &Harness, from: &str) -> u64 {
    if h.kind != Kind::Sqlite {
        return 0;
    }
    let url = h.url.clone().unwrap();
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {from}"))
        .fetch_one(&mut db)
        .await
        .unwrap();
    rows as u64
}

async fn wait_for_wakes_and_times_out(h: Arc<Harness>) {
    let store = &h.store;
    store
        .append(request("s", ExpectedVersion::Any, vec![event("A", &[])]))
        .await
        .unwrap();
    // Nothing new: returns the head it saw once the timeout passes.
    assert_eq!(
        store.wait_for(1, Duration::from_millis(50)).await.unwrap(),
        1
    );
    // Already past: returns at once.
    assert_eq!(store.wait_for(0, Duration::from_secs(60)).await.unwrap(), 1);

    let waiter = {
        let store = h.store.clone();
        tokio::spawn(async move { store.wait_for(1, Duration::from_secs(60)).await })
    };
    let writer = {
        let store = h.store.clone();
        tokio::spawn(async move {
            store
                .append(request("s", ExpectedVersion::Any, vec![event("B", &[])]))
                .await
        })
    };
    writer.await.unwrap().unwrap();
    let seen = waiter.await.unwrap().unwrap();
    assert!(seen >= 2, "woke at {seen}");
}

const WRITERS: usize = 16;
const APPENDS_PER_WRITER: usize = 500;

async fn concurrent_writers_get_gap_free_positions(h: Arc<Harness>) {
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("writer-{writer}");
            for i in 0..APPENDS_PER_WRITER {
                // Own stream with exact versions, and a shared stream
                // that everybody appends to without a check.
                let (stream, expected) = if i % 5 == 4 {
                    ("shared".to_owned(), ExpectedVersion::Any)
                } else {
                    let version = (i - i / 5) as u64;
                    let expected = expected_at(version);
                    (own.clone(), expected)
                };
                store
                    .append(request(&stream, expected, vec![event("W", &["load"])]))
                    .await
                    .expect("append under load");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = (WRITERS * APPENDS_PER_WRITER) as u64;
    assert_contiguous_log(&*h.store, total).await;
    assert_eq!(h.assert_intact().await, total);
}

/// More rows than one insert statement carries, in every table: an
/// append of 600 events with 1,200 tags, then 300 one-event appends to
/// 300 streams with idempotency keys, at once so that batches form.
async fn batches_larger_than_one_statement_store_every_row(h: Arc<Harness>) {
    const BIG: usize = 600;
    const SMALL: usize = 300;
    let store = h.store.clone();
    let events: Vec<_> = (0..BIG)
        .map(|i| event("Big", &[&format!("big:{i}"), "big"]))
        .collect();
    let mut big = request("big", ExpectedVersion::NoStream, events.clone());
    big.idempotency_key = Some("big-key".into());
    let appended = store.append(big.clone()).await.unwrap();
    assert_eq!(
        (appended.first_position, appended.last_position),
        (1, BIG as u64)
    );
    let barrier = Arc::new(Barrier::new(SMALL));
    let tasks: Vec<_> = (0..SMALL)
        .map(|i| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut one = request(
                    &format!("small-{i}"),
                    ExpectedVersion::NoStream,
                    vec![event("Small", &[&format!("small:{i}")])],
                );
                one.idempotency_key = Some(format!("small-key-{i}"));
                barrier.wait().await;
                store.append(one).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().stream_version, 1);
    }
    let total = (BIG + SMALL) as u64;
    assert_contiguous_log(&*store, total).await;
    assert_eq!(h.assert_intact().await, total);
    // Every tag row is there, the last one included.
    let last = store
        .read_by_tags(&[Tag::new(format!("big:{}", BIG - 1))], 0, 10)
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].event_id, events[BIG - 1].event_id);
    assert_eq!(
        store
            .read_by_tags(&[Tag::new("big")], 0, 10_000)
            .await
            .unwrap()
            .len(),
        BIG
    );
    assert_eq!(
        store
            .read_by_tags(&[Tag::new(format!("small:{}", SMALL - 1))], 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The big append's key and stream version were stored as well.
    let again = store.append(big).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.stream_version, BIG as u64);
}

/// Retries of committed appends, each with its idempotency key or its
/// event ids only, sent at once with as many new appends so that they
/// share batches: every retry gets its first result, never a version
/// error, however much the writer remembers of the streams.
async fn retries_amid_new_appends_get_their_first_result(h: Arc<Harness>) {
    const APPENDS: usize = 64;
    let one = |i: usize, key: bool| {
        let mut one = request(
            &format!("retried-{i}"),
            ExpectedVersion::NoStream,
            vec![event("Retried", &["retried"])],
        );
        one.idempotency_key = key.then(|| format!("retried-key-{i}"));
        one
    };
    let firsts: Vec<AppendRequest> = (0..APPENDS).map(|i| one(i, i % 2 == 0)).collect();
    let mut appended = Vec::new();
    for first in &firsts {
        appended.push(h.store.append(first.clone()).await.unwrap());
    }
    let barrier = Arc::new(Barrier::new(2 * APPENDS));
    let mut tasks = Vec::new();
    for (i, first) in firsts.into_iter().enumerate() {
        let new = request(
            &format!("new-{i}"),
            ExpectedVersion::NoStream,
            vec![event("New", &["new"])],
        );
        for request in [first, new] {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.append(request).await
            }));
        }
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let answer = task
            .await
            .unwrap()
            .expect("a retry or a new append succeeds");
        if i % 2 == 0 {
            assert!(answer.deduplicated, "retry {}", i / 2);
            assert_eq!(answer.first_position, appended[i / 2].first_position);
        } else {
            assert!(!answer.deduplicated);
        }
    }
    assert_contiguous_log(&*h.store, 2 * APPENDS as u64).await;
}

/// Positions are exactly 1..=total and each stream's versions are 1..=n.
/// A second writer on the same database appends between this store's
/// appends: every answer is the one the committed log gives, however
/// much this store's writer remembers of its own last commit.
async fn another_writer_between_appends(h: Arc<Harness>) {
    let other: Arc<dyn EventStore> = match &h.url {
        Some(url) => Arc::new(adapters::store::open(url).await.expect("a second store")),
        // One memory store has one writer: it stands in for both.
        None => h.store.clone(),
    };
    let store = &h.store;
    let mine = store
        .append(request(
            "s",
            ExpectedVersion::NoStream,
            vec![event("A", &["t"])],
        ))
        .await
        .unwrap();
    assert_eq!(mine.last_position, 1);
    other
        .append(request(
            "s",
            ExpectedVersion::Exact(1),
            vec![event("B", &["t"])],
        ))
        .await
        .unwrap();

    // This store last saw stream s at version 1 and the head at 1.
    assert_eq!(
        refused_version(store.as_ref(), "s", ExpectedVersion::Exact(1)).await,
        2
    );
    let next = store
        .append(request(
            "s",
            ExpectedVersion::Exact(2),
            vec![event("C", &[])],
        ))
        .await
        .unwrap();
    assert_eq!((next.first_position, next.stream_version), (3, 3));

    // A version this store never saw, on a stream that does not exist,
    // and on one that the other writer created.
    assert_eq!(
        refused_version(store.as_ref(), "nope", ExpectedVersion::Exact(5)).await,
        0
    );
    other
        .append(request(
            "theirs",
            ExpectedVersion::NoStream,
            vec![event("E", &[])],
        ))
        .await
        .unwrap();
    assert_eq!(
        refused_version(store.as_ref(), "theirs", ExpectedVersion::NoStream).await,
        1
    );

    // A condition met by the other writer's event.
    let seen = store.head().await.unwrap();
    let theirs = other
        .append(request(
            "u",
            ExpectedVersion::NoStream,
            vec![event("G", &["t"])],
        ))
        .await
        .unwrap();
    assert_eq!(
        refused_condition(store.as_ref(), "v", "t", seen).await,
        theirs.last_position
    );

    // A condition met by this store's own earlier append, made in a
    // batch of its own: memory knows the head but not the tag.
    let own = store
        .append(request(
            "own",
            ExpectedVersion::NoStream,
            vec![event("G2", &["own"])],
        ))
        .await
        .unwrap();
    assert_eq!(
        refused_condition(store.as_ref(), "v2", "own", own.last_position - 1).await,
        own.last_position
    );

    // A stream this store wrote, then the other writer, while this store
    // committed on looked-up state (an append at any version of a stream
    // it never wrote): what it remembered of the first stream is stale.
    store
        .append(request(
            "mine",
            ExpectedVersion::NoStream,
            vec![event("N", &[])],
        ))
        .await
        .unwrap();
    other
        .append(request(
            "mine",
            ExpectedVersion::Exact(1),
            vec![event("O", &[])],
        ))
        .await
        .unwrap();
    store
        .append(request(
            "anything",
            ExpectedVersion::Any,
            vec![event("P", &[])],
        ))
        .await
        .unwrap();
    let (current, beside) = tokio::join!(
        store.append(request(
            "mine",
            ExpectedVersion::Exact(2),
            vec![event("Q", &[])]
        )),
        store.append(request(
            "beside",
            ExpectedVersion::NoStream,
            vec![event("R", &[])]
        )),
    );
    assert_eq!(current.unwrap().stream_version, 3);
    assert_eq!(beside.unwrap().stream_version, 1);

    // An idempotency key and an event id that the other writer stored.
    let mut keyed = request("k", ExpectedVersion::NoStream, vec![event("I", &[])]);
    keyed.idempotency_key = Some("key-1".into());
    let first = other.append(keyed.clone()).await.unwrap();
    let mut retry = request("k", ExpectedVersion::NoStream, vec![event("I", &[])]);
    retry.idempotency_key = Some("key-1".into());
    let again = store.append(retry).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.first_position, first.first_position);
    let same_ids = request("w", ExpectedVersion::NoStream, vec![event("J", &[])]);
    let stored = other.append(same_ids.clone()).await.unwrap();
    let retried = store.append(same_ids).await.unwrap();
    assert!(retried.deduplicated);
    assert_eq!(retried.first_position, stored.first_position);

    // Requests that share a batch: the failing one fails alone.
    other
        .append(request(
            "s",
            ExpectedVersion::Exact(3),
            vec![event("K", &[])],
        ))
        .await
        .unwrap();
    let (wrong, right) = tokio::join!(
        store.append(request(
            "s",
            ExpectedVersion::Exact(3),
            vec![event("L", &[])]
        )),
        store.append(request(
            "x",
            ExpectedVersion::NoStream,
            vec![event("M", &[])]
        )),
    );
    assert!(
        matches!(
            wrong,
            Err(StoreError::WrongExpectedVersion { actual: 4, .. })
        ),
        "{wrong:?}"
    );
    let right = right.unwrap();
    assert_eq!(right.stream_version, 1);

    let total = store.head().await.unwrap();
    assert_eq!(total, right.last_position);
    assert_contiguous_log(store.as_ref(), total).await;
    drop(other);
    assert_eq!(h.assert_intact().await, total);
}

/// Appends one event that must be refused for its expected version, and
/// returns the actual version the refusal names.
async fn refused_version(store: &dyn EventStore, stream: &str, expected: ExpectedVersion) -> u64 {
    match store
        .append(request(stream, expected, vec![event("Refused", &[])]))
        .await
    {
        Err(StoreError::WrongExpectedVersion { actual, .. }) => actual,
        other => panic!("expected a wrong-version refusal, got {other:?}"),
    }
}

/// Appends one event on the condition that no event tagged `tag` came
/// after `after`; it must be refused, and the position of the event that
/// met the condition is returned.
async fn refused_condition(
    store: &dyn EventStore,
    stream: &str,
    tag: &str,
    after: Position,
) -> Position {
    let mut guarded = request(
        stream,
        ExpectedVersion::NoStream,
        vec![event("Refused", &[tag])],
    );
    guarded.condition = Some(AppendCondition {
        tags: vec![Tag::new(tag)],
        after,
    });
    match store.append(guarded).await {
        Err(StoreError::ConditionFailed { position, .. }) => position,
        other => panic!("expected a condition refusal, got {other:?}"),
    }
}

pub async fn assert_contiguous_log(store: &dyn EventStore, total: u64) {
    let mut after = 0;
    let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut ids = HashSet::new();
    loop {
        let page = store.read_all(after, 1_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        for event in page {
            assert_eq!(event.position, after + 1, "gap or duplicate");
            after = event.position;
            let version = versions.entry(event.stream.clone()).or_insert(0);
            *version += 1;
            assert_eq!(event.stream_version, *version, "stream {}", event.stream);
            assert!(ids.insert(event.event_id));
        }
    }
    assert_eq!(after, total);
    assert_eq!(store.head().await.unwrap(), total);
}

async fn follower_never_skips_an_event(h: Arc<Harness>) {
    const FOLLOW_WRITERS: usize = 8;
    const FOLLOW_APPENDS: usize = 150;
    let total = (FOLLOW_WRITERS * FOLLOW_APPENDS * 2) as u64;
    let follower = {
        let store = h.store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            while after < total {
                let page = store.read_all(after, 97).await.unwrap();
                if page.is_empty() {
                    store.wait_for(after, Duration::from_secs(5)).await.unwrap();
                    continue;
                }
                for event in page {
                    seen.push(event.position);
                    after = event.position;
                }
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for writer in 0..FOLLOW_WRITERS {
        let store = h.store.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..FOLLOW_APPENDS {
                store
                    .append(request(
                        &format!("follow-{writer}"),
                        ExpectedVersion::Any,
                        vec![event("F", &[]), event("G", &[])],
                    ))
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = follower.await.unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}

async fn events_read_back_as_appended(h: Arc<Harness>) {
    let store = &h.store;
    let mut new = event("Typed", &["t:1", "t:2"]);
    new.schema_version = 7;
    new.metadata.idempotency_key = Some("meta-key".into());
    new.metadata.causation_id = Some(uuid::Uuid::now_v7());
    let appended = store
        .append(request("s", ExpectedVersion::NoStream, vec![new.clone()]))
        .await
        .unwrap();
    let read = store.read_all(0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    let stored = &read[0];
    assert_eq!(stored.position, appended.first_position);
    assert_eq!(stored.event_id, new.event_id);
    assert_eq!(stored.event_type, "Typed");
    assert_eq!(stored.schema_version, 7);
    assert_eq!(stored.payload, new.payload);
    assert_eq!(stored.metadata, new.metadata);
    assert_eq!(stored.tags, new.tags);
    assert_eq!(
        stored.occurred_at,
        commands::log::truncate_micros(new.occurred_at)
    );
    assert_eq!(
        stored.recorded_at,
        commands::log::truncate_micros(stored.recorded_at)
    );
    // Reading it again gives the identical event, hash included.
    assert_eq!(
        store.read_stream(&stream("s"), 0, 1).await.unwrap()[0],
        *stored
    );
}

/// SQLite's writer counts the recent tag rows it adds, and counts the
/// table when it connects: a store opened on a log whose recent tag rows
/// were left by another moves them once the two together are due (with
/// its first append, decided on looked-up state, when they already are),
/// so the table stays bounded across restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_recent_tag_rows_are_counted_across_restarts() {
    let h = Harness::new(Kind::Sqlite).await.unwrap();
    let url = h.url.clone().unwrap();
    // `appends` appends of `events` two-tag events each.
    let append = |store: Arc<dyn EventStore>, appends: usize, events: usize| async move {
        for _ in 0..appends {
            let events = (0..events)
                .map(|_| event("R", &["all", &format!("r:{}", Uuid::now_v7())]))
                .collect();
            store
                .append(request("recent", ExpectedVersion::Any, events))
                .await
                .unwrap();
        }
    };
    let reopen = || async { Arc::new(adapters::store::open(&url).await.unwrap()) };

    // 2,000 rows, then 200 more in an append that starts under 2,048.
    append(h.store.clone(), 20, 50).await;
    append(h.store.clone(), 1, 100).await;
    assert_eq!(sqlite_tag_rows(&h, "event_tags_recent").await, 2_200);

    // A restart counts 2,200: its first append moves them.
    let second = reopen().await;
    append(second.clone(), 1, 50).await;
    assert_eq!(sqlite_tag_rows(&h, "event_tags_recent").await, 100);
    append(second.clone(), 15, 50).await;
    assert_eq!(sqlite_tag_rows(&h, "event_tags_recent").await, 1_600);
    second.close().await;

    // A restart counts 1,600, and moves them once 2,048 are due.
    let third = reopen().await;
    append(third.clone(), 15, 50).await;
    let left = sqlite_tag_rows(&h, "event_tags_recent").await;
    assert!(left < 2_048, "{left} recent tag rows after a restart");
    third.close().await;

    let events = 20 * 50 + 100 + 50 + 15 * 50 + 15 * 50;
    assert_eq!(sqlite_tag_rows(&h, "event_tags").await, 2 * events);
    let all = h
        .store
        .read_by_tags(&[Tag::new("all")], 0, 10_000)
        .await
        .unwrap();
    assert_eq!(all.len() as u64, events);
    h.assert_intact().await;
    h.finish().await;
}

/// SQLite's `event_tags` view takes a hand-written row as one table with
/// one key would: a row either table holds is refused. A row written
/// there ahead of its event, which the event then brings again, is kept
/// once when the recent rows move, and appends go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tag_rows_written_by_hand_are_kept_once() {
    let h = Harness::new(Kind::Sqlite).await.unwrap();
    let url = h.url.clone().unwrap();
    let one = |tag: &str| request("s", ExpectedVersion::Any, vec![event("T", &[tag])]);
    h.store.append(one("tag:a")).await.unwrap();
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    // Position 1's row is in the recent table: the view refuses it again.
    let again = sqlx::query("INSERT INTO event_tags (tag, position) VALUES ('tag:a', 1)")
        .execute(&mut db)
        .await;
    assert!(
        matches!(&again, Err(sqlx::Error::Database(e)) if e.message().contains("UNIQUE")),
        "{again:?}"
    );
    // A row ahead of its event: position 2, which the next append takes.
    sqlx::query("INSERT INTO event_tags (tag, position) VALUES ('tag:b', 2)")
        .execute(&mut db)
        .await
        .unwrap();
    h.store.append(one("tag:b")).await.unwrap();
    // Enough rows for a move, and appends after it.
    for _ in 0..25 {
        let events = (0..50)
            .map(|i| event("R", &["all", &format!("r:{i}:{}", Uuid::now_v7())]))
            .collect();
        h.store
            .append(request("many", ExpectedVersion::Any, events))
            .await
            .unwrap();
    }
    h.store.append(one("tag:b")).await.unwrap();
    let b_at_2 = sqlite_tag_rows(&h, "event_tags WHERE tag = 'tag:b' AND position = 2").await;
    assert_eq!(b_at_2, 1);
    assert_eq!(sqlite_tag_rows(&h, "event_tags").await, 2 + 25 * 50 * 2 + 1);
    let found = h
        .store
        .read_by_tags(&[Tag::new("tag:b")], 0, 10)
        .await
        .unwrap();
    let positions: Vec<Position> = found.iter().map(|event| event.position).collect();
    assert_eq!(positions, [2, 2 + 25 * 50 + 1]);
    sqlx::Connection::close(db).await.unwrap();
    h.assert_intact().await;
    h.finish().await;
}

/// Two OS processes appending to one database at once: the child is this
/// same test binary, started with `LETHE_TEST_CHILD_STORE` set.
#[test]
fn child_writer() {
    let Ok(url) = std::env::var(CHILD_STORE_ENV) else {
        return;
    };
    let name = std::env::var(CHILD_NAME_ENV).unwrap_or_else(|_| "child".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(adapters::store::open(&url).await.unwrap());
        let mut tasks = Vec::new();
        for task in 0..CHILD_TASKS {
            let store = store.clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..CHILD_APPENDS_PER_TASK {
                    let version = i as u64;
                    let expected = expected_at(version);
                    store
                        .append(request(
                            &format!("{name}-{task}"),
                            expected,
                            vec![event("P", &["proc"])],
                        ))
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        store.close().await;
    });
}

const CHILD_STORE_ENV: &str = "LETHE_TEST_CHILD_STORE";
const CHILD_NAME_ENV: &str = "LETHE_TEST_CHILD_NAME";
const CHILD_TASKS: usize = 4;
const CHILD_APPENDS_PER_TASK: usize = 150;
const PARENT_TASKS: usize = 4;
const PARENT_APPENDS_PER_TASK: usize = 50;

async fn two_processes_append_to_one_database(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    let url = h.url.clone().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["first", "second"]
        .iter()
        .map(|name| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env(CHILD_STORE_ENV, &url)
                .env(CHILD_NAME_ENV, name)
                .spawn()
                .unwrap()
        })
        .collect();
    // This process appends too, through its own store, from several
    // tasks at once: its writer stores one batch while it decides the
    // next on memory, which the other processes' appends keep proving
    // wrong.
    let parents: Vec<_> = (0..PARENT_TASKS)
        .map(|task| {
            let store = h.store.clone();
            tokio::spawn(async move {
                for i in 0..PARENT_APPENDS_PER_TASK {
                    store
                        .append(request(
                            &format!("parent-{task}"),
                            ExpectedVersion::Any,
                            vec![event("P", &[])],
                        ))
                        .await
                        .unwrap_or_else(|e| panic!("parent {task} append {i}: {e}"));
                }
            })
        })
        .collect();
    for parent in parents {
        parent.await.unwrap();
    }
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "child writer failed: {status}");
    }
    let total =
        (2 * CHILD_TASKS * CHILD_APPENDS_PER_TASK + PARENT_TASKS * PARENT_APPENDS_PER_TASK) as u64;
    assert_contiguous_log(&*h.store, total).await;
    assert_eq!(h.assert_intact().await, total);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_processes_append_to_one_database() {
    two_processes_append_to_one_database(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_processes_append_to_one_database() {
    two_processes_append_to_one_database(Kind::Postgres).await;
}

/// Numbers with fractions come back exactly as appended: a payload is
/// stored as text, and a float that did not parse back to itself would
/// fail the canonical-form check, making every page holding its event
/// unreadable.
async fn numbers_read_back_exactly(h: Arc<Harness>) {
    let store = &h.store;
    let numbers: Vec<f64> = (1..=200)
        .map(|n| 1.0 / f64::from(n) + f64::from(n) * 1e-7)
        .chain([0.1 + 0.2, 1.0 / 11.0, 2.0_f64.sqrt(), 1e300 / 7.0, -5e-324])
        .collect();
    let mut new = event("Measured", &["m:1"]);
    new.payload = serde_json::json!({ "values": numbers });
    store
        .append(request("m", ExpectedVersion::NoStream, vec![new.clone()]))
        .await
        .unwrap();
    let read = store.read_all(0, 10).await.expect("the event reads back");
    assert_eq!(read[0].payload, new.payload);
}
