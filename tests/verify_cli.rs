//! `lethe verify` end to end on SQLite: exit 0 on an intact log, non-zero
//! naming the first bad position on an altered one.

use std::process::Command;

use commands::log::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use sqlx::Connection;

fn lethe_verify(url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["verify", "--store", url])
        .env_remove("LETHE_STORE")
        .output()
        .expect("run lethe")
}

/// A SQLite store at `url` holding one event per `(stream, event type,
/// payload)`, each its own append, closed again.
async fn store_with(url: &str, events: &[(&str, &str, serde_json::Value)]) {
    let store = adapters::store::open(url).await.unwrap();
    for (stream, event_type, payload) in events {
        store
            .append(AppendRequest {
                stream: StreamId::new(*stream),
                expected: ExpectedVersion::Any,
                condition: None,
                idempotency_key: None,
                events: vec![NewEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: (*event_type).into(),
                    schema_version: 1,
                    occurred_at: chrono::Utc::now(),
                    payload: payload.clone(),
                    metadata: Metadata::default(),
                    tags: vec![],
                }],
            })
            .await
            .unwrap();
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_bad_position() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
    let noted: Vec<_> = (0..5)
        .map(|n| ("cli", "Noted", serde_json::json!({ "n": n })))
        .collect();
    store_with(&url, &noted).await;

    let intact = lethe_verify(&url);
    let stdout = String::from_utf8_lossy(&intact.stdout);
    assert!(intact.status.success(), "{intact:?}");
    assert!(stdout.contains("intact: 5 events"), "{stdout}");

    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE events SET payload = '{\"n\":9}' WHERE position = 3")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();

    let broken = lethe_verify(&url);
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    assert!(stderr.contains("position 3"), "{stderr}");
}

/// A path that holds no ledger (a typo, the wrong directory) is reported
/// with exit 2, and nothing is created there.
#[test]
fn verify_of_a_missing_store_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo").join("lethe.db");
    let url = format!("sqlite://{}", path.display());
    let missing = lethe_verify(&url);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("holds no ledger"), "{stderr}");
    assert!(!path.exists() && !path.parent().unwrap().exists());
}

/// A forget the log records whose subject has no tombstone in the key
/// table (the process stopped between the two steps) leaves the chain
/// intact but is reported, with exit 3; with the tombstone, verify passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_an_unfinished_forget_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
    store_with(
        &url,
        &[
            ("cli", "Noted", serde_json::json!({})),
            (
                "subject-account:acct-gone",
                "SubjectForgotten",
                serde_json::json!({}),
            ),
        ],
    )
    .await;

    let unfinished = lethe_verify(&url);
    assert_eq!(unfinished.status.code(), Some(3), "{unfinished:?}");
    let stdout = String::from_utf8_lossy(&unfinished.stdout);
    assert!(stdout.contains("intact: 2 events"), "{stdout}");
    let stderr = String::from_utf8_lossy(&unfinished.stderr);
    assert!(
        stderr.contains("1 forget(s) recorded, the first at position 2"),
        "{stderr}"
    );

    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO data_keys (owner, wrapped, master_id) VALUES ('account:acct-gone', NULL, 'm')",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    let finished = lethe_verify(&url);
    assert!(finished.status.success(), "{finished:?}");
}
