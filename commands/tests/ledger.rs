//! The application layer over the in-memory store: stories that cross
//! aggregates, idempotency, retries on conflict and the hold reaction.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use commands::clock::ManualClock;
use commands::error::CommandError;
use commands::ledger::{Context, DeletionRequestInput, Ledger};
use commands::log::{
    AppendRequest, Appended, EventStore, Position, RecordedEvent, StoreError, StreamId, Tag,
};
use commands::memory::MemoryStore;
use commands::Vault;
use domain::deadline::{PolicyName, PolicyTable};
use domain::error::DomainError;
use domain::events::LedgerEvent;
use domain::ids::{AccountId, ExternalAccountId, IntegrationId, WorkspaceId};
use domain::membership::Registration;
use domain::subject::{Platform, Subject};
use domain::text::{MatterRef, Note, Reason};
use domain::values::{Channel, HoldKind, Initiator, Role};
use tokio::sync::oneshot;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
}

struct World {
    ledger: Ledger,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(start()));
    let ledger = Ledger::new(
        store.clone(),
        clock.clone(),
        PolicyTable::default(),
        Arc::new(Vault::ephemeral()),
    );
    World {
        ledger,
        store,
        clock,
    }
}

fn ctx() -> Context {
    Context::new("service:test", "test")
}

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}
fn acct(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}
fn subject(raw: &str) -> Subject {
    Subject::parse(raw).unwrap()
}
fn member(id: &str) -> Initiator {
    Initiator::Member { account: acct(id) }
}

/// A workspace ws-1 owned by alice, with a file f-1 and its transcript.
async fn workspace_with_file(world: &World) {
    let l = &world.ledger;
    l.create_workspace(&ctx(), ws("ws-1"), acct("alice"))
        .await
        .unwrap();
    l.register_resource(
        &ctx(),
        Registration {
            resource: subject("file:f-1"),
            workspace: Some(ws("ws-1")),
            account: None,
            parent: None,
            derived_from: None,
            references: vec![],
            created_by: Some(acct("alice")),
        },
    )
    .await
    .unwrap();
    l.register_resource(
        &ctx(),
        Registration {
            resource: subject("transcript:t-1"),
            workspace: Some(ws("ws-1")),
            account: None,
            parent: None,
            derived_from: Some(subject("file:f-1")),
            references: vec![],
            created_by: None,
        },
    )
    .await
    .unwrap();
}

fn delete(scope: &str, by: Initiator) -> DeletionRequestInput {
    DeletionRequestInput {
        scope: subject(scope),
        channel: Channel::InProduct,
        policy: Some(PolicyName::Gdpr),
        requested_by: by,
        recorded_by: None,
        verification: None,
        contact: None,
        received_at: None,
    }
}

async fn tasks_of(world: &World, request: domain::ids::RequestId) -> Vec<domain::ids::TaskId> {
    world
        .ledger
        .request(request)
        .await
        .unwrap()
        .tasks
        .keys()
        .copied()
        .collect()
}

#[tokio::test]
async fn r7_a_deletion_under_two_holds_resumes_only_when_the_last_is_lifted() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    let legal = l
        .place_hold(
            &ctx(),
            subject("workspace:ws-1"),
            HoldKind::Legal,
            MatterRef::parse("M-1").unwrap(),
            Reason::parse("litigation").unwrap(),
        )
        .await
        .unwrap();
    let moderation = l
        .place_hold(
            &ctx(),
            subject("file:f-1"),
            HoldKind::Moderation,
            MatterRef::parse("case-9").unwrap(),
            Reason::parse("under review").unwrap(),
        )
        .await
        .unwrap();

    let summary = l
        .request_deletion(&ctx(), delete("file:f-1", member("alice")))
        .await
        .unwrap();
    assert_eq!(summary.state, "blocked");
    assert_eq!(summary.blocked_by.len(), 2);
    assert_eq!(summary.tasks_total, 0, "nothing is released under a hold");

    l.lift_hold(&ctx(), legal, Reason::parse("settled").unwrap())
        .await
        .unwrap();
    let after_first = l.request(summary.request_id).await.unwrap();
    assert_eq!(after_first.state().as_str(), "blocked");
    assert_eq!(after_first.blocked_by, vec![moderation]);
    assert!(after_first.tasks.is_empty());

    l.lift_hold(&ctx(), moderation, Reason::parse("cleared").unwrap())
        .await
        .unwrap();
    let resumed = l.request(summary.request_id).await.unwrap();
    assert_eq!(resumed.state().as_str(), "in-progress");
    assert_eq!(
        resumed.tasks.len(),
        4,
        "file record, transcript, references, storage object: {resumed:?}"
    );

    for task in tasks_of(&world, summary.request_id).await {
        l.claim_task(&ctx(), task, "worker-1", 60).await.unwrap();
        l.complete_task(&ctx(), task, "worker-1").await.unwrap();
    }
    let done = l.request(summary.request_id).await.unwrap();
    assert_eq!(done.state().as_str(), "completed");
    let purge_by = done.residual_copies_purged_by.unwrap();
    assert_eq!(
        purge_by,
        done.completed_at.unwrap()
            + Duration::days(i64::from(PolicyTable::default().residual_copies_days))
    );

    // R12: the erased file is gone for good.
    let again = l
        .request_deletion(&ctx(), delete("file:f-1", member("alice")))
        .await
        .unwrap_err();
    assert!(
        matches!(again, CommandError::Rejected(DomainError::Erased(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_hold_placed_after_release_stops_claims_and_marks_the_request_blocked() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    let summary = l
        .request_deletion(&ctx(), delete("file:f-1", member("alice")))
        .await
        .unwrap();
    assert_eq!(summary.state, "in-progress");
    let hold = l
        .place_hold(
            &ctx(),
            subject("file:f-1"),
            HoldKind::Legal,
            MatterRef::parse("M-2").unwrap(),
            Reason::parse("preservation order").unwrap(),
        )
        .await
        .unwrap();
    let request = l.request(summary.request_id).await.unwrap();
    assert_eq!(request.blocked_by, vec![hold]);
    for task in request.tasks.keys() {
        let refused = l
            .claim_task(&ctx(), *task, "worker-1", 60)
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                CommandError::Rejected(DomainError::TaskNotClaimable { .. })
            ),
            "{refused:?}"
        );
    }
    l.lift_hold(&ctx(), hold, Reason::parse("released").unwrap())
        .await
        .unwrap();
    let request = l.request(summary.request_id).await.unwrap();
    assert!(request.blocked_by.is_empty());
    let task = *request.tasks.keys().next().unwrap();
    l.claim_task(&ctx(), task, "worker-1", 60).await.unwrap();
}

#[tokio::test]
async fn two_workers_never_hold_the_same_lease() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    let summary = l
        .request_deletion(&ctx(), delete("file:f-1", member("alice")))
        .await
        .unwrap();
    let task = tasks_of(&world, summary.request_id).await[0];
    let c = ctx();
    let (a, b) = tokio::join!(
        l.claim_task(&c, task, "worker-a", 60),
        l.claim_task(&c, task, "worker-b", 60)
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one claim wins: {a:?} {b:?}"
    );
    // The lease expires; another worker may then take the task.
    world.clock.advance(Duration::seconds(61));
    l.claim_task(&ctx(), task, "worker-c", 60).await.unwrap();
}

#[tokio::test]
async fn an_idempotency_key_makes_a_replayed_request_answer_the_first_result() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    let keyed = ctx().with_idempotency_key(Some("req-77".into()));
    let first = l
        .request_deletion(&keyed, delete("file:f-1", member("alice")))
        .await
        .unwrap();
    let events_after_first = world.store.head().await.unwrap();
    let replay = l
        .request_deletion(&keyed, delete("file:f-1", member("alice")))
        .await
        .unwrap();
    assert_eq!(first.request_id, replay.request_id);
    assert_eq!(world.store.head().await.unwrap(), events_after_first);
}

#[tokio::test]
async fn r1_disconnect_opens_a_clean_up_request_and_r5_meta_replay_answers_the_same_code() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    l.create_workspace(&ctx(), ws("ws-2"), acct("bob"))
        .await
        .unwrap();
    let ig = ExternalAccountId::parse("17841400000000001").unwrap();
    for (integration, workspace) in [("ig-1", "ws-1"), ("ig-2", "ws-2")] {
        l.connect_integration(
            &ctx(),
            IntegrationId::parse(integration).unwrap(),
            ws(workspace),
            Platform::Instagram,
            ig.clone(),
            Initiator::Platform,
        )
        .await
        .unwrap();
    }
    l.connect_integration(
        &ctx(),
        IntegrationId::parse("yt-1").unwrap(),
        ws("ws-1"),
        Platform::Youtube,
        ExternalAccountId::parse("UC123").unwrap(),
        member("alice"),
    )
    .await
    .unwrap();

    let cleanup = l
        .disconnect_integration(
            &ctx(),
            IntegrationId::parse("yt-1").unwrap(),
            member("alice"),
            Channel::InProduct,
            None,
        )
        .await
        .unwrap();
    assert_eq!(cleanup.tasks_total, 4);
    let request = l.request(cleanup.request_id).await.unwrap();
    assert_eq!(request.policy, PolicyName::YoutubeApiUserData);
    assert_eq!(request.due_at, start() + Duration::days(7));

    let first = l
        .meta_data_deletion(&ctx(), ig.clone(), "payload-digest-1")
        .await
        .unwrap();
    let code = first.confirmation_code.clone().unwrap();
    assert_eq!(
        first.tasks_total, 4,
        "two steps in each of the two workspaces"
    );
    let replay = l
        .meta_data_deletion(&ctx(), ig.clone(), "payload-digest-1")
        .await
        .unwrap();
    assert_eq!(replay.confirmation_code.unwrap(), code);
    assert_eq!(replay.request_id, first.request_id);

    let deauthorized = l.meta_deauthorize(&ctx(), ig).await.unwrap();
    assert_eq!(
        deauthorized.len(),
        2,
        "every matching connection is disconnected"
    );
}

#[tokio::test]
async fn r9_a_non_owner_cannot_delete_the_workspace_and_nothing_is_stored() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    l.add_member(
        &ctx(),
        ws("ws-1"),
        acct("bob"),
        Role::Admin,
        member("alice"),
    )
    .await
    .unwrap();
    let before = world.store.head().await.unwrap();
    let refused = l
        .request_deletion(&ctx(), delete("workspace:ws-1", member("bob")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            CommandError::Rejected(DomainError::NotWorkspaceOwner { .. })
        ),
        "{refused:?}"
    );
    assert_eq!(world.store.head().await.unwrap(), before);
    let accepted = l
        .request_deletion(&ctx(), delete("workspace:ws-1", member("alice")))
        .await
        .unwrap();
    assert!(accepted.tasks_total >= 6, "{accepted:?}");
}

/// How often one racing worker tries to claim before it gives up.
const CLAIM_ATTEMPTS_MAX: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_and_claims_never_release_a_step_under_an_active_hold() {
    // Many claims race with hold placements and lifts on the same file;
    // afterwards the log must show no claim at a position where a hold on
    // a covering scope was active.
    let world = world();
    workspace_with_file(&world).await;
    let l = world.ledger.clone();
    let summary = l
        .request_deletion(&ctx(), delete("file:f-1", member("alice")))
        .await
        .unwrap();
    let tasks = tasks_of(&world, summary.request_id).await;
    let mut handles = Vec::new();
    for round in 0..8 {
        let ledger = l.clone();
        handles.push(tokio::spawn(async move {
            let scope = if round % 2 == 0 {
                "file:f-1"
            } else {
                "workspace:ws-1"
            };
            let hold = ledger
                .place_hold(
                    &ctx(),
                    subject(scope),
                    HoldKind::Legal,
                    MatterRef::parse("M-race").unwrap(),
                    Reason::parse("race").unwrap(),
                )
                .await
                .unwrap();
            tokio::task::yield_now().await;
            ledger
                .lift_hold(&ctx(), hold, Reason::parse("done").unwrap())
                .await
                .unwrap();
        }));
        for (i, task) in tasks.iter().enumerate() {
            let ledger = l.clone();
            let task = *task;
            let clock = world.clock.clone();
            handles.push(tokio::spawn(async move {
                // On a loaded machine every early attempt may meet a hold;
                // a worker keeps trying (bounded) until it got a claim, so
                // the race is never without claims to check.
                let mut claimed = false;
                for attempt in 0..CLAIM_ATTEMPTS_MAX {
                    if claimed && attempt >= 4 {
                        break;
                    }
                    // Leases last a second; moving the clock lets the
                    // next worker claim again, so many claims race holds.
                    clock.advance(Duration::seconds(2));
                    claimed |= ledger
                        .claim_task(&ctx(), task, &format!("w-{round}-{i}-{attempt}"), 1)
                        .await
                        .is_ok();
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let mut active: std::collections::BTreeMap<String, usize> = Default::default();
    let mut claims = 0;
    for recorded in world.store.all_events() {
        match LedgerEvent::decode(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        )
        .unwrap()
        {
            LedgerEvent::Hold(domain::events::HoldEvent::HoldPlaced { scope, .. }) => {
                *active.entry(scope.to_string()).or_default() += 1;
            }
            LedgerEvent::Hold(domain::events::HoldEvent::HoldLifted { scope, .. }) => {
                *active.get_mut(&scope.to_string()).unwrap() -= 1;
            }
            LedgerEvent::Request(domain::events::RequestEvent::TaskClaimed { .. }) => {
                claims += 1;
                let held: usize = active.values().sum();
                assert_eq!(
                    held, 0,
                    "a claim at position {} while a hold was active",
                    recorded.position
                );
            }
            _ => {}
        }
    }
    assert!(!tasks.is_empty());
    assert!(claims > 0, "the race produced no claim at all");
}

#[tokio::test]
async fn r15_an_email_request_needs_the_operator_and_the_verification() {
    let world = world();
    workspace_with_file(&world).await;
    let l = &world.ledger;
    let mut input = delete(
        "account:alice",
        Initiator::Member {
            account: acct("alice"),
        },
    );
    input.channel = Channel::EmailToSupport;
    let refused = l.request_deletion(&ctx(), input.clone()).await.unwrap_err();
    assert!(matches!(
        refused,
        CommandError::Rejected(DomainError::InvalidInput(_))
    ));
    input.recorded_by = Some("operator:dana".into());
    input.verification = Some(Note::parse("replied from the account's e-mail address").unwrap());
    let accepted = l.request_deletion(&ctx(), input).await.unwrap();
    assert_eq!(accepted.state, "in-progress", "{accepted:?}");
    let request = l.request(accepted.request_id).await.unwrap();
    assert_eq!(request.channel, Channel::EmailToSupport);
}

#[tokio::test]
async fn a_large_workspace_is_planned_in_one_request() {
    // 400 files with a transcript each: more steps than a small append
    // limit would allow, and a hold scope per file in the condition.
    let world = world();
    let l = &world.ledger;
    l.create_workspace(&ctx(), ws("ws-big"), acct("olga"))
        .await
        .unwrap();
    for i in 0..400 {
        let file = format!("file:f-{i}");
        for (resource, derived_from) in [
            (file.clone(), None),
            (format!("transcript:t-{i}"), Some(subject(&file))),
        ] {
            l.register_resource(
                &ctx(),
                Registration {
                    resource: subject(&resource),
                    workspace: Some(ws("ws-big")),
                    account: None,
                    parent: None,
                    derived_from,
                    references: vec![],
                    created_by: None,
                },
            )
            .await
            .unwrap();
        }
    }
    let summary = l
        .request_deletion(&ctx(), delete("workspace:ws-big", member("olga")))
        .await
        .unwrap();
    assert_eq!(summary.tasks_total, 400 * 4 + 2, "{summary:?}");
}

/// A store that holds back the first append opening a deletion request
/// once armed, tells when it does, and lets it go when released.
struct HoldingStore {
    inner: Arc<MemoryStore>,
    gate: std::sync::Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

#[async_trait::async_trait]
impl EventStore for HoldingStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        let opens_a_request = request
            .events
            .iter()
            .any(|event| event.event_type == "DeletionRequested");
        let gate = if opens_a_request {
            self.gate.lock().unwrap().take()
        } else {
            None
        };
        if let Some((arrived, release)) = gate {
            arrived.send(()).unwrap();
            release.await.unwrap();
        }
        self.inner.append(request).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, after_version, limit).await
    }
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn read_by_tags(
        &self,
        tags: &[Tag],
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_by_tags(tags, after, limit).await
    }
    async fn head(&self) -> Result<Position, StoreError> {
        self.inner.head().await
    }
    async fn wait_for(
        &self,
        after: Position,
        timeout: std::time::Duration,
    ) -> Result<Position, StoreError> {
        self.inner.wait_for(after, timeout).await
    }
}

/// R1 with two disconnects of one integration at once, neither keyed.
/// The first records the disconnect, and its clean-up request is held
/// back before it reaches the log. The second finds the integration
/// disconnected and no clean-up, so it opens one. The first's clean-up
/// append then fails its condition, and deciding again it finds the
/// second's. Both answer with that one request; the log holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_two_disconnects_at_once_open_one_cleanup() {
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(HoldingStore {
        inner: memory.clone(),
        gate: std::sync::Mutex::new(None),
    });
    let ledger = Arc::new(Ledger::new(
        store.clone(),
        Arc::new(ManualClock::new(start())),
        PolicyTable::default(),
        Arc::new(Vault::ephemeral()),
    ));
    let integration = IntegrationId::parse("yt-1").unwrap();
    ledger
        .create_workspace(&ctx(), ws("ws-1"), acct("alice"))
        .await
        .unwrap();
    ledger
        .connect_integration(
            &ctx(),
            integration.clone(),
            ws("ws-1"),
            Platform::Youtube,
            ExternalAccountId::parse("UC123").unwrap(),
            member("alice"),
        )
        .await
        .unwrap();
    let (arrived_tx, arrived) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    *store.gate.lock().unwrap() = Some((arrived_tx, release_rx));
    let disconnect = {
        let ledger = ledger.clone();
        let integration = integration.clone();
        move || async move {
            ledger
                .disconnect_integration(
                    &ctx(),
                    integration,
                    member("alice"),
                    Channel::InProduct,
                    None,
                )
                .await
        }
    };

    let first = tokio::spawn(disconnect.clone()());
    arrived.await.unwrap();
    let second = disconnect().await.unwrap();
    release.send(()).unwrap();
    let first = first.await.unwrap().unwrap();

    assert_eq!(first.request_id, second.request_id);
    let scope = Subject::Integration(integration).to_string();
    let opened = memory
        .all_events()
        .iter()
        .filter(|event| {
            event.event_type == "DeletionRequested"
                && event.tags.iter().any(|tag| tag.as_str() == scope)
        })
        .count();
    assert_eq!(opened, 1, "one clean-up request for one disconnect");
}
