//! `lethe serve` as an operator runs it: it stops cleanly on SIGTERM (a
//! service manager's stop), not only on Ctrl-C, and decides deadlines by
//! the policy table its flags and environment configure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The policy variables, removed so that the machine's environment does
/// not configure the tests' service.
const POLICY_VARIABLES: [&str; 4] = [
    "LETHE_INTERNAL_DUE_DAYS",
    "LETHE_INTERNAL_EXTENSION_DAYS",
    "LETHE_RESIDUAL_COPIES_DAYS",
    "LETHE_AT_RISK_HOURS",
];

fn lethe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lethe"));
    for variable in [
        "LETHE_STORE",
        "LETHE_LISTEN",
        "LETHE_MASTER_KEY",
        "LETHE_MASTER_KEY_FILE",
    ]
    .into_iter()
    .chain(POLICY_VARIABLES)
    {
        command.env_remove(variable);
    }
    command
}

/// A running `lethe serve`, killed when dropped, so that a failing test
/// leaves no service behind.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `lethe serve` on a free port of the store at `url` with the
/// extra `env`, and returns it once it said it listens, with its base URL.
fn serve(url: &str, env: &[(&str, &str)]) -> (Service, String) {
    let mut serve = lethe()
        .args(["serve", "--store", url, "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run lethe serve");
    let stdout = serve.stdout.take().unwrap();
    let listening = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let base = lines.find_map(|line| {
            let rest = line.strip_prefix("Lethe listening on ")?;
            Some(rest.split_whitespace().next()?.to_owned())
        });
        // Keep reading, so that the service never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        base
    });
    let serve = Service(serve);
    let base = listening
        .join()
        .unwrap()
        .expect("serve never said it was listening");
    (serve, base)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    lethe()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run lethe")
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .with_timezone(&Utc)
}

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
    let (mut service, _base) = serve(&url, &[]);
    let serve = &mut service.0;
    let killed = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited with {status:?} on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_decides_deadlines_by_the_configured_policy_table() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
    let token = |role: &str| {
        let created = run(
            &[
                "token", "create", "--role", role, "--name", role, "--store", &url,
            ],
            &[],
        );
        assert!(created.status.success(), "{created:?}");
        String::from_utf8(created.stdout).unwrap().trim().to_owned()
    };
    let (token, auditor) = (token("service"), token("auditor"));
    let (service, base) = serve(
        &url,
        &[
            ("LETHE_INTERNAL_DUE_DAYS", "14"),
            ("LETHE_AT_RISK_HOURS", "400"),
        ],
    );

    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    for (path, body) in [
        (
            "/v1/workspaces",
            json!({ "workspace_id": "ws-p", "owner_account_id": "acct-owner" }),
        ),
        (
            "/v1/resources",
            json!({ "resource": "file:f-p", "workspace_id": "ws-p" }),
        ),
    ] {
        let answer = post(path, body).await.unwrap();
        assert_eq!(answer.status().as_u16(), 201, "{path}");
    }
    let answer = post(
        "/v1/deletion-requests",
        json!({ "scope": "file:f-p", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "internal" }),
    )
    .await
    .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let request: Value = answer.json().await.unwrap();
    let read = |path: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(&auditor);
        async move {
            let answer = request.send().await.unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };
    let shown = read(format!(
        "/v1/deletion-requests/{}",
        request["request_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(request["due_at"], shown["due_at"], "{shown}");
    assert_eq!(
        time(&shown["due_at"]) - time(&shown["received_at"]),
        chrono::Duration::days(14),
        "{shown}"
    );
    // Due in 14 days, so at risk when at risk means within 400 hours.
    assert_eq!(shown["deadline"]["status"], "at-risk", "{shown}");
    let policies = read("/v1/policies".to_owned()).await;
    assert_eq!(policies["at_risk_hours"], 400);
    assert_eq!(policies["policies"][3]["policy"], "internal");
    assert_eq!(
        policies["policies"][3]["due"],
        "14 calendar days from receipt"
    );
    drop(service);
}

#[test]
fn policies_prints_the_configured_table_and_refuses_figures_out_of_range() {
    let printed = run(
        &["policies", "--internal-due-days", "21", "--format", "json"],
        &[("LETHE_INTERNAL_EXTENSION_DAYS", "0")],
    );
    assert!(printed.status.success(), "{printed:?}");
    let table: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(table["policies"][3]["due"], "21 calendar days from receipt");
    assert_eq!(table["policies"][3]["extension"], "none");
    assert_eq!(table["residual_copies_days"], 35);
    assert_eq!(table["at_risk_hours"], 48);

    for (flag, value) in [
        ("--internal-due-days", "0"),
        ("--internal-due-days", "3651"),
        ("--at-risk-hours", "9000"),
        ("--residual-copies-days", "-1"),
    ] {
        let refused = run(&["policies", &format!("{flag}={value}")], &[]);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{flag} {value}: {refused:?}"
        );
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains(flag), "{flag} {value}: {said}");
    }
}
