//! The read side over a large log: the log is filled with realistic
//! tenant histories (the event types of `domain::events`, mixed as a
//! product produces them), appended through the store port in appends of
//! [`APPEND_EVENTS`]; then the read models are caught up, rebuilt, looked
//! up and exported.
//!
//! The histories are written as events, not through `Ledger`: the ledger
//! decides one command at a time (see the `lethe ledger` figure), which
//! would take hours for a million events. They are stored as the ledger
//! stores them, though: personal values sealed and external account ids
//! replaced by keyed hashes through a `Vault` over the store's key table,
//! so that lookups and exports open what they show as they do in
//! service. Each append goes to a stream of its own; the read models do
//! not depend on stream names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::readmodel::{AuditQuery, ExportFormat, ReadModels, PAGE_EVENTS_MAX};
use adapters::store::Store;
use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use commands::log::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, Tag,
};
use commands::{MasterKey, Vault};
use domain::deadline::PolicyName;
use domain::events::{
    DomainEvent, HoldEvent, IntegrationEvent, LedgerEvent, RequestEvent, ResourceEvent,
    WorkspaceEvent,
};
use domain::ids::{
    AccountId, ExternalAccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId,
};
use domain::subject::{Platform, Subject};
use domain::text::{MatterRef, Note, Reason};
use domain::values::{Channel, ErasureStep, HoldKind, Initiator, Role, Verification};
use uuid::Uuid;

use crate::measure::{Op, Sample};

/// Events per append while filling the log.
pub const APPEND_EVENTS: usize = 1_000;
/// Files each tenant registers (each with three derived artifacts).
const TENANT_FILES: usize = 4;
/// Appends generated ahead of the one being written.
const APPENDS_AHEAD: usize = 4;

/// Values that every tenant's history repeats, parsed once. Events hold
/// them as the domain's values for free text (`.into()` where an event
/// keeps them in another form).
#[derive(Debug)]
struct Texts {
    matter: MatterRef,
    hold_reason: Reason,
    lift_reason: Reason,
    failure: Note,
    notice: String,
}

/// Makes tenant histories, in log order, as events ready to append. Runs
/// on a blocking thread; `runtime` lets it wait for the vault there.
#[derive(Debug)]
pub struct Tenants {
    vault: Arc<Vault>,
    runtime: tokio::runtime::Handle,
    texts: Texts,
    /// Tenants whose whole history was made.
    pub complete: usize,
    /// Events made but not handed out yet.
    pending: std::collections::VecDeque<NewEvent>,
    now: DateTime<Utc>,
    actor: &'static str,
    next_id: u128,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn subject(raw: &str) -> anyhow::Result<Subject> {
    Ok(Subject::parse(raw)?)
}

fn account(raw: &str) -> anyhow::Result<AccountId> {
    Ok(AccountId::parse(raw)?)
}

/// The subject whose audit trail a lookup of tenant `tenant` reads: one
/// of its files, or (every fourth lookup) its whole workspace.
pub fn lookup_subject(tenant: usize, pick: u64) -> String {
    if pick % 4 == 0 {
        format!("workspace:ws-{tenant}")
    } else {
        format!("file:f-{tenant}-{}", 1 + (pick as usize % TENANT_FILES))
    }
}

/// A vault over the key table of the store at `url`, as `lethe serve`
/// opens it, with a master key made for this run.
pub async fn vault(url: &str) -> anyhow::Result<Arc<Vault>> {
    let table = adapters::keys::SqlKeyTable::connect(url).await?;
    Ok(Arc::new(
        Vault::open(Arc::new(table), MasterKey::generate()).await?,
    ))
}

impl Tenants {
    pub fn new(vault: Arc<Vault>, runtime: tokio::runtime::Handle) -> anyhow::Result<Self> {
        Ok(Self {
            vault,
            runtime,
            texts: Texts {
                matter: MatterRef::parse("MATTER-2026-014")?,
                hold_reason: Reason::parse("litigation about this recording")?,
                lift_reason: Reason::parse("matter settled")?,
                failure: Note::parse("storage timeout")?,
                notice: "Disconnecting stops syncing; data already sent to the platform stays \
                         under the platform's own policy."
                    .into(),
            },
            complete: 0,
            pending: std::collections::VecDeque::new(),
            now: start(),
            actor: "service:product",
            next_id: 0,
        })
    }

    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | self.next_id)
    }

    /// One event, a second after the one before, its personal values
    /// sealed.
    fn push<E: DomainEvent + Into<LedgerEvent>>(&mut self, event: E) -> anyhow::Result<()> {
        self.now += chrono::Duration::seconds(1);
        let event_id = self.id();
        let schema_version = event.schema_version();
        let mut event: LedgerEvent = event.into();
        if !event.personal_fields().is_empty() {
            self.runtime
                .block_on(self.vault.seal_event(&mut event, event_id))?;
        }
        let new = NewEvent {
            event_id,
            event_type: event.event_type().to_owned(),
            schema_version,
            occurred_at: self.now,
            payload: serde_json::to_value(&event).context("serialising an event")?,
            metadata: Metadata {
                actor: self.actor.to_owned(),
                correlation_id: None,
                causation_id: None,
                idempotency_key: None,
                source_channel: Some("bench".into()),
            },
            tags: event.tags().into_iter().map(Tag::new).collect(),
        };
        self.pending.push_back(new);
        Ok(())
    }

    /// The next `n` events (fewer only if `n` is 0).
    pub fn take(&mut self, n: usize) -> anyhow::Result<Vec<NewEvent>> {
        while self.pending.len() < n {
            self.tenant(self.complete)?;
            self.complete += 1;
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// One tenant's history, about ninety events: a workspace with three
    /// members, a project, files with derived artifacts and a YouTube
    /// connection; two file deletions carried out step by step; a third
    /// one blocked by a legal hold, resumed when the hold is lifted, with
    /// one failed and retried step; the YouTube disconnect and its
    /// clean-up.
    fn tenant(&mut self, i: usize) -> anyhow::Result<()> {
        let workspace = WorkspaceId::parse(&format!("ws-{i}"))?;
        let owner = account(&format!("o-{i}"))?;
        let mate = account(&format!("m-{i}"))?;
        let project = subject(&format!("project:p-{i}"))?;
        self.actor = "service:product";
        self.push(WorkspaceEvent::WorkspaceCreated {
            workspace: workspace.clone(),
            owner: owner.clone(),
        })?;
        for (who, role) in [
            (&mate, Role::Admin),
            (&account(&format!("k-{i}"))?, Role::Member),
        ] {
            self.push(WorkspaceEvent::MemberAdded {
                workspace: workspace.clone(),
                account: who.clone(),
                role,
                added_by: Initiator::Member {
                    account: owner.clone(),
                },
            })?;
        }
        self.push(ResourceEvent::ResourceRegistered {
            resource: project.clone(),
            workspace: Some(workspace.clone()),
            account: None,
            parent: None,
            derived_from: None,
            references: Vec::new(),
            created_by: Some(owner.clone()),
        })?;
        let mut files = Vec::with_capacity(TENANT_FILES);
        for k in 1..=TENANT_FILES {
            let file = subject(&format!("file:f-{i}-{k}"))?;
            self.push(ResourceEvent::ResourceRegistered {
                resource: file.clone(),
                workspace: Some(workspace.clone()),
                account: None,
                parent: Some(project.clone()),
                derived_from: None,
                references: Vec::new(),
                created_by: Some(mate.clone()),
            })?;
            let mut derived = Vec::new();
            for kind in ["transcript", "thumbnail", "embedding"] {
                let artifact = subject(&format!("{kind}:{kind}-{i}-{k}"))?;
                self.push(ResourceEvent::ResourceRegistered {
                    resource: artifact.clone(),
                    workspace: Some(workspace.clone()),
                    account: None,
                    parent: None,
                    derived_from: Some(file.clone()),
                    references: Vec::new(),
                    created_by: None,
                })?;
                derived.push(artifact);
            }
            files.push((file, derived));
        }
        let integration = IntegrationId::parse(&format!("yt-{i}"))?;
        let channel_id = self.runtime.block_on(self.vault.admit_external(
            Platform::Youtube,
            &ExternalAccountId::parse(&format!("UC{i:010}"))?,
        ))?;
        self.push(IntegrationEvent::IntegrationConnected {
            integration: integration.clone(),
            workspace: workspace.clone(),
            platform: Platform::Youtube,
            external_account: channel_id.clone(),
            connected_by: Initiator::Member {
                account: owner.clone(),
            },
        })?;

        let scopes = |target: &Subject, file: &Subject| {
            let mut covered = vec![
                target.clone(),
                Subject::Workspace(workspace.clone()),
                project.clone(),
                file.clone(),
            ];
            covered.sort();
            covered.dedup();
            covered
        };
        for (n, (file, derived)) in files.iter().take(3).enumerate() {
            let mut steps = vec![(file.clone(), ErasureStep::DeleteStorageObject)];
            steps.extend(
                derived
                    .iter()
                    .map(|d| (d.clone(), ErasureStep::PurgeDerivedArtifact)),
            );
            steps.push((file.clone(), ErasureStep::RemoveRecord));
            let held = n == 2;
            let hold = HoldId::from_uuid(self.id());
            if held {
                self.actor = "legal:dana";
                self.push(HoldEvent::HoldPlaced {
                    hold,
                    scope: file.clone(),
                    kind: HoldKind::Legal,
                    matter: self.texts.matter.clone().into(),
                    reason: self.texts.hold_reason.clone().into(),
                    placed_by: "legal:dana".into(),
                })?;
            }
            self.actor = "service:product";
            let request = RequestId::from_uuid(self.id());
            self.push(RequestEvent::DeletionRequested {
                request,
                scope: file.clone(),
                channel: Channel::InProduct,
                policy: PolicyName::Gdpr,
                asked_policy: None,
                received_at: self.now,
                due_at: self.now + chrono::Duration::days(30),
                requested_by: Initiator::Member {
                    account: mate.clone(),
                },
                recorded_by: None,
                verification: Verification::NotRequired,
                contact: None,
                confirmation_code: None,
            })?;
            if held {
                self.push(RequestEvent::DeletionBlocked {
                    request,
                    holds: vec![hold],
                })?;
                self.actor = "legal:dana";
                self.push(HoldEvent::HoldLifted {
                    hold,
                    scope: file.clone(),
                    reason: self.texts.lift_reason.clone().into(),
                    lifted_by: "legal:dana".into(),
                })?;
                self.actor = "reactor";
                self.push(RequestEvent::DeletionResumed { request })?;
            }
            self.release_and_carry_out(request, &workspace, &steps, file, &scopes, held)?;
        }

        self.actor = "service:product";
        self.push(IntegrationEvent::IntegrationDisconnected {
            integration: integration.clone(),
            workspace: workspace.clone(),
            platform: Platform::Youtube,
            external_account: channel_id.clone(),
            disconnected_by: Initiator::Member {
                account: owner.clone(),
            },
            channel: Channel::InProduct,
            reason: None,
            platform_data_notice: self.texts.notice.clone(),
        })?;
        let request = RequestId::from_uuid(self.id());
        let connection = Subject::Integration(integration);
        self.push(RequestEvent::DeletionRequested {
            request,
            scope: connection.clone(),
            channel: Channel::InProduct,
            policy: PolicyName::YoutubeApiUserData,
            asked_policy: None,
            received_at: self.now,
            due_at: self.now + chrono::Duration::days(7),
            requested_by: Initiator::Platform,
            recorded_by: None,
            verification: Verification::NotRequired,
            contact: None,
            confirmation_code: None,
        })?;
        let analytics = subject(&format!("youtube:{channel_id}"))?;
        let steps = [
            (connection.clone(), ErasureStep::RevokeTokens),
            (analytics, ErasureStep::RemoveAnalyticsRows),
        ];
        let only_workspace = |target: &Subject, _: &Subject| {
            vec![target.clone(), Subject::Workspace(workspace.clone())]
        };
        self.release_and_carry_out(
            request,
            &workspace,
            &steps,
            &connection,
            &only_workspace,
            false,
        )?;
        Ok(())
    }

    /// Releases a task per step, then a worker claims and completes each
    /// (the first fails once first when `fail_first`), then the request
    /// completes.
    fn release_and_carry_out(
        &mut self,
        request: RequestId,
        workspace: &WorkspaceId,
        steps: &[(Subject, ErasureStep)],
        source: &Subject,
        covered_by: &dyn Fn(&Subject, &Subject) -> Vec<Subject>,
        fail_first: bool,
    ) -> anyhow::Result<()> {
        self.actor = "service:product";
        let mut tasks = Vec::with_capacity(steps.len());
        for (target, step) in steps {
            let task = TaskId::from_uuid(self.id());
            self.push(RequestEvent::TaskReleased {
                request,
                task,
                step: *step,
                target: target.clone(),
                workspace: Some(workspace.clone()),
                covered_by: covered_by(target, source),
            })?;
            tasks.push((task, target, *step));
        }
        self.actor = "service:worker";
        for (n, (task, target, step)) in tasks.into_iter().enumerate() {
            let worker = format!("worker-{}", n % 3);
            let claimed = RequestEvent::TaskClaimed {
                request,
                task,
                worker: worker.clone(),
                lease_until: self.now + chrono::Duration::minutes(10),
            };
            self.push(claimed.clone())?;
            if fail_first && n == 0 {
                self.push(RequestEvent::TaskFailed {
                    request,
                    task,
                    worker: worker.clone(),
                    attempt: 1,
                    error: self.texts.failure.clone().into(),
                    next_attempt_at: self.now + chrono::Duration::minutes(2),
                })?;
                // The retry claims again, with the same lease.
                self.push(claimed)?;
            }
            self.push(RequestEvent::TaskCompleted {
                request,
                task,
                step,
                target: target.clone(),
                worker,
            })?;
        }
        self.push(RequestEvent::DeletionCompleted {
            request,
            completed_at: self.now,
            residual_copies_purged_by: self.now + chrono::Duration::days(35),
        })
    }
}

/// Fills a log with tenant histories, across several calls.
#[derive(Debug)]
pub struct Loader {
    /// `None` while a fill runs (the generator works on another thread).
    tenants: Option<Tenants>,
    appends: usize,
    pub events: u64,
}

impl Loader {
    pub fn new(vault: Arc<Vault>) -> anyhow::Result<Self> {
        Ok(Self {
            tenants: Some(Tenants::new(vault, tokio::runtime::Handle::current())?),
            appends: 0,
            events: 0,
        })
    }

    /// Tenants whose whole history is in the log.
    pub fn tenants_complete(&self) -> usize {
        self.tenants.as_ref().map_or(0, |t| t.complete.max(1) - 1)
    }

    /// Appends until the log holds `total` events; the next appends are
    /// made on a blocking thread meanwhile. Returns the time it took.
    pub async fn fill_to(&mut self, store: &Arc<Store>, total: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut tenants = self.tenants.take().context("a fill is already running")?;
        let mut left = total.saturating_sub(self.events);
        let (send, mut receive) = tokio::sync::mpsc::channel::<Vec<NewEvent>>(APPENDS_AHEAD);
        let maker = tokio::task::spawn_blocking(move || {
            while left > 0 {
                let n = usize::try_from(left)
                    .unwrap_or(APPEND_EVENTS)
                    .min(APPEND_EVENTS);
                let events = tenants.take(n)?;
                left -= n as u64;
                if send.blocking_send(events).is_err() {
                    break;
                }
            }
            anyhow::Ok(tenants)
        });
        while let Some(events) = receive.recv().await {
            let n = events.len() as u64;
            self.appends += 1;
            store
                .append(AppendRequest {
                    stream: StreamId::new(format!("history-{}", self.appends)),
                    expected: ExpectedVersion::NoStream,
                    condition: None,
                    idempotency_key: None,
                    events,
                })
                .await
                .context("appending a page of history")?;
            self.events += n;
        }
        self.tenants = Some(maker.await.context("the history maker panicked")??);
        Ok(started.elapsed())
    }
}

/// Reads the whole log through the store port in pages of the runner's
/// size: what a rebuild cannot go below.
pub async fn read_log(store: &Store) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let mut sample = Sample::default();
    let mut after = 0;
    loop {
        let page_started = Instant::now();
        let events = store.read_all(after, PAGE_EVENTS_MAX).await?;
        let Some(last) = events.last() else { break };
        after = last.position;
        sample.ops += 1;
        sample.events += events.len() as u64;
        sample
            .latencies_us
            .push(page_started.elapsed().as_micros() as u64);
    }
    sample.elapsed = started.elapsed();
    sample.latencies_us.sort_unstable();
    Ok(sample)
}

/// One long operation that handled `events` events, as a sample: a
/// rate, no latency percentiles.
pub fn once(events: u64, elapsed: Duration) -> Sample {
    Sample {
        ops: 1,
        events,
        elapsed,
        ..Sample::default()
    }
}

/// Looks up the audit trail of one subject at a time, as an auditor
/// does: the first page (100 entries) of a file or of a workspace of a
/// tenant picked at random.
#[derive(Debug)]
pub struct Lookup {
    models: ReadModels,
    tenants: usize,
    state: u64,
}

pub fn lookups(models: &ReadModels, tenants: usize) -> Vec<Lookup> {
    vec![Lookup {
        models: models.clone(),
        tenants: tenants.max(1),
        state: 0x9e37_79b9_7f4a_7c15,
    }]
}

impl Lookup {
    /// xorshift64: reproducible picks without a dependency.
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

#[async_trait]
impl Op for Lookup {
    async fn run(&mut self) -> anyhow::Result<u64> {
        let pick = self.next();
        let tenant = (pick >> 8) as usize % self.tenants;
        let subject = lookup_subject(tenant, pick);
        let page = self
            .models
            .audit(&AuditQuery {
                subject: Some(subject.clone()),
                ..AuditQuery::default()
            })
            .await?;
        anyhow::ensure!(!page.entries.is_empty(), "no audit entry for {subject}");
        Ok(1)
    }
}

/// Exports every audit entry as CSV, page by page, into nothing; returns
/// the entries. Fails if a sealed value was left unopened.
pub async fn export_all(models: &ReadModels) -> anyhow::Result<u64> {
    let mut export = models.export_audit(AuditQuery::default(), ExportFormat::Csv);
    while let Some(chunk) = export.next_chunk().await? {
        let text = std::str::from_utf8(&chunk).context("the export is not UTF-8")?;
        anyhow::ensure!(
            !text.contains(domain::personal::SEALED_PREFIX),
            "the export shows a sealed value"
        );
    }
    Ok(export.rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn histories_are_stored_as_the_ledger_stores_them() {
        let vault = Arc::new(Vault::ephemeral());
        let runtime = tokio::runtime::Handle::current();
        let events = tokio::task::spawn_blocking(move || {
            let mut tenants = Tenants::new(vault, runtime)?;
            let events = tenants.take(2 * APPEND_EVENTS)?;
            anyhow::Ok((events, tenants.complete))
        })
        .await
        .unwrap()
        .unwrap();
        let (events, complete) = events;
        assert_eq!(events.len(), 2 * APPEND_EVENTS);
        assert!(complete > 10, "{complete} tenants");
        let mut types = std::collections::BTreeSet::new();
        for event in &events {
            let decoded =
                LedgerEvent::decode(&event.event_type, event.schema_version, &event.payload)
                    .expect("every event decodes");
            types.insert(decoded.event_type());
            let text = event.payload.to_string();
            assert!(!text.contains("UC000"), "a plain channel id: {text}");
            assert!(!text.contains("litigation"), "a plain reason: {text}");
        }
        let sealed = events
            .iter()
            .filter(|e| {
                e.payload
                    .to_string()
                    .contains(domain::personal::SEALED_PREFIX)
            })
            .count();
        assert!(sealed >= 3 * 10, "{sealed} events with sealed values");
        for expected in [
            "WorkspaceCreated",
            "MemberAdded",
            "ResourceRegistered",
            "IntegrationConnected",
            "IntegrationDisconnected",
            "HoldPlaced",
            "HoldLifted",
            "DeletionRequested",
            "DeletionBlocked",
            "DeletionResumed",
            "TaskReleased",
            "TaskClaimed",
            "TaskFailed",
            "TaskCompleted",
            "DeletionCompleted",
        ] {
            assert!(types.contains(expected), "no {expected} in {types:?}");
        }
    }

    #[test]
    fn lookups_name_subjects_of_the_histories() {
        assert_eq!(lookup_subject(7, 0), "workspace:ws-7");
        assert_eq!(lookup_subject(7, 1), "file:f-7-2");
        assert_eq!(lookup_subject(7, 3), "file:f-7-4");
    }
}
