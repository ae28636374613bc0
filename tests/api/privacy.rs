//! Crypto-shredding end to end: personal data never reaches the database
//! in plain text, auditors read it until it is forgotten, `[erased]`
//! after; tampering is reported as tampering; automatic forgetting after
//! completion; master-key rotation and a wrong master key.

use std::sync::Arc;

use adapters::auth::ApiRole::{Admin, Auditor, Legal, Service};
use adapters::keys::SqlKeyTable;
use adapters::readmodel::ReadModels;
use chrono::Duration;
use commands::{MasterKey, Vault, VaultError};
use serde_json::json;

use crate::helpers::{expect, seed_workspace, work_all, Answer, TestApp};

const EMAIL: &str = "zoe.quill-7731@example.net";
const INSTAGRAM: &str = "17841466600000077";
const NOTE: &str = "Zoe Quill confirmed by phone";
const MATTER: &str = "QUILL-v-NORTHWIND";

/// Every plain value of the story.
const SECRETS: [&str; 4] = [EMAIL, INSTAGRAM, NOTE, MATTER];

fn find_any(haystack: &[u8], needles: &[&str]) -> Vec<String> {
    needles
        .iter()
        .filter(|n| haystack.windows(n.len()).any(|w| w == n.as_bytes()))
        .map(|n| (*n).to_owned())
        .collect()
}

/// Connects the story's Instagram account to workspace `ws` as `id`.
async fn connect_instagram(app: &TestApp, ws: &str, id: &str) {
    let body = json!({
        "integration_id": id, "workspace_id": ws, "platform": "instagram",
        "external_account_id": INSTAGRAM, "connected_by": "account:acct-admin",
    });
    expect(&app.post(Service, "/v1/integrations", body).await, 201);
}

/// The first page of `subject`'s trail, revealed by `models`, as JSON text.
async fn trail_of(models: &ReadModels, subject: &str) -> String {
    let page = models
        .audit(&adapters::readmodel::AuditQuery {
            subject: Some(subject.to_owned()),
            ..Default::default()
        })
        .await
        .expect("audit");
    serde_json::to_string(&page.entries).unwrap()
}

/// Every answer an auditor, legal or an admin can get about the story.
async fn every_read(app: &TestApp, request: &str) -> Vec<Answer> {
    let mut answers = Vec::new();
    for uri in [
        format!("/v1/audit?subject=instagram:{INSTAGRAM}"),
        "/v1/audit?subject=account:acct-member".to_owned(),
        format!("/v1/audit?subject=request:{request}"),
        "/v1/audit/export?format=csv".to_owned(),
        "/v1/audit/export?format=jsonl".to_owned(),
        format!("/v1/deletion-requests/{request}"),
        "/v1/holds".to_owned(),
        format!("/v1/resources?scope=instagram:{INSTAGRAM}"),
        "/v1/resources?workspace=ws-p1".to_owned(),
        "/v1/reports/deadlines".to_owned(),
    ] {
        for role in [Auditor, Legal, Admin] {
            let answer = app.get(role, &uri).await;
            expect(&answer, 200);
            answers.push(answer);
        }
    }
    answers
}

/// The story: an Instagram connection, an e-mail request with the
/// requester's address and a verification note, a hold with a matter
/// reference. Answers the request id.
async fn story(app: &TestApp) -> String {
    seed_workspace(app, "ws-p1").await;
    connect_instagram(app, "ws-p1", "ig-p1").await;
    expect(
        &app.post(Legal, "/v1/holds", json!({
            "scope": "project:ws-p1-p", "kind": "legal", "matter": MATTER, "reason": "preservation order",
        }))
        .await,
        201,
    );
    let answer = app
        .post(
            Service,
            "/v1/deletion-requests",
            json!({
                "scope": "account:acct-member", "channel": "email-to-support", "policy": "gdpr",
                "requested_by": "account:acct-member", "recorded_by": "support:maria",
                "verification": NOTE, "contact": EMAIL,
            }),
        )
        .await;
    expect(&answer, 202);
    answer.json["request_id"].as_str().unwrap().to_owned()
}

/// Before forgetting: no byte of the database holds a plain value (only
/// ciphertext and keyed hashes), and auditors read every one of them.
/// After: no route shows them, the trail shows `[erased]`, the chain
/// verifies, and a rebuild from zero brings nothing back.
pub async fn personal_data_is_sealed_shown_then_forgotten(app: &TestApp) {
    let request = story(app).await;

    let leaked = find_any(&app.stored_bytes().await, &SECRETS);
    assert!(leaked.is_empty(), "plain text in the database: {leaked:?}");
    for event in app.events().await {
        let payload = event.payload.to_string();
        let leaked = find_any(payload.as_bytes(), &SECRETS);
        assert!(leaked.is_empty(), "{} holds {leaked:?}", event.event_type);
    }

    let shown: String = every_read(app, &request)
        .await
        .iter()
        .map(|a| a.text.clone())
        .collect();
    for secret in SECRETS {
        assert!(shown.contains(secret), "auditors cannot read {secret}");
    }
    assert!(
        !shown.contains("sealed1:"),
        "a sealed token reached an answer"
    );
    assert!(!shown.contains("kh1-"), "a keyed hash reached an answer");

    for subject in [
        format!("instagram:{INSTAGRAM}"),
        format!("request:{request}"),
        hold_of(app).await,
    ] {
        let forgotten = app
            .post(
                Admin,
                &format!("/v1/subjects/{subject}/forget"),
                json!(null),
            )
            .await;
        expect(&forgotten, 200);
        assert_eq!(forgotten.json["first_time"], true);
    }
    let again = app
        .post(
            Admin,
            &format!("/v1/subjects/request:{request}/forget"),
            json!(null),
        )
        .await;
    expect(&again, 200);
    assert_eq!(
        again.json["first_time"], false,
        "forgetting twice records once"
    );

    let check_forgotten = |answers: Vec<Answer>| {
        let shown: String = answers.iter().map(|a| a.text.clone()).collect();
        let leaked = find_any(shown.as_bytes(), &SECRETS);
        assert!(leaked.is_empty(), "still shown after forget: {leaked:?}");
        assert!(shown.contains("[erased]"));
        assert!(shown.contains("instagram:[erased]"));
        assert!(shown.contains("requester contact [erased]"));
    };
    check_forgotten(every_read(app, &request).await);
    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=request:{request}"))
        .await;
    assert!(
        trail.text.contains("SubjectForgotten"),
        "the trail records the forgetting: {}",
        trail.text
    );

    let report = adapters::store::verify(&app.store).await.expect("verify");
    assert_eq!(report.events, app.head().await, "the chain still verifies");

    let models = ReadModels::open(&app.url).await.expect("read models");
    models
        .rebuild(app.store.as_ref(), None)
        .await
        .expect("rebuild");
    models.close().await;
    check_forgotten(every_read(app, &request).await);
    let leaked = find_any(&app.stored_bytes().await, &SECRETS);
    assert!(leaked.is_empty(), "plain text after rebuild: {leaked:?}");
}

async fn hold_of(app: &TestApp) -> String {
    let holds = app.get(Legal, "/v1/holds").await;
    expect(&holds, 200);
    format!(
        "hold:{}",
        holds.json["holds"][0]["hold"].as_str().expect("a hold")
    )
}

/// A changed ciphertext is reported as tampering (500, type tampered),
/// never shown as `[erased]`.
pub async fn tampered_ciphertext_is_reported_as_tampering(app: &TestApp) {
    story(app).await;
    let holds = app.get(Legal, "/v1/holds").await;
    expect(&holds, 200);
    assert_eq!(holds.json["holds"][0]["matter"], MATTER);
    // Change the last character of the sealed matter in the read model.
    let changed = app
        .execute_sql(
            "UPDATE rm_holds SET matter = substr(matter, 1, length(matter) - 1) || \
             CASE WHEN substr(matter, length(matter), 1) = 'A' THEN 'B' ELSE 'A' END",
        )
        .await;
    assert_eq!(changed, 1);
    let tampered = app.get(Legal, "/v1/holds").await;
    expect(&tampered, 500);
    assert_eq!(
        tampered.json["type"], "urn:lethe:problem:tampered",
        "{}",
        tampered.text
    );
    assert!(!tampered.text.contains("[erased]"));
    assert!(!tampered.text.contains(MATTER));
}

/// Values that are not personal reach the ledger as written, so one that
/// holds a sealed-value marker would later read back as tampering: such
/// ids and names are refused with 422 and nothing is stored, while the
/// same text as a personal value is simply sealed.
pub async fn marker_text_outside_personal_values_is_refused(app: &TestApp) {
    seed_workspace(app, "ws-m1").await;
    let head = app.head().await;
    for (uri, body) in [
        (
            "/v1/workspaces",
            json!({ "workspace_id": "sealed1:x", "owner_account_id": "acct-1" }),
        ),
        (
            "/v1/workspaces",
            json!({ "workspace_id": "ws-m2", "owner_account_id": "a:erased1:account:b" }),
        ),
        (
            "/v1/resources",
            json!({ "resource": "file:ws-m1-sealed1:AAAA", "workspace_id": "ws-m1" }),
        ),
    ] {
        let refused = app.post(Service, uri, body).await;
        expect(&refused, 422);
        assert!(
            refused.text.contains("sealed1: or erased1:"),
            "{}",
            refused.text
        );
    }
    assert_eq!(app.head().await, head, "a refused command stored nothing");
    // Nor as an external account's id, which is shown as given.
    let refused = app
        .post(
            Service,
            "/v1/integrations",
            json!({ "integration_id": "ig-m1", "workspace_id": "ws-m1", "platform": "instagram",
                    "external_account_id": "sealed1:a:b:c:AAAA", "connected_by": "account:acct-admin" }),
        )
        .await;
    expect(&refused, 422);
    assert_eq!(
        refused.json["field"], "external_account_id",
        "{}",
        refused.text
    );
    // Nor as free text (a hold's reason), sealed or not.
    let held = app
        .post(
            Legal,
            "/v1/holds",
            json!({ "scope": "workspace:ws-m1", "kind": "legal", "matter": "M-1",
                    "reason": "see note sealed1:x" }),
        )
        .await;
    expect(&held, 422);
    assert_eq!(held.json["field"], "reason", "{}", held.text);
    assert_eq!(app.head().await, head, "a refused command stored nothing");
    for uri in [
        "/v1/audit?subject=workspace:ws-m1",
        "/v1/audit/export?format=jsonl",
    ] {
        expect(&app.get(Legal, uri).await, 200);
    }
    // Nor in a query, whose value an answer would echo: a clear 422, not
    // a sealed value that fails to open.
    for (uri, name) in [
        ("/v1/audit?subject=file:sealed1:x", "subject"),
        ("/v1/audit/export?subject=file:erased1:x", "subject"),
        ("/v1/audit?actor=sealed1:x", "actor"),
        ("/v1/resources?workspace=sealed1:x", "workspace"),
        ("/v1/resources?scope=account:erased1:x", "scope"),
    ] {
        let refused = app.get(Legal, uri).await;
        expect(&refused, 422);
        assert_eq!(refused.json["field"], name, "{uri}: {}", refused.text);
    }
    // A reason that merely looks like a keyed-hash id is shown as given:
    // an answer is revealed once, never its revealed text again.
    let reason = "see kh1-0123456789abcdef0123456789abcdef in the ticket";
    let held = app
        .post(
            Legal,
            "/v1/holds",
            json!({ "scope": "workspace:ws-m1", "kind": "legal", "matter": "M-2", "reason": reason }),
        )
        .await;
    expect(&held, 201);
    let hold = held.json["hold_id"].as_str().unwrap();
    let audit = app
        .get(Auditor, &format!("/v1/audit?subject=hold:{hold}"))
        .await;
    expect(&audit, 200);
    assert_eq!(audit.json["events"][0]["reason"], reason, "{}", audit.text);
}

/// acct-owner's deletion request of `scope` by e-mail, recorded by
/// support with the requester's address (202).
async fn email_request(app: &TestApp, scope: &str, policy: Option<&str>) -> Answer {
    let mut body = json!({
        "scope": scope, "channel": "email-to-support",
        "requested_by": "account:acct-owner", "recorded_by": "support:maria",
        "verification": "replied from the account's address", "contact": EMAIL,
    });
    if let Some(policy) = policy {
        body["policy"] = json!(policy);
    }
    let answer = app.post(Service, "/v1/deletion-requests", body).await;
    expect(&answer, 202);
    answer
}

/// The requester's contact is forgotten 30 days after the request
/// completes, not before; the proof of deletion stays.
pub async fn contact_is_forgotten_after_completion(app: &TestApp) {
    seed_workspace(app, "ws-p2").await;
    let answer = email_request(app, "file:ws-p2-f", Some("ccpa")).await;
    let request = answer.json["request_id"].as_str().unwrap().to_owned();
    assert!(work_all(app).await > 0);
    let detail = app
        .get(Auditor, &format!("/v1/deletion-requests/{request}"))
        .await;
    assert_eq!(detail.json["state"], "completed", "{}", detail.text);

    let models = ReadModels::open(&app.url)
        .await
        .expect("read models")
        .with_vault(app.ledger.vault().clone());
    let sweep = |days: i64| {
        let models = models.clone();
        async move {
            models.catch_up(app.store.as_ref()).await.expect("catch up");
            adapters::privacy::forget_completed_requests(
                &app.ledger,
                &models,
                30,
                app.clock_now() + Duration::days(days),
            )
            .await
            .expect("sweep")
        }
    };
    assert_eq!(sweep(29).await, 0, "not before 30 days");
    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=request:{request}"))
        .await;
    assert!(trail.text.contains(EMAIL));

    assert_eq!(sweep(31).await, 1);
    assert_eq!(sweep(32).await, 0, "forgotten once");
    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=request:{request}"))
        .await;
    assert!(!trail.text.contains(EMAIL), "{}", trail.text);
    assert!(trail.text.contains("requester contact [erased]"));
    assert!(trail.text.contains("set time after the request completed"));
    let detail = app
        .get(Auditor, &format!("/v1/deletion-requests/{request}"))
        .await;
    assert_eq!(detail.json["state"], "completed", "the proof stays");
    models.close().await;
}

/// Rotation re-wraps every key: values stay readable under the new
/// master key, the log is untouched, and the old key (or any other)
/// fails loudly at start.
pub async fn master_key_rotation_and_wrong_key(app: &TestApp) {
    let request = story(app).await;
    let head = app.head().await;
    let table = || async { Arc::new(SqlKeyTable::connect(&app.url).await.expect("key table")) };

    let wrong = Vault::open(table().await, MasterKey::generate()).await;
    assert!(
        matches!(wrong, Err(VaultError::WrongMasterKey { .. })),
        "{wrong:?}"
    );

    let new = MasterKey::generate();
    let rewrapped = app.ledger.vault().rotate(&new).await.expect("rotate");
    assert!(
        rewrapped >= 4,
        "the lookup key and three data keys: {rewrapped}"
    );
    assert_eq!(app.head().await, head, "rotation does not touch the log");

    let old = Vault::open(table().await, app.master.clone()).await;
    assert!(
        matches!(old, Err(VaultError::WrongMasterKey { .. })),
        "{old:?}"
    );

    let vault = Arc::new(
        Vault::open(table().await, new)
            .await
            .expect("the new key opens"),
    );
    let models = ReadModels::open(&app.url)
        .await
        .expect("read models")
        .with_vault(vault);
    models.catch_up(app.store.as_ref()).await.expect("catch up");
    let text = trail_of(&models, &format!("request:{request}")).await;
    assert!(text.contains(EMAIL) && text.contains(NOTE), "{text}");
    let text = trail_of(&models, &format!("instagram:{INSTAGRAM}")).await;
    assert!(text.contains(INSTAGRAM), "{text}");
    models.close().await;
}

/// A refused request's contact is forgotten too, and a Meta deletion's
/// completion takes Lethe's own copy of the account id with it (R5): 30
/// days after each closed.
pub async fn refused_requests_and_meta_accounts_are_forgotten(app: &TestApp) {
    // acct-owner is the sole owner of a workspace with other members: an
    // account deletion is refused (R11).
    seed_workspace(app, "ws-p3").await;
    let refused = email_request(app, "account:acct-owner", None).await;
    assert_eq!(refused.json["state"], "refused", "{}", refused.text);
    let refused = refused.json["request_id"].as_str().unwrap().to_owned();

    connect_instagram(app, "ws-p3", "ig-p3").await;
    let meta = app
        .meta(
            "/callbacks/meta/data-deletion",
            &app.signed_request(INSTAGRAM),
        )
        .await;
    expect(&meta, 200);
    assert!(work_all(app).await > 0);

    // Receipt confirmed 20 days after the refusal: the 30 days still
    // count from the refusal.
    let closed = app.clock_now();
    app.clock.advance(Duration::days(20));
    expect(
        &app.post(
            Service,
            &format!("/v1/deletion-requests/{refused}/confirm-receipt"),
            json!({}),
        )
        .await,
        200,
    );

    let models = ReadModels::open(&app.url)
        .await
        .expect("read models")
        .with_vault(app.ledger.vault().clone());
    models.catch_up(app.store.as_ref()).await.expect("catch up");
    let sweep = |days: i64| {
        adapters::privacy::forget_completed_requests(
            &app.ledger,
            &models,
            30,
            closed + Duration::days(days),
        )
    };
    assert_eq!(sweep(29).await.expect("sweep"), 0);
    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=instagram:{INSTAGRAM}"))
        .await;
    assert!(trail.text.contains(INSTAGRAM), "{}", trail.text);
    assert_eq!(sweep(31).await.expect("sweep"), 2);
    let trail = app
        .get(Auditor, &format!("/v1/audit?subject=request:{refused}"))
        .await;
    assert!(!trail.text.contains(EMAIL), "{}", trail.text);
    assert!(
        trail
            .text
            .contains("set time after the request was refused"),
        "{}",
        trail.text
    );
    let export = app.get(Auditor, "/v1/audit/export?format=jsonl").await;
    assert!(
        !export.text.contains(INSTAGRAM),
        "the account id is forgotten too"
    );
    models.close().await;
}

/// A key table that fails where told: re-wraps from the request keys on
/// (read one key a page: a rotation that stops half-way), or every key's
/// destruction (a forget that stops after its event).
struct Faulty {
    table: SqlKeyTable,
    rewrap_of_requests: bool,
    destroy: bool,
}

fn went_away() -> VaultError {
    VaultError::Unavailable("the database went away".into())
}

#[async_trait::async_trait]
impl commands::vault::KeyTable for Faulty {
    async fn keys(&self, owners: &[String]) -> Result<Vec<commands::vault::StoredKey>, VaultError> {
        self.table.keys(owners).await
    }
    async fn insert_key(
        &self,
        key: commands::vault::StoredKey,
    ) -> Result<commands::vault::StoredKey, VaultError> {
        self.table.insert_key(key).await
    }
    async fn destroy_key(&self, owner: &str, master_id: &str) -> Result<bool, VaultError> {
        if self.destroy {
            return Err(went_away());
        }
        self.table.destroy_key(owner, master_id).await
    }
    async fn key_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<commands::vault::StoredKey>, VaultError> {
        let limit = if self.rewrap_of_requests { 1 } else { limit };
        self.table.key_page(after, limit).await
    }
    async fn rewrap(
        &self,
        old_master_id: &str,
        keys: &[commands::vault::StoredKey],
    ) -> Result<(), VaultError> {
        if self.rewrap_of_requests && keys.iter().any(|k| k.owner.starts_with("request:")) {
            return Err(went_away());
        }
        self.table.rewrap(old_master_id, keys).await
    }
    async fn insert_directory(&self, pseudonym: &str, token: &str) -> Result<(), VaultError> {
        self.table.insert_directory(pseudonym, token).await
    }
    async fn directory(&self, pseudonyms: &[String]) -> Result<Vec<(String, String)>, VaultError> {
        self.table.directory(pseudonyms).await
    }
}

/// A rotation that stopped half-way (the lookup key under the new master
/// key, request keys under the old) is finished by running it again with
/// the same two keys; and a key destroyed while a rotation ran is never
/// written back by its re-wrapped copy.
pub async fn rotation_resumes_and_never_revives_a_forgotten_key(app: &TestApp) {
    use commands::vault::KeyTable as _;
    let request = story(app).await;
    let table = || async { SqlKeyTable::connect(&app.url).await.expect("key table") };
    let new = MasterKey::generate();

    let failing = Faulty {
        table: table().await,
        rewrap_of_requests: true,
        destroy: false,
    };
    let stopped = Vault::rotate_table(&failing, &app.master, &new).await;
    assert!(
        matches!(stopped, Err(VaultError::Unavailable(_))),
        "{stopped:?}"
    );
    // Half-way: the lookup key is under the new master key already, so
    // the old one no longer opens a vault (a rotation that needed one
    // could not be run again).
    let old = Vault::open(Arc::new(table().await), app.master.clone()).await;
    assert!(
        matches!(old, Err(VaultError::WrongMasterKey { .. })),
        "{old:?}"
    );
    let resumed = Vault::rotate_table(&table().await, &app.master, &new)
        .await
        .expect("the same rotation again finishes it");
    assert!(resumed >= 1, "{resumed}");
    let vault = Arc::new(
        Vault::open(Arc::new(table().await), new.clone())
            .await
            .expect("new key"),
    );
    let models = ReadModels::open(&app.url).await.unwrap().with_vault(vault);
    models.catch_up(app.store.as_ref()).await.unwrap();
    let trail = trail_of(&models, &format!("request:{request}")).await;
    assert!(
        trail.contains(EMAIL),
        "every key opens under the new master key"
    );
    models.close().await;

    // A rotation read the request's key, then the request was forgotten:
    // the re-wrapped copy does not bring the key back.
    let owner = format!("request:{request}");
    let key_of = |owner: String| async move {
        let mut keys = table().await.keys(&[owner]).await.unwrap();
        keys.pop().unwrap()
    };
    let stale = key_of(owner.clone()).await;
    assert!(stale.wrapped.is_some());
    assert!(table().await.destroy_key(&owner, new.id()).await.unwrap());
    let newer = MasterKey::generate();
    table()
        .await
        .rewrap(
            new.id(),
            &[commands::vault::StoredKey {
                owner: owner.clone(),
                wrapped: stale.wrapped,
                master_id: newer.id().to_owned(),
            }],
        )
        .await
        .unwrap();
    let after = key_of(owner).await;
    assert_eq!(after.wrapped, None, "the forgotten key stays destroyed");
}

/// A forget that stopped after its event, before its key was destroyed
/// (here the key table fails): the trail says forgotten but the values
/// still read. `finish_interrupted_forgets` destroys those keys, once,
/// for a request and for an external account, writes the tombstone of a
/// subject that had no key, and goes on from where it stopped.
pub async fn an_interrupted_forget_is_finished(app: &TestApp) {
    use adapters::privacy::finish_interrupted_forgets;
    use domain::subject::Subject;

    let request = story(app).await;
    let faulty = Faulty {
        table: SqlKeyTable::connect(&app.url).await.expect("key table"),
        rewrap_of_requests: false,
        destroy: true,
    };
    let vault = Vault::open(Arc::new(faulty), app.master.clone())
        .await
        .expect("vault");
    let interrupted = commands::Ledger::new(
        app.store.clone(),
        app.clock.clone(),
        app.ledger.policies().clone(),
        Arc::new(vault),
    );
    let ctx = commands::ledger::Context::new("account:acct-admin", "test");
    let keyless = Subject::parse("account:acct-never-sealed").unwrap();
    assert!(!app.ledger.vault().is_forgotten(&keyless).await.unwrap());
    for subject in [
        format!("request:{request}"),
        format!("instagram:{INSTAGRAM}"),
        keyless.to_string(),
    ] {
        let subject = Subject::parse(&subject).unwrap();
        let stopped = interrupted
            .forget(&ctx, &subject, domain::events::ForgetCause::OnRequest)
            .await;
        assert!(
            matches!(stopped, Err(commands::CommandError::Vault(_))),
            "{stopped:?}"
        );
    }

    let models = ReadModels::open(&app.url)
        .await
        .expect("read models")
        .with_vault(app.ledger.vault().clone());
    models.catch_up(app.store.as_ref()).await.expect("catch up");
    let trail = trail_of(&models, &format!("request:{request}")).await;
    assert!(trail.contains("forgotten"), "{trail}");
    assert!(
        trail.contains(EMAIL),
        "the key outlived its forget: {trail}"
    );
    let export = app.get(Auditor, "/v1/audit/export?format=jsonl").await;
    assert!(
        export.text.contains(INSTAGRAM),
        "the account's key outlived its forget"
    );
    assert!(!app.ledger.vault().is_forgotten(&keyless).await.unwrap());
    let verified = adapters::store::verify(&app.store).await.expect("verify");
    assert_eq!(verified.unfinished_forgets.count, 3, "{verified:?}");

    let finished = finish_interrupted_forgets(&app.ledger, &models, 0)
        .await
        .expect("finishing");
    assert_eq!(
        (finished.finished, finished.more),
        (3, false),
        "{finished:?}"
    );
    assert!(app.ledger.vault().is_forgotten(&keyless).await.unwrap());
    let trail = trail_of(&models, &format!("request:{request}")).await;
    assert!(!trail.contains(EMAIL), "{trail}");
    assert!(trail.contains("[erased]"), "{trail}");
    let export = app.get(Auditor, "/v1/audit/export?format=jsonl").await;
    assert!(
        !export.text.contains(INSTAGRAM),
        "the account's id is erased too"
    );

    let verified = adapters::store::verify(&app.store).await.expect("verify");
    assert_eq!(
        verified.unfinished_forgets,
        adapters::store::UnfinishedForgets::default(),
        "{verified:?}"
    );

    // Nothing is left to do, from where it stopped or from the start.
    for after in [finished.checked_up_to, 0] {
        let again = finish_interrupted_forgets(&app.ledger, &models, after)
            .await
            .expect("again");
        assert_eq!(again.finished, 0, "from {after}: {again:?}");
        assert_eq!(again.checked_up_to, finished.checked_up_to);
    }
    // As the command line and the service call it: to the end, at once.
    let all = adapters::privacy::finish_all_interrupted_forgets(&app.ledger, &models, 0)
        .await
        .expect("to the end");
    assert_eq!((all.finished, all.more), (0, false), "{all:?}");
    assert_eq!(all.checked_up_to, finished.checked_up_to);
    models.close().await;
}

crate::on_every_backend!(
    an_interrupted_forget_is_finished,
    personal_data_is_sealed_shown_then_forgotten,
    tampered_ciphertext_is_reported_as_tampering,
    contact_is_forgotten_after_completion,
    master_key_rotation_and_wrong_key,
    marker_text_outside_personal_values_is_refused,
    rotation_resumes_and_never_revives_a_forgotten_key,
    refused_requests_and_meta_accounts_are_forgotten,
);
