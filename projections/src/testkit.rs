//! A fixed story of events with fixed ids and times, that touches every
//! event type and every read model. The projection snapshot tests run it
//! in memory; the adapters' tests append it to real stores and expect the
//! same rows. Test support only: it panics on bad constants.

use chrono::{DateTime, Duration, TimeZone, Utc};
use commands::ledger::streams;
use commands::log::{Metadata, NewEvent, RecordedEvent, StreamId, Tag};
use domain::deadline::{PolicyName, PolicyTable};
use domain::events::{
    CallbackEvent, ForgetCause, HoldEvent, IntegrationEvent, LedgerEvent, PrivacyEvent,
    RefusalReason, RequestEvent, ResourceEvent, WorkspaceEvent,
};
use domain::ids::{
    AccountId, ExternalAccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId,
};
use domain::subject::{Platform, Subject};
use domain::text::{Contact, MatterRef, Note, Reason};
use domain::values::{
    Channel, ErasureStep, HoldKind, Initiator, RetentionBasis, Role, Verification,
};
use uuid::Uuid;

/// One event of the story, ready to append.
#[derive(Debug, Clone)]
pub struct StoryEvent {
    pub stream: StreamId,
    pub event_id: Uuid,
    pub event: LedgerEvent,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
}

impl StoryEvent {
    pub fn new_event(&self) -> NewEvent {
        NewEvent {
            event_id: self.event_id,
            event_type: self.event.event_type().to_owned(),
            schema_version: 1,
            occurred_at: self.occurred_at,
            payload: serde_json::to_value(&self.event).expect("events serialize"),
            metadata: Metadata {
                actor: self.actor.clone(),
                correlation_id: None,
                causation_id: None,
                idempotency_key: None,
                source_channel: Some("test".into()),
            },
            tags: self.event.tags().into_iter().map(Tag::new).collect(),
        }
    }
}

/// The story as a log would record it: positions from 1, recorded when
/// it occurred.
pub fn recorded(story: &[StoryEvent]) -> Vec<RecordedEvent> {
    story
        .iter()
        .zip(1..)
        .map(|(e, position)| {
            let new = e.new_event();
            RecordedEvent {
                position,
                stream: e.stream.clone(),
                stream_version: 0,
                event_id: new.event_id,
                event_type: new.event_type,
                schema_version: 1,
                occurred_at: new.occurred_at,
                recorded_at: new.occurred_at,
                payload: new.payload,
                metadata: new.metadata,
                tags: new.tags,
                hash: [0; 32],
            }
        })
        .collect()
}

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
        .single()
        .expect("a valid instant")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}
pub fn hold_id(n: u128) -> HoldId {
    HoldId::from_uuid(id(0x100 + n))
}
pub fn request_id(n: u128) -> RequestId {
    RequestId::from_uuid(id(0x200 + n))
}
pub fn task_id(n: u128) -> TaskId {
    TaskId::from_uuid(id(0x300 + n))
}
fn s(raw: &str) -> Subject {
    Subject::parse(raw).expect("a valid subject")
}
fn ws(raw: &str) -> WorkspaceId {
    WorkspaceId::parse(raw).expect("a valid workspace id")
}
fn acct(raw: &str) -> AccountId {
    AccountId::parse(raw).expect("a valid account id")
}
fn reason(raw: &str) -> Reason {
    Reason::parse(raw).expect("a valid reason")
}
fn note(raw: &str) -> Note {
    Note::parse(raw).expect("a valid note")
}

/// Builds a story one event a minute (or after a jump of the clock).
#[derive(Debug)]
pub struct Story {
    pub events: Vec<StoryEvent>,
    now: DateTime<Utc>,
    actor: String,
}

impl Story {
    pub fn new() -> Self {
        Self {
            events: Vec::new(),
            now: start(),
            actor: "service:test".into(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn wait(&mut self, by: Duration) -> &mut Self {
        self.now += by;
        self
    }

    pub fn by(&mut self, actor: &str) -> &mut Self {
        self.actor = actor.to_owned();
        self
    }

    pub fn push(&mut self, stream: StreamId, event: impl Into<LedgerEvent>) -> &mut Self {
        self.now += Duration::minutes(1);
        let n = self.events.len() as u128;
        self.events.push(StoryEvent {
            stream,
            event_id: id(0x1_0000 + n),
            event: event.into(),
            occurred_at: self.now,
            actor: self.actor.clone(),
        });
        self
    }

    fn request(&mut self, r: RequestId, event: RequestEvent) -> &mut Self {
        self.push(streams::request(r), event)
    }
}

impl Default for Story {
    fn default() -> Self {
        Self::new()
    }
}

/// The story the snapshot tests tell: a workspace with a file, its
/// transcript and a billing record; a held file deletion that resumes,
/// fails once and completes; a Meta data deletion blocked by a workspace
/// hold placed after its tasks were released; a refused account deletion
/// that came by e-mail; a billing record kept; a YouTube disconnect; a
/// refused callback; a member removed.
pub fn story() -> Vec<StoryEvent> {
    let table = PolicyTable::default();
    let mut st = Story::new();
    let ig = ExternalAccountId::parse("17841400000000001").expect("valid");
    let ig_1 = IntegrationId::parse("ig-1").expect("valid");
    let yt_1 = IntegrationId::parse("yt-1").expect("valid");
    let alice = Initiator::Member {
        account: acct("alice"),
    };
    st.push(
        streams::workspace(&ws("ws-1")),
        WorkspaceEvent::WorkspaceCreated {
            workspace: ws("ws-1"),
            owner: acct("alice"),
        },
    );
    st.push(
        streams::workspace(&ws("ws-1")),
        WorkspaceEvent::MemberAdded {
            workspace: ws("ws-1"),
            account: acct("bob"),
            role: Role::Admin,
            added_by: alice.clone(),
        },
    );
    for (resource, derived_from) in [
        ("file:f-1", None),
        ("transcript:t-1", Some("file:f-1")),
        ("billing-record:b-1", None),
    ] {
        st.push(
            streams::resource(&s(resource)),
            ResourceEvent::ResourceRegistered {
                resource: s(resource),
                workspace: Some(ws("ws-1")),
                account: None,
                parent: None,
                derived_from: derived_from.map(s),
                references: vec![],
                created_by: Some(acct("alice")),
            },
        );
    }
    for (integration, platform, external) in [
        (&ig_1, Platform::Instagram, ig.clone()),
        (
            &yt_1,
            Platform::Youtube,
            ExternalAccountId::parse("UC123").expect("valid"),
        ),
    ] {
        st.push(
            streams::integration(integration),
            IntegrationEvent::IntegrationConnected {
                integration: integration.clone(),
                workspace: ws("ws-1"),
                platform,
                external_account: external,
                connected_by: Initiator::Platform,
            },
        );
    }

    // A file deletion that meets a legal hold, resumes when it is lifted,
    // fails once and completes.
    let (h1, r1) = (hold_id(1), request_id(1));
    st.by("legal:dana").push(
        streams::hold(h1),
        HoldEvent::HoldPlaced {
            hold: h1,
            scope: s("file:f-1"),
            kind: HoldKind::Legal,
            matter: MatterRef::parse("M-1").expect("valid").into(),
            reason: reason("litigation").into(),
            placed_by: "legal:dana".into(),
        },
    );
    let received = st.by("service:file-manager").now() + Duration::minutes(1);
    st.request(
        r1,
        RequestEvent::DeletionRequested {
            request: r1,
            scope: s("file:f-1"),
            channel: Channel::InProduct,
            policy: PolicyName::Gdpr,
            asked_policy: None,
            received_at: received,
            due_at: table.due_at(PolicyName::Gdpr, received),
            requested_by: alice.clone(),
            recorded_by: None,
            verification: Verification::NotRequired,
            contact: None,
            confirmation_code: None,
        },
    );
    st.request(
        r1,
        RequestEvent::DeletionBlocked {
            request: r1,
            holds: vec![h1],
        },
    );
    st.wait(Duration::days(2)).by("legal:dana").push(
        streams::hold(h1),
        HoldEvent::HoldLifted {
            hold: h1,
            scope: s("file:f-1"),
            reason: reason("settled").into(),
            lifted_by: "legal:dana".into(),
        },
    );
    st.by("lethe:reactor")
        .request(r1, RequestEvent::DeletionResumed { request: r1 });
    let (t1, t2) = (task_id(1), task_id(2));
    for (task, step, target, covered_by) in [
        (
            t1,
            ErasureStep::RemoveRecord,
            "file:f-1",
            vec!["file:f-1", "workspace:ws-1"],
        ),
        (
            t2,
            ErasureStep::PurgeDerivedArtifact,
            "transcript:t-1",
            vec!["file:f-1", "transcript:t-1", "workspace:ws-1"],
        ),
    ] {
        st.request(
            r1,
            RequestEvent::TaskReleased {
                request: r1,
                task,
                step,
                target: s(target),
                workspace: Some(ws("ws-1")),
                covered_by: covered_by.into_iter().map(s).collect(),
            },
        );
    }
    st.by("service:storage-worker");
    let lease = st.now() + Duration::minutes(6);
    st.request(
        r1,
        RequestEvent::TaskClaimed {
            request: r1,
            task: t1,
            worker: "worker-1".into(),
            lease_until: lease,
        },
    );
    let retry = st.now() + Duration::minutes(2);
    st.request(
        r1,
        RequestEvent::TaskFailed {
            request: r1,
            task: t1,
            worker: "worker-1".into(),
            attempt: 1,
            error: note("storage timeout").into(),
            next_attempt_at: retry,
        },
    );
    for (task, step, target) in [
        (t1, ErasureStep::RemoveRecord, "file:f-1"),
        (t2, ErasureStep::PurgeDerivedArtifact, "transcript:t-1"),
    ] {
        let lease = st.now() + Duration::minutes(6);
        st.request(
            r1,
            RequestEvent::TaskClaimed {
                request: r1,
                task,
                worker: "worker-2".into(),
                lease_until: lease,
            },
        );
        st.request(
            r1,
            RequestEvent::TaskCompleted {
                request: r1,
                task,
                step,
                target: s(target),
                worker: "worker-2".into(),
            },
        );
    }
    let done = st.now() + Duration::minutes(1);
    st.request(
        r1,
        RequestEvent::DeletionCompleted {
            request: r1,
            completed_at: done,
            residual_copies_purged_by: table.residual_copies_purged_by(done),
        },
    );

    // R5: a Meta data deletion; its tasks are released, then a moderation
    // hold on the workspace suspends them.
    let (r2, h2) = (request_id(2), hold_id(2));
    let received = st.by("meta-callback").now() + Duration::minutes(1);
    st.request(
        r2,
        RequestEvent::DeletionRequested {
            request: r2,
            scope: Subject::External(domain::subject::ExternalAccount {
                platform: Platform::Instagram,
                id: ig.clone(),
            }),
            channel: Channel::MetaCallback,
            policy: PolicyName::Internal,
            asked_policy: None,
            received_at: received,
            due_at: table.due_at(PolicyName::Internal, received),
            requested_by: Initiator::Platform,
            recorded_by: None,
            verification: Verification::NotRequired,
            contact: None,
            confirmation_code: Some(commands::ledger::confirmation_code(r2)),
        },
    );
    for (task, step) in [
        (task_id(3), ErasureStep::DeactivateConnectionRecord),
        (task_id(4), ErasureStep::RemoveAnalyticsRows),
    ] {
        st.request(
            r2,
            RequestEvent::TaskReleased {
                request: r2,
                task,
                step,
                target: Subject::Integration(ig_1.clone()),
                workspace: Some(ws("ws-1")),
                covered_by: vec![Subject::Integration(ig_1.clone()), s("workspace:ws-1")],
            },
        );
    }
    st.by("trust:sam").push(
        streams::hold(h2),
        HoldEvent::HoldPlaced {
            hold: h2,
            scope: s("workspace:ws-1"),
            kind: HoldKind::Moderation,
            matter: MatterRef::parse("case-9").expect("valid").into(),
            reason: reason("reported content under review").into(),
            placed_by: "trust:sam".into(),
        },
    );
    st.by("lethe:reactor").request(
        r2,
        RequestEvent::DeletionBlocked {
            request: r2,
            holds: vec![h2],
        },
    );
    let extended = table
        .extend(
            PolicyName::Internal,
            received,
            table.due_at(PolicyName::Internal, received),
            false,
            Some(&reason("review pending")),
            st.now(),
        )
        .expect("an internal extension before the due time");
    st.by("operator:dana").request(
        r2,
        RequestEvent::DeadlineExtended {
            request: r2,
            due_at: extended,
            reason: reason("moderation review pending").into(),
        },
    );

    // R11 / R15: an account deletion by e-mail, verified, then refused.
    let r3 = request_id(3);
    let received = st.by("operator:dana").now() + Duration::minutes(1);
    st.request(
        r3,
        RequestEvent::DeletionRequested {
            request: r3,
            scope: s("account:alice"),
            channel: Channel::EmailToSupport,
            policy: PolicyName::Ccpa,
            asked_policy: None,
            received_at: received,
            due_at: table.due_at(PolicyName::Ccpa, received),
            requested_by: alice.clone(),
            recorded_by: Some("operator:dana".into()),
            verification: Verification::Pending,
            contact: Some(Contact::parse("alice@example.com").expect("valid").into()),
            confirmation_code: None,
        },
    );
    st.request(
        r3,
        RequestEvent::RequestVerified {
            request: r3,
            method: note("replied from the account's e-mail address").into(),
            verified_by: "operator:dana".into(),
        },
    );
    st.by("lethe:reactor").request(
        r3,
        RequestEvent::DeletionRefused {
            request: r3,
            reason: RefusalReason::SoleOwnerOfSharedWorkspace {
                workspaces: vec![ws("ws-1")],
            },
        },
    );

    // R14: a billing record is kept, not erased.
    let r4 = request_id(4);
    let received = st.by("service:billing").now() + Duration::minutes(1);
    st.request(
        r4,
        RequestEvent::DeletionRequested {
            request: r4,
            scope: s("billing-record:b-1"),
            channel: Channel::RetentionPolicy,
            policy: PolicyName::Internal,
            asked_policy: None,
            received_at: received,
            due_at: table.due_at(PolicyName::Internal, received),
            requested_by: Initiator::Platform,
            recorded_by: None,
            verification: Verification::NotRequired,
            contact: None,
            confirmation_code: None,
        },
    );
    let kept_until = st.now() + Duration::days(365 * 7);
    st.request(
        r4,
        RequestEvent::RetentionExceptionRecorded {
            request: r4,
            target: s("billing-record:b-1"),
            basis: RetentionBasis::Billing,
            until: kept_until,
            note: note("kept for tax and accounting").into(),
        },
    );
    let done = st.now() + Duration::minutes(1);
    st.request(
        r4,
        RequestEvent::DeletionCompleted {
            request: r4,
            completed_at: done,
            residual_copies_purged_by: table.residual_copies_purged_by(done),
        },
    );

    // R1: a YouTube disconnect opens a clean-up request.
    st.by("service:integrations").push(
        streams::integration(&yt_1),
        IntegrationEvent::IntegrationDisconnected {
            integration: yt_1.clone(),
            workspace: ws("ws-1"),
            platform: Platform::Youtube,
            external_account: ExternalAccountId::parse("UC123").expect("valid"),
            disconnected_by: alice.clone(),
            channel: Channel::InProduct,
            reason: Some(reason("not used any more").into()),
            platform_data_notice: "data held by YouTube itself is not deleted".into(),
        },
    );
    let r5 = request_id(5);
    let received = st.now() + Duration::minutes(1);
    st.request(
        r5,
        RequestEvent::DeletionRequested {
            request: r5,
            scope: Subject::Integration(yt_1.clone()),
            channel: Channel::InProduct,
            policy: PolicyName::YoutubeApiUserData,
            asked_policy: None,
            received_at: received,
            due_at: table.due_at(PolicyName::YoutubeApiUserData, received),
            requested_by: alice.clone(),
            recorded_by: None,
            verification: Verification::NotRequired,
            contact: None,
            confirmation_code: None,
        },
    );
    st.request(
        r5,
        RequestEvent::TaskReleased {
            request: r5,
            task: task_id(5),
            step: ErasureStep::RevokeTokens,
            target: Subject::Integration(yt_1.clone()),
            workspace: Some(ws("ws-1")),
            covered_by: vec![Subject::Integration(yt_1), s("workspace:ws-1")],
        },
    );

    let received = st.now();
    st.by("meta-callback").push(
        streams::callbacks(),
        CallbackEvent::CallbackRefused {
            endpoint: "/meta/data-deletion".into(),
            reason: "signature does not match".into(),
            received_at: received,
        },
    );
    st.by("service:workspaces").push(
        streams::workspace(&ws("ws-1")),
        WorkspaceEvent::MemberRemoved {
            workspace: ws("ws-1"),
            account: acct("bob"),
            removed_by: alice,
        },
    );
    let forgotten = st.now();
    st.by("admin:dpo").push(
        streams::subject(&Subject::Request(r5)),
        PrivacyEvent::SubjectForgotten {
            subject: Subject::Request(r5),
            cause: ForgetCause::OnRequest,
            forgotten_at: forgotten,
        },
    );
    // CCPA: the e-mail requester is told their request was received.
    let confirmed = st.now();
    st.by("operator:dana").request(
        r3,
        RequestEvent::ReceiptConfirmed {
            request: r3,
            confirmed_at: confirmed,
        },
    );
    st.events
}
