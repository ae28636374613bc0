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
        .env_remove("LETHE_MASTER_KEY")
        .env_remove("LETHE_MASTER_KEY_FILE")
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

/// Every byte of the SQLite store: the database, its WAL and shared memory.
fn database_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(more) = std::fs::read(&name) {
            bytes.extend(more);
        }
    }
    bytes
}

/// Printable runs of 4 or more bytes, as `strings` finds them.
fn strings(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !(0x20..0x7f).contains(b))
        .filter(|run| run.len() >= 4)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

/// Right after `lethe demo`, no requester e-mail address and no Instagram
/// account id appears in plain text anywhere in the SQLite files; the
/// audit shows them through the CLI; forgetting erases them; and a wrong
/// master key fails loudly at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keeps_no_personal_data_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/lethe.db");
    let url = format!("sqlite://{}", path.display());
    let created = lethe(&url, &["demo"]);
    assert!(
        String::from_utf8_lossy(&created.stderr).contains("Created the master key"),
        "the first start creates the key file"
    );
    let key_file = dir.path().join("data/lethe.db.master-key");
    assert!(key_file.exists());

    let personal = [
        "ravi@example.com",
        "june.park@example.org",
        "17841400000000001",
    ];
    let found: Vec<String> = strings(&database_bytes(&path))
        .into_iter()
        .filter(|s| personal.iter().any(|p| s.contains(p)))
        .collect();
    assert!(
        found.is_empty(),
        "plain personal data in the SQLite file: {found:?}"
    );

    let instagram_trail = || {
        let args = [
            "audit",
            "--subject",
            "instagram:17841400000000001",
            "--format",
            "csv",
        ];
        stdout(&lethe(&url, &args))
    };
    let trail = instagram_trail();
    assert!(trail.contains("17841400000000001"), "{trail}");
    assert!(trail.contains("june.park@example.org"), "{trail}");

    lethe(
        &url,
        &["forget", "--subject", "instagram:17841400000000001"],
    );
    let trail = instagram_trail();
    assert!(!trail.contains("17841400000000001"), "{trail}");
    assert!(trail.contains("instagram:[erased]"), "{trail}");
    lethe(&url, &["verify"]);

    // Rotation: the old key file no longer opens the store, the new one does.
    let new_key = dir.path().join("new.master-key");
    lethe(
        &url,
        &[
            "keys",
            "rotate",
            "--new-master-key-file",
            new_key.to_str().unwrap(),
        ],
    );
    let old = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["audit", "--subject", "account:acct-ravi", "--store", &url])
        .env_remove("LETHE_MASTER_KEY")
        .env_remove("LETHE_MASTER_KEY_FILE")
        .output()
        .unwrap();
    assert!(!old.status.success(), "the old key must not open the store");
    let message = String::from_utf8_lossy(&old.stderr);
    assert!(
        message.contains("does not open this store's keys"),
        "{message}"
    );
    let rotated = stdout(&lethe(
        &url,
        &[
            "audit",
            "--subject",
            "account:acct-ravi",
            "--format",
            "csv",
            "--master-key-file",
            new_key.to_str().unwrap(),
        ],
    ));
    assert!(rotated.contains("ravi@example.com"), "{rotated}");
}
