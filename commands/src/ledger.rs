//! The application service: every command of the ledger as "read what the
//! decision needs, let the domain decide, append on the condition that
//! nothing read has moved, retry on conflict".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::deadline::{PolicyName, PolicyTable};
use domain::error::{DomainError, InvalidInput};
use domain::events::{
    erased_tag, erasing_tag, hold_scope_tag, CallbackEvent, ForgetCause, HoldEvent,
    IntegrationEvent, LedgerEvent, PrivacyEvent, RequestEvent,
};
use domain::ids::{
    AccountId, ExternalAccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId,
};
use domain::inventory::Inventory;
use domain::membership::Registration;
use domain::request::{NewRequest, Request, RequestState};
use domain::subject::{ExternalAccount, Platform, ResourceKind, Subject};
use domain::text::{Contact, MatterRef, Note, Reason};
use domain::values::{Channel, HoldKind, Initiator, RetentionBasis, Role};
use serde::Serialize;
use uuid::Uuid;

use crate::clock::{new_id, Clock};
use crate::error::CommandError;
use crate::log::{
    AppendCondition, AppendRequest, Appended, EventStore, ExpectedVersion, Metadata, NewEvent,
    Position, RecordedEvent, StreamId, Tag, READ_EVENTS_MAX,
};
use crate::vault::Vault;

/// How often a decision is re-read and retried after a conflict.
pub const CONFLICT_RETRIES_MAX: usize = 16;
/// How many rounds of "read what the last read pointed to" a load makes.
const LOAD_EXPANSION_ROUNDS_MAX: usize = 8;
/// Longest lease a worker may take on a task.
pub const LEASE_SECONDS_MAX: i64 = 3_600;

/// Who is asking, and in answer to what; becomes the events' metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The authenticated principal, e.g. `service:file-manager`.
    pub actor: String,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    /// `http`, `cli`, `meta-callback`, `reactor`, ...
    pub source_channel: Option<String>,
}

impl Context {
    pub fn new(actor: impl Into<String>, source_channel: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            source_channel: Some(source_channel.into()),
            ..Self::default()
        }
    }

    pub fn with_idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }

    /// The context of what a command sets off (the requests a hold
    /// blocks or resumes): the same caller, without the command's
    /// idempotency key, which belongs to the command alone.
    fn reacting(&self) -> Context {
        Context {
            idempotency_key: None,
            ..self.clone()
        }
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            idempotency_key: self.idempotency_key.clone(),
            source_channel: self.source_channel.clone(),
        }
    }

    /// A deterministic id when the caller gave an idempotency key.
    fn id_for(&self, purpose: &str) -> Uuid {
        new_id(
            self.idempotency_key
                .as_deref()
                .map(|key| (purpose, self.actor.as_str(), key)),
        )
    }
}

/// A deletion request as the caller sees it right after a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestSummary {
    pub request_id: RequestId,
    pub scope: String,
    pub state: &'static str,
    pub due_at: DateTime<Utc>,
    pub blocked_by: Vec<HoldId>,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub completed_at: Option<DateTime<Utc>>,
    pub residual_copies_purged_by: Option<DateTime<Utc>>,
    pub confirmation_code: Option<String>,
}

impl RequestSummary {
    pub fn of(request: &Request) -> Self {
        Self {
            request_id: request.id,
            scope: request.scope.to_string(),
            state: request.state().as_str(),
            due_at: request.due_at,
            blocked_by: request.blocked_by.clone(),
            tasks_total: request.tasks.len(),
            tasks_done: request.tasks.values().filter(|t| t.completed).count(),
            completed_at: request.completed_at,
            residual_copies_purged_by: request.residual_copies_purged_by,
            confirmation_code: request.confirmation_code.clone(),
        }
    }
}

/// A task leased to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimedTask {
    pub task_id: TaskId,
    pub request_id: RequestId,
    pub step: String,
    pub target: String,
    pub lease_until: DateTime<Utc>,
}

/// What forgetting a subject did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forgotten {
    /// The subject as the ledger names it (an external account by its
    /// keyed hash).
    pub subject: String,
    /// False when it had been forgotten before.
    pub first_time: bool,
    /// Whether a live data key was destroyed by this call.
    pub key_destroyed: bool,
}

/// What a deletion request command carries from the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRequestInput {
    pub scope: Subject,
    pub channel: Channel,
    /// `None`: chosen from the scope (YouTube data → youtube-api-user-data).
    pub policy: Option<PolicyName>,
    pub requested_by: Initiator,
    pub recorded_by: Option<String>,
    pub verification: Option<Note>,
    pub contact: Option<Contact>,
    /// R15: when the e-mail arrived, for a request recorded by support
    /// after it came in; `None`: now.
    pub received_at: Option<DateTime<Utc>>,
}

/// The stream names of the ledger's aggregates.
pub mod streams {
    use super::*;

    pub fn workspace(id: &WorkspaceId) -> StreamId {
        StreamId::new(format!("workspace-{id}"))
    }
    pub fn resource(subject: &Subject) -> StreamId {
        StreamId::new(format!("resource-{subject}"))
    }
    pub fn integration(id: &IntegrationId) -> StreamId {
        StreamId::new(format!("integration-{id}"))
    }
    pub fn hold(id: HoldId) -> StreamId {
        StreamId::new(format!("hold-{id}"))
    }
    pub fn request(id: RequestId) -> StreamId {
        StreamId::new(format!("request-{id}"))
    }
    pub fn callbacks() -> StreamId {
        StreamId::new("callbacks")
    }
    pub fn access_refusals() -> StreamId {
        StreamId::new("access-refusals")
    }
    pub fn subject(subject: &Subject) -> StreamId {
        StreamId::new(format!("subject-{subject}"))
    }
}

/// How [`Ledger::open_request`] treats a request already open on an
/// integration it is asked to clean up.
#[derive(Debug, Clone, Copy)]
enum Cleanup {
    /// The caller disconnected the integration: the request already open
    /// is its clean-up.
    AnswerExisting,
    /// The caller found the integration disconnected by another call:
    /// with a clean-up open, it is told so.
    RefuseIfOpened,
}

/// What [`cleanups`] found of a disconnected integration.
#[derive(Debug, Default)]
struct Cleanups {
    /// Who disconnected it, and through which channel.
    disconnect: Option<(Initiator, Channel)>,
    /// Its clean-up requests, in log order.
    requests: Vec<RequestId>,
}

/// R1: the clean-up requests of `integration` among `events` (in log
/// order): the requests on the integration alone, after its disconnect,
/// asked by whoever disconnected it through the same channel, as the
/// disconnect asks for its clean-up. A request on it asked by anyone else
/// (one that support recorded from an e-mail, say, under another policy)
/// is not one, and does not stand for it.
fn cleanups<'a>(
    events: impl IntoIterator<Item = &'a LedgerEvent>,
    integration: &IntegrationId,
) -> Cleanups {
    let scope = Subject::Integration(integration.clone());
    let mut found = Cleanups::default();
    for event in events {
        match event {
            LedgerEvent::Integration(IntegrationEvent::IntegrationDisconnected {
                integration: gone,
                disconnected_by,
                channel,
                ..
            }) if gone == integration && found.disconnect.is_none() => {
                found.disconnect = Some((disconnected_by.clone(), *channel));
            }
            LedgerEvent::Request(RequestEvent::DeletionRequested {
                request,
                scope: asked,
                requested_by,
                channel,
                ..
            }) if *asked == scope
                && found
                    .disconnect
                    .as_ref()
                    .is_some_and(|(by, through)| by == requested_by && through == channel) =>
            {
                found.requests.push(*request);
            }
            _ => {}
        }
    }
    found
}

/// What [`Ledger::open_request`] decided: a request (new, or the replay
/// of one), or the clean-up another call opened, to be loaded whole.
#[derive(Debug)]
enum Opened {
    Summary(RequestSummary),
    Existing(RequestId),
}

/// What a decision on one request ([`Ledger::on_request`]) reads besides
/// the request's own stream, and whether its append is conditioned on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestReads {
    /// The request alone.
    Request,
    /// The scope as well, for what it holds; the append is conditioned on
    /// the request's stream only.
    Scope,
    /// The scope as well, and the append fails if anything read of it
    /// changed in the meantime (the decision then runs again).
    GuardedScope,
}

/// What a decision reads before it decides.
#[derive(Debug, Default)]
struct Load {
    streams: Vec<StreamId>,
    tags: Vec<String>,
    /// Follow references: workspaces, parents, sources.
    expand: bool,
    /// Read the holds on every scope that covers what was read.
    holds: bool,
    /// Read what earlier requests did to each resource and connection
    /// found: whether it was erased, and a billing record's retention.
    /// Those events are tagged with their target, not its workspace or
    /// account, so a scope's own tags do not bring them.
    fates: bool,
    /// For an account: read whether the members of the workspaces it owns
    /// had their accounts erased (R11: an account deletion asks who else
    /// uses a workspace it owns).
    members_erased: Option<AccountId>,
}

/// What a decision saw, and where in the log.
#[derive(Debug)]
struct View {
    read_at: Position,
    events: BTreeMap<Position, (StreamId, LedgerEvent)>,
    stream_versions: BTreeMap<StreamId, u64>,
    tags_read: BTreeSet<String>,
    inventory: Inventory,
    /// The events read that a command stored under an idempotency key:
    /// (actor, key) by position.
    keyed: BTreeMap<Position, (String, String)>,
}

impl View {
    /// A view that has read nothing yet.
    fn empty() -> View {
        View {
            read_at: 0,
            events: BTreeMap::new(),
            stream_versions: BTreeMap::new(),
            tags_read: BTreeSet::new(),
            inventory: Inventory::default(),
            keyed: BTreeMap::new(),
        }
    }

    /// The view as it was before `position`: what a command that stored
    /// its first event there had read.
    fn before(&self, position: Position) -> View {
        let events: BTreeMap<Position, (StreamId, LedgerEvent)> = self
            .events
            .range(..position)
            .map(|(p, e)| (*p, e.clone()))
            .collect();
        let mut stream_versions = self.stream_versions.clone();
        for (stream, _) in self.events.range(position..).map(|(_, e)| e) {
            if let Some(version) = stream_versions.get_mut(stream) {
                *version = version.saturating_sub(1);
            }
        }
        View {
            read_at: position.saturating_sub(1),
            inventory: Inventory::from_events(events.values().map(|(_, e)| e)),
            events,
            stream_versions,
            tags_read: self.tags_read.clone(),
            keyed: BTreeMap::new(),
        }
    }

    fn version(&self, stream: &StreamId) -> ExpectedVersion {
        match self.stream_versions.get(stream) {
            Some(0) | None => ExpectedVersion::NoStream,
            Some(version) => ExpectedVersion::Exact(*version),
        }
    }

    /// The first clean-up request of `integration` that the view holds
    /// (R1; see [`cleanups`]).
    fn cleanup_of(&self, integration: &IntegrationId) -> Option<RequestId> {
        cleanups(self.events.values().map(|(_, event)| event), integration)
            .requests
            .into_iter()
            .next()
    }

    fn request(&self, id: RequestId) -> Option<Request> {
        let stream = streams::request(id);
        let events: Vec<&RequestEvent> = self
            .events
            .values()
            .filter(|(s, _)| *s == stream)
            .filter_map(|(_, e)| match e {
                LedgerEvent::Request(e) => Some(e),
                _ => None,
            })
            .collect();
        Request::from_events(events)
    }

    fn condition_on_all_reads(&self) -> Option<AppendCondition> {
        Some(AppendCondition {
            tags: self.tags_read.iter().cloned().map(Tag::new).collect(),
            after: self.read_at,
        })
    }
}

/// What [`Ledger::replayed`] found.
enum Replay<T> {
    /// The caller used no key, or none the view holds events of.
    None,
    /// The same command as the one stored under the key: its answer.
    Of(T),
    /// Another command was stored under the key.
    Other,
}

/// What makes two decisions the same command for a replay: each event's
/// type and tags, without the ids of the tasks a decision releases (new
/// ones each time it is decided), and what else the caller chose that an
/// event holds outside its tags and personal values: a retention's basis
/// and end date.
fn replay_shape(event: &LedgerEvent) -> (&'static str, Vec<String>, Option<String>) {
    let released = matches!(
        event,
        LedgerEvent::Request(RequestEvent::TaskReleased { .. })
    );
    let tags = event
        .tags()
        .into_iter()
        .filter(|tag| !(released && tag.starts_with("task:")))
        .collect();
    let chosen = match event {
        LedgerEvent::Request(RequestEvent::RetentionExceptionRecorded { basis, until, .. }) => {
            Some(format!("{basis} {}", crate::log::rfc3339_micros(*until)))
        }
        _ => None,
    };
    (event.event_type(), tags, chosen)
}

/// One append a decision wants, and what to answer afterwards.
struct Decision<T> {
    stream: StreamId,
    expected: ExpectedVersion,
    condition: Option<AppendCondition>,
    events: Vec<LedgerEvent>,
    output: T,
}

impl<T> Decision<T> {
    /// The common decision: append `events` to `stream` at the version the
    /// view read, on the condition that nothing the view read has moved.
    fn on_view(
        view: &View,
        stream: &StreamId,
        events: Vec<impl Into<LedgerEvent>>,
        output: T,
    ) -> Self {
        Decision {
            stream: stream.clone(),
            expected: view.version(stream),
            condition: view.condition_on_all_reads(),
            events: events.into_iter().map(Into::into).collect(),
            output,
        }
    }
}

/// The ledger's application service.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    policies: PolicyTable,
    vault: Arc<Vault>,
}

impl std::fmt::Debug for dyn EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStore")
    }
}

impl Ledger {
    /// A ledger over `store`, sealing personal data with `vault` (whose
    /// keys must live as long as the store's events).
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        policies: PolicyTable,
        vault: Arc<Vault>,
    ) -> Self {
        Self {
            store,
            clock,
            policies,
            vault,
        }
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn policies(&self) -> &PolicyTable {
        &self.policies
    }

    // ------------------------------------------------------------ machinery

    async fn read_tag_pages(
        &self,
        tags: &[String],
        view: &mut View,
    ) -> Result<Vec<RecordedEvent>, CommandError> {
        let tags: Vec<Tag> = tags
            .iter()
            .filter(|t| view.tags_read.insert((*t).clone()))
            .cloned()
            .map(Tag::new)
            .collect();
        let mut found = Vec::new();
        if tags.is_empty() {
            return Ok(found);
        }
        let mut after = 0;
        loop {
            let page = self
                .store
                .read_by_tags(&tags, after, READ_EVENTS_MAX)
                .await?;
            let full = page.len() == READ_EVENTS_MAX;
            if let Some(last) = page.last() {
                after = last.position;
            }
            found.extend(page);
            if !full {
                return Ok(found);
            }
        }
    }

    async fn read_stream_pages(
        &self,
        stream: &StreamId,
        view: &mut View,
    ) -> Result<Vec<RecordedEvent>, CommandError> {
        if view.stream_versions.contains_key(stream) {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .read_stream(stream, after, READ_EVENTS_MAX)
                .await?;
            let full = page.len() == READ_EVENTS_MAX;
            if let Some(last) = page.last() {
                after = last.stream_version;
            }
            found.extend(page);
            if !full {
                break;
            }
        }
        view.stream_versions.insert(stream.clone(), after);
        Ok(found)
    }

    fn absorb(view: &mut View, events: Vec<RecordedEvent>) -> Result<(), CommandError> {
        for recorded in events {
            if view.events.contains_key(&recorded.position) {
                continue;
            }
            let event = LedgerEvent::decode(
                &recorded.event_type,
                recorded.schema_version,
                &recorded.payload,
            )?;
            if let Some(key) = recorded.metadata.idempotency_key {
                view.keyed
                    .insert(recorded.position, (recorded.metadata.actor, key));
            }
            view.events
                .insert(recorded.position, (recorded.stream, event));
        }
        Ok(())
    }

    async fn load(&self, load: Load) -> Result<View, CommandError> {
        let mut view = View {
            read_at: self.store.head().await?,
            ..View::empty()
        };
        for stream in &load.streams {
            let events = self.read_stream_pages(stream, &mut view).await?;
            Self::absorb(&mut view, events)?;
        }
        let events = self.read_tag_pages(&load.tags, &mut view).await?;
        Self::absorb(&mut view, events)?;
        let mut loaded_workspaces = BTreeSet::new();
        for round in 0..LOAD_EXPANSION_ROUNDS_MAX {
            view.inventory = Inventory::from_events(view.events.values().map(|(_, e)| e));
            if !load.expand || round + 1 == LOAD_EXPANSION_ROUNDS_MAX {
                break;
            }
            let (workspaces, resources) = referenced(&view.inventory);
            let new_workspaces: Vec<WorkspaceId> = workspaces
                .into_iter()
                .filter(|w| loaded_workspaces.insert(w.clone()))
                .collect();
            let new_tags: Vec<String> = resources
                .iter()
                .map(Subject::to_string)
                .chain(
                    new_workspaces
                        .iter()
                        .map(|w| erased_tag(&Subject::Workspace(w.clone()))),
                )
                .filter(|t| !view.tags_read.contains(t))
                .collect();
            if new_workspaces.is_empty() && new_tags.is_empty() {
                break;
            }
            for workspace in &new_workspaces {
                let events = self
                    .read_stream_pages(&streams::workspace(workspace), &mut view)
                    .await?;
                Self::absorb(&mut view, events)?;
            }
            let events = self.read_tag_pages(&new_tags, &mut view).await?;
            Self::absorb(&mut view, events)?;
        }
        if load.fates {
            let tags = fate_tags(&view.inventory)
                .filter(|t| !view.tags_read.contains(t))
                .collect::<Vec<_>>();
            let events = self.read_tag_pages(&tags, &mut view).await?;
            if !events.is_empty() {
                Self::absorb(&mut view, events)?;
                view.inventory = Inventory::from_events(view.events.values().map(|(_, e)| e));
            }
        }
        if let Some(account) = &load.members_erased {
            let tags: Vec<String> = view
                .inventory
                .workspaces
                .values()
                .filter(|w| !w.erased && w.role_of(account) == Some(Role::Owner))
                .flat_map(|w| w.members.keys())
                .flat_map(|member| {
                    let member = Subject::Account(member.clone());
                    [erased_tag(&member), erasing_tag(&member)]
                })
                .filter(|t| !view.tags_read.contains(t))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let events = self.read_tag_pages(&tags, &mut view).await?;
            Self::absorb(&mut view, events)?;
            view.inventory = Inventory::from_events(view.events.values().map(|(_, e)| e));
        }
        if load.holds {
            let mut scopes: BTreeSet<Subject> = BTreeSet::new();
            for subject in load.tags.iter().filter_map(|t| Subject::parse(t).ok()) {
                scopes.extend(view.inventory.covering_scopes(&subject));
            }
            for subject in view.inventory.resources.keys() {
                scopes.extend(view.inventory.covering_scopes(subject));
            }
            for id in view.inventory.integrations.keys() {
                scopes.extend(
                    view.inventory
                        .covering_scopes(&Subject::Integration(id.clone())),
                );
            }
            for id in view.inventory.workspaces.keys() {
                scopes.insert(Subject::Workspace(id.clone()));
            }
            let tags: Vec<String> = scopes.iter().map(hold_scope_tag).collect();
            let events = self.read_tag_pages(&tags, &mut view).await?;
            Self::absorb(&mut view, events)?;
            view.inventory = Inventory::from_events(view.events.values().map(|(_, e)| e));
        }
        Ok(view)
    }

    /// The envelope of a decided event, its personal values sealed.
    async fn new_event(
        &self,
        ctx: &Context,
        event: &LedgerEvent,
        now: DateTime<Utc>,
    ) -> Result<NewEvent, CommandError> {
        let event_id = Uuid::now_v7();
        let mut event = event.clone();
        self.vault.seal_event(&mut event, event_id).await?;
        let payload = serde_json::to_value(&event).expect("events serialize");
        let sealed: Vec<String> = event
            .personal_fields()
            .iter()
            .map(|field| field.value.stored().to_owned())
            .collect();
        if let Some(key) = crate::vault::stray_marker(&payload, &sealed) {
            return Err(DomainError::from(InvalidInput::new(
                "body",
                format!(
                    "the value given as {key} holds sealed1: or erased1:, which mark sealed \
                     personal data in the ledger; choose another value"
                ),
            ))
            .into());
        }
        Ok(NewEvent {
            event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            occurred_at: now,
            payload,
            metadata: ctx.metadata(),
            tags: event.tags().into_iter().map(Tag::new).collect(),
        })
    }

    async fn new_events(
        &self,
        ctx: &Context,
        events: &[LedgerEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, CommandError> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            out.push(self.new_event(ctx, event, now).await?);
        }
        Ok(out)
    }

    /// Reads, decides and appends, retrying the whole round on conflict.
    async fn execute<T>(
        &self,
        ctx: &Context,
        load: impl Fn() -> Load,
        decide: impl Fn(&View, DateTime<Utc>) -> Result<Decision<T>, CommandError>,
    ) -> Result<(T, Option<Appended>), CommandError> {
        for _ in 0..CONFLICT_RETRIES_MAX {
            let view = self.load(load()).await?;
            let now = self.clock.now();
            let decided = decide(&view, now);
            match &decided {
                // Nothing to store (the command found its own replay), or
                // a key reused for another command: answered as decided.
                Ok(decision) if decision.events.is_empty() => {}
                Err(CommandError::KeyReused { .. }) => {}
                _ => match Self::replayed(ctx, &view, &decide, now) {
                    Replay::Of(output) => return Ok((output, None)),
                    Replay::Other if decided.is_ok() => {
                        return Err(CommandError::KeyReused { what: "command" })
                    }
                    Replay::Other | Replay::None => {}
                },
            }
            let decision = decided?;
            if decision.events.is_empty() {
                return Ok((decision.output, None));
            }
            let request = AppendRequest {
                stream: decision.stream,
                expected: decision.expected,
                condition: decision.condition,
                idempotency_key: None,
                events: self.new_events(ctx, &decision.events, now).await?,
            };
            match self.store.append(request).await {
                Ok(appended) => return Ok((decision.output, Some(appended))),
                Err(error) if error.is_conflict() => {
                    tracing::debug!(%error, "decision conflicted, re-reading");
                    tokio::task::yield_now().await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(CommandError::Contended)
    }

    /// Whether this command repeats one the caller made under the same
    /// idempotency key, whose events the view holds. The command is
    /// decided again on the view as it was before those events; it is the
    /// same command when that decision wants the same events (types and
    /// tags, but for the ids of tasks it releases) on the same stream as
    /// were stored under the key. Its answer is then the first call's and
    /// nothing is stored. (Commands whose ids derive from the key find
    /// their replays themselves, before this.)
    fn replayed<T>(
        ctx: &Context,
        view: &View,
        decide: &impl Fn(&View, DateTime<Utc>) -> Result<Decision<T>, CommandError>,
        now: DateTime<Utc>,
    ) -> Replay<T> {
        let Some(key) = ctx.idempotency_key.as_ref() else {
            return Replay::None;
        };
        let ours = |(actor, k): &(String, String)| actor == &ctx.actor && k == key;
        let Some(first) = view
            .keyed
            .iter()
            .find(|(_, caller)| ours(caller))
            .map(|(position, _)| *position)
        else {
            return Replay::None;
        };
        // A claim's answer is a lease, which runs out: a repeated claim by
        // its worker renews the lease rather than being told of one that
        // may have ended.
        let claimed = view
            .keyed
            .range(first..)
            .filter(|(_, caller)| ours(caller))
            .filter_map(|(position, _)| view.events.get(position))
            .any(|(_, event)| {
                matches!(
                    event,
                    LedgerEvent::Request(RequestEvent::TaskClaimed { .. })
                )
            });
        if claimed {
            return Replay::None;
        }
        let Ok(decision) = decide(&view.before(first), now) else {
            return Replay::Other;
        };
        let stored: Vec<_> = view
            .keyed
            .range(first..)
            .filter(|(_, caller)| ours(caller))
            .filter_map(|(position, _)| view.events.get(position))
            .filter(|(stream, _)| *stream == decision.stream)
            .map(|(_, event)| replay_shape(event))
            .collect();
        let wanted: Vec<_> = decision.events.iter().map(replay_shape).collect();
        if !wanted.is_empty() && stored == wanted {
            Replay::Of(decision.output)
        } else {
            Replay::Other
        }
    }

    fn next_task_ids() -> impl FnMut() -> TaskId {
        || TaskId::from_uuid(Uuid::now_v7())
    }

    // ---------------------------------------------------- workspaces & co.

    pub async fn create_workspace(
        &self,
        ctx: &Context,
        workspace: WorkspaceId,
        owner: AccountId,
    ) -> Result<(), CommandError> {
        let stream = streams::workspace(&workspace);
        self.execute(
            ctx,
            || Load {
                streams: vec![stream.clone()],
                tags: vec![
                    erased_tag(&Subject::Workspace(workspace.clone())),
                    erased_tag(&Subject::Account(owner.clone())),
                    erasing_tag(&Subject::Account(owner.clone())),
                ],
                ..Load::default()
            },
            |view, _| {
                let events = domain::membership::create_workspace(
                    &view.inventory,
                    workspace.clone(),
                    owner.clone(),
                )?;
                Ok(Decision::on_view(view, &stream, events, ()))
            },
        )
        .await
        .map(|_| ())
    }

    pub async fn add_member(
        &self,
        ctx: &Context,
        workspace: WorkspaceId,
        account: AccountId,
        role: Role,
        added_by: Initiator,
    ) -> Result<(), CommandError> {
        let stream = streams::workspace(&workspace);
        self.execute(
            ctx,
            || Load {
                streams: vec![stream.clone()],
                tags: vec![
                    erased_tag(&Subject::Workspace(workspace.clone())),
                    erasing_tag(&Subject::Workspace(workspace.clone())),
                    erased_tag(&Subject::Account(account.clone())),
                    erasing_tag(&Subject::Account(account.clone())),
                ],
                ..Load::default()
            },
            |view, _| {
                let events = domain::membership::add_member(
                    &view.inventory,
                    workspace.clone(),
                    account.clone(),
                    role,
                    added_by.clone(),
                )?;
                Ok(Decision::on_view(view, &stream, events, ()))
            },
        )
        .await
        .map(|_| ())
    }

    pub async fn remove_member(
        &self,
        ctx: &Context,
        workspace: WorkspaceId,
        account: AccountId,
        removed_by: Initiator,
    ) -> Result<(), CommandError> {
        let stream = streams::workspace(&workspace);
        self.execute(
            ctx,
            || Load {
                streams: vec![stream.clone()],
                tags: vec![erased_tag(&Subject::Workspace(workspace.clone()))],
                ..Load::default()
            },
            |view, _| {
                let events = domain::membership::remove_member(
                    &view.inventory,
                    workspace.clone(),
                    account.clone(),
                    removed_by.clone(),
                )?;
                Ok(Decision::on_view(view, &stream, events, ()))
            },
        )
        .await
        .map(|_| ())
    }

    pub async fn register_resource(
        &self,
        ctx: &Context,
        registration: Registration,
    ) -> Result<(), CommandError> {
        let stream = streams::resource(&registration.resource);
        self.execute(
            ctx,
            || {
                let mut tags = vec![registration.resource.to_string()];
                tags.extend(
                    registration
                        .parent
                        .iter()
                        .chain(&registration.derived_from)
                        .chain(&registration.references)
                        .map(Subject::to_string),
                );
                if let Some(account) = &registration.account {
                    let subject = Subject::Account(account.clone());
                    tags.push(erased_tag(&subject));
                    tags.push(erasing_tag(&subject));
                }
                let mut streams = vec![stream.clone()];
                if let Some(workspace) = &registration.workspace {
                    streams.push(streams::workspace(workspace));
                    let subject = Subject::Workspace(workspace.clone());
                    tags.push(erased_tag(&subject));
                    tags.push(erasing_tag(&subject));
                }
                Load {
                    streams,
                    tags,
                    ..Load::default()
                }
            },
            |view, _| {
                let events =
                    domain::membership::register_resource(&view.inventory, registration.clone())?;
                Ok(Decision::on_view(view, &stream, events, ()))
            },
        )
        .await
        .map(|_| ())
    }

    // --------------------------------------------------------- integrations

    pub async fn connect_integration(
        &self,
        ctx: &Context,
        integration: IntegrationId,
        workspace: WorkspaceId,
        platform: Platform,
        external_account: ExternalAccountId,
        connected_by: Initiator,
    ) -> Result<(), CommandError> {
        let external_account = self
            .vault
            .admit_external(platform, &external_account)
            .await?;
        let stream = streams::integration(&integration);
        self.execute(
            ctx,
            || Load {
                streams: vec![stream.clone(), streams::workspace(&workspace)],
                tags: vec![
                    format!("integration:{integration}"),
                    erased_tag(&Subject::Workspace(workspace.clone())),
                    erasing_tag(&Subject::Workspace(workspace.clone())),
                ],
                ..Load::default()
            },
            |view, _| {
                let events = domain::integration::connect(
                    &view.inventory,
                    integration.clone(),
                    workspace.clone(),
                    platform,
                    external_account.clone(),
                    connected_by.clone(),
                )?;
                Ok(Decision::on_view(view, &stream, events, ()))
            },
        )
        .await
        .map(|_| ())
    }

    /// R1: disconnects, then opens the clean-up request scoped to the
    /// integration, whose tasks revoke tokens, clear caches, deactivate the
    /// connection record and remove retained analytics rows.
    pub async fn disconnect_integration(
        &self,
        ctx: &Context,
        integration: IntegrationId,
        mut disconnected_by: Initiator,
        mut channel: Channel,
        reason: Option<Reason>,
    ) -> Result<RequestSummary, CommandError> {
        let stream = streams::integration(&integration);
        let cleanup_ctx = Context {
            idempotency_key: ctx
                .idempotency_key
                .as_ref()
                .map(|key| format!("{key}/cleanup/{integration}")),
            ..ctx.clone()
        };
        let disconnected = self
            .execute(
                ctx,
                || Load {
                    streams: vec![stream.clone()],
                    tags: vec![format!("integration:{integration}")],
                    expand: true,
                    ..Load::default()
                },
                |view, _| {
                    let events = domain::integration::disconnect(
                        &view.inventory,
                        integration.clone(),
                        disconnected_by.clone(),
                        channel,
                        reason.clone(),
                    )?;
                    Ok(Decision::on_view(view, &stream, events, ()))
                },
            )
            .await;
        // Two calls can both find the integration disconnected and no
        // clean-up open (see below); the clean-up's append is conditional
        // on what it read, and whichever comes second finds the first
        // one's (`Cleanup`).
        let cleanup = match disconnected {
            Ok(_) => Cleanup::AnswerExisting,
            Err(CommandError::Rejected(DomainError::AlreadyDisconnected(subject))) => {
                // The disconnect and its clean-up request are two appends.
                // When the second was lost (it failed, or the process
                // stopped in between), this call opens it; a replay under
                // the same key answers with it; anything else is told the
                // integration is disconnected already.
                let found = self.cleanup_requests(&integration).await?;
                if !found.requests.is_empty() {
                    let replayed = cleanup_ctx
                        .idempotency_key
                        .is_some()
                        .then(|| RequestId::from_uuid(cleanup_ctx.id_for("deletion-request")))
                        .filter(|id| found.requests.contains(id));
                    return match replayed {
                        Some(id) => Ok(RequestSummary::of(&self.request(id).await?)),
                        None => Err(DomainError::AlreadyDisconnected(subject).into()),
                    };
                }
                tracing::warn!(%integration, "a disconnected integration had no clean-up request; opening it");
                // Asked as the disconnect was, so that it is found as its
                // clean-up (`cleanups`) whoever retries.
                if let Some((by, through)) = found.disconnect {
                    (disconnected_by, channel) = (by, through);
                }
                Cleanup::RefuseIfOpened
            }
            Err(error) => return Err(error),
        };
        self.open_request(
            &cleanup_ctx,
            DeletionRequestInput {
                scope: Subject::Integration(integration),
                channel,
                policy: None,
                requested_by: disconnected_by,
                recorded_by: None,
                verification: None,
                contact: None,
                received_at: None,
            },
            Some(cleanup),
        )
        .await
    }

    /// R4: a valid Meta deauthorization disconnects every matching
    /// Instagram connection, each as in R1. Returns the clean-up requests.
    pub async fn meta_deauthorize(
        &self,
        ctx: &Context,
        external: ExternalAccountId,
    ) -> Result<Vec<RequestSummary>, CommandError> {
        let external = self.vault.pseudonym(Platform::Instagram, &external);
        let external_subject = Subject::External(ExternalAccount {
            platform: Platform::Instagram,
            id: external.clone(),
        });
        let view = self
            .load(Load {
                tags: vec![external_subject.to_string()],
                ..Load::default()
            })
            .await?;
        let mut summaries = Vec::new();
        // Those disconnected already are tried as well: one whose clean-up
        // request was lost gets it now (see `disconnect_integration`).
        for integration in
            domain::integration::connections_of(&view.inventory, Platform::Instagram, &external)
        {
            match self
                .disconnect_integration(
                    ctx,
                    integration,
                    Initiator::Platform,
                    Channel::MetaCallback,
                    None,
                )
                .await
            {
                Ok(summary) => summaries.push(summary),
                // Disconnected already (by a concurrent disconnect, say),
                // its clean-up under way or done, or erased by it: the
                // goal is reached for this one; the others go on.
                Err(CommandError::Rejected(
                    DomainError::AlreadyDisconnected(_) | DomainError::Erased(_),
                )) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(summaries)
    }

    /// R5: a valid Meta data-deletion callback. The request id, and so the
    /// confirmation code, derives from `callback_key` (a digest of the
    /// signed payload), so a replayed callback answers with the same code.
    pub async fn meta_data_deletion(
        &self,
        ctx: &Context,
        external: ExternalAccountId,
        callback_key: &str,
    ) -> Result<RequestSummary, CommandError> {
        // The key derives from a payload that holds the account id.
        let ctx = ctx
            .clone()
            .with_idempotency_key(Some(self.vault.keyed_hash(callback_key)));
        self.request_deletion(
            &ctx,
            DeletionRequestInput {
                scope: Subject::External(ExternalAccount {
                    platform: Platform::Instagram,
                    id: external,
                }),
                channel: Channel::MetaCallback,
                policy: Some(PolicyName::Internal),
                requested_by: Initiator::Platform,
                recorded_by: None,
                verification: None,
                contact: None,
                received_at: None,
            },
        )
        .await
    }

    /// R5: an invalid callback is refused and recorded; it deletes nothing.
    pub async fn record_refused_callback(
        &self,
        ctx: &Context,
        endpoint: &str,
        reason: &str,
    ) -> Result<(), CommandError> {
        let now = self.clock.now();
        let event = CallbackEvent::CallbackRefused {
            endpoint: endpoint.chars().take(200).collect(),
            reason: reason.chars().take(500).collect(),
            received_at: now,
        };
        self.record_refusal(ctx, streams::callbacks(), event, now)
            .await
    }

    /// DESIGN, Security: every refusal is audited. An API call refused
    /// with 401 or 403 (`route` is its method and route pattern; nothing
    /// was done) is recorded, unconditionally, on its own stream.
    pub async fn record_access_refused(
        &self,
        ctx: &Context,
        route: &str,
        status: u16,
        principal: Option<&str>,
        reason: &str,
    ) -> Result<(), CommandError> {
        let now = self.clock.now();
        let event = CallbackEvent::AccessRefused {
            route: route.chars().take(200).collect(),
            status,
            principal: principal.map(|p| p.chars().take(200).collect()),
            reason: reason.chars().take(500).collect(),
            received_at: now,
        };
        self.record_refusal(ctx, streams::access_refusals(), event, now)
            .await
    }

    async fn record_refusal(
        &self,
        ctx: &Context,
        stream: StreamId,
        event: CallbackEvent,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let event: LedgerEvent = event.into();
        self.store
            .append(AppendRequest {
                stream,
                expected: ExpectedVersion::Any,
                condition: None,
                idempotency_key: None,
                events: vec![self.new_event(ctx, &event, now).await?],
            })
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------- requests

    fn scope_load(scope: &Subject, request: Option<RequestId>) -> Load {
        let mut streams = Vec::new();
        let mut tags = vec![scope.to_string()];
        match scope {
            Subject::Workspace(w) => {
                streams.push(streams::workspace(w));
                tags.push(erased_tag(scope));
            }
            Subject::Account(_) => tags.push(erased_tag(scope)),
            _ => {}
        }
        if let Some(id) = request {
            streams.push(streams::request(id));
        }
        Load {
            streams,
            tags,
            expand: true,
            holds: true,
            fates: true,
            members_erased: match scope {
                Subject::Account(account) => Some(account.clone()),
                _ => None,
            },
        }
    }

    /// The policy a request is held to. R3: a request that covers YouTube
    /// API user data (a YouTube connection, its external account, or a
    /// workspace with a YouTube connection in use) is due within
    /// 7 days whatever policy the caller names, since that is the stricter
    /// commitment; otherwise the caller's policy, or the internal one.
    fn policy_for(scope: &Subject, inventory: &Inventory, asked: Option<PolicyName>) -> PolicyName {
        let youtube = match scope {
            Subject::Integration(id) => inventory
                .integrations
                .get(id)
                .is_some_and(|i| i.platform == Platform::Youtube),
            Subject::External(e) => e.platform == Platform::Youtube,
            // A connection still in use; a disconnected one has its own
            // clean-up request, held to 7 days already.
            Subject::Workspace(w) => inventory.integrations.values().any(|i| {
                &i.workspace == w && i.platform == Platform::Youtube && !i.disconnected && !i.erased
            }),
            _ => false,
        };
        if youtube {
            PolicyName::YoutubeApiUserData
        } else {
            asked.unwrap_or(PolicyName::Internal)
        }
    }

    /// Receives a deletion request and takes it as far as it can go now.
    /// With an idempotency key, a replay answers with the first request.
    pub async fn request_deletion(
        &self,
        ctx: &Context,
        input: DeletionRequestInput,
    ) -> Result<RequestSummary, CommandError> {
        self.open_request(ctx, input, None).await
    }

    /// Opens a deletion request. With `cleanup`, it is the one clean-up
    /// request of a disconnected integration (R1): when the log already
    /// holds a request on the integration (another call opened it,
    /// perhaps between this call's reads and its append, which is
    /// conditional on them), nothing is stored and the answer is what
    /// `cleanup` says.
    async fn open_request(
        &self,
        ctx: &Context,
        mut input: DeletionRequestInput,
        cleanup: Option<Cleanup>,
    ) -> Result<RequestSummary, CommandError> {
        input.scope = self.vault.admit_subject(&input.scope).await?;
        let request_id = RequestId::from_uuid(ctx.id_for("deletion-request"));
        let stream = streams::request(request_id);
        let (opened, _) = self
            .execute(
                ctx,
                || Self::scope_load(&input.scope, Some(request_id)),
                |view, now| {
                    if let Some(existing) = view.request(request_id) {
                        // A replay of the same command: answer as the first
                        // time. The same key with another command is an
                        // error, not a confirmation of something not done.
                        let same = existing.scope == input.scope
                            && existing.channel == input.channel
                            && existing.requested_by == input.requested_by
                            && input.policy.is_none_or(|p| {
                                // R3 may have held it to the YouTube policy;
                                // then the policy named is kept beside it.
                                // (A request stored before that was kept,
                                // schema 1, replayed naming a policy it
                                // was not held to is refused: its stored
                                // form cannot say what it named.)
                                p == existing.policy || Some(p) == existing.asked_policy
                            })
                            && input
                                .received_at
                                .is_none_or(|at| at == existing.received_at);
                        if !same {
                            return Err(CommandError::KeyReused {
                                what: "deletion request",
                            });
                        }
                        return Ok(Decision {
                            stream: stream.clone(),
                            expected: ExpectedVersion::Any,
                            condition: None,
                            events: Vec::new(),
                            output: Opened::Summary(RequestSummary::of(&existing)),
                        });
                    }
                    let existing = match (&input.scope, cleanup) {
                        (Subject::Integration(integration), Some(cleanup)) => {
                            view.cleanup_of(integration).map(|id| (cleanup, id))
                        }
                        _ => None,
                    };
                    match existing {
                        Some((Cleanup::AnswerExisting, existing)) => {
                            return Ok(Decision {
                                stream: stream.clone(),
                                expected: ExpectedVersion::Any,
                                condition: None,
                                events: Vec::new(),
                                output: Opened::Existing(existing),
                            })
                        }
                        Some((Cleanup::RefuseIfOpened, _)) => {
                            return Err(DomainError::AlreadyDisconnected(input.scope.clone()).into())
                        }
                        None => {}
                    }
                    let policy = Self::policy_for(&input.scope, &view.inventory, input.policy);
                    let confirmation_code = (input.channel == Channel::MetaCallback)
                        .then(|| confirmation_code(request_id));
                    let events = domain::request::receive(
                        &view.inventory,
                        NewRequest {
                            request: request_id,
                            scope: input.scope.clone(),
                            channel: input.channel,
                            policy,
                            asked_policy: input.policy,
                            requested_by: input.requested_by.clone(),
                            recorded_by: input.recorded_by.clone(),
                            verification: input.verification.clone(),
                            contact: input.contact.clone(),
                            received_at: input.received_at,
                            confirmation_code,
                        },
                        &self.policies,
                        now,
                        &mut Self::next_task_ids(),
                    )?;
                    let summary = summarize(&events);
                    Ok(Decision {
                        stream: stream.clone(),
                        expected: ExpectedVersion::NoStream,
                        condition: view.condition_on_all_reads(),
                        events: events.into_iter().map(Into::into).collect(),
                        output: Opened::Summary(summary),
                    })
                },
            )
            .await?;
        match opened {
            Opened::Summary(summary) => Ok(summary),
            Opened::Existing(id) => Ok(RequestSummary::of(&self.request(id).await?)),
        }
    }

    /// Loads a request, or `NotFound`.
    pub async fn request(&self, id: RequestId) -> Result<Request, CommandError> {
        let view = self
            .load(Load {
                streams: vec![streams::request(id)],
                ..Load::default()
            })
            .await?;
        view.request(id)
            .ok_or_else(|| CommandError::NotFound(format!("request {id}")))
    }

    /// Runs a decision on one request: load it (and what `extra` says),
    /// decide on its state, append to its stream.
    async fn on_request<T>(
        &self,
        ctx: &Context,
        id: RequestId,
        reads: RequestReads,
        decide: impl Fn(&Request, &View, DateTime<Utc>) -> Result<(Vec<RequestEvent>, T), CommandError>,
    ) -> Result<T, CommandError> {
        let scope = self.request(id).await?.scope;
        let stream = streams::request(id);
        let (output, _) = self
            .execute(
                ctx,
                || {
                    if reads != RequestReads::Request {
                        Self::scope_load(&scope, Some(id))
                    } else {
                        Load {
                            streams: vec![stream.clone()],
                            ..Load::default()
                        }
                    }
                },
                |view, now| {
                    let request = view
                        .request(id)
                        .ok_or_else(|| CommandError::NotFound(format!("request {id}")))?;
                    let (events, output) = decide(&request, view, now)?;
                    Ok(Decision {
                        stream: stream.clone(),
                        expected: view.version(&stream),
                        condition: if reads == RequestReads::GuardedScope {
                            view.condition_on_all_reads()
                        } else {
                            None
                        },
                        events: events.into_iter().map(Into::into).collect(),
                        output,
                    })
                },
            )
            .await?;
        Ok(output)
    }

    /// R11 / R15: records the verification of the requester and moves on.
    pub async fn verify_request(
        &self,
        ctx: &Context,
        id: RequestId,
        method: Note,
    ) -> Result<RequestSummary, CommandError> {
        self.on_request(ctx, id, RequestReads::GuardedScope, |request, view, now| {
            let events = domain::request::verify(
                request,
                &view.inventory,
                method.clone(),
                ctx.actor.clone(),
                &self.policies,
                now,
                &mut Self::next_task_ids(),
            )?;
            Ok((events.clone(), summary_after(request, &events)))
        })
        .await
    }

    /// Refuses a request whose requester could not be verified.
    pub async fn refuse_unverified(
        &self,
        ctx: &Context,
        id: RequestId,
        detail: Note,
    ) -> Result<RequestSummary, CommandError> {
        self.on_request(ctx, id, RequestReads::Request, |request, _, _| {
            let events = domain::request::refuse_unverified(request, detail.clone())?;
            Ok((events.clone(), summary_after(request, &events)))
        })
        .await
    }

    pub async fn extend_deadline(
        &self,
        ctx: &Context,
        id: RequestId,
        reason: Option<Reason>,
    ) -> Result<RequestSummary, CommandError> {
        self.on_request(ctx, id, RequestReads::Request, |request, _, now| {
            let events = domain::request::extend(request, reason.clone(), &self.policies, now)?;
            Ok((events.clone(), summary_after(request, &events)))
        })
        .await
    }

    /// Records that the requester was told their request was received
    /// (CCPA § 7021(a)), at `confirmed_at` or now; returns when that was.
    /// A repeat stores nothing and answers with the first confirmation's
    /// time.
    pub async fn confirm_receipt(
        &self,
        ctx: &Context,
        id: RequestId,
        confirmed_at: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, CommandError> {
        self.on_request(ctx, id, RequestReads::Request, |request, _, now| {
            let events = domain::request::confirm_receipt(request, confirmed_at, now)?;
            let confirmed = match events.first() {
                Some(RequestEvent::ReceiptConfirmed { confirmed_at, .. }) => *confirmed_at,
                _ => request.receipt_confirmed_at.unwrap_or(now),
            };
            Ok((events, confirmed))
        })
        .await
    }

    pub async fn record_retention(
        &self,
        ctx: &Context,
        id: RequestId,
        target: Subject,
        basis: RetentionBasis,
        until: DateTime<Utc>,
        note: Note,
    ) -> Result<(), CommandError> {
        // With the scope's inventory, for the target must be within it.
        // The append is not conditioned on the scope, so that a busy
        // workspace does not make it contend: the scope only says whether
        // the target may be named, which new uploads do not change.
        let target = self.vault.lookup_subject(&target);
        self.on_request(ctx, id, RequestReads::Scope, |request, view, now| {
            let events = domain::request::record_retention(
                request,
                &view.inventory,
                target.clone(),
                basis,
                until,
                note.clone(),
                now,
            )?;
            Ok((events, ()))
        })
        .await
    }

    /// Re-evaluates an open request against the log as it is now: blocks
    /// it on new holds, resumes it when the last covering hold is gone.
    pub async fn advance(
        &self,
        ctx: &Context,
        id: RequestId,
    ) -> Result<RequestSummary, CommandError> {
        self.on_request(ctx, id, RequestReads::GuardedScope, |request, view, now| {
            let events = domain::request::progress(
                request,
                &view.inventory,
                &self.policies,
                now,
                &mut Self::next_task_ids(),
            );
            Ok((events.clone(), summary_after(request, &events)))
        })
        .await
    }

    // ---------------------------------------------------------------- tasks

    /// The request a task belongs to.
    pub async fn request_of_task(&self, task: TaskId) -> Result<RequestId, CommandError> {
        let events = self
            .store
            .read_by_tags(&[Tag::new(format!("task:{task}"))], 0, 1)
            .await?;
        let first = events
            .first()
            .ok_or_else(|| CommandError::NotFound(format!("task {task}")))?;
        match LedgerEvent::decode(&first.event_type, first.schema_version, &first.payload)? {
            LedgerEvent::Request(event) => Ok(event.request()),
            _ => Err(CommandError::NotFound(format!("task {task}"))),
        }
    }

    /// Leases a task to a worker, on the condition that no hold on any
    /// scope covering the task was placed since the holds were read: a
    /// step is never released at a log position where a hold covers it.
    pub async fn claim_task(
        &self,
        ctx: &Context,
        task: TaskId,
        worker: &str,
        lease_seconds: i64,
    ) -> Result<ClaimedTask, CommandError> {
        let lease_seconds = lease_seconds.clamp(1, LEASE_SECONDS_MAX);
        let request_id = self.request_of_task(task).await?;
        let stream = streams::request(request_id);
        let request = self.request(request_id).await?;
        let covered_by = request
            .tasks
            .get(&task)
            .map(|t| t.covered_by.clone())
            .unwrap_or_default();
        let hold_tags: Vec<String> = covered_by.iter().map(hold_scope_tag).collect();
        let (claimed, _) = self
            .execute(
                ctx,
                || Load {
                    streams: vec![stream.clone()],
                    tags: hold_tags.clone(),
                    ..Load::default()
                },
                |view, now| {
                    let request = view
                        .request(request_id)
                        .ok_or_else(|| CommandError::NotFound(format!("request {request_id}")))?;
                    let lease_until = now + Duration::seconds(lease_seconds);
                    let events = domain::request::claim(
                        &request,
                        &view.inventory,
                        task,
                        worker.to_owned(),
                        lease_until,
                        now,
                    )?;
                    let t = &request.tasks[&task];
                    Ok(Decision {
                        stream: stream.clone(),
                        expected: view.version(&stream),
                        condition: Some(AppendCondition {
                            tags: hold_tags.iter().cloned().map(Tag::new).collect(),
                            after: view.read_at,
                        }),
                        events: events.into_iter().map(Into::into).collect(),
                        output: ClaimedTask {
                            task_id: task,
                            request_id,
                            step: t.step.to_string(),
                            target: t.target.to_string(),
                            lease_until,
                        },
                    })
                },
            )
            .await?;
        Ok(claimed)
    }

    /// The lease holder reports a step done; the last one completes the
    /// request (R13).
    pub async fn complete_task(
        &self,
        ctx: &Context,
        task: TaskId,
        worker: &str,
    ) -> Result<RequestSummary, CommandError> {
        let request_id = self.request_of_task(task).await?;
        self.on_request(ctx, request_id, RequestReads::Request, |request, _, now| {
            let events = domain::request::complete_task(
                request,
                task,
                worker.to_owned(),
                &self.policies,
                now,
            )?;
            Ok((events.clone(), summary_after(request, &events)))
        })
        .await
    }

    /// R6: the lease holder reports a failed attempt; it is retried later.
    pub async fn fail_task(
        &self,
        ctx: &Context,
        task: TaskId,
        worker: &str,
        error: Note,
    ) -> Result<RequestSummary, CommandError> {
        let request_id = self.request_of_task(task).await?;
        self.on_request(ctx, request_id, RequestReads::Request, |request, _, now| {
            let events =
                domain::request::fail_task(request, task, worker.to_owned(), error.clone(), now)?;
            Ok((events.clone(), summary_after(request, &events)))
        })
        .await
    }

    // ---------------------------------------------------------------- holds

    /// Places a hold, then suspends what it covers (the open requests
    /// whose pending tasks it covers are marked blocked).
    pub async fn place_hold(
        &self,
        ctx: &Context,
        scope: Subject,
        kind: HoldKind,
        matter: MatterRef,
        reason: Reason,
    ) -> Result<HoldId, CommandError> {
        let scope = self.vault.admit_subject(&scope).await?;
        let hold = HoldId::from_uuid(ctx.id_for("hold"));
        let stream = streams::hold(hold);
        let (hold, appended) = self
            .execute(
                ctx,
                || {
                    // The scope's own stream makes it known, so that the
                    // event that erased it (by its tag) marks it erased.
                    let mut streams = vec![stream.clone()];
                    match &scope {
                        Subject::Resource(_) => streams.push(streams::resource(&scope)),
                        Subject::Workspace(w) => streams.push(streams::workspace(w)),
                        _ => {}
                    }
                    Load {
                        streams,
                        tags: vec![erased_tag(&scope)],
                        ..Load::default()
                    }
                },
                |view, _| {
                    if view.version(&stream) != ExpectedVersion::NoStream {
                        // A replay of the same command; the same key with
                        // another scope or kind would confirm a hold that
                        // was never placed.
                        let same = view
                            .inventory
                            .holds
                            .get(&hold)
                            .is_some_and(|h| h.scope == scope && h.kind == kind);
                        if !same {
                            return Err(CommandError::KeyReused { what: "hold" });
                        }
                        return Ok(Decision {
                            stream: stream.clone(),
                            expected: ExpectedVersion::Any,
                            condition: None,
                            events: Vec::new(),
                            output: hold,
                        });
                    }
                    let events = domain::hold::place(
                        &view.inventory,
                        hold,
                        scope.clone(),
                        kind,
                        matter.clone(),
                        reason.clone(),
                        ctx.actor.clone(),
                    )?;
                    Ok(Decision {
                        stream: stream.clone(),
                        expected: ExpectedVersion::NoStream,
                        condition: view.condition_on_all_reads(),
                        events: events.into_iter().map(Into::into).collect(),
                        output: hold,
                    })
                },
            )
            .await?;
        if appended.is_some() {
            // Claims check holds themselves; marking requests blocked is
            // for people, so a failure here is logged, not answered.
            if let Err(error) = self.react_to_hold_placed(&ctx.reacting(), &scope).await {
                tracing::warn!(%hold, %error, "marking the requests a new hold blocks failed");
            }
        }
        Ok(hold)
    }

    /// Lifts an active hold; the deletions it blocked resume once no other
    /// hold covers them.
    pub async fn lift_hold(
        &self,
        ctx: &Context,
        hold: HoldId,
        reason: Reason,
    ) -> Result<(), CommandError> {
        let stream = streams::hold(hold);
        self.execute(
            ctx,
            || Load {
                streams: vec![stream.clone()],
                ..Load::default()
            },
            |view, _| {
                if view.version(&stream) == ExpectedVersion::NoStream {
                    return Err(CommandError::NotFound(format!("hold {hold}")));
                }
                let events =
                    domain::hold::lift(&view.inventory, hold, reason.clone(), ctx.actor.clone())?;
                Ok(Decision {
                    stream: stream.clone(),
                    expected: view.version(&stream),
                    condition: None,
                    events: events.into_iter().map(Into::into).collect(),
                    output: (),
                })
            },
        )
        .await?;
        // The lift is stored: a reaction that fails is no reason to answer
        // with an error (a retry would meet a lifted hold). The service's
        // resume sweep takes forward what it did not reach.
        if let Err(error) = self.react_to_hold_lifted(&ctx.reacting(), hold).await {
            tracing::warn!(%hold, %error, "resuming the requests a lifted hold blocked failed");
        }
        Ok(())
    }

    /// The clean-up requests of `integration` in the log, and how it was
    /// disconnected (see [`cleanups`]).
    async fn cleanup_requests(
        &self,
        integration: &IntegrationId,
    ) -> Result<Cleanups, CommandError> {
        let events = self
            .events_tagged(&Subject::Integration(integration.clone()))
            .await?;
        Ok(cleanups(&events, integration))
    }

    /// The request events carrying `subject`'s tag, in log order.
    async fn request_events_tagged(
        &self,
        subject: &Subject,
    ) -> Result<Vec<RequestEvent>, CommandError> {
        Ok(self
            .events_tagged(subject)
            .await?
            .into_iter()
            .filter_map(|event| match event {
                LedgerEvent::Request(event) => Some(event),
                _ => None,
            })
            .collect())
    }

    /// The events carrying `subject`'s tag, decoded, in log order.
    async fn events_tagged(&self, subject: &Subject) -> Result<Vec<LedgerEvent>, CommandError> {
        let mut view = View::empty();
        let recorded = self
            .read_tag_pages(&[subject.to_string()], &mut view)
            .await?;
        recorded
            .iter()
            .map(|event| {
                LedgerEvent::decode(&event.event_type, event.schema_version, &event.payload)
                    .map_err(Into::into)
            })
            .collect()
    }

    /// The open requests with unfinished tasks covered by `scope`.
    async fn requests_touching(
        &self,
        scope: &Subject,
    ) -> Result<BTreeSet<RequestId>, CommandError> {
        Ok(self
            .request_events_tagged(scope)
            .await?
            .into_iter()
            .filter(|event| {
                matches!(
                    event,
                    RequestEvent::TaskReleased { .. } | RequestEvent::DeletionRequested { .. }
                )
            })
            .map(|event| event.request())
            .collect())
    }

    // ------------------------------------------------------------- privacy

    /// Forgets `subject`'s personal data: records `SubjectForgotten` (once)
    /// and destroys its data key, so that every value it owned reads
    /// `[erased]`. An external account is named by its keyed hash. Safe to
    /// repeat: a second call finds the event and only makes sure the key
    /// is gone.
    pub async fn forget(
        &self,
        ctx: &Context,
        subject: &Subject,
        cause: ForgetCause,
    ) -> Result<Forgotten, CommandError> {
        let subject = self.vault.lookup_subject(subject);
        let stream = streams::subject(&subject);
        let (first_time, _) = self
            .execute(
                ctx,
                || Load {
                    streams: vec![stream.clone()],
                    ..Load::default()
                },
                |view, now| {
                    let recorded = view.version(&stream) != ExpectedVersion::NoStream;
                    let events: Vec<LedgerEvent> = if recorded {
                        Vec::new()
                    } else {
                        vec![PrivacyEvent::SubjectForgotten {
                            subject: subject.clone(),
                            cause,
                            forgotten_at: now,
                        }
                        .into()]
                    };
                    Ok(Decision {
                        stream: stream.clone(),
                        expected: ExpectedVersion::NoStream,
                        condition: None,
                        events,
                        output: !recorded,
                    })
                },
            )
            .await?;
        let key_destroyed = self.vault.forget(&subject).await?;
        Ok(Forgotten {
            subject: subject.to_string(),
            first_time,
            key_destroyed,
        })
    }

    /// The reaction to a new hold: mark the covered open requests blocked,
    /// so reports say "blocked by hold" and not "overdue". Claims are safe
    /// without this (they check holds themselves); this is for people.
    pub async fn react_to_hold_placed(
        &self,
        ctx: &Context,
        scope: &Subject,
    ) -> Result<(), CommandError> {
        for request in self.requests_touching(scope).await? {
            self.advance_if_open(ctx, request).await?;
        }
        Ok(())
    }

    /// The reaction to a lifted hold: every request it blocked is taken
    /// forward; those still covered by another hold stay blocked.
    pub async fn react_to_hold_lifted(
        &self,
        ctx: &Context,
        hold: HoldId,
    ) -> Result<(), CommandError> {
        let events = self
            .store
            .read_by_tags(&[Tag::new(format!("hold:{hold}"))], 0, READ_EVENTS_MAX)
            .await?;
        let mut blocked = BTreeSet::new();
        for recorded in events {
            if let LedgerEvent::Request(RequestEvent::DeletionBlocked { request, .. }) =
                LedgerEvent::decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    &recorded.payload,
                )?
            {
                blocked.insert(request);
            }
        }
        // One request that fails does not keep the others blocked.
        let mut first_error = None;
        for request in blocked {
            if let Err(error) = self.advance_if_open(ctx, request).await {
                tracing::warn!(%request, %error, "a request blocked by a lifted hold did not resume");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn advance_if_open(&self, ctx: &Context, id: RequestId) -> Result<(), CommandError> {
        let request = self.request(id).await?;
        if matches!(
            request.state(),
            RequestState::Completed | RequestState::Refused
        ) {
            return Ok(());
        }
        self.advance(ctx, id).await.map(|_| ())
    }

    /// The process that reacts to events, for one recorded event: holds
    /// placed and lifted. Idempotent, so replaying the log is harmless.
    pub async fn react(&self, recorded: &RecordedEvent) -> Result<(), CommandError> {
        let event = LedgerEvent::decode(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        )?;
        let ctx = Context {
            actor: "lethe:reactor".into(),
            causation_id: Some(recorded.event_id),
            correlation_id: recorded.metadata.correlation_id,
            source_channel: Some("reactor".into()),
            ..Context::default()
        };
        match event {
            LedgerEvent::Hold(HoldEvent::HoldPlaced { scope, .. }) => {
                self.react_to_hold_placed(&ctx, &scope).await
            }
            LedgerEvent::Hold(HoldEvent::HoldLifted { hold, .. }) => {
                self.react_to_hold_lifted(&ctx, hold).await
            }
            _ => Ok(()),
        }
    }
}

/// The workspaces and resources an inventory points to but may not hold.
/// The tags under which the fates of what `inventory` holds are found:
/// `erased:` of each resource and connection not known to be erased (R12:
/// a workspace's request must not plan again a file or connection that
/// an earlier request erased), and a billing record's own tag, for the
/// end date of its retention (R14: a later request keeps the first).
fn fate_tags(inventory: &Inventory) -> impl Iterator<Item = String> + '_ {
    let resources = inventory
        .resources
        .iter()
        .filter(|(_, facts)| !facts.erased)
        .map(|(subject, facts)| {
            if facts.kind == ResourceKind::BillingRecord {
                subject.to_string()
            } else {
                erased_tag(subject)
            }
        });
    let integrations = inventory
        .integrations
        .iter()
        .filter(|(_, facts)| !facts.erased)
        .map(|(id, _)| erased_tag(&Subject::Integration(id.clone())));
    resources.chain(integrations)
}

fn referenced(inventory: &Inventory) -> (BTreeSet<WorkspaceId>, BTreeSet<Subject>) {
    let mut workspaces = BTreeSet::new();
    let mut resources = BTreeSet::new();
    for facts in inventory.resources.values() {
        workspaces.extend(facts.workspace.iter().cloned());
        resources.extend(facts.parent.iter().cloned());
        resources.extend(facts.derived_from.iter().cloned());
    }
    for facts in inventory.integrations.values() {
        workspaces.insert(facts.workspace.clone());
    }
    workspaces.extend(inventory.workspaces.keys().cloned());
    (workspaces, resources)
}

/// The confirmation code of a Meta data-deletion request: short, stable,
/// derived from the request id.
pub fn confirmation_code(request: RequestId) -> String {
    let simple = request.as_uuid().simple().to_string().to_uppercase();
    format!("LTH{}", &simple[simple.len() - 12..])
}

fn summarize(events: &[RequestEvent]) -> RequestSummary {
    let request =
        Request::from_events(events).expect("a new request starts with DeletionRequested");
    RequestSummary::of(&request)
}

fn summary_after(request: &Request, events: &[RequestEvent]) -> RequestSummary {
    let mut request = request.clone();
    for event in events {
        request.apply(event);
    }
    RequestSummary::of(&request)
}
