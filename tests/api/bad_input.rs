//! Bad input at every POST route: random bytes, truncated JSON, wrong
//! types, huge strings. Never a 5xx, never a stored event.

use std::sync::Arc;

use adapters::auth::ApiRole;
use axum::http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::helpers::{expect, seed_workspace, spawn_app, Backend, TestApp};

/// Fields that may be left out or set to null: the mutations that drop
/// or retype a field skip them, since the result could be a valid command.
const OPTIONAL: &[&str] = &[
    "lease_seconds",
    "task_id",
    "step",
    "policy",
    "contact",
    "references",
];

/// Every POST route with a valid body, ids filled in.
fn routes(request_id: &str, task_id: &str, hold_id: &str) -> Vec<(String, ApiRole, Value)> {
    use ApiRole::{Legal, Service};
    vec![
        (
            "/v1/workspaces".into(),
            Service,
            json!({ "workspace_id": "ws-x", "owner_account_id": "acct-x" }),
        ),
        (
            "/v1/workspaces/ws-bad/members".into(),
            Service,
            json!({ "account_id": "acct-y", "role": "member", "added_by": "platform" }),
        ),
        (
            "/v1/resources".into(),
            Service,
            json!({ "resource": "file:f-x", "workspace_id": "ws-bad", "references": ["file:ws-bad-f"] }),
        ),
        (
            "/v1/integrations".into(),
            Service,
            json!({ "integration_id": "ig-x", "workspace_id": "ws-bad", "platform": "instagram", "external_account_id": "1", "connected_by": "platform" }),
        ),
        (
            "/v1/integrations/ig-bad/disconnect".into(),
            Service,
            json!({ "disconnected_by": "platform" }),
        ),
        (
            "/v1/deletion-requests".into(),
            Service,
            json!({ "scope": "file:ws-bad-f", "channel": "email-to-support", "policy": "gdpr", "requested_by": "account:acct-owner", "recorded_by": "op", "verification": "v", "contact": "a@b.c" }),
        ),
        (
            format!("/v1/deletion-requests/{request_id}/verify"),
            Service,
            json!({ "method": "2FA" }),
        ),
        (
            format!("/v1/deletion-requests/{request_id}/extend"),
            Service,
            json!({ "reason": "backups span two regions" }),
        ),
        (
            format!("/v1/deletion-requests/{request_id}/retentions"),
            Service,
            json!({ "target": "thumbnail:ws-bad-f-th", "basis": "security", "until": "2033-01-01T00:00:00Z", "note": "kept" }),
        ),
        (
            "/v1/tasks/claim".into(),
            Service,
            json!({ "worker": "w", "lease_seconds": 60, "task_id": task_id, "step": "remove-record" }),
        ),
        (
            format!("/v1/tasks/{task_id}/complete"),
            Service,
            json!({ "worker": "w" }),
        ),
        (
            format!("/v1/tasks/{task_id}/fail"),
            Service,
            json!({ "worker": "w", "error": "e" }),
        ),
        (
            "/v1/holds".into(),
            Legal,
            json!({ "scope": "workspace:ws-bad", "kind": "legal", "matter": "m", "reason": "r" }),
        ),
        (
            format!("/v1/holds/{hold_id}/lift"),
            Legal,
            json!({ "reason": "r" }),
        ),
    ]
}

/// A valid body turned bad in one of several ways.
fn mutate(valid: &Value, choice: u8, seed: &[u8], cut: usize, huge: usize) -> Vec<u8> {
    let text = valid.to_string();
    let object = valid.as_object().cloned().unwrap_or_default();
    let keys: Vec<String> = object.keys().cloned().collect();
    let key = keys[seed.first().copied().unwrap_or(0) as usize % keys.len()].clone();
    let mut changed = object.clone();
    let mut choice = choice % 7;
    if matches!(choice, 2 | 4) && OPTIONAL.contains(&key.as_str()) {
        choice = 5;
    }
    match choice {
        // Random bytes.
        0 => seed.to_vec(),
        // Truncated JSON.
        1 => text.as_bytes()[..cut % text.len().max(1)].to_vec(),
        // A field of the wrong type.
        2 => {
            let wrong = [
                json!(42),
                json!(true),
                json!(null),
                json!([1, 2]),
                json!({ "a": 1 }),
                json!(-1.5),
            ];
            changed.insert(key, wrong[seed.len() % wrong.len()].clone());
            Value::Object(changed).to_string().into_bytes()
        }
        // A huge string.
        3 => {
            changed.insert(key, Value::String("x".repeat(huge)));
            Value::Object(changed).to_string().into_bytes()
        }
        // A missing field.
        4 => {
            changed.remove(&key);
            Value::Object(changed).to_string().into_bytes()
        }
        // An unknown field.
        5 => {
            changed.insert("surprise".into(), json!("!"));
            Value::Object(changed).to_string().into_bytes()
        }
        // Control characters and a card number in a string.
        _ => {
            changed.insert(
                key,
                Value::String(format!(
                    "a\u{0}b 4111111111111111 {}",
                    String::from_utf8_lossy(seed)
                )),
            );
            Value::Object(changed).to_string().into_bytes()
        }
    }
}

async fn setup(app: &TestApp) -> (String, String, String) {
    use ApiRole::{Admin, Legal};
    seed_workspace(app, "ws-bad").await;
    expect(&app.post(Admin, "/v1/integrations", json!({ "integration_id": "ig-bad", "workspace_id": "ws-bad", "platform": "instagram", "external_account_id": "17841", "connected_by": "platform" })).await, 201);
    let answer = app.post(Admin, "/v1/deletion-requests", json!({ "scope": "thumbnail:ws-bad-f-th", "channel": "in-product", "requested_by": "account:acct-owner" })).await;
    expect(&answer, 202);
    let request_id = answer.json["request_id"].as_str().unwrap().to_owned();
    let detail = app
        .get(Admin, &format!("/v1/deletion-requests/{request_id}"))
        .await;
    let task_id = detail.json["tasks"][0]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect(
        &app.post(
            Admin,
            "/v1/resources",
            json!({ "resource": "file:held", "workspace_id": "ws-bad" }),
        )
        .await,
        201,
    );
    let hold = app
        .post(
            Legal,
            "/v1/holds",
            json!({ "scope": "file:held", "kind": "legal", "matter": "m", "reason": "r" }),
        )
        .await;
    expect(&hold, 201);
    (
        request_id,
        task_id,
        hold.json["hold_id"].as_str().unwrap().to_owned(),
    )
}

fn bad_input_never_stores(backend: Backend) {
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let Some(app) = runtime.block_on(spawn_app(backend)) else {
        return;
    };
    let (request_id, task_id, hold_id) = runtime.block_on(setup(&app));
    let head = runtime.block_on(app.head());
    let routes = routes(&request_id, &task_id, &hold_id);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        max_shrink_iters: 0,
        ..Config::default()
    });
    let strategy = (
        0..routes.len(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<usize>(),
        prop_oneof![Just(5_000usize), Just(70_000usize), 2_001usize..3_000],
    );
    runner
        .run(&strategy, |(route, choice, seed, cut, huge)| {
            let (path, role, valid) = &routes[route];
            let body = mutate(valid, choice, &seed, cut, huge);
            let answer = runtime.block_on(app.raw(
                Method::POST,
                path,
                Some(app.token(*role)),
                Some("application/json"),
                body.clone(),
                &[],
            ));
            prop_assert!(
                answer.status.is_client_error(),
                "POST {} with {:?} → {}: {}",
                path,
                String::from_utf8_lossy(&body[..body.len().min(200)]),
                answer.status,
                answer.text
            );
            prop_assert_eq!(answer.content_type(), "application/problem+json");
            let now = runtime.block_on(app.head());
            prop_assert_eq!(now, head, "POST {} stored an event", path);
            Ok(())
        })
        .unwrap();
    // Wrong media type and an oversized body, at every route.
    for (path, role, valid) in &routes {
        let text = runtime.block_on(app.raw(
            Method::POST,
            path,
            Some(app.token(*role)),
            Some("text/plain"),
            valid.to_string().into_bytes(),
            &[],
        ));
        assert_eq!(text.status.as_u16(), 415, "{path}");
        let huge = runtime.block_on(app.raw(
            Method::POST,
            path,
            Some(app.token(*role)),
            Some("application/json"),
            vec![b' '; 65 * 1024],
            &[],
        ));
        assert_eq!(huge.status.as_u16(), 413, "{path}");
        let malformed = runtime.block_on(app.raw(
            Method::POST,
            path,
            Some(app.token(*role)),
            Some("application/json"),
            b"{not json".to_vec(),
            &[],
        ));
        assert_eq!(malformed.status.as_u16(), 400, "{path}");
    }
    assert_eq!(runtime.block_on(app.head()), head);
    runtime.block_on(app.finish());
}

#[test]
fn sqlite_bad_input_never_stores() {
    bad_input_never_stores(Backend::Sqlite);
}

#[test]
fn postgres_bad_input_never_stores() {
    bad_input_never_stores(Backend::Postgres);
}
