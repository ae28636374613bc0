//! The read commands end to end on SQLite: `lethe demo` leaves every read
//! model filled, the reads answer from them, and `lethe projections
//! rebuild` exits 0 and gives identical rows.

use std::process::{Command, Output};

use adapters::readmodel::ReadModels;
use commands::log::EventStore;

fn lethe(url: &str, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(args)
        .args(["--store", url])
        .env_remove("LETHE_STORE")
        .output()
        .expect("run lethe");
    assert!(
        output.status.success(),
        "lethe {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fills_the_read_models_and_rebuild_gives_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
    lethe(&url, &["demo"]);

    // The demo caught the read models up: every view has rows, with no
    // runner started since.
    let store = adapters::store::open(&url).await.unwrap();
    let models = ReadModels::open(&url).await.unwrap();
    let head = store.head().await.unwrap();
    for (name, position) in models.checkpoints().await.unwrap() {
        assert_eq!(position, head, "{name} is behind the log");
    }
    let before = models.dump().await.unwrap();
    assert!(!before.audit.is_empty());
    assert!(!before.resources.is_empty());
    assert!(!before.requests.is_empty());
    assert!(!before.holds.is_empty());
    assert!(!before.tasks.is_empty());

    let rebuilt = stdout(&lethe(&url, &["projections", "rebuild"]));
    assert!(
        rebuilt.contains("rebuilt audit, resources, requests, holds, tasks"),
        "{rebuilt}"
    );
    assert_eq!(models.dump().await.unwrap(), before);
    let one = stdout(&lethe(&url, &["projections", "rebuild", "holds"]));
    assert!(one.starts_with("rebuilt holds from "), "{one}");
    assert_eq!(models.dump().await.unwrap(), before);

    // The reads answer from the read models.
    let resources = stdout(&lethe(
        &url,
        &[
            "resources",
            "--workspace",
            "ws-northwind",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(resources.lines().next(), Some("resource,kind,state,holds"));
    assert!(resources.lines().count() > 2, "{resources}");
    let audit = stdout(&lethe(
        &url,
        &[
            "audit",
            "--subject",
            "workspace:ws-northwind",
            "--format",
            "json",
        ],
    ));
    assert!(audit.lines().count() > 1);
    for line in audit.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("JSON Lines");
    }
    let report = stdout(&lethe(&url, &["report", "deadlines", "--format", "csv"]));
    assert_eq!(
        report.lines().count(),
        before.requests.len() + 1,
        "{report}"
    );
    let holds = stdout(&lethe(&url, &["hold", "list"]));
    assert_eq!(holds.lines().count(), before.holds.len() + 1, "{holds}");
    let request = &before.requests[0].request;
    let shown = stdout(&lethe(&url, &["request", "show", request]));
    assert!(shown.contains(request.as_str()), "{shown}");

    // An unknown projection is refused.
    let unknown = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["projections", "rebuild", "nope", "--store", &url])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    models.close().await;
    store.close().await;
}
