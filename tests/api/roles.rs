//! The role matrix: every route × every role → the expected 2xx or 403;
//! no token → 401. The routes come from the OpenAPI table, so a route
//! added there without a case here fails the test.

use adapters::auth::ApiRole;
use adapters::http::openapi::{Access, ROUTES};
use axum::http::Method;
use serde_json::{json, Value};

use crate::helpers::{expect, seed_workspace, TestApp};

/// A call that succeeds for an allowed role: sets up what it needs (as
/// admin) and returns method, path and body. `n` makes ids unique.
async fn valid_call(app: &TestApp, path: &str, n: usize) -> (Method, String, Option<Value>) {
    use ApiRole::{Admin, Legal, Service};
    let ws = "ws-roles";
    let body = |v: Value| Some(v);
    match path {
        "/v1/workspaces" => (
            Method::POST,
            path.into(),
            body(
                json!({ "workspace_id": format!("ws-new-{n}"), "owner_account_id": "acct-owner" }),
            ),
        ),
        "/v1/workspaces/{id}/members" => (
            Method::POST,
            format!("/v1/workspaces/{ws}/members"),
            body(
                json!({ "account_id": format!("acct-m{n}"), "role": "member", "added_by": "platform" }),
            ),
        ),
        "/v1/workspaces/{id}/members/{account}" => {
            expect(&app.post(Admin, &format!("/v1/workspaces/{ws}/members"), json!({ "account_id": format!("acct-x{n}"), "role": "member", "added_by": "platform" })).await, 201);
            (
                Method::DELETE,
                format!("/v1/workspaces/{ws}/members/acct-x{n}"),
                None,
            )
        }
        "/v1/resources" => (
            Method::POST,
            path.into(),
            body(json!({ "resource": format!("file:f-role-{n}"), "workspace_id": ws })),
        ),
        "/v1/integrations" => (
            Method::POST,
            path.into(),
            body(
                json!({ "integration_id": format!("yt-role-{n}"), "workspace_id": ws, "platform": "youtube", "external_account_id": format!("UC{n}"), "connected_by": "platform" }),
            ),
        ),
        "/v1/integrations/{id}/disconnect" => {
            expect(&app.post(Admin, "/v1/integrations", json!({ "integration_id": format!("tt-role-{n}"), "workspace_id": ws, "platform": "tiktok", "external_account_id": format!("tt{n}"), "connected_by": "platform" })).await, 201);
            (
                Method::POST,
                format!("/v1/integrations/tt-role-{n}/disconnect"),
                body(json!({ "disconnected_by": "platform" })),
            )
        }
        "/v1/deletion-requests" => {
            expect(
                &app.post(
                    Admin,
                    "/v1/resources",
                    json!({ "resource": format!("file:f-del-{n}"), "workspace_id": ws }),
                )
                .await,
                201,
            );
            (
                Method::POST,
                path.into(),
                body(
                    json!({ "scope": format!("file:f-del-{n}"), "channel": "in-product", "requested_by": "account:acct-owner" }),
                ),
            )
        }
        "/v1/deletion-requests/{id}" => {
            let id = request_id(app, n).await;
            (Method::GET, format!("/v1/deletion-requests/{id}"), None)
        }
        "/v1/deletion-requests/{id}/verify" => {
            expect(&app.post(Admin, &format!("/v1/workspaces/{ws}/members"), json!({ "account_id": format!("acct-v{n}"), "role": "member", "added_by": "platform" })).await, 201);
            let answer = app.post(Admin, "/v1/deletion-requests", json!({ "scope": format!("account:acct-v{n}"), "channel": "in-product", "requested_by": format!("account:acct-v{n}") })).await;
            expect(&answer, 202);
            let id = answer.json["request_id"].as_str().unwrap().to_owned();
            (
                Method::POST,
                format!("/v1/deletion-requests/{id}/verify"),
                body(json!({ "method": "2FA" })),
            )
        }
        "/v1/tasks/claim" => (
            Method::POST,
            path.into(),
            body(json!({ "worker": format!("w{n}") })),
        ),
        "/v1/tasks/{id}/complete" | "/v1/tasks/{id}/fail" => {
            let task = claimed_task(app, n).await;
            if path.ends_with("complete") {
                (
                    Method::POST,
                    format!("/v1/tasks/{task}/complete"),
                    body(json!({ "worker": format!("setup-{n}") })),
                )
            } else {
                (
                    Method::POST,
                    format!("/v1/tasks/{task}/fail"),
                    body(json!({ "worker": format!("setup-{n}"), "error": "disk full" })),
                )
            }
        }
        "/v1/holds" => {
            expect(
                &app.post(
                    Admin,
                    "/v1/resources",
                    json!({ "resource": format!("file:hold-{n}"), "workspace_id": ws }),
                )
                .await,
                201,
            );
            (
                Method::POST,
                path.into(),
                body(
                    json!({ "scope": format!("file:hold-{n}"), "kind": "moderation", "matter": "CASE-1", "reason": "review" }),
                ),
            )
        }
        "/v1/holds/{id}/lift" => {
            expect(
                &app.post(
                    Admin,
                    "/v1/resources",
                    json!({ "resource": format!("file:lift-{n}"), "workspace_id": ws }),
                )
                .await,
                201,
            );
            let hold = app.post(Legal, "/v1/holds", json!({ "scope": format!("file:lift-{n}"), "kind": "legal", "matter": "M-1", "reason": "review" })).await;
            expect(&hold, 201);
            let id = hold.json["hold_id"].as_str().unwrap().to_owned();
            (
                Method::POST,
                format!("/v1/holds/{id}/lift"),
                body(json!({ "reason": "done" })),
            )
        }
        "/v1/audit/export" | "/v1/reports/deadlines" | "/v1/policies" => {
            (Method::GET, path.into(), None)
        }
        "/v1/audit" => (
            Method::GET,
            "/v1/audit?subject=workspace:ws-roles".into(),
            None,
        ),
        "/v1/resources?get" => (Method::GET, "/v1/resources?workspace=ws-roles".into(), None),
        "/v1/deletion-requests/{id}/extend" => {
            let file = format!("file:f-ext-{n}");
            expect(
                &app.post(
                    Admin,
                    "/v1/resources",
                    json!({ "resource": file, "workspace_id": ws }),
                )
                .await,
                201,
            );
            let answer = app.post(Admin, "/v1/deletion-requests", json!({ "scope": file, "channel": "in-product", "policy": "gdpr", "requested_by": "account:acct-owner" })).await;
            expect(&answer, 202);
            let id = answer.json["request_id"].as_str().unwrap().to_owned();
            (
                Method::POST,
                format!("/v1/deletion-requests/{id}/extend"),
                body(json!({ "reason": "backups span two regions" })),
            )
        }
        "/v1/deletion-requests/{id}/refuse" => {
            expect(&app.post(Admin, &format!("/v1/workspaces/{ws}/members"), json!({ "account_id": format!("acct-r{n}"), "role": "member", "added_by": "platform" })).await, 201);
            let answer = app.post(Admin, "/v1/deletion-requests", json!({ "scope": format!("account:acct-r{n}"), "channel": "in-product", "requested_by": format!("account:acct-r{n}") })).await;
            expect(&answer, 202);
            let id = answer.json["request_id"].as_str().unwrap().to_owned();
            (
                Method::POST,
                format!("/v1/deletion-requests/{id}/refuse"),
                body(json!({ "reason": "no reply" })),
            )
        }
        "/v1/deletion-requests/{id}/confirm-receipt" => {
            let id = request_id(app, n).await;
            (
                Method::POST,
                format!("/v1/deletion-requests/{id}/confirm-receipt"),
                body(json!({})),
            )
        }
        "/v1/deletion-requests/{id}/retentions" => {
            let id = request_id(app, n).await;
            (
                Method::POST,
                format!("/v1/deletion-requests/{id}/retentions"),
                body(
                    json!({ "target": format!("file:f-get-{n}"), "basis": "security", "until": "2033-01-01T00:00:00Z", "note": "access log kept" }),
                ),
            )
        }
        "/v1/subjects/{subject}/forget" => (
            Method::POST,
            format!("/v1/subjects/request:{}/forget", request_id(app, n).await),
            None,
        ),
        other => {
            let _ = Service;
            panic!("no role-matrix case for {other}")
        }
    }
}

async fn request_id(app: &TestApp, n: usize) -> String {
    expect(
        &app.post(
            ApiRole::Admin,
            "/v1/resources",
            json!({ "resource": format!("file:f-get-{n}"), "workspace_id": "ws-roles" }),
        )
        .await,
        201,
    );
    let answer = app.post(ApiRole::Admin, "/v1/deletion-requests", json!({ "scope": format!("file:f-get-{n}"), "channel": "in-product", "requested_by": "account:acct-owner" })).await;
    expect(&answer, 202);
    answer.json["request_id"].as_str().unwrap().to_owned()
}

async fn claimed_task(app: &TestApp, n: usize) -> String {
    let id = request_id(app, n + 10_000).await;
    let detail = app
        .get(ApiRole::Admin, &format!("/v1/deletion-requests/{id}"))
        .await;
    let task = detail.json["tasks"][0]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let claimed = app
        .post(
            ApiRole::Admin,
            "/v1/tasks/claim",
            json!({ "worker": format!("setup-{n}"), "task_id": task }),
        )
        .await;
    expect(&claimed, 200);
    task
}

pub async fn role_matrix(app: &TestApp) {
    seed_workspace(app, "ws-roles").await;
    let mut n = 0;
    for route in ROUTES {
        let key = if route.path == "/v1/resources" && route.method == "get" {
            "/v1/resources?get"
        } else if route.path == "/v1/holds" && route.method == "get" {
            "/v1/holds"
        } else {
            route.path
        };
        match route.access {
            Access::Public | Access::MetaSignature => continue,
            Access::Roles(allowed) => {
                for role in ApiRole::ALL {
                    n += 1;
                    let (method, path, body) = if route.path == "/v1/holds" && route.method == "get"
                    {
                        (Method::GET, "/v1/holds".to_owned(), None)
                    } else {
                        valid_call(app, key, n).await
                    };
                    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
                    let answer = app
                        .raw(
                            method.clone(),
                            &path,
                            Some(app.token(role)),
                            Some("application/json"),
                            bytes.clone(),
                            &[],
                        )
                        .await;
                    if allowed.contains(&role) {
                        assert!(
                            answer.status.is_success(),
                            "{method} {path} as {role}: expected 2xx, got {}: {}",
                            answer.status,
                            answer.text
                        );
                    } else {
                        assert_eq!(
                            answer.status.as_u16(),
                            403,
                            "{method} {path} as {role}: {}",
                            answer.text
                        );
                        assert_eq!(answer.content_type(), "application/problem+json");
                    }
                    let anonymous = app
                        .raw(
                            method.clone(),
                            &path,
                            None,
                            Some("application/json"),
                            bytes.clone(),
                            &[],
                        )
                        .await;
                    assert_eq!(
                        anonymous.status.as_u16(),
                        401,
                        "{method} {path} without a token"
                    );
                    let revoked = app
                        .raw(
                            method,
                            &path,
                            Some("lethe_not-a-real-token"),
                            Some("application/json"),
                            bytes,
                            &[],
                        )
                        .await;
                    assert_eq!(revoked.status.as_u16(), 401);
                }
            }
        }
    }
    // The public routes need no token.
    expect(
        &app.raw(Method::GET, "/health", None, None, Vec::new(), &[])
            .await,
        200,
    );
    let openapi = app
        .raw(Method::GET, "/openapi.json", None, None, Vec::new(), &[])
        .await;
    expect(&openapi, 200);
    assert_eq!(openapi.json["openapi"], "3.1.0");
    for route in ROUTES {
        assert!(
            openapi.json["paths"][route.path][route.method].is_object(),
            "{} {} missing from the OpenAPI document",
            route.method,
            route.path
        );
    }
}

/// A service token tries to place a hold on `ws`: 403 (legal only).
async fn service_places_a_hold(app: &TestApp, ws: &str) {
    expect(
        &app.post(
            ApiRole::Service,
            "/v1/holds",
            json!({ "scope": format!("workspace:{ws}"), "kind": "legal", "matter": "M", "reason": "r" }),
        )
        .await,
        403,
    );
}

/// Every refusal is audited (DESIGN): a call refused for its role, for
/// its token, or by a rule is recorded with its route, never its path.
pub async fn refusals_are_audited(app: &TestApp) {
    seed_workspace(app, "ws-refused").await;
    let head = app.head().await;
    service_places_a_hold(app, "ws-refused").await;
    expect(
        &app.raw(
            Method::GET,
            "/v1/audit?subject=workspace:ws-refused",
            None,
            None,
            Vec::new(),
            &[],
        )
        .await,
        401,
    );
    expect(
        &app.post(
            ApiRole::Service,
            "/v1/deletion-requests",
            json!({ "scope": "workspace:ws-refused", "channel": "in-product", "requested_by": "account:acct-member" }),
        )
        .await,
        403,
    );
    assert_eq!(
        app.head().await,
        head + 3,
        "one record a refusal, nothing else"
    );
    let summaries = app
        .audit_summaries("event_type=AccessRefused&limit=1000")
        .await;
    assert_eq!(summaries.len(), 3, "{summaries:?}");
    assert!(
        summaries[0].starts_with("POST /v1/holds refused (403) to "),
        "{summaries:?}"
    );
    assert!(
        summaries[1].starts_with("GET /v1/audit refused (401) without a known token"),
        "{summaries:?}"
    );
    // A rule's refusal names the token too, though the rule did not.
    assert!(
        summaries[2].starts_with("POST /v1/deletion-requests refused (403) to "),
        "{summaries:?}"
    );
    assert!(
        !summaries.iter().any(|s| s.contains("ws-refused")),
        "the path as sent is not recorded: {summaries:?}"
    );
}

/// Calls without a token cannot crowd a known token's refusals out of the
/// record: past the limit of the first, the second is still recorded one
/// by one.
pub async fn a_flood_of_anonymous_calls_leaves_token_refusals_recorded(app: &TestApp) {
    let limit = adapters::http::callbacks::REFUSALS_RECORDED_PER_MINUTE as usize;
    for _ in 0..=limit {
        expect(
            &app.raw(Method::GET, "/v1/policies", None, None, Vec::new(), &[])
                .await,
            401,
        );
    }
    service_places_a_hold(app, "ws-x").await;
    let summaries = app
        .audit_summaries("event_type=AccessRefused&limit=1000")
        .await;
    let anonymous = summaries
        .iter()
        .filter(|s| s.starts_with("GET /v1/policies refused (401)"))
        .count();
    assert_eq!(
        anonymous, limit,
        "the anonymous calls past the limit are not recorded one by one"
    );
    assert_eq!(
        summaries
            .last()
            .map(|s| s.starts_with("POST /v1/holds refused (403) to ")),
        Some(true),
        "{summaries:?}"
    );
}

/// Every error is a problem document, even one an extractor raises
/// before a handler runs (a path that is not UTF-8).
pub async fn rejected_paths_answer_problem_documents(app: &TestApp) {
    let head = app.head().await;
    for (method, uri, token) in [
        (Method::GET, "/deletion-status/%FF", None),
        (
            Method::POST,
            "/v1/holds/%FF/lift",
            Some(app.token(ApiRole::Legal)),
        ),
        (
            Method::GET,
            "/v1/deletion-requests/%FF%FE",
            Some(app.token(ApiRole::Auditor)),
        ),
    ] {
        let answer = app
            .raw(
                method,
                uri,
                token,
                Some("application/json"),
                br#"{"reason":"r"}"#.to_vec(),
                &[],
            )
            .await;
        assert_eq!(answer.status.as_u16(), 400, "{uri}: {}", answer.text);
        assert_eq!(answer.content_type(), "application/problem+json", "{uri}");
        assert_eq!(answer.json["status"], 400, "{uri}: {}", answer.text);
    }
    assert_eq!(app.head().await, head);
}

crate::on_every_backend!(
    role_matrix,
    refusals_are_audited,
    a_flood_of_anonymous_calls_leaves_token_refusals_recorded,
    rejected_paths_answer_problem_documents
);
