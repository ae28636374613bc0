//! R1–R15 as HTTP stories.

use adapters::auth::ApiRole::{Admin, Auditor, Legal, Service};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{expect, seed_workspace, work_all, Answer, TestApp};

async fn detail(app: &TestApp, request_id: &str) -> Value {
    let answer = app
        .get(Auditor, &format!("/v1/deletion-requests/{request_id}"))
        .await;
    expect(&answer, 200);
    answer.json
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn steps(detail: &Value) -> Vec<(String, String)> {
    detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["step"].as_str().unwrap().to_owned(),
                t["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The cells of the column named `name` in a CSV report whose cells hold
/// no commas.
fn csv_column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let index = header
        .iter()
        .position(|column| *column == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|line| line.split(',').nth(index).unwrap_or_default().to_owned())
        .collect()
}

/// Lifts hold `hold_id` as legal (200).
async fn lift(app: &TestApp, hold_id: &str, reason: &str) {
    expect(
        &app.post(
            Legal,
            &format!("/v1/holds/{hold_id}/lift"),
            json!({ "reason": reason }),
        )
        .await,
        200,
    );
}

/// Registers `resource` in workspace `ws` (201).
async fn register(app: &TestApp, resource: &str, ws: &str) {
    expect(
        &app.post(
            Service,
            "/v1/resources",
            json!({ "resource": resource, "workspace_id": ws }),
        )
        .await,
        201,
    );
}

async fn request(app: &TestApp, body: Value) -> Value {
    let answer = app.post(Service, "/v1/deletion-requests", body).await;
    expect(&answer, 202);
    answer.json
}

/// Seeds workspace `ws`, places a legal hold on it, then requests the
/// deletion of its file, which the hold blocks. Answers the hold's and
/// the request's ids.
async fn blocked_by_a_workspace_hold(
    app: &TestApp,
    ws: &str,
    policy: Option<&str>,
) -> (String, String) {
    seed_workspace(app, ws).await;
    let hold = app
        .post(
            Legal,
            "/v1/holds",
            json!({ "scope": format!("workspace:{ws}"), "kind": "legal", "matter": "MATTER-7", "reason": "litigation" }),
        )
        .await;
    expect(&hold, 201);
    let mut body = json!({ "scope": format!("file:{ws}-f"), "channel": "in-product", "requested_by": "account:acct-owner" });
    if let Some(policy) = policy {
        body["policy"] = json!(policy);
    }
    let answer = request(app, body).await;
    assert_eq!(answer["state"], "blocked");
    (
        hold.json["hold_id"].as_str().unwrap().to_owned(),
        answer["request_id"].as_str().unwrap().to_owned(),
    )
}

/// Requests a deletion and has the workers carry it through; answers the
/// completed request's detail.
async fn carried_out(app: &TestApp, body: Value) -> Value {
    let answer = request(app, body).await;
    work_all(app).await;
    let done = detail(app, answer["request_id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "completed", "{done}");
    done
}

/// A storage worker's claim of the next storage-object deletion.
async fn claim_storage(app: &TestApp) -> Answer {
    let body = json!({ "worker": "storage-1", "step": "delete-storage-object" });
    app.post(Service, "/v1/tasks/claim", body).await
}

/// POST /v1/integrations/{id}/disconnect with `body`, as a service.
async fn disconnect(app: &TestApp, id: &str, body: Value) -> Answer {
    let uri = format!("/v1/integrations/{id}/disconnect");
    app.post(Service, &uri, body).await
}

/// A workspace `ws` with YouTube connection `integration` (channel
/// `channel`), and the answer to a deletion request for that connection's
/// data, received from Google.
async fn youtube_request(app: &TestApp, ws: &str, integration: &str, channel: &str) -> Value {
    seed_workspace(app, ws).await;
    connect(app, ws, integration, "youtube", channel).await;
    request(
        app,
        json!({ "scope": format!("integration:{integration}"), "channel": "google-youtube", "requested_by": "account:acct-owner" }),
    )
    .await
}

/// Records, as a service, that request `id`'s requester was told it was
/// received (CCPA).
async fn confirm_receipt(app: &TestApp, id: &str) -> Answer {
    app.post(
        Service,
        &format!("/v1/deletion-requests/{id}/confirm-receipt"),
        json!({}),
    )
    .await
}

async fn connect(app: &TestApp, ws: &str, id: &str, platform: &str, external: &str) {
    expect(
        &app.post(
            Service,
            "/v1/integrations",
            json!({
                "integration_id": id, "workspace_id": ws, "platform": platform,
                "external_account_id": external, "connected_by": "account:acct-admin",
            }),
        )
        .await,
        201,
    );
}

/// R1 / R2: only an owner or admin (or the platform) disconnects; the
/// clean-up steps follow; the platform's own data is not claimed deleted.
pub async fn r1_r2_disconnect(app: &TestApp) {
    seed_workspace(app, "ws-r1").await;
    connect(app, "ws-r1", "yt-r1", "youtube", "UCr1").await;
    let by_member = disconnect(
        app,
        "yt-r1",
        json!({ "disconnected_by": "account:acct-member" }),
    )
    .await;
    expect(&by_member, 403);
    // The clean-up is asked through the disconnect's channel, so only a
    // channel that needs nothing more is taken; nothing is stored else.
    let head = app.head().await;
    for channel in ["email-to-support", "meta-callback", "retention-policy"] {
        let refused = disconnect(
            app,
            "yt-r1",
            json!({ "disconnected_by": "platform", "channel": channel }),
        )
        .await;
        expect(&refused, 422);
        assert_eq!(refused.json["field"], "channel", "{}", refused.text);
    }
    assert_eq!(app.head().await, head);
    let cleanup = disconnect(
        app,
        "yt-r1",
        json!({ "disconnected_by": "account:acct-admin", "reason": "agency change" }),
    )
    .await;
    expect(&cleanup, 202);
    let request_id = cleanup.json["request_id"].as_str().unwrap().to_owned();
    let detail = detail(app, &request_id).await;
    let steps: Vec<String> = steps(&detail).into_iter().map(|(s, _)| s).collect();
    for step in [
        "revoke-tokens",
        "clear-analytics-cache",
        "deactivate-connection-record",
        "remove-analytics-rows",
    ] {
        assert!(
            steps.contains(&step.to_owned()),
            "{step} missing from {steps:?}"
        );
    }
    // Unusable from now on: a second disconnect conflicts.
    expect(
        &disconnect(app, "yt-r1", json!({ "disconnected_by": "platform" })).await,
        409,
    );
    let audit = app
        .get(Auditor, "/v1/audit?subject=integration:yt-r1")
        .await;
    expect(&audit, 200);
    let disconnected = audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "IntegrationDisconnected")
        .expect("the disconnect is in the audit trail");
    let summary = disconnected["summary"].as_str().unwrap();
    assert!(summary.contains("syncs stopped"), "{summary}");
    // R2: auditors read what disconnecting does not delete.
    assert!(
        summary.contains("does not delete your YouTube and Google account or any data"),
        "{summary}"
    );
    // R2: the logged event carries the notice too.
    let logged = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "IntegrationDisconnected")
        .expect("the disconnect is logged");
    assert!(
        !logged.payload["platform_data_notice"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "R2: the notice says what disconnecting does not delete"
    );
    assert_eq!(work_all(app).await, steps.len());
    let done = self::detail(app, &request_id).await;
    assert_eq!(done["state"], "completed");
    let row = app
        .resource_row("/v1/resources?workspace=ws-r1", "integration:yt-r1")
        .await
        .unwrap();
    assert_ne!(row["display_state"], "active");
}

/// R3: YouTube API user data is due within 7 calendar days.
pub async fn r3_youtube_seven_days(app: &TestApp) {
    let answer = youtube_request(app, "ws-r3", "yt-r3", "UCr3").await;
    assert_eq!(time(&answer["due_at"]), app.clock_now() + Duration::days(7));
    let first = detail(app, answer["request_id"].as_str().unwrap()).await;
    assert_eq!(first["policy"], "youtube-api-user-data");

    // The caller cannot name a later deadline for YouTube data, and a
    // workspace holding a YouTube connection is held to 7 days as well.
    seed_workspace(app, "ws-r3b").await;
    connect(app, "ws-r3b", "yt-r3b", "youtube", "UCr3b").await;
    seed_workspace(app, "ws-r3c").await;
    connect(app, "ws-r3c", "yt-r3c", "youtube", "UCr3c").await;
    for body in [
        json!({ "scope": "integration:yt-r3b", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "gdpr" }),
        json!({ "scope": "workspace:ws-r3c", "channel": "in-product", "requested_by": "account:acct-owner" }),
    ] {
        let answer = request(app, body.clone()).await;
        assert_eq!(
            time(&answer["due_at"]),
            app.clock_now() + Duration::days(7),
            "{body}"
        );
        let shown = detail(app, answer["request_id"].as_str().unwrap()).await;
        assert_eq!(shown["policy"], "youtube-api-user-data", "{body}");
    }
    // A workspace whose YouTube connection is disconnected (its clean-up,
    // a request of its own, is held to 7 days) keeps the policy asked for.
    seed_workspace(app, "ws-r3e").await;
    connect(app, "ws-r3e", "yt-r3e", "youtube", "UCr3e").await;
    expect(
        &disconnect(app, "yt-r3e", json!({ "disconnected_by": "platform" })).await,
        202,
    );
    let answer = request(
        app,
        json!({ "scope": "workspace:ws-r3e", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "gdpr" }),
    )
    .await;
    let shown = detail(app, answer["request_id"].as_str().unwrap()).await;
    assert_eq!(shown["policy"], "gdpr");
    // A workspace without one keeps the policy asked for.
    seed_workspace(app, "ws-r3d").await;
    let answer = request(
        app,
        json!({ "scope": "workspace:ws-r3d", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "gdpr" }),
    )
    .await;
    let shown = detail(app, answer["request_id"].as_str().unwrap()).await;
    assert_eq!(shown["policy"], "gdpr");
}

/// R4: a valid deauthorization disconnects every matching connection.
pub async fn r4_meta_deauthorize(app: &TestApp) {
    seed_workspace(app, "ws-r4a").await;
    seed_workspace(app, "ws-r4b").await;
    connect(app, "ws-r4a", "ig-r4a", "instagram", "1784140000004").await;
    connect(app, "ws-r4b", "ig-r4b", "instagram", "1784140000004").await;
    connect(app, "ws-r4b", "ig-other", "instagram", "1784149999999").await;
    let answer = app
        .meta(
            "/callbacks/meta/deauthorize",
            &app.signed_request("1784140000004"),
        )
        .await;
    expect(&answer, 200);
    assert_eq!(answer.json["disconnected"], 2);
    for (ws, id, state) in [
        ("ws-r4a", "ig-r4a", "disconnected"),
        ("ws-r4b", "ig-r4b", "disconnected"),
        ("ws-r4b", "ig-other", "active"),
    ] {
        let row = app
            .resource_row(
                &format!("/v1/resources?workspace={ws}"),
                &format!("integration:{id}"),
            )
            .await
            .unwrap();
        if state == "disconnected" {
            // Disconnected, and its clean-up released (R1).
            assert!(row["disconnected_at"].is_string(), "{id}: {row}");
            assert_ne!(row["display_state"], "active", "{id}: {row}");
        } else {
            assert_eq!(row["display_state"], state, "{id}");
        }
    }
}

/// R6 / R8: deleting a file removes it, every derived artifact and the
/// references to it, then the storage object; failures are recorded and
/// retried later.
pub async fn r6_r8_file_deletion(app: &TestApp) {
    seed_workspace(app, "ws-r6").await;
    expect(
        &app.post(Service, "/v1/resources", json!({ "resource": "canvas:ws-r6-c", "workspace_id": "ws-r6", "references": ["file:ws-r6-f"] })).await,
        201,
    );
    let answer = request(
        app,
        json!({ "scope": "file:ws-r6-f", "channel": "in-product", "requested_by": "account:acct-member" }),
    )
    .await;
    let id = answer["request_id"].as_str().unwrap().to_owned();
    let whole = detail(app, &id).await;
    assert_eq!(whole["tasks_next_after"], Value::Null);
    // Paged two at a time, the detail gives the same tasks, each once.
    let mut paged = Vec::new();
    let mut uri = format!("/v1/deletion-requests/{id}?tasks_limit=2");
    loop {
        let page = app.get(Auditor, &uri).await;
        expect(&page, 200);
        let tasks = page.json["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2, "{}", page.text);
        paged.extend(tasks.iter().map(|t| t["task_id"].clone()));
        match page.json["tasks_next_after"].as_i64() {
            Some(after) => {
                uri = format!("/v1/deletion-requests/{id}?tasks_limit=2&tasks_after={after}");
            }
            None => break,
        }
    }
    let all: Vec<Value> = whole["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].clone())
        .collect();
    assert!(all.len() > 2, "{all:?}");
    assert_eq!(paged, all);
    assert_eq!(whole["tasks_total"].as_u64(), Some(all.len() as u64));
    let refused = app
        .get(
            Auditor,
            &format!("/v1/deletion-requests/{id}?tasks_limit=0"),
        )
        .await;
    expect(&refused, 422);
    assert_eq!(refused.json["field"], "tasks_limit");
    let steps = steps(&whole);
    for target in [
        "file:ws-r6-f",
        "transcript:ws-r6-f-t",
        "thumbnail:ws-r6-f-th",
        "embedding:ws-r6-f-e",
    ] {
        assert!(
            steps.iter().any(|(_, t)| t == target),
            "{target} not in {steps:?}"
        );
    }
    assert!(
        steps.iter().any(|(s, _)| s == "delete-storage-object"),
        "{steps:?}"
    );
    // R8: the references to the file (the canvas's among them) go.
    assert!(
        steps
            .iter()
            .any(|(s, t)| s == "remove-references" && t == "file:ws-r6-f"),
        "{steps:?}"
    );
    // A failed storage deletion is recorded and retried later.
    let claimed = claim_storage(app).await;
    expect(&claimed, 200);
    let task = claimed.json["task_id"].as_str().unwrap().to_owned();
    let failed = app
        .post(
            Service,
            &format!("/v1/tasks/{task}/fail"),
            json!({ "worker": "storage-1", "error": "bucket timeout" }),
        )
        .await;
    expect(&failed, 200);
    let again = claim_storage(app).await;
    expect(&again, 204);
    let detail_after = detail(app, &id).await;
    let failed_task = detail_after["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == task.as_str())
        .unwrap()
        .clone();
    assert_eq!(failed_task["attempts"], 1);
    assert_eq!(failed_task["last_error"], "bucket timeout");
    app.clock.advance(Duration::hours(7));
    assert_eq!(work_all(app).await, steps.len());
    assert_eq!(detail(app, &id).await["state"], "completed");
}

/// R7: a blocked deletion resumes by itself even when the lift's own
/// reaction never ran (here the lift is appended to the log directly, as
/// if the process had stopped right after storing it): the service's
/// resume sweep takes it forward.
pub async fn r7_resumes_when_the_lifts_reaction_was_lost(app: &TestApp) {
    use commands::ledger::streams;
    use domain::events::{HoldEvent, LedgerEvent};
    use domain::ids::HoldId;
    use domain::personal::Personal;

    let (hold_id, id) = blocked_by_a_workspace_hold(app, "ws-r7l", None).await;
    let hold_id = HoldId::parse(&hold_id).unwrap();

    let lifted = LedgerEvent::Hold(HoldEvent::HoldLifted {
        hold: hold_id,
        scope: domain::subject::Subject::parse("workspace:ws-r7l").unwrap(),
        reason: Personal::plain("matter settled"),
        lifted_by: "legal:test".into(),
    });
    app.append_directly(streams::hold(hold_id), lifted).await;
    let stranded = detail(app, &id).await;
    assert_eq!(
        stranded["state"], "blocked",
        "nothing reacted to the lift yet"
    );

    let after = swept_once(app, &id).await;
    assert_eq!(after["state"], "in-progress", "{after}");
    assert!(after["tasks_total"].as_u64().unwrap() > 0);
}

/// R1 / R7: a connection disconnected under a workspace hold has its
/// clean-up blocked before any task is released; the resources view
/// shows it blocked by the hold (and lists it so), not merely
/// disconnected, until the lift.
pub async fn r1_r7_a_clean_up_blocked_by_a_hold_shows_on_its_connection(app: &TestApp) {
    let (hold_id, _) = blocked_by_a_workspace_hold(app, "ws-r1h", None).await;
    connect(app, "ws-r1h", "tt-r1h", "tiktok", "tt-user-1").await;
    let cleanup = disconnect(
        app,
        "tt-r1h",
        json!({ "disconnected_by": "account:acct-owner" }),
    )
    .await;
    expect(&cleanup, 202);
    assert_eq!(cleanup.json["state"], "blocked", "{}", cleanup.text);
    let shown = |state: &'static str| async move {
        let uri = format!("/v1/resources?workspace=ws-r1h&state={state}");
        app.resource_row(&uri, "integration:tt-r1h").await
    };
    let row = app
        .resource_row("/v1/resources?workspace=ws-r1h", "integration:tt-r1h")
        .await
        .expect("listed");
    assert_eq!(row["display_state"], "blocked-by-hold", "{row}");
    assert!(shown("blocked-by-hold").await.is_some());
    assert!(shown("disconnected").await.is_none());
    lift(app, &hold_id, "settled").await;
    work_all(app).await;
    let row = app
        .resource_row("/v1/resources?workspace=ws-r1h", "integration:tt-r1h")
        .await
        .expect("listed");
    assert_eq!(row["display_state"], "erased", "{row}");
}

/// Runs the resume sweep: it takes request `id` forward, and a second
/// sweep finds nothing left. Answers the request's detail after.
async fn swept_once(app: &TestApp, id: &str) -> Value {
    let models = adapters::readmodel::ReadModels::open(&app.url)
        .await
        .unwrap();
    let sweep = || adapters::resume::resume_unblocked_requests(&app.ledger, &models);
    assert_eq!(sweep().await.expect("the sweep"), 1);
    let after = detail(app, id).await;
    assert_eq!(sweep().await.expect("the sweep"), 0, "nothing left");
    models.close().await;
    after
}

/// R7: a hold whose reaction was lost (here appended to the log directly)
/// leaves a request in progress whose tasks cannot be claimed; the sweep
/// marks it blocked by the hold, so that the report does not count it
/// overdue, and then finds nothing more to do.
pub async fn r7_blocks_when_the_holds_reaction_was_lost(app: &TestApp) {
    use commands::ledger::streams;
    use domain::events::{HoldEvent, LedgerEvent};
    use domain::ids::HoldId;
    use domain::personal::Personal;
    use domain::values::HoldKind;

    seed_workspace(app, "ws-r7h").await;
    let opened = request(
        app,
        json!({ "scope": "file:ws-r7h-f", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let id = opened["request_id"].as_str().unwrap().to_owned();
    let hold = HoldId::from_uuid(uuid::Uuid::now_v7());
    let placed = LedgerEvent::Hold(HoldEvent::HoldPlaced {
        hold,
        scope: domain::subject::Subject::parse("workspace:ws-r7h").unwrap(),
        kind: HoldKind::Legal,
        matter: Personal::plain("M-r7h"),
        reason: Personal::plain("litigation"),
        placed_by: "legal:test".into(),
    });
    app.append_directly(streams::hold(hold), placed).await;
    let unmarked = detail(app, &id).await;
    assert_eq!(
        unmarked["state"], "in-progress",
        "nothing reacted to the hold yet"
    );

    let after = swept_once(app, &id).await;
    assert_eq!(after["state"], "blocked", "{after}");
    assert_eq!(after["blocked_by"], json!([hold.to_string()]), "{after}");
}

/// R1: the disconnect and its clean-up request are two appends. When the
/// second is lost (here the disconnect is appended to the log directly,
/// as if the process had stopped in between), a retry opens the clean-up
/// instead of answering "already disconnected", even when support has
/// recorded another request on the integration meanwhile; a replay under
/// the same key answers with it; a new disconnect still conflicts.
pub async fn r1_a_lost_clean_up_is_opened_by_the_retry(app: &TestApp) {
    use commands::ledger::streams;
    use domain::events::{IntegrationEvent, LedgerEvent};
    use domain::values::{Channel, Initiator};

    seed_workspace(app, "ws-r1l").await;
    connect(app, "ws-r1l", "yt-r1l", "youtube", "UCr1l").await;
    let LedgerEvent::Integration(IntegrationEvent::IntegrationConnected {
        integration,
        workspace,
        platform,
        external_account,
        ..
    }) = app.first_event("IntegrationConnected").await
    else {
        panic!("not a connection");
    };
    let disconnected = LedgerEvent::Integration(IntegrationEvent::IntegrationDisconnected {
        integration: integration.clone(),
        workspace,
        platform,
        external_account,
        disconnected_by: Initiator::Platform,
        channel: Channel::InProduct,
        reason: None,
        platform_data_notice: domain::integration::platform_data_notice(platform),
    });
    app.append_directly(streams::integration(&integration), disconnected)
        .await;
    // Support records an e-mail asking to delete the connection: a
    // request on it, under another policy, but not its clean-up.
    let emailed = request(
        app,
        json!({
            "scope": "integration:yt-r1l", "channel": "email-to-support", "policy": "gdpr",
            "requested_by": "account:acct-owner", "recorded_by": "support:maria",
            "verification": "replied from the registered address",
        }),
    )
    .await;

    let disconnect = |key: Option<&'static str>| async move {
        app.post_keyed(
            Service,
            "/v1/integrations/yt-r1l/disconnect",
            json!({ "disconnected_by": "platform" }),
            key,
        )
        .await
    };
    let retried = disconnect(Some("dis-1")).await;
    expect(&retried, 202);
    let id = retried.json["request_id"].as_str().unwrap().to_owned();
    assert_ne!(retried.json["request_id"], emailed["request_id"]);
    let cleanup = detail(app, &id).await;
    assert_eq!(cleanup["scope"], "integration:yt-r1l");
    assert_eq!(cleanup["channel"], "in-product", "{cleanup}");
    assert_eq!(cleanup["policy"], "youtube-api-user-data", "{cleanup}");
    assert!(
        steps(&cleanup)
            .iter()
            .any(|(step, _)| step == "revoke-tokens"),
        "{cleanup}"
    );
    let head = app.head().await;
    let replayed = disconnect(Some("dis-1")).await;
    expect(&replayed, 202);
    assert_eq!(replayed.json["request_id"], retried.json["request_id"]);
    assert_eq!(app.head().await, head, "a replay stores nothing");
    expect(&disconnect(None).await, 409);
    expect(&disconnect(Some("dis-2")).await, 409);
    assert_eq!(app.head().await, head);
}

/// R7 / R12: there is nothing left to preserve once a file is erased: a
/// hold on it is refused (409), not confirmed as active.
pub async fn r12_no_hold_on_an_erased_file(app: &TestApp) {
    seed_workspace(app, "ws-r12h").await;
    carried_out(
        app,
        json!({ "scope": "file:ws-r12h-f", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let head = app.head().await;
    let hold = app
        .post(Legal, "/v1/holds", json!({ "scope": "file:ws-r12h-f", "kind": "legal", "matter": "M-12", "reason": "preserve" }))
        .await;
    expect(&hold, 409);
    assert_eq!(app.head().await, head);
    // The workspace itself is not erased: a hold on it is placed.
    let hold = app
        .post(Legal, "/v1/holds", json!({ "scope": "workspace:ws-r12h", "kind": "legal", "matter": "M-12", "reason": "preserve" }))
        .await;
    expect(&hold, 201);
}

/// R6: a worker of one step gets that step's tasks however many older
/// tasks of other steps wait: the read model filters by step before it
/// limits the page, and the claim answers with a task of that step.
pub async fn r6_a_worker_claims_tasks_of_its_step(app: &TestApp) {
    seed_workspace(app, "ws-r6s").await;
    request(
        app,
        json!({ "scope": "file:ws-r6s-f", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let models = adapters::readmodel::ReadModels::open(&app.url)
        .await
        .unwrap();
    models.catch_up(app.store.as_ref()).await.unwrap();
    let now = app.clock_now();
    let all = models.claimable_tasks(now, 0, None, 1_000).await.unwrap();
    assert_eq!(all[0].step, "remove-record");
    let first = models.claimable_tasks(now, 0, None, 1).await.unwrap();
    assert_eq!(first[0].step, "remove-record");
    let storage = models
        .claimable_tasks(now, 0, Some("delete-storage-object"), 1)
        .await
        .unwrap();
    assert_eq!(storage.len(), 1);
    assert_eq!(storage[0].step, "delete-storage-object");
    models.close().await;
    let claimed = claim_storage(app).await;
    expect(&claimed, 200);
    assert_eq!(
        claimed.json["step"], "delete-storage-object",
        "{}",
        claimed.text
    );
}

/// R8: a registration names at most 59 references, so that its event
/// always keeps within the tag limit; one more is refused on the field
/// `references`, not with an internal limit.
pub async fn r8_references_are_limited_on_their_field(app: &TestApp) {
    seed_workspace(app, "ws-r8l").await;
    let files: Vec<String> = (0..60).map(|n| format!("file:ws-r8l-{n}")).collect();
    for file in &files {
        register(app, file, "ws-r8l").await;
    }
    let canvas = |n: usize| {
        json!({ "resource": "canvas:ws-r8l-c", "workspace_id": "ws-r8l",
                "parent": "project:ws-r8l-p", "references": files[..n] })
    };
    let refused = app.post(Service, "/v1/resources", canvas(60)).await;
    expect(&refused, 422);
    assert_eq!(refused.json["field"], "references", "{}", refused.text);
    expect(&app.post(Service, "/v1/resources", canvas(59)).await, 201);
}

/// R7 in full: a hold on the workspace blocks the deletion of a file in
/// it; lifting the hold resumes it; the audit trail tells the story.
pub async fn r7_hold_blocks_then_resumes(app: &TestApp) {
    let (hold_id, id) = blocked_by_a_workspace_hold(app, "ws-r7", Some("gdpr")).await;
    let blocked = detail(app, &id).await;
    assert_eq!(blocked["state"], "blocked");
    assert_eq!(blocked["blocked_by"], json!([hold_id]));
    assert_eq!(blocked["deadline"]["status"], "blocked-by-hold");
    assert!(blocked["deadline_label"]
        .as_str()
        .unwrap()
        .contains(&hold_id));
    expect(
        &app.post(Service, "/v1/tasks/claim", json!({ "worker": "w" }))
            .await,
        204,
    );
    let holds = app.get(Legal, "/v1/holds?active=true").await;
    expect(&holds, 200);
    assert_eq!(holds.json["holds"][0]["blocked_requests"], json!([id]));
    // The file is shown waiting on the hold, not as merely active, though
    // no task was released yet.
    let state_of = |uri: String| async move {
        app.resource_row(&uri, "file:ws-r7-f")
            .await
            .map(|r| r["display_state"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        state_of("/v1/resources?workspace=ws-r7".into())
            .await
            .as_deref(),
        Some("blocked-by-hold")
    );
    assert_eq!(
        state_of("/v1/resources?workspace=ws-r7&state=blocked-by-hold".into())
            .await
            .as_deref(),
        Some("blocked-by-hold")
    );
    assert_eq!(
        state_of("/v1/resources?workspace=ws-r7&state=active".into()).await,
        None
    );
    // The workspace's trail holds the request for its file and its block
    // from the start, not only once the lift releases its tasks: a reader
    // that pages on with `after` would never see entries added behind it.
    let trail = app.get(Auditor, "/v1/audit?subject=workspace:ws-r7").await;
    expect(&trail, 200);
    let types: Vec<&str> = trail.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for wanted in ["HoldPlaced", "DeletionRequested", "DeletionBlocked"] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }

    lift(app, &hold_id, "matter settled").await;
    let resumed = detail(app, &id).await;
    assert_eq!(resumed["state"], "in-progress");
    let total = resumed["tasks_total"].as_u64().unwrap() as usize;
    assert!(total > 0);
    app.clock.advance(Duration::hours(1));
    assert_eq!(work_all(app).await, total);
    let done = detail(app, &id).await;
    assert_eq!(done["state"], "completed");
    // R13: the purge date of residual copies.
    assert_eq!(
        time(&done["residual_copies_purged_by"]),
        time(&done["completed_at"]) + Duration::days(35)
    );
    let audit = app
        .get(Auditor, &format!("/v1/audit?subject=request:{id}"))
        .await;
    expect(&audit, 200);
    let types: Vec<&str> = audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    let first = |t: &str| {
        types
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} not in {types:?}"))
    };
    assert!(first("DeletionRequested") < first("DeletionBlocked"));
    assert!(first("DeletionBlocked") < first("DeletionResumed"));
    assert!(first("DeletionResumed") < first("TaskReleased"));
    assert!(first("TaskReleased") < first("TaskClaimed"));
    assert!(first("TaskClaimed") < first("TaskCompleted"));
    assert_eq!(types.last(), Some(&"DeletionCompleted"));
    // The file's own trail tells the same story: the request's events
    // carry only the request's tag, yet they are the file's deletion.
    let file_audit = app
        .get(Auditor, "/v1/audit?subject=file:ws-r7-f&limit=1000")
        .await;
    expect(&file_audit, 200);
    let file_types: Vec<&str> = file_audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for t in [
        "ResourceRegistered",
        "DeletionRequested",
        "DeletionBlocked",
        "DeletionResumed",
        "TaskReleased",
        "TaskClaimed",
        "TaskCompleted",
        "DeletionCompleted",
    ] {
        assert!(file_types.contains(&t), "{t} not in {file_types:?}");
    }
    // Each entry once, in log order.
    let positions: Vec<u64> = file_audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let hold_audit = app
        .get(Auditor, &format!("/v1/audit?subject=hold:{hold_id}"))
        .await;
    let hold_types: Vec<&str> = hold_audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(hold_types.first(), Some(&"HoldPlaced"));
    assert!(hold_types.contains(&"HoldLifted"));
}

/// R9: only the owner deletes a workspace.
pub async fn r9_only_owner_deletes_workspace(app: &TestApp) {
    seed_workspace(app, "ws-r9").await;
    let by_admin = app
        .post(Service, "/v1/deletion-requests", json!({ "scope": "workspace:ws-r9", "channel": "in-product", "requested_by": "account:acct-admin" }))
        .await;
    expect(&by_admin, 403);
    let by_owner = request(
        app,
        json!({ "scope": "workspace:ws-r9", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let detail = detail(app, by_owner["request_id"].as_str().unwrap()).await;
    let targets: Vec<String> = steps(&detail).into_iter().map(|(_, t)| t).collect();
    for target in ["file:ws-r9-f", "project:ws-r9-p", "workspace:ws-r9"] {
        assert!(
            targets.contains(&target.to_owned()),
            "{target} not in {targets:?}"
        );
    }
}

/// R6 / R9: once an erasure's tasks are out, nothing new is registered in
/// what it erases: a transcript of a file being deleted, a file in a
/// workspace being deleted. The erasure, planned already, would leave it
/// behind active for good. Other workspaces are not affected.
pub async fn r6_r9_nothing_new_in_what_is_being_erased(app: &TestApp) {
    seed_workspace(app, "ws-r9b").await;
    seed_workspace(app, "ws-r9c").await;
    let register = |body: Value| async move { app.post(Service, "/v1/resources", body).await };
    request(
        app,
        json!({ "scope": "file:ws-r9c-f", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let refused = register(json!({ "resource": "transcript:ws-r9c-t2", "workspace_id": "ws-r9c", "derived_from": "file:ws-r9c-f" })).await;
    expect(&refused, 409);
    assert!(refused.text.contains("being erased"), "{}", refused.text);
    // The rest of that workspace is not being erased.
    expect(
        &register(json!({ "resource": "file:ws-r9c-g", "workspace_id": "ws-r9c" })).await,
        201,
    );

    let whole = request(
        app,
        json!({ "scope": "workspace:ws-r9b", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let head = app.head().await;
    let refused =
        register(json!({ "resource": "file:ws-r9b-new", "workspace_id": "ws-r9b" })).await;
    expect(&refused, 409);
    assert!(
        refused.text.contains("workspace:ws-r9b is being erased"),
        "{}",
        refused.text
    );
    // Nor a connection or a member: the erasure, planned already, would
    // leave them behind, a connection's tokens never revoked.
    let refused = app
        .post(
            Service,
            "/v1/integrations",
            json!({ "integration_id": "yt-r9b", "workspace_id": "ws-r9b", "platform": "youtube", "external_account_id": "UC-r9b", "connected_by": "account:acct-owner" }),
        )
        .await;
    expect(&refused, 409);
    assert!(
        refused.text.contains("workspace:ws-r9b is being erased"),
        "{}",
        refused.text
    );
    let refused = app
        .post(
            Service,
            "/v1/workspaces/ws-r9b/members",
            json!({ "account_id": "acct-late", "role": "member", "added_by": "account:acct-owner" }),
        )
        .await;
    expect(&refused, 409);
    assert!(
        refused.text.contains("workspace:ws-r9b is being erased"),
        "{}",
        refused.text
    );
    assert_eq!(app.head().await, head);
    work_all(app).await;
    let done = detail(app, whole["request_id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "completed");
    // Erased now: refused as erased.
    let refused =
        register(json!({ "resource": "file:ws-r9b-new", "workspace_id": "ws-r9b" })).await;
    expect(&refused, 409);
}

/// R10: a removed member loses access; what they created stays.
pub async fn r10_removed_member_content_stays(app: &TestApp) {
    seed_workspace(app, "ws-r10").await;
    // A misspelt parameter is refused, not read as "by the platform".
    let misspelt = app
        .delete(
            Service,
            "/v1/workspaces/ws-r10/members/acct-member?removedby=account:acct-member2",
        )
        .await;
    expect(&misspelt, 422);
    let removed = app
        .delete(
            Service,
            "/v1/workspaces/ws-r10/members/acct-member?removed_by=account:acct-owner",
        )
        .await;
    expect(&removed, 204);
    expect(
        &app.delete(Service, "/v1/workspaces/ws-r10/members/acct-member")
            .await,
        409,
    );
    assert!(app
        .resource_row(
            "/v1/resources?workspace=ws-r10&state=active",
            "file:ws-r10-f"
        )
        .await
        .is_some());
}

/// R11: account deletion needs verification and is refused while the
/// account is the sole owner of a workspace with other members.
pub async fn r11_account_deletion(app: &TestApp) {
    seed_workspace(app, "ws-r11").await;
    let owner = request(
        app,
        json!({ "scope": "account:acct-owner", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "gdpr" }),
    )
    .await;
    assert_eq!(owner["state"], "awaiting-verification");
    let id = owner["request_id"].as_str().unwrap().to_owned();
    let verified = app
        .post(
            Service,
            &format!("/v1/deletion-requests/{id}/verify"),
            json!({ "method": "signed in with 2FA" }),
        )
        .await;
    expect(&verified, 200);
    assert_eq!(verified.json["state"], "refused");
    let refused = detail(app, &id).await;
    assert_eq!(refused["refusal"]["code"], "sole-owner-of-shared-workspace");

    let member = request(
        app,
        json!({ "scope": "account:acct-member", "channel": "in-product", "requested_by": "account:acct-member", "verification": "signed in with 2FA" }),
    )
    .await;
    assert_eq!(member["state"], "in-progress");

    // A co-owner whose account is erased owns the workspace no more: the
    // owner is its sole owner again while others use it.
    expect(
        &app.post(
            Service,
            "/v1/workspaces/ws-r11/members",
            json!({ "account_id": "acct-co", "role": "owner", "added_by": "account:acct-owner" }),
        )
        .await,
        201,
    );
    let co = request(
        app,
        json!({ "scope": "account:acct-co", "channel": "in-product", "requested_by": "account:acct-co", "verification": "signed in with 2FA" }),
    )
    .await;
    assert_eq!(co["state"], "in-progress", "{co}");
    work_all(app).await;
    let alone = request(
        app,
        json!({ "scope": "account:acct-owner", "channel": "in-product", "requested_by": "account:acct-owner", "verification": "signed in with 2FA" }),
    )
    .await;
    assert_eq!(alone["state"], "refused", "{alone}");

    // Once the other members' accounts are erased, nobody else uses the
    // workspace: the owner's account may go.
    request(
        app,
        json!({ "scope": "account:acct-admin", "channel": "in-product", "requested_by": "account:acct-admin", "verification": "signed in with 2FA" }),
    )
    .await;
    work_all(app).await;
    for other in [&member, &co] {
        let shown = detail(app, other["request_id"].as_str().unwrap()).await;
        assert_eq!(shown["state"], "completed", "{shown}");
    }
    let again = request(
        app,
        json!({ "scope": "account:acct-owner", "channel": "in-product", "requested_by": "account:acct-owner", "verification": "signed in with 2FA" }),
    )
    .await;
    assert_eq!(again["state"], "in-progress", "{again}");
}

/// R12: what was erased stays erased.
pub async fn r12_no_revival(app: &TestApp) {
    seed_workspace(app, "ws-r12").await;
    request(
        app,
        json!({ "scope": "file:ws-r12-f", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    work_all(app).await;
    let before = app.head().await;
    expect(
        &app.post(
            Service,
            "/v1/resources",
            json!({ "resource": "file:ws-r12-f", "workspace_id": "ws-r12" }),
        )
        .await,
        409,
    );
    expect(
        &app.post(Service, "/v1/deletion-requests", json!({ "scope": "file:ws-r12-f", "channel": "in-product", "requested_by": "account:acct-owner" })).await,
        409,
    );
    expect(
        &app.post(Service, "/v1/resources", json!({ "resource": "caption:ws-r12-c", "workspace_id": "ws-r12", "derived_from": "file:ws-r12-f" })).await,
        409,
    );
    assert_eq!(app.head().await, before);
}

/// R13: every completed erasure states when residual copies are purged.
pub async fn r13_purge_date(app: &TestApp) {
    seed_workspace(app, "ws-r13").await;
    let done = carried_out(
        app,
        json!({ "scope": "thumbnail:ws-r13-f-th", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    assert!(done["residual_copies_purged_by"].is_string());
}

/// R14: billing records are kept as retention exceptions; card numbers
/// never enter the ledger.
pub async fn r14_billing_and_card_numbers(app: &TestApp) {
    seed_workspace(app, "ws-r14").await;
    register(app, "billing-record:inv-1", "ws-r14").await;
    let before = app.head().await;
    let card = app
        .post(Service, "/v1/deletion-requests", json!({
            "scope": "workspace:ws-r14", "channel": "email-to-support", "requested_by": "account:acct-owner",
            "recorded_by": "support:maria", "verification": "caller gave card 4111 1111 1111 1111",
        }))
        .await;
    expect(&card, 422);
    assert_eq!(card.json["field"], "verification");
    assert_eq!(card.content_type(), "application/problem+json");
    let contact = app
        .post(Service, "/v1/deletion-requests", json!({
            "scope": "workspace:ws-r14", "channel": "in-product", "requested_by": "account:acct-owner",
            "contact": "4111-1111-1111-1111",
        }))
        .await;
    expect(&contact, 422);
    assert_eq!(contact.json["field"], "contact");
    assert_eq!(app.head().await, before);
    let answer = request(
        app,
        json!({ "scope": "workspace:ws-r14", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let id = answer["request_id"].as_str().unwrap();
    let audit = app
        .get(Auditor, &format!("/v1/audit?subject=request:{id}"))
        .await;
    let kept = audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "RetentionExceptionRecorded")
        .cloned()
        .expect("the billing record is kept as a retention exception");
    let summary = kept["summary"].as_str().unwrap();
    assert!(summary.contains("basis billing"), "{summary}");
    assert!(
        summary.contains("billing-record:inv-1 kept until"),
        "{summary}"
    );
}

/// What request `id` recorded as kept, and until when.
async fn kept_summaries(app: &TestApp, id: &str) -> Vec<String> {
    app.audit_summaries(&format!(
        "subject=request:{id}&event_type=RetentionExceptionRecorded"
    ))
    .await
    .into_iter()
    // What was kept and until when, without the request's id.
    .map(|summary| summary.split(" (request").next().unwrap().to_owned())
    .collect()
}

/// R12 / R14: a workspace's request sees what earlier requests did to
/// single resources and connections in it. A connection cleaned up and a
/// file erased before are not planned again; a billing record kept by
/// its own request a year before is kept until the same date, not a year
/// longer.
pub async fn r12_r14_a_workspace_request_sees_what_earlier_requests_did(app: &TestApp) {
    seed_workspace(app, "ws-fate").await;
    connect(app, "ws-fate", "yt-fate", "youtube", "UCfate").await;
    register(app, "file:ws-fate-g", "ws-fate").await;
    register(app, "billing-record:inv-fate", "ws-fate").await;
    expect(
        &disconnect(
            app,
            "yt-fate",
            json!({ "disconnected_by": "account:acct-owner" }),
        )
        .await,
        202,
    );
    for scope in ["file:ws-fate-g", "billing-record:inv-fate"] {
        request(
            app,
            json!({ "scope": scope, "channel": "in-product", "requested_by": "account:acct-owner" }),
        )
        .await;
    }
    let first = app
        .get(Auditor, "/v1/audit?subject=billing-record:inv-fate")
        .await;
    let first_request = first.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "RetentionExceptionRecorded")
        .and_then(|e| e["stream"].as_str())
        .and_then(|s| s.strip_prefix("request-"))
        .expect("the record's own request kept it")
        .to_owned();
    let kept_first = kept_summaries(app, &first_request).await;
    assert_eq!(kept_first.len(), 1, "{kept_first:?}");
    work_all(app).await;

    app.clock.advance(chrono::Duration::days(365));
    let whole = request(
        app,
        json!({ "scope": "workspace:ws-fate", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    let id = whole["request_id"].as_str().unwrap();
    let targets: Vec<String> = steps(&detail(app, id).await)
        .into_iter()
        .map(|(_, target)| target)
        .collect();
    for gone in ["integration:yt-fate", "file:ws-fate-g"] {
        assert!(
            !targets.iter().any(|t| t == gone),
            "{gone} was erased before, yet planned again: {targets:?}"
        );
    }
    assert!(targets.iter().any(|t| t == "file:ws-fate-f"), "{targets:?}");
    assert_eq!(kept_summaries(app, id).await, kept_first);
}

/// R14: a billing record kept under its retention exception is erased
/// once the end date has passed. The retention sweep opens one request for
/// it; a hold blocks that request, and sweeping again opens no other; the
/// lift resumes it, and its task erases the record.
pub async fn r14_a_record_is_erased_when_its_retention_ends(app: &TestApp) {
    seed_workspace(app, "ws-r14e").await;
    register(app, "billing-record:inv-e", "ws-r14e").await;
    let workspace = request(
        app,
        json!({ "scope": "workspace:ws-r14e", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    work_all(app).await;
    let workspace = detail(app, workspace["request_id"].as_str().unwrap()).await;
    assert_eq!(workspace["state"], "completed", "{workspace}");
    let record = || async {
        let page = app
            .get(Auditor, "/v1/resources?scope=billing-record:inv-e")
            .await;
        expect(&page, 200);
        page.json["resources"][0].clone()
    };
    let kept = record().await;
    assert_eq!(kept["state"], "retained", "{kept}");
    let until = time(&kept["retained_until"]);
    assert_eq!(until, app.clock_now() + chrono::Months::new(84), "{kept}");

    let models = adapters::readmodel::ReadModels::open(&app.url)
        .await
        .unwrap();
    let sweep = |at: DateTime<Utc>| {
        let models = &models;
        async move {
            adapters::retention::request_ended_retentions(&app.ledger, models, at)
                .await
                .expect("the retention sweep")
        }
    };
    let head = app.head().await;
    let early = sweep(until - Duration::seconds(1)).await;
    assert_eq!((early.requested, early.failed), (0, 0));
    assert_eq!(
        app.head().await,
        head,
        "a sweep before the end stored events"
    );

    app.clock.set(until + Duration::days(1));
    let hold = app
        .post(Legal, "/v1/holds", json!({ "scope": "billing-record:inv-e", "kind": "legal", "matter": "M-14", "reason": "tax audit" }))
        .await;
    expect(&hold, 201);
    let hold_id = hold.json["hold_id"].as_str().unwrap().to_owned();
    let ended = sweep(app.clock_now()).await;
    assert_eq!((ended.requested, ended.failed), (1, 0));
    let audit = app
        .get(Auditor, "/v1/audit?subject=billing-record:inv-e")
        .await;
    let opened: Vec<&Value> = audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "DeletionRequested")
        .collect();
    assert_eq!(opened.len(), 1, "{}", audit.text);
    let summary = opened[0]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "deletion of billing-record:inv-e requested by the platform via retention-policy"
        ),
        "{summary}"
    );
    assert_eq!(opened[0]["actor"], "system:retention", "{}", opened[0]);
    let blocked = record().await;
    assert_eq!(blocked["display_state"], "blocked-by-hold", "{blocked}");
    for (state, listed) in [("blocked-by-hold", 1), ("retained", 0)] {
        let page = app
            .get(
                Auditor,
                &format!("/v1/resources?scope=billing-record:inv-e&state={state}"),
            )
            .await;
        expect(&page, 200);
        assert_eq!(
            page.json["resources"].as_array().unwrap().len(),
            listed,
            "{state}: {}",
            page.text
        );
    }

    // The request waits on the hold; sweeping again opens no other.
    let head = app.head().await;
    let again = sweep(app.clock_now()).await;
    assert_eq!((again.requested, again.failed), (0, 0));
    assert_eq!(app.head().await, head, "a repeated sweep stored events");

    lift(app, &hold_id, "audit closed").await;
    assert_eq!(work_all(app).await, 1, "one task: remove the record");
    let erased = record().await;
    assert_eq!(erased["state"], "erased", "{erased}");
    let done = sweep(app.clock_now()).await;
    assert_eq!((done.requested, done.failed), (0, 0));
    models.close().await;
}

/// R1 / R14: a retention exception recorded by hand names records kept
/// about its target, not the target: it does not make a billing record
/// kept, and the retention sweep does not erase its target when it ends.
pub async fn r14_the_retention_sweep_leaves_exceptions_recorded_by_hand(app: &TestApp) {
    let (_, id) = blocked_by_a_workspace_hold(app, "ws-r14h", None).await;
    register(app, "billing-record:inv-h", "ws-r14h").await;
    // The billing record's own request, blocked by the same hold: an
    // exception names a target within its request's scope.
    let billing_request = request(
        app,
        json!({ "scope": "billing-record:inv-h", "channel": "in-product", "requested_by": "account:acct-owner" }),
    )
    .await;
    assert_eq!(billing_request["state"], "blocked", "{billing_request}");
    let until = app.clock_now() + Duration::days(1);
    let retentions = format!("/v1/deletion-requests/{id}/retentions");
    for (request_id, target) in [
        (id.as_str(), "file:ws-r14h-f"),
        (
            billing_request["request_id"].as_str().unwrap(),
            "billing-record:inv-h",
        ),
    ] {
        expect(
            &app.post(Service, &format!("/v1/deletion-requests/{request_id}/retentions"), json!({ "target": target, "basis": "security", "until": until.to_rfc3339(), "note": "access log kept for incident response" }))
                .await,
            201,
        );
    }
    let resource = |subject: &'static str| async move {
        let page = app
            .get(Auditor, &format!("/v1/resources?scope={subject}"))
            .await;
        expect(&page, 200);
        page.json["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["subject"] == subject)
            .cloned()
            .unwrap_or_else(|| panic!("{subject} is not listed: {}", page.text))
    };
    // A later exception that ends sooner does not shorten the first.
    let sooner = until - Duration::hours(12);
    expect(
        &app.post(Service, &retentions, json!({ "target": "file:ws-r14h-f", "basis": "troubleshooting", "until": sooner.to_rfc3339(), "note": "request logs" }))
            .await,
        201,
    );
    let file = resource("file:ws-r14h-f").await;
    assert_eq!(file["state"], "retained", "{file}");
    assert_eq!(time(&file["retained_until"]), until, "{file}");
    assert_eq!(file["retained_basis"], "security", "{file}");
    let billing = resource("billing-record:inv-h").await;
    assert_eq!(billing["state"], "active", "{billing}");
    assert_eq!(billing["retained_until"], Value::Null, "{billing}");

    app.clock.set(until + Duration::days(1));
    let models = adapters::readmodel::ReadModels::open(&app.url)
        .await
        .unwrap();
    let head = app.head().await;
    let swept =
        adapters::retention::request_ended_retentions(&app.ledger, &models, app.clock_now())
            .await
            .expect("the retention sweep");
    assert_eq!((swept.requested, swept.failed), (0, 0));
    assert_eq!(app.head().await, head, "the sweep stored events");
    models.close().await;
}

/// R15: an e-mail request is recorded by an operator with the
/// verification done; the contact is stored sealed.
pub async fn r15_email_request(app: &TestApp) {
    seed_workspace(app, "ws-r15").await;
    let missing = app
        .post(Service, "/v1/deletion-requests", json!({ "scope": "account:acct-member", "channel": "email-to-support", "requested_by": "account:acct-member" }))
        .await;
    expect(&missing, 422);
    assert_eq!(missing.json["field"], "recorded_by");
    let answer = request(
        app,
        json!({
            "scope": "account:acct-member", "channel": "email-to-support", "policy": "ccpa",
            "requested_by": "account:acct-member", "recorded_by": "support:maria",
            "verification": "replied from the registered address", "contact": "member@example.com",
        }),
    )
    .await;
    assert_eq!(
        time(&answer["due_at"]),
        app.clock_now() + Duration::days(45)
    );
    let id = answer["request_id"].as_str().unwrap();
    let shown = detail(app, id).await;
    assert_eq!(shown["channel"], "email-to-support");
    assert_eq!(shown["verified"], true);
    let audit = app
        .get(Admin, &format!("/v1/audit?subject=request:{id}"))
        .await;
    // Readers see the contact; the database holds it sealed only.
    assert!(
        audit.text.contains("requester contact member@example.com"),
        "{}",
        audit.text
    );
    assert!(audit.text.contains("support:maria"));
    let stored = app.stored_bytes().await;
    assert!(
        !stored.windows(18).any(|w| w == b"member@example.com"),
        "the contact is stored sealed"
    );

    // Recorded three days after the e-mail came: the deadline counts
    // from the e-mail. Only e-mail requests date their own receipt.
    let arrived = app.clock_now() - Duration::days(3);
    let late = request(
        app,
        json!({
            "scope": "file:ws-r15-f", "channel": "email-to-support", "policy": "ccpa",
            "requested_by": "account:acct-owner", "recorded_by": "support:maria",
            "verification": "replied from the registered address",
            "received_at": arrived.to_rfc3339(),
        }),
    )
    .await;
    assert_eq!(time(&late["due_at"]), arrived + Duration::days(45));
    // The same key with another arrival is another request, not a replay.
    let keyed = |at: DateTime<Utc>| {
        let body = json!({
            "scope": "file:ws-r15-f", "channel": "email-to-support", "policy": "ccpa",
            "requested_by": "account:acct-owner", "recorded_by": "support:maria",
            "verification": "replied from the registered address",
            "received_at": at.to_rfc3339(),
        });
        app.post_keyed(Service, "/v1/deletion-requests", body, Some("mail-4711"))
    };
    expect(&keyed(arrived).await, 202);
    expect(&keyed(arrived).await, 202);
    let other = keyed(arrived - Duration::days(1)).await;
    expect(&other, 422);
    assert_eq!(other.json["field"], "Idempotency-Key", "{}", other.text);
    let shown = detail(app, late["request_id"].as_str().unwrap()).await;
    assert_eq!(time(&shown["received_at"]), arrived);
    for (channel, at) in [
        ("in-product", arrived.to_rfc3339()),
        (
            "email-to-support",
            (app.clock_now() + Duration::hours(1)).to_rfc3339(),
        ),
        ("email-to-support", "yesterday".to_owned()),
    ] {
        let refused = app
            .post(
                Service,
                "/v1/deletion-requests",
                json!({
                    "scope": "file:ws-r15-f", "channel": channel,
                    "requested_by": "account:acct-owner", "recorded_by": "support:maria",
                    "verification": "replied from the registered address", "received_at": at,
                }),
            )
            .await;
        expect(&refused, 422);
        assert_eq!(refused.json["field"], "received_at", "{channel} {at}");
    }

    // A requester who could not be verified (R11: an account deletion
    // waits for verification): the request is refused, nothing is
    // deleted. A verified one cannot be refused that way.
    let verified = app
        .post(
            Service,
            &format!("/v1/deletion-requests/{id}/refuse"),
            json!({ "reason": "no reply" }),
        )
        .await;
    expect(&verified, 409);
    assert!(
        verified.text.contains("verified already"),
        "{}",
        verified.text
    );
    let unverified = request(
        app,
        json!({ "scope": "account:acct-admin", "channel": "in-product", "requested_by": "account:acct-admin" }),
    )
    .await;
    let other = unverified["request_id"].as_str().unwrap();
    assert_eq!(unverified["state"], "awaiting-verification");
    let uri = format!("/v1/deletion-requests/{other}/refuse");
    expect(&app.post(Service, &uri, json!({})).await, 422);
    let refused = app
        .post(
            Service,
            &uri,
            json!({ "reason": "no reply to the code sent to the account's address" }),
        )
        .await;
    expect(&refused, 200);
    assert_eq!(refused.json["state"], "refused");
    let shown = detail(app, other).await;
    assert_eq!(shown["refusal"]["code"], "verification-failed");
    assert_eq!(shown["tasks_total"], 0);
    expect(
        &app.post(Service, &uri, json!({ "reason": "again" })).await,
        409,
    );
}

/// Idempotency-Key: a replayed request answers the same and stores nothing.
pub async fn idempotent_requests(app: &TestApp) {
    seed_workspace(app, "ws-idem").await;
    let body = json!({ "scope": "file:ws-idem-f", "channel": "in-product", "requested_by": "account:acct-owner" });
    let send_as = |role, uri: String, body: Value, key: &'static str| async move {
        app.post_keyed(role, &uri, body, Some(key)).await
    };
    let send = || {
        send_as(
            Service,
            "/v1/deletion-requests".into(),
            body.clone(),
            "req-123",
        )
    };
    let first = send().await;
    expect(&first, 202);
    let head = app.head().await;
    let second = send().await;
    expect(&second, 202);
    assert_eq!(first.json["request_id"], second.json["request_id"]);
    assert_eq!(app.head().await, head);

    // The same key with another command is refused, never confirmed as
    // if it had been done: another scope, another requester.
    for other in [
        json!({ "scope": "project:ws-idem-p", "channel": "in-product", "requested_by": "account:acct-owner" }),
        json!({ "scope": "file:ws-idem-f", "channel": "in-product", "requested_by": "account:acct-admin" }),
    ] {
        let reused = send_as(Service, "/v1/deletion-requests".into(), other, "req-123").await;
        expect(&reused, 422);
        assert_eq!(reused.json["field"], "Idempotency-Key", "{}", reused.text);
    }
    // A hold: a replay answers with the first hold; another scope under
    // the same key is refused and places nothing.
    let hold =
        json!({ "scope": "file:ws-idem-f", "kind": "legal", "matter": "M-1", "reason": "r" });
    let placed = send_as(Legal, "/v1/holds".into(), hold.clone(), "hold-1").await;
    expect(&placed, 201);
    let head = app.head().await;
    let replayed = send_as(Legal, "/v1/holds".into(), hold, "hold-1").await;
    expect(&replayed, 201);
    assert_eq!(placed.json["hold_id"], replayed.json["hold_id"]);
    let elsewhere =
        json!({ "scope": "project:ws-idem-p", "kind": "legal", "matter": "M-1", "reason": "r" });
    let reused = send_as(Legal, "/v1/holds".into(), elsewhere, "hold-1").await;
    expect(&reused, 422);
    assert_eq!(reused.json["field"], "Idempotency-Key", "{}", reused.text);
    assert_eq!(
        app.head().await,
        head,
        "nothing stored for a replay or a reused key"
    );
    let holds = app.get(Legal, "/v1/holds?active=true").await;
    assert_eq!(
        holds.json["holds"].as_array().unwrap().len(),
        1,
        "{}",
        holds.text
    );

    // Every other command: a replay answers like the first call and
    // stores nothing; the key used for another command is refused.
    let hold_id = placed.json["hold_id"].as_str().unwrap().to_owned();
    let lift = format!("/v1/holds/{hold_id}/lift");
    let lifted = send_as(Legal, lift.clone(), json!({ "reason": "done" }), "lift-1").await;
    expect(&lifted, 200);
    let head = app.head().await;
    let again = send_as(Legal, lift.clone(), json!({ "reason": "done" }), "lift-1").await;
    expect(&again, 200);
    assert_eq!(again.json, lifted.json);
    // Without the key it is a new command, refused: the hold is lifted.
    expect(
        &app.post(Legal, &lift, json!({ "reason": "done" })).await,
        409,
    );
    assert_eq!(app.head().await, head);

    let ws = json!({ "workspace_id": "ws-idem2", "owner_account_id": "acct-owner" });
    expect(
        &send_as(Service, "/v1/workspaces".into(), ws.clone(), "ws-1").await,
        201,
    );
    let head = app.head().await;
    expect(
        &send_as(Service, "/v1/workspaces".into(), ws, "ws-1").await,
        201,
    );
    assert_eq!(app.head().await, head);

    let first = app
        .post(Service, "/v1/tasks/claim", json!({ "worker": "w-1" }))
        .await;
    expect(&first, 200);
    let task = first.json["task_id"].as_str().unwrap().to_owned();
    // A named claim repeated under its key after its lease ran out is a
    // renewed lease, not an answer about the one that ended.
    let claim_named = || {
        send_as(
            Service,
            "/v1/tasks/claim".into(),
            json!({ "worker": "w-1", "task_id": task, "lease_seconds": 60 }),
            "claim-1",
        )
    };
    let leased = claim_named().await;
    expect(&leased, 200);
    app.clock.advance(Duration::seconds(120));
    let renewed = claim_named().await;
    expect(&renewed, 200);
    assert!(
        time(&renewed.json["lease_until"]) > app.clock_now(),
        "{}",
        renewed.text
    );
    let second = app
        .post(Service, "/v1/tasks/claim", json!({ "worker": "w-1" }))
        .await;
    expect(&second, 200);
    let other = second.json["task_id"].as_str().unwrap().to_owned();
    let complete = |task: &str| format!("/v1/tasks/{task}/complete");
    let done = send_as(
        Service,
        complete(&task),
        json!({ "worker": "w-1" }),
        "done-1",
    )
    .await;
    expect(&done, 200);
    let head = app.head().await;
    let replay = send_as(
        Service,
        complete(&task),
        json!({ "worker": "w-1" }),
        "done-1",
    )
    .await;
    expect(&replay, 200);
    assert_eq!(replay.json["request_id"], done.json["request_id"]);
    assert_eq!(
        app.head().await,
        head,
        "a replayed completion stores nothing"
    );
    // The same key for completing another task of the request: refused,
    // and that task stays open.
    let reused = send_as(
        Service,
        complete(&other),
        json!({ "worker": "w-1" }),
        "done-1",
    )
    .await;
    expect(&reused, 422);
    assert_eq!(reused.json["field"], "Idempotency-Key", "{}", reused.text);
    assert_eq!(app.head().await, head);

    // A retention: a replay answers as the first; the same key with
    // another basis or end date is refused, not answered as if recorded.
    let retentions = format!(
        "/v1/deletion-requests/{}/retentions",
        first.json["request_id"].as_str().unwrap()
    );
    let until = app.clock_now() + Duration::days(30);
    let kept = json!({ "target": "file:ws-idem-f", "basis": "security", "until": until.to_rfc3339(), "note": "access log" });
    let recorded = send_as(Service, retentions.clone(), kept.clone(), "kept-1").await;
    expect(&recorded, 201);
    let head = app.head().await;
    let replayed = send_as(Service, retentions.clone(), kept, "kept-1").await;
    expect(&replayed, 201);
    assert_eq!(replayed.json, recorded.json);
    assert_eq!(
        app.head().await,
        head,
        "a replayed retention stores nothing"
    );
    for other in [
        json!({ "target": "file:ws-idem-f", "basis": "legal", "until": until.to_rfc3339(), "note": "access log" }),
        json!({ "target": "file:ws-idem-f", "basis": "security", "until": (until + Duration::days(1)).to_rfc3339(), "note": "access log" }),
    ] {
        let reused = send_as(Service, retentions.clone(), other, "kept-1").await;
        expect(&reused, 422);
        assert_eq!(reused.json["field"], "Idempotency-Key", "{}", reused.text);
        assert_eq!(app.head().await, head);
    }
}

/// R3 / R7: time under a hold is no lateness, but a hold placed after a
/// request was already late does not excuse it: the report keeps it
/// overdue, not blocked.
pub async fn a_late_request_stays_overdue_when_a_hold_comes(app: &TestApp) {
    let answer = youtube_request(app, "ws-late", "yt-late", "UClate").await;
    let id = answer["request_id"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::days(10));
    expect(
        &app.post(Legal, "/v1/holds", json!({ "scope": "workspace:ws-late", "kind": "legal", "matter": "M-L", "reason": "review" }))
            .await,
        201,
    );
    assert_eq!(detail(app, &id).await["state"], "blocked");
    let report = app.get(Auditor, "/v1/reports/deadlines").await;
    expect(&report, 200);
    let listed = |list: &str| {
        report.json[list]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["request"] == id.as_str())
    };
    assert!(listed("overdue"), "{}", report.text);
    assert!(!listed("blocked"), "{}", report.text);
}

/// The deadline report and the exports.
pub async fn reports_and_exports(app: &TestApp) {
    seed_workspace(app, "ws-rep").await;
    request(app, json!({ "scope": "file:ws-rep-f", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "gdpr" })).await;
    work_all(app).await;
    request(app, json!({ "scope": "project:ws-rep-p", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "ccpa" })).await;
    app.clock.advance(Duration::days(44));
    let report = app.get(Auditor, "/v1/reports/deadlines").await;
    expect(&report, 200);
    assert_eq!(report.json["received"], 2);
    assert_eq!(report.json["completed"], 1);
    assert_eq!(report.json["on_time_rate"], 1.0);
    assert_eq!(report.json["at_risk"].as_array().unwrap().len(), 1);
    // The lists keep to the report's policy, like its rows.
    let gdpr = app.get(Auditor, "/v1/reports/deadlines?policy=gdpr").await;
    expect(&gdpr, 200);
    assert_eq!(gdpr.json["received"], 1);
    assert_eq!(gdpr.json["at_risk"], json!([]), "{}", gdpr.text);
    let ccpa = app.get(Auditor, "/v1/reports/deadlines?policy=ccpa").await;
    assert_eq!(ccpa.json["at_risk"].as_array().unwrap().len(), 1);
    // A policy the ledger does not know, or a range that ends before it
    // starts, is refused on its own parameter, not answered empty.
    for (uri, name) in [
        ("/v1/reports/deadlines?policy=GDPR", "policy"),
        (
            "/v1/reports/deadlines?from=2026-05-01T00:00:00Z&to=2026-04-01T00:00:00Z",
            "to",
        ),
        ("/v1/resources?workspace=ws-rep&state=bogus", "state"),
    ] {
        let refused = app.get(Auditor, uri).await;
        expect(&refused, 422);
        assert_eq!(refused.json["field"], name, "{uri}: {}", refused.text);
    }
    let csv = app.get(Auditor, "/v1/reports/deadlines?format=csv").await;
    expect(&csv, 200);
    assert!(csv.text.starts_with("request,"));
    assert_eq!(csv.text.lines().count(), 3);
    // Two days on, the CCPA request is late while still open: it counts
    // against the on-time rate before it completes.
    app.clock.advance(Duration::days(2));
    let later = app.get(Auditor, "/v1/reports/deadlines").await;
    assert_eq!(
        later.json["overdue"].as_array().unwrap().len(),
        1,
        "{}",
        later.text
    );
    assert_eq!(later.json["on_time_rate"], 0.5, "{}", later.text);
    let jsonl = app.get(Auditor, "/v1/audit/export?format=jsonl").await;
    expect(&jsonl, 200);
    assert_eq!(jsonl.text.lines().count() as u64, app.head().await);
    assert_eq!(jsonl.content_type(), "application/x-ndjson");
    let positions: Vec<u64> = jsonl
        .text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, (1..=app.head().await).collect::<Vec<_>>());
    let export = app.get(Auditor, "/v1/audit/export?format=csv").await;
    expect(&export, 200);
    assert_eq!(export.content_type(), "text/csv; charset=utf-8");
    assert!(export.text.starts_with("position,occurred_at,"));
    assert_eq!(export.text.lines().count() as u64, app.head().await + 1);
    // Filtered: one subject's entries only, the same in both formats.
    let one = app
        .get(
            Auditor,
            "/v1/audit/export?format=jsonl&subject=file:ws-rep-f",
        )
        .await;
    expect(&one, 200);
    let trail = app
        .get(Auditor, "/v1/audit?subject=file:ws-rep-f&limit=1000")
        .await;
    let entries = trail.json["events"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert_eq!(one.text.lines().count(), entries.len());
    let one_csv = app
        .get(Auditor, "/v1/audit/export?format=csv&subject=file:ws-rep-f")
        .await;
    assert_eq!(one_csv.text.lines().count(), entries.len() + 1);
    expect(
        &app.get(Auditor, "/v1/audit/export?format=csv&limit=5")
            .await,
        422,
    );
    expect(&app.get(Auditor, "/v1/audit/export?format=xml").await, 422);
}

/// A CCPA deadline extended once with a reason, and a retention
/// exception recorded, over HTTP; both show in the trail. A retention
/// exception for a record outside the request's scope is refused.
pub async fn extension_and_retention(app: &TestApp) {
    seed_workspace(app, "ws-ext").await;
    expect(
        &app.post(
            Service,
            "/v1/resources",
            json!({ "resource": "transcript:ws-ext-t", "workspace_id": "ws-ext", "derived_from": "file:ws-ext-f" }),
        )
        .await,
        201,
    );
    let answer = request(
        app,
        json!({ "scope": "file:ws-ext-f", "channel": "in-product", "policy": "ccpa", "requested_by": "account:acct-owner" }),
    )
    .await;
    let id = answer["request_id"].as_str().unwrap().to_owned();
    let extend = format!("/v1/deletion-requests/{id}/extend");
    let refused = app.post(Service, &extend, json!({})).await;
    expect(&refused, 422);
    assert_eq!(refused.json["field"], "reason");
    let extended = app
        .post(
            Service,
            &extend,
            json!({ "reason": "backups span two regions" }),
        )
        .await;
    expect(&extended, 200);
    assert_eq!(
        time(&extended.json["due_at"]),
        app.clock_now() + Duration::days(90)
    );
    let again = app
        .post(Service, &extend, json!({ "reason": "still busy" }))
        .await;
    assert!(again.status.is_client_error(), "{}", again.text);
    // The report shows the extension's reason in plain text, as CSV too.
    let csv = app.get(Auditor, "/v1/reports/deadlines?format=csv").await;
    expect(&csv, 200);
    assert!(
        csv.text.contains("backups span two regions"),
        "{}",
        csv.text
    );
    assert!(!csv.text.contains("sealed1:"), "{}", csv.text);

    let retentions = format!("/v1/deletion-requests/{id}/retentions");
    let past = app
        .post(Service, &retentions, json!({ "target": "file:ws-ext-f", "basis": "security", "until": "2020-01-01T00:00:00Z", "note": "access log" }))
        .await;
    expect(&past, 422);
    assert_eq!(past.json["field"], "until");
    let until = app.clock_now() + Duration::days(90);
    // A record of the workspace that this file's request does not cover,
    // and one the ledger never heard of: neither can be kept by it.
    register(app, "file:ws-ext-other", "ws-ext").await;
    let head = app.head().await;
    for outside in ["file:ws-ext-other", "billing-record:b-ext"] {
        let refused = app
            .post(Service, &retentions, json!({ "target": outside, "basis": "billing", "until": until.to_rfc3339(), "note": "invoices kept for tax" }))
            .await;
        expect(&refused, 422);
        assert_eq!(refused.json["field"], "target", "{outside}");
        assert_eq!(refused.content_type(), "application/problem+json");
        let detail = refused.json["detail"].as_str().unwrap();
        assert!(
            detail.contains("not within this request's scope file:ws-ext-f"),
            "{detail}"
        );
    }
    assert_eq!(app.head().await, head, "a refused retention stored events");
    let kept = app
        .post(Service, &retentions, json!({ "target": "file:ws-ext-f", "basis": "security", "until": until.to_rfc3339(), "note": "access log kept for incident response" }))
        .await;
    expect(&kept, 201);
    assert_eq!(kept.json["basis"], "security");
    let derived = app
        .post(Service, &retentions, json!({ "target": "transcript:ws-ext-t", "basis": "troubleshooting", "until": until.to_rfc3339(), "note": "transcript kept for a support case" }))
        .await;
    expect(&derived, 201);

    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=request:{id}"))
        .await;
    expect(&trail, 200);
    for shown in [
        "DeadlineExtended",
        "backups span two regions",
        "RetentionExceptionRecorded",
        "access log kept for incident response",
    ] {
        assert!(
            trail.text.contains(shown),
            "{shown} missing: {}",
            trail.text
        );
    }
}

/// R1 / R14: a retention exception names what its request erases or
/// keeps, read from the scope while no task names it yet (the request is
/// blocked), and an external account by its own id.
pub async fn r1_a_retention_exception_names_what_its_request_covers(app: &TestApp) {
    seed_workspace(app, "ws-rk").await;
    register(app, "file:ws-rk-other", "ws-rk").await;
    expect(&app.post(Service, "/v1/integrations", json!({ "integration_id": "yt-rk", "workspace_id": "ws-rk", "platform": "youtube", "external_account_id": "UC-rk", "connected_by": "platform" })).await, 201);
    // An artifact names the file it comes from, not another artifact.
    let nested = app
        .post(Service, "/v1/resources", json!({ "resource": "embedding:ws-rk-e", "workspace_id": "ws-rk", "derived_from": "transcript:ws-rk-f-t" }))
        .await;
    expect(&nested, 422);
    assert_eq!(nested.json["field"], "derived_from");
    expect(
        &app.post(Legal, "/v1/holds", json!({ "scope": "workspace:ws-rk", "kind": "legal", "matter": "M-rk", "reason": "litigation" }))
            .await,
        201,
    );
    let until = app.clock_now() + Duration::days(30);
    for (scope, cases) in [
        (
            "file:ws-rk-f",
            [
                ("file:ws-rk-f", 201),
                ("transcript:ws-rk-f-t", 201),
                ("project:ws-rk-p", 422),
                ("file:ws-rk-other", 422),
            ],
        ),
        (
            "youtube:UC-rk",
            [
                ("youtube:UC-rk", 201),
                ("integration:yt-rk", 201),
                ("youtube:UC-other", 422),
                ("workspace:ws-rk", 422),
            ],
        ),
    ] {
        let blocked = request(
            app,
            json!({ "scope": scope, "channel": "in-product", "requested_by": "account:acct-owner" }),
        )
        .await;
        assert_eq!(blocked["state"], "blocked", "{scope}: {blocked}");
        let id = blocked["request_id"].as_str().unwrap();
        assert_eq!(detail(app, id).await["tasks"], json!([]), "{scope}");
        let retentions = format!("/v1/deletion-requests/{id}/retentions");
        for (target, status) in cases {
            let answer = app
                .post(Service, &retentions, json!({ "target": target, "basis": "security", "until": until.to_rfc3339(), "note": "access log kept for incident response" }))
                .await;
            expect(&answer, status);
            if status == 422 {
                assert_eq!(answer.json["field"], "target", "{scope} {target}");
            }
        }
    }
    // The exception on the external account is filed under it, as the
    // request is (the ledger names it by a keyed hash of its id).
    let trail = app.get(Auditor, "/v1/audit?subject=youtube:UC-rk").await;
    expect(&trail, 200);
    let kept = trail.json["events"].as_array().unwrap().iter().any(|e| {
        e["event_type"] == "RetentionExceptionRecorded"
            && e["subjects"]
                .as_array()
                .unwrap()
                .contains(&json!("youtube:UC-rk"))
    });
    assert!(kept, "{}", trail.text);
}

/// CCPA: receipt is confirmed within 10 business days. The request shows
/// its date, the report lists a confirmation past it, and recording one
/// is answered the same way when repeated.
pub async fn ccpa_receipt_confirmation(app: &TestApp) {
    seed_workspace(app, "ws-ccpa").await;
    let mut ids = Vec::new();
    for file in ["f-late", "f-prompt"] {
        register(app, &format!("file:{file}"), "ws-ccpa").await;
        let answer = request(
            app,
            json!({ "scope": format!("file:{file}"), "channel": "in-product", "requested_by": "account:acct-owner", "policy": "ccpa" }),
        )
        .await;
        ids.push(answer["request_id"].as_str().unwrap().to_owned());
    }
    let (late, prompt) = (&ids[0], &ids[1]);
    let shown = detail(app, late).await;
    // Received Monday 2 March: ten business days later is Monday 16 March.
    assert_eq!(
        time(&shown["confirm_receipt_by"]),
        app.clock_now() + Duration::days(14)
    );
    assert_eq!(shown["receipt"], "due");
    assert_eq!(shown["receipt_confirmed_at"], Value::Null);

    // Told the day after receipt, recorded two weeks later: on time. A
    // time before the receipt or after now is refused.
    let told = app.clock_now() + Duration::days(1);
    app.clock.advance(Duration::days(15));
    let uri = format!("/v1/deletion-requests/{prompt}/confirm-receipt");
    for wrong in [
        told - Duration::days(2),
        app.clock_now() + Duration::minutes(1),
    ] {
        let refused = app
            .post(Service, &uri, json!({ "confirmed_at": wrong.to_rfc3339() }))
            .await;
        expect(&refused, 422);
        assert_eq!(refused.json["field"], "confirmed_at");
    }
    let confirmed = app
        .post(Service, &uri, json!({ "confirmed_at": told.to_rfc3339() }))
        .await;
    expect(&confirmed, 200);
    assert_eq!(time(&confirmed.json["receipt_confirmed_at"]), told);

    let report = app.get(Auditor, "/v1/reports/deadlines").await;
    expect(&report, 200);
    let overdue: Vec<&str> = report.json["receipts_overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["request"].as_str().unwrap())
        .collect();
    assert_eq!(overdue, vec![late.as_str()], "{}", report.text);
    let summary = &report.json["summary"][0];
    assert_eq!(summary["policy"], "ccpa");
    assert_eq!(summary["receipts_late"], 1);
    assert_eq!(detail(app, late).await["receipt"], "overdue");
    assert_eq!(detail(app, prompt).await["receipt"], "confirmed-on-time");

    // Confirmed late; a repeat answers with the first time, stores nothing.
    let first = confirm_receipt(app, late).await;
    expect(&first, 200);
    let head = app.head().await;
    app.clock.advance(Duration::hours(1));
    let again = confirm_receipt(app, late).await;
    expect(&again, 200);
    assert_eq!(again.json, first.json);
    assert_eq!(
        app.head().await,
        head,
        "a repeated confirmation stored events"
    );
    assert_eq!(detail(app, late).await["receipt"], "confirmed-late");
    let report = app.get(Auditor, "/v1/reports/deadlines").await;
    assert_eq!(
        report.json["receipts_overdue"],
        json!([]),
        "{}",
        report.text
    );
    assert_eq!(report.json["summary"][0]["receipts_late"], 1);
    let csv = app.get(Auditor, "/v1/reports/deadlines?format=csv").await;
    let receipts: Vec<String> = csv_column(&csv.text, "receipt");
    for status in ["confirmed-late", "confirmed-on-time"] {
        assert!(
            receipts.iter().any(|receipt| receipt == status),
            "{status}: {}",
            csv.text
        );
    }

    let missing = app
        .post(
            Service,
            "/v1/deletion-requests/01900000-0000-7000-8000-00000000dead/confirm-receipt",
            json!({}),
        )
        .await;
    expect(&missing, 404);
}

/// R3 with CCPA: a request about YouTube data whose caller named CCPA is
/// held to YouTube's 7 days, and still owes CCPA's confirmation of
/// receipt within 10 business days. The request shows both policies, the
/// report lists the confirmation once it is late, and confirming it
/// clears it.
pub async fn r3_a_ccpa_request_held_to_youtube_still_confirms_receipt(app: &TestApp) {
    seed_workspace(app, "ws-r3ccpa").await;
    connect(app, "ws-r3ccpa", "yt-r3ccpa", "youtube", "UCr3ccpa").await;
    let keyed = |policy: &str| {
        let body = json!({ "scope": "integration:yt-r3ccpa", "channel": "in-product", "requested_by": "account:acct-owner", "policy": policy });
        async move {
            app.post_keyed(Service, "/v1/deletion-requests", body, Some("r3-ccpa"))
                .await
        }
    };
    let answer = keyed("ccpa").await;
    expect(&answer, 202);
    let answer = answer.json;
    let received = app.clock_now();
    // A replay names the same policy; one naming another is another
    // command, though both would be held to YouTube's.
    let head = app.head().await;
    for (policy, status) in [("ccpa", 202), ("youtube-api-user-data", 202), ("gdpr", 422)] {
        let replayed = keyed(policy).await;
        expect(&replayed, status);
        if status == 202 {
            assert_eq!(replayed.json["request_id"], answer["request_id"]);
        } else {
            assert_eq!(
                replayed.json["field"], "Idempotency-Key",
                "{}",
                replayed.text
            );
        }
    }
    assert_eq!(app.head().await, head, "a replay stored events");
    assert_eq!(time(&answer["due_at"]), received + Duration::days(7));
    let id = answer["request_id"].as_str().unwrap().to_owned();
    let shown = detail(app, &id).await;
    assert_eq!(shown["policy"], "youtube-api-user-data");
    assert_eq!(shown["asked_policy"], "ccpa");
    // Received Monday 2 March: ten business days later is Monday 16 March.
    assert_eq!(
        time(&shown["confirm_receipt_by"]),
        received + Duration::days(14)
    );
    assert_eq!(shown["receipt"], "due");

    // A policy asked for and held to is not recorded twice; one held to
    // YouTube without a policy named owes no confirmation.
    register(app, "file:f-r3ccpa", "ws-r3ccpa").await;
    let plain = request(
        app,
        json!({ "scope": "file:f-r3ccpa", "channel": "in-product", "requested_by": "account:acct-owner", "policy": "ccpa" }),
    )
    .await;
    let plain = detail(app, plain["request_id"].as_str().unwrap()).await;
    assert_eq!(plain["policy"], "ccpa");
    assert_eq!(plain["asked_policy"], Value::Null);
    let youtube = youtube_request(app, "ws-r3yt", "yt-r3yt", "UCr3yt").await;
    let youtube = youtube["request_id"].as_str().unwrap().to_owned();
    let shown = detail(app, &youtube).await;
    assert_eq!(shown["asked_policy"], Value::Null);
    assert_eq!(shown["receipt"], Value::Null);

    app.clock.advance(Duration::days(15));
    let overdue = |report: &Value| -> Vec<String> {
        report["receipts_overdue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["request"].as_str().unwrap().to_owned())
            .collect()
    };
    let report = app.get(Auditor, "/v1/reports/deadlines").await;
    expect(&report, 200);
    let listed = overdue(&report.json);
    assert!(listed.contains(&id), "{}", report.text);
    assert!(!listed.contains(&youtube), "{}", report.text);
    // Filtered by policy, it stands under the one it is held to.
    let held = app
        .get(
            Auditor,
            "/v1/reports/deadlines?policy=youtube-api-user-data",
        )
        .await;
    expect(&held, 200);
    assert_eq!(overdue(&held.json), vec![id.clone()], "{}", held.text);
    let ccpa = app.get(Auditor, "/v1/reports/deadlines?policy=ccpa").await;
    expect(&ccpa, 200);
    assert!(!overdue(&ccpa.json).contains(&id), "{}", ccpa.text);
    assert_eq!(detail(app, &id).await["receipt"], "overdue");

    let confirmed = confirm_receipt(app, &id).await;
    expect(&confirmed, 200);
    assert_eq!(detail(app, &id).await["receipt"], "confirmed-late");
    let report = app.get(Auditor, "/v1/reports/deadlines").await;
    assert!(!overdue(&report.json).contains(&id), "{}", report.text);
    // Counted late under the policy it is held to; the CSV names both.
    let youtube_month = report.json["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["policy"] == "youtube-api-user-data")
        .unwrap_or_else(|| panic!("{}", report.text));
    assert_eq!(youtube_month["receipts_late"], 1, "{}", report.text);
    let csv = app.get(Auditor, "/v1/reports/deadlines?format=csv").await;
    expect(&csv, 200);
    let requests = csv_column(&csv.text, "request");
    let asked = csv_column(&csv.text, "asked_policy");
    let row = requests
        .iter()
        .position(|r| *r == id)
        .expect("the request's row");
    assert_eq!(asked[row], "ccpa", "{}", csv.text);
    assert_eq!(csv_column(&csv.text, "receipt")[row], "confirmed-late");

    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=request:{id}"))
        .await;
    expect(&trail, 200);
    assert!(
        trail
            .text
            .contains("asked under ccpa, held to youtube-api-user-data"),
        "{}",
        trail.text
    );
}

crate::on_every_backend!(
    r1_r2_disconnect,
    r1_a_lost_clean_up_is_opened_by_the_retry,
    r3_youtube_seven_days,
    r3_a_ccpa_request_held_to_youtube_still_confirms_receipt,
    r4_meta_deauthorize,
    r6_r8_file_deletion,
    r8_references_are_limited_on_their_field,
    r6_a_worker_claims_tasks_of_its_step,
    r7_hold_blocks_then_resumes,
    r7_resumes_when_the_lifts_reaction_was_lost,
    r7_blocks_when_the_holds_reaction_was_lost,
    r1_r7_a_clean_up_blocked_by_a_hold_shows_on_its_connection,
    r9_only_owner_deletes_workspace,
    r6_r9_nothing_new_in_what_is_being_erased,
    r10_removed_member_content_stays,
    r11_account_deletion,
    r12_no_revival,
    r12_no_hold_on_an_erased_file,
    r13_purge_date,
    r14_billing_and_card_numbers,
    r12_r14_a_workspace_request_sees_what_earlier_requests_did,
    r14_a_record_is_erased_when_its_retention_ends,
    r14_the_retention_sweep_leaves_exceptions_recorded_by_hand,
    r15_email_request,
    idempotent_requests,
    reports_and_exports,
    a_late_request_stays_overdue_when_a_hold_comes,
    extension_and_retention,
    r1_a_retention_exception_names_what_its_request_covers,
    ccpa_receipt_confirmation,
);
