//! Deletion requests and their erasure tasks: receipt, verification,
//! refusal, holds (R7), planning (R6, R8, R9, R11, R14), worker claims,
//! failures and retries, and completion with the residual-copy date (R13).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::deadline::{PolicyName, PolicyTable};
use crate::error::{DomainError, InvalidInput};
use crate::events::{RefusalReason, RequestEvent};
use crate::ids::{AccountId, HoldId, RequestId, TaskId, WorkspaceId};
use crate::inventory::Inventory;
use crate::membership::live_workspace;
use crate::personal::Personal;
use crate::subject::{Platform, ResourceKind, Subject};
use crate::text::{refuse_card_number, Contact, Note, Reason};
use crate::values::{Channel, ErasureStep, Initiator, RetentionBasis, Role, Verification};

/// R14: billing and transaction records are kept this many years.
pub const BILLING_RETENTION_YEARS: i64 = 7;
/// The longest wait between two attempts of a failing task.
pub const RETRY_BACKOFF_MAX_MINUTES: i64 = 6 * 60;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for the requester to be verified.
    AwaitingVerification,
    /// Blocked by one or more holds.
    Blocked,
    /// Tasks released, some not done.
    InProgress,
    Completed,
    Refused,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::AwaitingVerification => "awaiting-verification",
            RequestState::Blocked => "blocked",
            RequestState::InProgress => "in-progress",
            RequestState::Completed => "completed",
            RequestState::Refused => "refused",
        }
    }
}

/// One erasure task as the request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub step: ErasureStep,
    pub target: Subject,
    pub workspace: Option<WorkspaceId>,
    pub covered_by: Vec<Subject>,
    pub lease: Option<(String, DateTime<Utc>)>,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<Personal>,
    pub completed: bool,
}

/// A deletion request folded from its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub scope: Subject,
    pub channel: Channel,
    pub policy: PolicyName,
    /// R3: the policy the caller named, when it is held to another.
    pub asked_policy: Option<PolicyName>,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub requested_by: Initiator,
    pub verified: bool,
    pub extended: bool,
    pub blocked_by: Vec<HoldId>,
    pub planned: bool,
    pub tasks: BTreeMap<TaskId, Task>,
    pub refused: Option<RefusalReason>,
    pub completed_at: Option<DateTime<Utc>>,
    pub residual_copies_purged_by: Option<DateTime<Utc>>,
    pub confirmation_code: Option<String>,
    /// When the requester was told that the request was received.
    pub receipt_confirmed_at: Option<DateTime<Utc>>,
}

impl Request {
    /// Whether `target` is within the request's scope: the scope itself,
    /// the target of one of its tasks, or what the plan the inventory
    /// gives the scope at `now` erases or keeps (a workspace's resources,
    /// their artifacts and its connections; a resource and its artifacts;
    /// an account's profile and credentials; the connections of an
    /// external account). Not a resource's children or references, which
    /// its erasure does not remove (R8), nor anything the inventory does
    /// not know.
    pub fn holds_within_scope(
        &self,
        inventory: &Inventory,
        target: &Subject,
        now: DateTime<Utc>,
    ) -> bool {
        if *target == self.scope || self.tasks.values().any(|task| task.target == *target) {
            return true;
        }
        let plan = plan(&self.scope, inventory, now);
        plan.steps.iter().any(|step| step.target == *target)
            || plan.retained.iter().any(|kept| kept.target == *target)
    }

    /// Folds a request's events; `None` before its first event.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a RequestEvent>) -> Option<Self> {
        let mut request: Option<Request> = None;
        for event in events {
            match (&mut request, event) {
                (
                    None,
                    RequestEvent::DeletionRequested {
                        request: id,
                        scope,
                        channel,
                        policy,
                        asked_policy,
                        received_at,
                        due_at,
                        requested_by,
                        verification,
                        confirmation_code,
                        ..
                    },
                ) => {
                    request = Some(Request {
                        id: *id,
                        scope: scope.clone(),
                        channel: *channel,
                        policy: *policy,
                        asked_policy: *asked_policy,
                        received_at: *received_at,
                        due_at: *due_at,
                        requested_by: requested_by.clone(),
                        verified: verification.is_satisfied(),
                        extended: false,
                        blocked_by: Vec::new(),
                        planned: false,
                        tasks: BTreeMap::new(),
                        refused: None,
                        completed_at: None,
                        residual_copies_purged_by: None,
                        confirmation_code: confirmation_code.clone(),
                        receipt_confirmed_at: None,
                    });
                }
                (Some(state), event) => state.apply(event),
                (None, _) => {}
            }
        }
        request
    }

    /// Folds one event in; no rules here, events are facts.
    pub fn apply(&mut self, event: &RequestEvent) {
        match event {
            RequestEvent::DeletionRequested { .. } => {}
            RequestEvent::RequestVerified { .. } => self.verified = true,
            RequestEvent::DeletionRefused { reason, .. } => self.refused = Some(reason.clone()),
            RequestEvent::DeletionBlocked { holds, .. } => self.blocked_by = holds.clone(),
            RequestEvent::DeletionResumed { .. } => self.blocked_by.clear(),
            RequestEvent::DeadlineExtended { due_at, .. } => {
                self.due_at = *due_at;
                self.extended = true;
            }
            RequestEvent::ReceiptConfirmed { confirmed_at, .. } => {
                self.receipt_confirmed_at.get_or_insert(*confirmed_at);
            }
            RequestEvent::TaskReleased {
                task,
                step,
                target,
                workspace,
                covered_by,
                ..
            } => {
                self.planned = true;
                self.tasks.insert(
                    *task,
                    Task {
                        step: *step,
                        target: target.clone(),
                        workspace: workspace.clone(),
                        covered_by: covered_by.clone(),
                        lease: None,
                        attempts: 0,
                        next_attempt_at: None,
                        last_error: None,
                        completed: false,
                    },
                );
            }
            RequestEvent::TaskClaimed {
                task,
                worker,
                lease_until,
                ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.lease = Some((worker.clone(), *lease_until));
                }
            }
            RequestEvent::TaskFailed {
                task,
                attempt,
                error,
                next_attempt_at,
                ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.lease = None;
                    t.attempts = *attempt;
                    t.last_error = Some(error.clone());
                    t.next_attempt_at = Some(*next_attempt_at);
                }
            }
            RequestEvent::TaskCompleted { task, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.lease = None;
                    t.completed = true;
                }
            }
            // A record kept on purpose is not a plan: one recorded by hand
            // before the tasks were released (the request awaiting its
            // verification, or blocked) leaves the erasure to be planned.
            // The plan's own kept records come with its tasks, or with the
            // completion when it has none.
            RequestEvent::RetentionExceptionRecorded { .. } => {}
            RequestEvent::DeletionCompleted {
                completed_at,
                residual_copies_purged_by,
                ..
            } => {
                self.planned = true;
                self.completed_at = Some(*completed_at);
                self.residual_copies_purged_by = Some(*residual_copies_purged_by);
            }
        }
    }

    pub fn state(&self) -> RequestState {
        if self.refused.is_some() {
            RequestState::Refused
        } else if self.completed_at.is_some() {
            RequestState::Completed
        } else if !self.verified {
            RequestState::AwaitingVerification
        } else if !self.blocked_by.is_empty() {
            RequestState::Blocked
        } else {
            RequestState::InProgress
        }
    }

    fn require_open(&self) -> Result<(), DomainError> {
        match self.state() {
            RequestState::Completed | RequestState::Refused => Err(DomainError::RequestClosed {
                state: self.state().as_str(),
            }),
            _ => Ok(()),
        }
    }
}

/// A new deletion request, as parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub request: RequestId,
    pub scope: Subject,
    pub channel: Channel,
    /// The policy the request is held to.
    pub policy: PolicyName,
    /// The policy the caller named, when `policy` is another (R3).
    pub asked_policy: Option<PolicyName>,
    pub requested_by: Initiator,
    /// R15: the operator who recorded an e-mail request.
    pub recorded_by: Option<String>,
    /// R15: how the operator verified the requester, for e-mail requests.
    pub verification: Option<Note>,
    pub contact: Option<Contact>,
    pub confirmation_code: Option<String>,
    /// R15: when the e-mail arrived, for a request that support records
    /// after it came in; `None`: at the decision's `now`. Only e-mail
    /// requests give it, within [`EMAIL_RECEIPT_DAYS_MAX`] before `now`.
    pub received_at: Option<DateTime<Utc>>,
}

/// How far before its recording an e-mail request may say it arrived: a
/// year; an older date is a typing error, not a mailbox.
pub const EMAIL_RECEIPT_DAYS_MAX: i64 = 365;

/// Receives a deletion request: checks who may ask for what, records the
/// request with its deadline, and takes it as far as it can go now.
pub fn receive(
    inventory: &Inventory,
    new: NewRequest,
    table: &PolicyTable,
    now: DateTime<Utc>,
    next_task_id: &mut dyn FnMut() -> TaskId,
) -> Result<Vec<RequestEvent>, DomainError> {
    if let Some(operator) = &new.recorded_by {
        refuse_card_number("recorded_by", operator)?;
    }
    match &new.scope {
        Subject::Request(_) | Subject::Hold(_) | Subject::Task(_) => {
            return Err(InvalidInput::new(
                "scope",
                "a deletion request names a resource, workspace, account, integration or external account",
            )
            .into())
        }
        Subject::External(_) | Subject::Account(_) => {}
        scope => {
            if inventory.is_erased(scope) {
                return Err(DomainError::Erased(scope.clone()));
            }
            if !inventory.knows(scope) {
                return Err(DomainError::UnknownSubject(scope.clone()));
            }
        }
    }
    if let Subject::Account(_) = &new.scope {
        if inventory.is_erased(&new.scope) {
            return Err(DomainError::Erased(new.scope.clone()));
        }
    }
    if let Subject::Workspace(workspace) = &new.scope {
        // R9: only the owner deletes a workspace (or the platform's own
        // retention policy, which acts for the owner's contract).
        let facts = live_workspace(inventory, workspace)?;
        let allowed = match &new.requested_by {
            Initiator::Member { account } => facts.role_of(account) == Some(Role::Owner),
            Initiator::Platform => new.channel == Channel::RetentionPolicy,
        };
        if !allowed {
            return Err(DomainError::NotWorkspaceOwner {
                workspace: new.scope.clone(),
            });
        }
    }
    // R15: an e-mail request is recorded by an operator, with the
    // verification they did.
    if new.channel == Channel::EmailToSupport {
        if new.recorded_by.is_none() {
            return Err(InvalidInput::new(
                "recorded_by",
                "an e-mail request names the operator who recorded it",
            )
            .into());
        }
        if new.verification.is_none() {
            return Err(InvalidInput::new(
                "verification",
                "an e-mail request says how the requester was verified",
            )
            .into());
        }
    }
    // R15: the deadline counts from the e-mail's arrival, which support
    // may record later; no other channel dates its own receipt.
    let received_at = match new.received_at {
        None => now,
        Some(_) if new.channel != Channel::EmailToSupport => {
            return Err(InvalidInput::new(
                "received_at",
                "only an e-mail request recorded by support gives its own receipt time",
            )
            .into())
        }
        Some(at) if at > now => {
            return Err(InvalidInput::new("received_at", "is in the future").into())
        }
        Some(at) if now - at > Duration::days(EMAIL_RECEIPT_DAYS_MAX) => {
            return Err(InvalidInput::new(
                "received_at",
                format!("is more than {EMAIL_RECEIPT_DAYS_MAX} days ago"),
            )
            .into())
        }
        Some(at) => at,
    };
    // R11: account deletion needs verification.
    let verification = match (&new.verification, &new.scope) {
        (Some(method), _) => Verification::Verified {
            method: method.clone().into(),
            by: new
                .recorded_by
                .clone()
                .unwrap_or_else(|| "requester".into()),
        },
        (None, Subject::Account(_)) => Verification::Pending,
        (None, _) => Verification::NotRequired,
    };
    let requested = RequestEvent::DeletionRequested {
        request: new.request,
        scope: new.scope,
        channel: new.channel,
        policy: new.policy,
        asked_policy: new.asked_policy.filter(|asked| *asked != new.policy),
        received_at,
        due_at: table.due_at(new.policy, received_at),
        requested_by: new.requested_by,
        recorded_by: new.recorded_by,
        verification,
        contact: new.contact.map(Into::into),
        confirmation_code: new.confirmation_code,
    };
    let state =
        Request::from_events([&requested]).expect("a request starts with DeletionRequested");
    let mut events = vec![requested];
    events.extend(progress(&state, inventory, table, now, next_task_id));
    Ok(events)
}

/// Records that the requester was verified, then moves the request on.
pub fn verify(
    request: &Request,
    inventory: &Inventory,
    method: Note,
    verified_by: String,
    table: &PolicyTable,
    now: DateTime<Utc>,
    next_task_id: &mut dyn FnMut() -> TaskId,
) -> Result<Vec<RequestEvent>, DomainError> {
    refuse_card_number("verified_by", &verified_by)?;
    request.require_open()?;
    if request.verified {
        return Ok(Vec::new());
    }
    let verified = RequestEvent::RequestVerified {
        request: request.id,
        method: method.into(),
        verified_by,
    };
    let mut state = request.clone();
    state.apply(&verified);
    let mut events = vec![verified];
    events.extend(progress(&state, inventory, table, now, next_task_id));
    Ok(events)
}

/// Refuses a request whose requester could not be verified (R11, R15).
/// Only a request still awaiting verification: once verified, its erasure
/// is decided, and a refusal would leave it half done.
pub fn refuse_unverified(
    request: &Request,
    detail: Note,
) -> Result<Vec<RequestEvent>, DomainError> {
    request.require_open()?;
    if request.verified {
        return Err(DomainError::AlreadyVerified);
    }
    Ok(vec![RequestEvent::DeletionRefused {
        request: request.id,
        reason: RefusalReason::VerificationFailed {
            detail: detail.into(),
        },
    }])
}

/// Takes an open request as far as the ledger allows at this position:
/// refuse (R11), block on holds (R7), resume, release tasks, complete.
/// Returns nothing when there is nothing to do, so it can be called again
/// at any time (the reaction to holds relies on that).
pub fn progress(
    request: &Request,
    inventory: &Inventory,
    table: &PolicyTable,
    now: DateTime<Utc>,
    next_task_id: &mut dyn FnMut() -> TaskId,
) -> Vec<RequestEvent> {
    let open = !matches!(
        request.state(),
        RequestState::Completed | RequestState::Refused
    );
    if !open || !request.verified {
        return Vec::new();
    }
    // R11 decides whether the account may go before anything is erased;
    // once its tasks are out, a change of membership does not take the
    // decision back (a hold suspends them instead, R7).
    if let (Subject::Account(account), false) = (&request.scope, request.planned) {
        let shared: Vec<WorkspaceId> = inventory
            .workspaces
            .iter()
            .filter(|(_, w)| {
                // Members whose accounts were erased, or whose erasure is
                // under way (nothing takes it back), use it no more, and
                // such an owner owns it no more: two co-owners leaving at
                // once would otherwise each count on the other.
                let staying = |member: &&AccountId| {
                    !inventory.erased_accounts.contains(*member)
                        && !inventory.is_being_erased(&Subject::Account((*member).clone()))
                };
                let other_owners = w.owners().filter(staying).any(|owner| owner != account);
                let others_in_use = w.members.keys().filter(staying).any(|m| m != account);
                !w.erased
                    && w.role_of(account) == Some(Role::Owner)
                    && !other_owners
                    && others_in_use
            })
            .map(|(id, _)| id.clone())
            .collect();
        if !shared.is_empty() {
            return vec![RequestEvent::DeletionRefused {
                request: request.id,
                reason: RefusalReason::SoleOwnerOfSharedWorkspace { workspaces: shared },
            }];
        }
    }
    // Every task of the plan done: nothing is left for a hold to suspend
    // (a request left so by an earlier build completes here).
    if request.planned && request.tasks.values().all(|t| t.completed) {
        return vec![completed(request.id, table, now)];
    }
    let plan = if request.planned {
        None
    } else {
        Some(plan(&request.scope, inventory, now))
    };
    // The holds that matter: those covering any pending task, or any
    // target of the plan still to release.
    let mut scopes: Vec<Subject> = match &plan {
        Some(plan) => plan
            .steps
            .iter()
            .flat_map(|s| s.covered_by.clone())
            .collect(),
        None => request
            .tasks
            .values()
            .filter(|t| !t.completed)
            .flat_map(|t| t.covered_by.clone())
            .collect(),
    };
    scopes.extend(inventory.covering_scopes(&request.scope));
    scopes.sort();
    scopes.dedup();
    let holds = inventory.active_holds_on(&scopes);
    let mut events = Vec::new();
    if !holds.is_empty() {
        if holds != request.blocked_by {
            events.push(RequestEvent::DeletionBlocked {
                request: request.id,
                holds,
            });
        }
        return events;
    }
    if !request.blocked_by.is_empty() {
        events.push(RequestEvent::DeletionResumed {
            request: request.id,
        });
    }
    let mut all_done = request.tasks.values().all(|t| t.completed);
    if let Some(plan) = plan {
        for step in plan.steps {
            all_done = false;
            events.push(RequestEvent::TaskReleased {
                request: request.id,
                task: next_task_id(),
                step: step.step,
                target: step.target,
                workspace: step.workspace,
                covered_by: step.covered_by,
            });
        }
        for kept in plan.retained {
            events.push(RequestEvent::RetentionExceptionRecorded {
                request: request.id,
                target: kept.target,
                basis: kept.basis,
                until: kept.until,
                note: kept.note.into(),
            });
        }
    }
    if all_done {
        events.push(completed(request.id, table, now));
    }
    events
}

fn completed(request: RequestId, table: &PolicyTable, now: DateTime<Utc>) -> RequestEvent {
    RequestEvent::DeletionCompleted {
        request,
        completed_at: now,
        residual_copies_purged_by: table.residual_copies_purged_by(now),
    }
}

/// The end of the billing retention (R14) that starts at `from`:
/// [`BILLING_RETENTION_YEARS`] calendar years on (29 February goes to
/// 28 February).
pub fn billing_retention_end(from: DateTime<Utc>) -> DateTime<Utc> {
    let months = u32::try_from(12 * BILLING_RETENTION_YEARS).expect("a small constant");
    from.checked_add_months(chrono::Months::new(months))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One planned erasure step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub step: ErasureStep,
    pub target: Subject,
    pub workspace: Option<WorkspaceId>,
    pub covered_by: Vec<Subject>,
}

/// A record the plan keeps on purpose (R14), until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRetention {
    pub target: Subject,
    pub basis: RetentionBasis,
    pub until: DateTime<Utc>,
    pub note: Note,
}

/// What erasing a scope takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    pub retained: Vec<PlannedRetention>,
}

impl Plan {
    fn step(
        &mut self,
        inventory: &Inventory,
        step: ErasureStep,
        target: Subject,
        workspace: Option<WorkspaceId>,
    ) {
        let covered_by = inventory.covering_scopes(&target);
        self.steps.push(PlannedStep {
            step,
            target,
            workspace,
            covered_by,
        });
    }
}

/// The erasure steps for a scope, from what the inventory knows at `now`
/// (a retention that has ended no longer keeps its record).
pub fn plan(scope: &Subject, inventory: &Inventory, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    match scope {
        Subject::Resource(_) => plan_resource(&mut plan, inventory, scope, now),
        Subject::Workspace(workspace) => {
            let resources: Vec<Subject> = inventory
                .resources_in(workspace)
                .filter(|r| r.derived_from.is_none())
                .map(|r| r.subject.clone())
                .collect();
            for resource in resources {
                plan_resource(&mut plan, inventory, &resource, now);
            }
            let integrations: Vec<_> = inventory
                .integrations
                .iter()
                .filter(|(_, i)| &i.workspace == workspace && !i.erased)
                .map(|(id, _)| id.clone())
                .collect();
            for integration in integrations {
                plan_integration(
                    &mut plan,
                    inventory,
                    &Subject::Integration(integration),
                    Some(workspace),
                );
            }
            plan.step(
                inventory,
                ErasureStep::RemoveMembers,
                scope.clone(),
                Some(workspace.clone()),
            );
            plan.step(
                inventory,
                ErasureStep::RemoveRecord,
                scope.clone(),
                Some(workspace.clone()),
            );
        }
        Subject::Account(account) => {
            // R11: the profile and credentials go; workspace content stays.
            let own: Vec<Subject> = inventory
                .resources
                .values()
                .filter(|r| {
                    !r.erased && r.kind.is_account_data() && r.account.as_ref() == Some(account)
                })
                .map(|r| r.subject.clone())
                .collect();
            for resource in own {
                plan.step(inventory, ErasureStep::RemoveRecord, resource, None);
            }
            plan.step(inventory, ErasureStep::RemoveRecord, scope.clone(), None);
        }
        Subject::Integration(id) => {
            let workspace = inventory.integrations.get(id).map(|i| i.workspace.clone());
            plan_integration(&mut plan, inventory, scope, workspace.as_ref());
        }
        Subject::External(external) => {
            // R5: every matching connection, in every workspace.
            let matching: Vec<_> = inventory
                .integrations
                .iter()
                .filter(|(_, i)| {
                    i.platform == external.platform
                        && i.external_account == external.id
                        && !i.erased
                })
                .map(|(id, i)| (id.clone(), i.workspace.clone()))
                .collect();
            for (integration, workspace) in matching {
                let target = Subject::Integration(integration);
                if external.platform == Platform::Instagram {
                    plan.step(
                        inventory,
                        ErasureStep::DeactivateConnectionRecord,
                        target.clone(),
                        Some(workspace.clone()),
                    );
                    plan.step(
                        inventory,
                        ErasureStep::RemoveAnalyticsRows,
                        target,
                        Some(workspace),
                    );
                } else {
                    plan_integration(&mut plan, inventory, &target, Some(&workspace));
                }
            }
        }
        Subject::Request(_) | Subject::Hold(_) | Subject::Task(_) => {}
    }
    plan
}

/// R1: revoke tokens, clear analytics caches, deactivate the connection
/// record, remove retained analytics rows.
fn plan_integration(
    plan: &mut Plan,
    inventory: &Inventory,
    target: &Subject,
    workspace: Option<&WorkspaceId>,
) {
    for step in [
        ErasureStep::RevokeTokens,
        ErasureStep::ClearAnalyticsCache,
        ErasureStep::RemoveAnalyticsRows,
        ErasureStep::DeactivateConnectionRecord,
    ] {
        plan.step(inventory, step, target.clone(), workspace.cloned());
    }
}

/// R6 / R8 / R14 for one resource and what derives from it.
///
/// A billing record is kept for [`BILLING_RETENTION_YEARS`] calendar years
/// from the first request that met it (or until the latest end date
/// recorded for it on the billing basis). A later request records the
/// same end date again (its proof shows the record kept, and until when),
/// never a later one; once that date has passed, the record is erased
/// like any other. Exceptions on other bases do not stand for the plan:
/// they name records kept about the target, not the target itself.
fn plan_resource(plan: &mut Plan, inventory: &Inventory, resource: &Subject, now: DateTime<Utc>) {
    let Some(facts) = inventory.resources.get(resource) else {
        return;
    };
    if facts.erased {
        return;
    }
    let workspace = facts.workspace.clone();
    if facts.kind == ResourceKind::BillingRecord {
        let until = facts
            .billing_kept_until
            .unwrap_or_else(|| billing_retention_end(now));
        if until > now {
            plan.retained.push(PlannedRetention {
                target: resource.clone(),
                basis: RetentionBasis::Billing,
                until,
                note: Note::parse("billing and transaction records are kept for tax, accounting, fraud-prevention and legal reasons")
                    .expect("a constant note is valid"),
            });
            // What was derived from the record (its OCR text, say) is not
            // the record R14 keeps: it goes as a file's artifacts do (R6).
            plan_derived(plan, inventory, resource, now);
            return;
        }
    }
    if facts.kind.is_derived_artifact() {
        let step = if facts.kind == ResourceKind::SearchIndexEntry {
            ErasureStep::RemoveSearchIndexEntries
        } else {
            ErasureStep::PurgeDerivedArtifact
        };
        plan.step(inventory, step, resource.clone(), workspace);
        // Registration refuses an artifact of an artifact; one stored
        // before it did goes with its source.
        plan_derived(plan, inventory, resource, now);
        return;
    }
    plan.step(
        inventory,
        ErasureStep::RemoveRecord,
        resource.clone(),
        workspace.clone(),
    );
    plan_derived(plan, inventory, resource, now);
    if facts.kind == ResourceKind::File {
        plan.step(
            inventory,
            ErasureStep::RemoveReferences,
            resource.clone(),
            workspace.clone(),
        );
        plan.step(
            inventory,
            ErasureStep::DeleteStorageObject,
            resource.clone(),
            workspace,
        );
    }
}

/// Plans the erasure of every artifact derived from `resource`.
fn plan_derived(plan: &mut Plan, inventory: &Inventory, resource: &Subject, now: DateTime<Utc>) {
    let derived: Vec<Subject> = inventory
        .derived_from(resource)
        .map(|r| r.subject.clone())
        .collect();
    for artifact in derived {
        plan_resource(plan, inventory, &artifact, now);
    }
}

/// Extends the deadline under the request's policy.
pub fn extend(
    request: &Request,
    reason: Option<Reason>,
    table: &PolicyTable,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    request.require_open()?;
    let due_at = table.extend(
        request.policy,
        request.received_at,
        request.due_at,
        request.extended,
        reason.as_ref(),
        now,
    )?;
    let reason =
        reason.ok_or_else(|| DomainError::ExtensionRefused("a reason is required".into()))?;
    Ok(vec![RequestEvent::DeadlineExtended {
        request: request.id,
        due_at,
        reason: reason.into(),
    }])
}

/// Records that the requester was told the request was received, at
/// `confirmed_at` (a confirmation sent before it was recorded) or `now`.
/// The time lies between the receipt and `now`. A request is confirmed
/// once: a second confirmation stores nothing, and the caller answers
/// with the first time. Any state accepts it, since a refused or
/// completed request was received too.
pub fn confirm_receipt(
    request: &Request,
    confirmed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    if request.receipt_confirmed_at.is_some() {
        return Ok(Vec::new());
    }
    let confirmed_at = confirmed_at.unwrap_or(now);
    if confirmed_at > now {
        return Err(InvalidInput::new("confirmed_at", "is in the future").into());
    }
    if confirmed_at < request.received_at {
        return Err(InvalidInput::new("confirmed_at", "is before the request was received").into());
    }
    Ok(vec![RequestEvent::ReceiptConfirmed {
        request: request.id,
        confirmed_at,
    }])
}

/// A worker claims a task under a lease. Refused while a hold covers the
/// task (the caller reads holds at a position and appends on the
/// condition that no hold on those scopes was placed since).
pub fn claim(
    request: &Request,
    inventory: &Inventory,
    task: TaskId,
    worker: String,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    refuse_card_number("worker", &worker)?;
    request.require_open()?;
    let t = request
        .tasks
        .get(&task)
        .ok_or(DomainError::UnknownTask(task))?;
    if t.completed {
        return Err(DomainError::TaskAlreadyCompleted(task));
    }
    let not_claimable = |why: String| Err(DomainError::TaskNotClaimable { task, why });
    let holds = inventory.active_holds_on(&t.covered_by);
    if !holds.is_empty() {
        let ids: Vec<String> = holds.iter().map(ToString::to_string).collect();
        return not_claimable(format!("blocked by hold {}", ids.join(", ")));
    }
    if let Some((holder, until)) = &t.lease {
        if *until > now && *holder != worker {
            return not_claimable(format!("leased to {holder} until {until}"));
        }
    }
    if let Some(next) = t.next_attempt_at {
        if next > now {
            return not_claimable(format!("next attempt not before {next}"));
        }
    }
    Ok(vec![RequestEvent::TaskClaimed {
        request: request.id,
        task,
        worker,
        lease_until,
    }])
}

fn require_lease<'a>(
    request: &'a Request,
    task: TaskId,
    worker: &str,
) -> Result<&'a Task, DomainError> {
    let t = request
        .tasks
        .get(&task)
        .ok_or(DomainError::UnknownTask(task))?;
    if t.completed {
        return Err(DomainError::TaskAlreadyCompleted(task));
    }
    match &t.lease {
        Some((holder, _)) if holder == worker => Ok(t),
        _ => Err(DomainError::NotLeaseHolder {
            task,
            worker: worker.to_owned(),
        }),
    }
}

/// The lease holder reports the step done; the last step completes the
/// request, with the date by which residual copies are purged (R13).
pub fn complete_task(
    request: &Request,
    task: TaskId,
    worker: String,
    table: &PolicyTable,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    let t = require_lease(request, task, &worker)?;
    let mut events = vec![RequestEvent::TaskCompleted {
        request: request.id,
        task,
        step: t.step,
        target: t.target.clone(),
        worker,
    }];
    let rest_done = request
        .tasks
        .iter()
        .all(|(id, other)| *id == task || other.completed);
    // Done is done, under a hold or not: a hold placed while this task
    // was leased suspends nothing once no task is left, and waiting for
    // its lift would date the completion (and R13's purge date) then.
    if rest_done {
        events.push(completed(request.id, table, now));
    }
    Ok(events)
}

/// R6: a failed attempt is recorded and retried after a growing pause.
pub fn fail_task(
    request: &Request,
    task: TaskId,
    worker: String,
    error: Note,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    let t = require_lease(request, task, &worker)?;
    let attempt = t.attempts + 1;
    let backoff_minutes = 1_i64
        .checked_shl(attempt.saturating_sub(1).min(20))
        .unwrap_or(i64::MAX)
        .min(RETRY_BACKOFF_MAX_MINUTES);
    Ok(vec![RequestEvent::TaskFailed {
        request: request.id,
        task,
        worker,
        attempt,
        error: error.into(),
        next_attempt_at: now + Duration::minutes(backoff_minutes),
    }])
}

/// R1 / R14: a record kept on purpose, with basis and end date. The
/// record must be one the request would otherwise erase (see
/// [`Request::holds_within_scope`]): an exception names what it keeps, and
/// a target outside the scope would read in the audit as kept by a
/// request that never covered it.
pub fn record_retention(
    request: &Request,
    inventory: &Inventory,
    target: Subject,
    basis: RetentionBasis,
    until: DateTime<Utc>,
    note: Note,
    now: DateTime<Utc>,
) -> Result<Vec<RequestEvent>, DomainError> {
    request.require_open()?;
    if until <= now {
        return Err(InvalidInput::new("until", "the end date must be in the future").into());
    }
    if !request.holds_within_scope(inventory, &target, now) {
        return Err(InvalidInput::new(
            "target",
            format!(
                "{target} is not within this request's scope {}: name the scope, \
                 something its erasure removes or keeps, or a target of one of its tasks",
                request.scope
            ),
        )
        .into());
    }
    Ok(vec![RequestEvent::RetentionExceptionRecorded {
        request: request.id,
        target,
        basis,
        until,
        note: note.into(),
    }])
}
