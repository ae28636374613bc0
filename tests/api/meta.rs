//! R5: the Meta data-deletion callback, end to end.

use adapters::auth::ApiRole::{Auditor, Service};
use axum::http::Method;
use chrono::Duration;
use serde_json::json;

use crate::helpers::{
    expect, seed_workspace, spawn_app_with, work_all, Backend, TestApp, PUBLIC_URL,
};

const USER: &str = "17841400000000005";

fn callback_refusals(events: &[commands::log::RecordedEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.event_type == "CallbackRefused")
        .count()
}

/// A signed_request built by the documented algorithm deletes the
/// matching Instagram connection in every workspace; the same callback
/// replayed answers the same code; the status page shows the state.
pub async fn data_deletion_callback(app: &TestApp) {
    for ws in ["ws-m1", "ws-m2"] {
        seed_workspace(app, ws).await;
        expect(
            &app.post(Service, "/v1/integrations", json!({
                "integration_id": format!("ig-{ws}"), "workspace_id": ws, "platform": "instagram",
                "external_account_id": USER, "connected_by": "account:acct-admin",
            }))
            .await,
            201,
        );
    }
    let signed = app.signed_request(USER);

    // One changed byte in the signature: refused, recorded, nothing changed.
    let mut forged = signed.clone().into_bytes();
    forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let head = app.head().await;
    let refused = app.meta("/callbacks/meta/data-deletion", &forged).await;
    expect(&refused, 400);
    assert_eq!(refused.content_type(), "application/problem+json");
    let events = app.events().await;
    assert_eq!(
        events.len() as u64,
        head + 1,
        "only the refusal is recorded"
    );
    assert_eq!(callback_refusals(&events), 1);

    let answer = app.meta("/callbacks/meta/data-deletion", &signed).await;
    expect(&answer, 200);
    let code = answer.json["confirmation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answer.json["url"],
        format!("{PUBLIC_URL}/deletion-status/{code}")
    );
    let head = app.head().await;
    let replay = app.meta("/callbacks/meta/data-deletion", &signed).await;
    expect(&replay, 200);
    assert_eq!(replay.json["confirmation_code"], code.as_str());
    assert_eq!(app.head().await, head, "a replay stores nothing");

    let status = app
        .raw(
            Method::GET,
            &format!("/deletion-status/{code}"),
            None,
            None,
            Vec::new(),
            &[],
        )
        .await;
    expect(&status, 200);
    assert!(status.content_type().starts_with("text/html"));
    assert!(status.text.contains(&code));
    assert!(status.text.contains("in-progress"), "{}", status.text);

    // Every connection row of that Instagram account, in both workspaces.
    assert!(work_all(app).await > 0);
    for ws in ["ws-m1", "ws-m2"] {
        let row = app
            .resource_row(
                &format!("/v1/resources?workspace={ws}"),
                &format!("integration:ig-{ws}"),
            )
            .await
            .unwrap();
        assert_ne!(row["display_state"], "active", "{ws}: {row}");
    }
    let json_status = app
        .raw(
            Method::GET,
            &format!("/deletion-status/{code}"),
            None,
            None,
            Vec::new(),
            &[("accept", "application/json")],
        )
        .await;
    expect(&json_status, 200);
    assert_eq!(json_status.json["state"], "completed");
    assert!(json_status.json["completed_at"].is_string());
    assert!(json_status.json["explanation"].as_str().unwrap().len() > 10);
    expect(
        &app.raw(
            Method::GET,
            "/deletion-status/LTH000000000000",
            None,
            None,
            Vec::new(),
            &[],
        )
        .await,
        404,
    );
}

/// Wrong algorithm, stale, no form, no field: refused and recorded.
pub async fn refused_callbacks_are_recorded(app: &TestApp) {
    let wrong_algorithm = adapters::meta::sign(
        crate::helpers::META_SECRET,
        &json!({ "algorithm": "HMAC-SHA1", "issued_at": app.clock_now().timestamp(), "user_id": USER }),
    );
    let stale = app.signed_request(USER);
    let head = app.head().await;
    expect(
        &app.meta("/callbacks/meta/data-deletion", &wrong_algorithm)
            .await,
        400,
    );
    app.clock.advance(Duration::seconds(3_601));
    expect(&app.meta("/callbacks/meta/deauthorize", &stale).await, 400);
    expect(
        &app.meta("/callbacks/meta/deauthorize", "not-a-signed-request")
            .await,
        400,
    );
    let json_body = app
        .raw(
            Method::POST,
            "/callbacks/meta/data-deletion",
            None,
            Some("application/json"),
            b"{}".to_vec(),
            &[],
        )
        .await;
    expect(&json_body, 415);
    let events = app.events().await;
    assert_eq!(events.len() as u64, head + 4);
    assert_eq!(callback_refusals(&events), 4);
    let audit = app.get(Auditor, "/v1/audit/export?format=jsonl").await;
    assert!(audit.text.contains("HMAC-SHA1"));
}

/// Anyone can send a callback, so refusals are recorded one by one up to
/// a limit a minute; past it they are still refused, and the next one
/// recorded says how many were not.
pub async fn refusals_past_the_limit_are_counted_not_recorded(app: &TestApp) {
    let limit = adapters::http::callbacks::REFUSALS_RECORDED_PER_MINUTE as usize;
    let before = callback_refusals(&app.events().await);
    for _ in 0..limit + 5 {
        let refused = app.meta("/callbacks/meta/data-deletion", "a.b").await;
        expect(&refused, 400);
    }
    assert_eq!(callback_refusals(&app.events().await), before + limit);
    app.clock.advance(Duration::seconds(61));
    expect(&app.meta("/callbacks/meta/deauthorize", "a.b").await, 400);
    let events = app.events().await;
    assert_eq!(callback_refusals(&events), before + limit + 1);
    let last = events
        .iter()
        .rev()
        .find(|e| e.event_type == "CallbackRefused")
        .unwrap();
    let reason = last.payload["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("(5 refused callbacks before this one"),
        "{reason}"
    );
}

/// R4: a deauthorization meets every connection of the person: one long
/// disconnected and erased by its clean-up is passed over, the others are
/// disconnected, and a repeat answers 200 with nothing more to do.
pub async fn deauthorize_passes_over_erased_connections(app: &TestApp) {
    const PERSON: &str = "17841400000000777";
    for (ws, id) in [("ws-d1", "ig-d1"), ("ws-d2", "ig-d2")] {
        seed_workspace(app, ws).await;
        expect(
            &app.post(
                Service,
                "/v1/integrations",
                json!({
                    "integration_id": id, "workspace_id": ws, "platform": "instagram",
                    "external_account_id": PERSON, "connected_by": "account:acct-admin",
                }),
            )
            .await,
            201,
        );
    }
    expect(
        &app.post(
            Service,
            "/v1/integrations/ig-d1/disconnect",
            json!({ "disconnected_by": "platform" }),
        )
        .await,
        202,
    );
    assert!(work_all(app).await > 0, "the clean-up erases ig-d1");
    let first = app
        .meta("/callbacks/meta/deauthorize", &app.signed_request(PERSON))
        .await;
    expect(&first, 200);
    assert_eq!(first.json["disconnected"], 1, "{}", first.text);
    let again = app
        .meta("/callbacks/meta/deauthorize", &app.signed_request(PERSON))
        .await;
    expect(&again, 200);
    assert_eq!(again.json["disconnected"], 0, "{}", again.text);
}

crate::on_every_backend!(
    deauthorize_passes_over_erased_connections,
    data_deletion_callback,
    refused_callbacks_are_recorded,
    refusals_past_the_limit_are_counted_not_recorded,
);

/// Without LETHE_META_APP_SECRET the callbacks answer 503 and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_without_a_secret_answer_503() {
    let app = spawn_app_with(Backend::Sqlite, None).await.unwrap();
    let answer = app.meta("/callbacks/meta/data-deletion", "x.y").await;
    expect(&answer, 503);
    assert!(answer.json["detail"]
        .as_str()
        .unwrap()
        .contains("LETHE_META_APP_SECRET"));
    app.finish().await;
}
