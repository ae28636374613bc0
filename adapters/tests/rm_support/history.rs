//! Realistic histories, made through the `Ledger` over a real store:
//! tenants with workspaces, files and derived artifacts, integrations,
//! holds that block and suspend deletions, failing and retried tasks,
//! disconnects, Meta callbacks, refused and e-mailed requests, retention
//! exceptions and whole-workspace deletions: every event type.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use commands::clock::ManualClock;
use commands::ledger::{Context, DeletionRequestInput, Ledger};
use commands::log::EventStore;
use domain::deadline::{PolicyName, PolicyTable};
use domain::ids::{AccountId, ExternalAccountId, IntegrationId, RequestId, WorkspaceId};
use domain::membership::Registration;
use domain::subject::{Platform, Subject};
use domain::text::{MatterRef, Note, Reason};
use domain::values::{Channel, HoldKind, Initiator, Role};

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
}

pub fn ledger(store: Arc<dyn EventStore>) -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    (
        Ledger::new(
            store,
            clock.clone(),
            PolicyTable::default(),
            Arc::new(commands::Vault::ephemeral()),
        ),
        clock,
    )
}

pub fn ctx(actor: &str) -> Context {
    Context::new(actor, "test")
}

fn subject(raw: &str) -> Subject {
    Subject::parse(raw).unwrap()
}
fn acct(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}
fn member(raw: &str) -> Initiator {
    Initiator::Member { account: acct(raw) }
}
fn reason(raw: &str) -> Reason {
    Reason::parse(raw).unwrap()
}
fn note(raw: &str) -> Note {
    Note::parse(raw).unwrap()
}

fn delete(
    scope: &str,
    by: Initiator,
    channel: Channel,
    policy: Option<PolicyName>,
) -> DeletionRequestInput {
    DeletionRequestInput {
        scope: subject(scope),
        channel,
        policy,
        requested_by: by,
        recorded_by: None,
        verification: None,
        contact: None,
        received_at: None,
    }
}

/// Claims and completes every open task of a request; the first one fails
/// once first when `fail_first`.
pub async fn drive(l: &Ledger, clock: &ManualClock, request: RequestId, fail_first: bool) {
    let ctx = ctx("service:worker");
    let tasks: Vec<_> = l
        .request(request)
        .await
        .unwrap()
        .tasks
        .iter()
        .filter(|(_, t)| !t.completed)
        .map(|(id, _)| *id)
        .collect();
    for (k, task) in tasks.into_iter().enumerate() {
        let worker = format!("worker-{}", k % 3);
        l.claim_task(&ctx, task, &worker, 600).await.unwrap();
        if fail_first && k == 0 {
            l.fail_task(&ctx, task, &worker, note("storage timeout"))
                .await
                .unwrap();
            clock.advance(Duration::minutes(2));
            l.claim_task(&ctx, task, &worker, 600).await.unwrap();
        }
        l.complete_task(&ctx, task, &worker).await.unwrap();
    }
}

fn register(resource: &str, workspace: Option<&WorkspaceId>) -> Registration {
    Registration {
        resource: subject(resource),
        workspace: workspace.cloned(),
        account: None,
        parent: None,
        derived_from: None,
        references: vec![],
        created_by: None,
    }
}

/// One tenant's life, about a hundred events.
pub async fn tenant(l: &Ledger, clock: &ManualClock, i: usize) {
    let app = ctx("service:product");
    let legal = ctx("legal:dana");
    let w = WorkspaceId::parse(&format!("ws-{i}")).unwrap();
    let owner = format!("o-{i}");
    let mate = format!("m-{i}");
    l.create_workspace(&app, w.clone(), acct(&owner))
        .await
        .unwrap();
    l.add_member(&app, w.clone(), acct(&mate), Role::Admin, member(&owner))
        .await
        .unwrap();
    l.register_resource(&app, register(&format!("project:p-{i}"), Some(&w)))
        .await
        .unwrap();
    for k in 1..=3 {
        let file = format!("file:f-{i}-{k}");
        let mut reg = register(&file, Some(&w));
        reg.parent = Some(subject(&format!("project:p-{i}")));
        reg.created_by = Some(acct(&mate));
        l.register_resource(&app, reg).await.unwrap();
        for kind in ["transcript", "thumbnail", "search-index-entry"] {
            let mut reg = register(&format!("{kind}:{kind}-{i}-{k}"), Some(&w));
            reg.derived_from = Some(subject(&file));
            l.register_resource(&app, reg).await.unwrap();
        }
    }
    let mut canvas = register(&format!("canvas:c-{i}"), Some(&w));
    canvas.references = vec![subject(&format!("file:f-{i}-1"))];
    l.register_resource(&app, canvas).await.unwrap();
    let mut profile = register(&format!("account-profile:ap-{i}"), None);
    profile.account = Some(acct(&mate));
    l.register_resource(&app, profile).await.unwrap();
    l.register_resource(&app, register(&format!("billing-record:b-{i}"), Some(&w)))
        .await
        .unwrap();
    let yt = IntegrationId::parse(&format!("yt-{i}")).unwrap();
    let ig = IntegrationId::parse(&format!("ig-{i}")).unwrap();
    let ig_account = ExternalAccountId::parse(&format!("1784{i:011}")).unwrap();
    l.connect_integration(
        &app,
        yt.clone(),
        w.clone(),
        Platform::Youtube,
        ExternalAccountId::parse(&format!("UC{i}")).unwrap(),
        member(&owner),
    )
    .await
    .unwrap();
    l.connect_integration(
        &app,
        ig.clone(),
        w.clone(),
        Platform::Instagram,
        ig_account.clone(),
        Initiator::Platform,
    )
    .await
    .unwrap();
    clock.advance(Duration::minutes(5));

    // R7: a deletion that meets a hold, resumes when it is lifted.
    let hold = l
        .place_hold(
            &legal,
            subject(&format!("file:f-{i}-1")),
            HoldKind::Legal,
            MatterRef::parse(&format!("M-{i}")).unwrap(),
            reason("litigation"),
        )
        .await
        .unwrap();
    let held = l
        .request_deletion(
            &app,
            delete(
                &format!("file:f-{i}-1"),
                member(&owner),
                Channel::InProduct,
                Some(PolicyName::Gdpr),
            ),
        )
        .await
        .unwrap();
    assert_eq!(held.state, "blocked");
    clock.advance(Duration::hours(6));
    l.lift_hold(&legal, hold, reason("settled")).await.unwrap();
    drive(l, clock, held.request_id, true).await;

    // A hold placed after release suspends the tasks.
    let second = l
        .request_deletion(
            &app,
            delete(
                &format!("file:f-{i}-2"),
                member(&mate),
                Channel::InProduct,
                Some(PolicyName::Ccpa),
            ),
        )
        .await
        .unwrap();
    let review = l
        .place_hold(
            &ctx("trust:sam"),
            subject(&format!("workspace:ws-{i}")),
            HoldKind::Moderation,
            MatterRef::parse(&format!("case-{i}")).unwrap(),
            reason("reported content"),
        )
        .await
        .unwrap();
    l.extend_deadline(
        &ctx("operator:dana"),
        second.request_id,
        Some(reason("review pending")),
    )
    .await
    .unwrap();
    l.confirm_receipt(&ctx("operator:dana"), second.request_id, None)
        .await
        .unwrap();
    clock.advance(Duration::hours(2));
    l.lift_hold(&ctx("trust:sam"), review, reason("cleared"))
        .await
        .unwrap();
    drive(l, clock, second.request_id, false).await;

    // R1 / R4 / R5: disconnects and Meta callbacks.
    let cleanup = l
        .disconnect_integration(
            &app,
            yt,
            member(&owner),
            Channel::InProduct,
            Some(reason("not used")),
        )
        .await
        .unwrap();
    drive(l, clock, cleanup.request_id, i % 2 == 0).await;
    let meta = ctx("meta-callback");
    let deauthorized = l.meta_deauthorize(&meta, ig_account.clone()).await.unwrap();
    let deleted = l
        .meta_data_deletion(&meta, ig_account, &format!("payload-{i}"))
        .await
        .unwrap();
    for summary in deauthorized {
        drive(l, clock, summary.request_id, false).await;
    }
    drive(l, clock, deleted.request_id, false).await;
    l.record_refused_callback(&meta, "/meta/data-deletion", "signature does not match")
        .await
        .unwrap();
    l.record_access_refused(
        &ctx("lethe:api"),
        "POST /v1/holds",
        403,
        Some("file-manager"),
        "Forbidden: role service may not do this",
    )
    .await
    .unwrap();

    // R11: the sole owner of a shared workspace is refused after verification;
    // an unverified request is refused too.
    let own = l
        .request_deletion(
            &app,
            delete(
                &format!("account:{owner}"),
                member(&owner),
                Channel::InProduct,
                None,
            ),
        )
        .await
        .unwrap();
    assert_eq!(own.state, "awaiting-verification");
    l.verify_request(
        &ctx("operator:dana"),
        own.request_id,
        note("signed-in session and e-mail code"),
    )
    .await
    .unwrap();
    let unverified = l
        .request_deletion(
            &app,
            delete(
                &format!("account:{owner}"),
                member(&owner),
                Channel::InProduct,
                None,
            ),
        )
        .await
        .unwrap();
    l.refuse_unverified(
        &ctx("operator:dana"),
        unverified.request_id,
        note("no reply to the e-mail code"),
    )
    .await
    .unwrap();

    // R15: the member asks by e-mail to support.
    let mut email = delete(
        &format!("account:{mate}"),
        member(&mate),
        Channel::EmailToSupport,
        Some(PolicyName::Gdpr),
    );
    email.recorded_by = Some("operator:dana".into());
    email.verification = Some(note("replied from the account's e-mail address"));
    let by_mail = l
        .request_deletion(&ctx("operator:dana"), email)
        .await
        .unwrap();
    drive(l, clock, by_mail.request_id, false).await;
    l.remove_member(&app, w.clone(), acct(&mate), member(&owner))
        .await
        .unwrap();

    // R14: a billing record is kept.
    let billing = l
        .request_deletion(
            &app,
            delete(
                &format!("billing-record:b-{i}"),
                Initiator::Platform,
                Channel::RetentionPolicy,
                None,
            ),
        )
        .await
        .unwrap();
    drive(l, clock, billing.request_id, false).await;
    // Its personal data is forgotten once it is done.
    l.forget(
        &app,
        &domain::subject::Subject::Request(billing.request_id),
        domain::events::ForgetCause::AfterRequestCompleted,
    )
    .await
    .unwrap();

    // R9: some tenants leave altogether; others leave a request open.
    if i % 3 == 0 {
        let gone = l
            .request_deletion(
                &app,
                delete(
                    &format!("workspace:ws-{i}"),
                    member(&owner),
                    Channel::InProduct,
                    None,
                ),
            )
            .await
            .unwrap();
        drive(l, clock, gone.request_id, false).await;
    } else {
        l.request_deletion(
            &app,
            delete(
                &format!("file:f-{i}-3"),
                member(&owner),
                Channel::InProduct,
                Some(PolicyName::YoutubeApiUserData),
            ),
        )
        .await
        .unwrap();
    }
}

/// Runs tenants `0..tenants`, `concurrency` at a time, moving the clock
/// `days_per_round` days between rounds so that requests spread over months.
pub async fn generate(
    l: &Ledger,
    clock: &Arc<ManualClock>,
    tenants: usize,
    concurrency: usize,
    days_per_round: i64,
) {
    let mut next = 0;
    while next < tenants {
        let mut handles = Vec::new();
        for i in next..(next + concurrency).min(tenants) {
            let l = l.clone();
            let clock = clock.clone();
            handles.push(tokio::spawn(async move { tenant(&l, &clock, i).await }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
        next += concurrency;
        clock.advance(Duration::days(days_per_round));
    }
}

/// The events of `tenants` tenants, each made by the `Ledger` over its
/// own in-memory store (tenants share nothing), in each tenant's order.
/// Faster than writing through a real store; [`replay`] then appends them.
pub async fn generate_in_memory(
    tenants: usize,
    days_per_tenant: i64,
) -> Vec<Vec<commands::log::RecordedEvent>> {
    let mut handles = Vec::new();
    for i in 0..tenants {
        handles.push(tokio::spawn(async move {
            let memory = Arc::new(commands::memory::MemoryStore::new());
            let (l, clock) = ledger(memory.clone());
            clock.advance(Duration::days(days_per_tenant * i as i64));
            tenant(&l, &clock, i).await;
            memory.all_events()
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.push(handle.await.unwrap());
    }
    all
}

/// Appends every tenant's events to `store`, tenants concurrently, each
/// tenant's in its order, runs of one stream in one append: the events
/// keep their ids, types, payloads, metadata, tags and times.
pub async fn replay(store: Arc<dyn EventStore>, tenants: Vec<Vec<commands::log::RecordedEvent>>) {
    use commands::log::{AppendRequest, ExpectedVersion, NewEvent, APPEND_EVENTS_MAX};
    let mut handles = Vec::new();
    for events in tenants {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut run: Vec<NewEvent> = Vec::new();
            let mut stream = None;
            let flush = |stream: commands::log::StreamId, events: Vec<NewEvent>| {
                let store = store.clone();
                async move {
                    store
                        .append(AppendRequest {
                            stream,
                            expected: ExpectedVersion::Any,
                            condition: None,
                            idempotency_key: None,
                            events,
                        })
                        .await
                        .unwrap();
                }
            };
            for e in events {
                if stream.as_ref() != Some(&e.stream) || run.len() == APPEND_EVENTS_MAX {
                    if let Some(s) = stream.take() {
                        flush(s, std::mem::take(&mut run)).await;
                    }
                    stream = Some(e.stream.clone());
                }
                run.push(NewEvent {
                    event_id: e.event_id,
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    occurred_at: e.occurred_at,
                    payload: e.payload,
                    metadata: e.metadata,
                    tags: e.tags,
                });
            }
            if let Some(s) = stream {
                flush(s, run).await;
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
}
