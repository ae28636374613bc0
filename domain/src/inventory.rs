//! What the ledger knows about the subjects a decision touches: a fold over
//! the events read for that decision (by tag, across streams). Decisions
//! that span aggregates read an [`Inventory`] at a log position and are
//! appended on the condition that none of its tags moved since.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::events::{
    HoldEvent, IntegrationEvent, LedgerEvent, RequestEvent, ResourceEvent, WorkspaceEvent,
};
use crate::ids::{AccountId, ExternalAccountId, HoldId, IntegrationId, TaskId, WorkspaceId};
use crate::personal::Personal;
use crate::subject::{Platform, ResourceKind, Subject};
use crate::values::{ErasureStep, HoldKind, RetentionBasis, Role};

/// A workspace as far as the events read show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceFacts {
    pub owner: AccountId,
    pub members: BTreeMap<AccountId, Role>,
    pub erased: bool,
}

impl WorkspaceFacts {
    pub fn role_of(&self, account: &AccountId) -> Option<Role> {
        self.members.get(account).copied()
    }

    pub fn owners(&self) -> impl Iterator<Item = &AccountId> {
        self.members
            .iter()
            .filter(|(_, role)| **role == Role::Owner)
            .map(|(account, _)| account)
    }
}

/// A product resource as far as the events read show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFacts {
    pub subject: Subject,
    pub kind: ResourceKind,
    pub workspace: Option<WorkspaceId>,
    pub account: Option<AccountId>,
    pub parent: Option<Subject>,
    pub derived_from: Option<Subject>,
    pub references: Vec<Subject>,
    pub created_by: Option<AccountId>,
    pub erased: bool,
    /// The latest end date of the retention exceptions recorded for it on
    /// the billing basis (R14), which alone decides how long a billing
    /// record is kept: a later exception can keep it longer, never
    /// shorter. Exceptions on other bases name records kept about the
    /// resource, not the resource.
    pub billing_kept_until: Option<DateTime<Utc>>,
}

/// A connection to an external platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationFacts {
    pub workspace: WorkspaceId,
    pub platform: Platform,
    pub external_account: ExternalAccountId,
    pub disconnected: bool,
    pub erased: bool,
}

/// A hold, active or lifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldFacts {
    pub scope: Subject,
    pub kind: HoldKind,
    pub matter: Personal,
    pub active: bool,
}

/// The fold itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub workspaces: BTreeMap<WorkspaceId, WorkspaceFacts>,
    pub resources: BTreeMap<Subject, ResourceFacts>,
    pub integrations: BTreeMap<IntegrationId, IntegrationFacts>,
    pub holds: BTreeMap<HoldId, HoldFacts>,
    /// Released tasks: what they erase, so completion marks it erased.
    tasks: BTreeMap<TaskId, (ErasureStep, Subject)>,
    /// Accounts whose account record was erased (R11, R12).
    pub erased_accounts: BTreeSet<AccountId>,
    /// Subjects with a released task that erases them, not yet completed.
    erasing: BTreeSet<Subject>,
}

impl Inventory {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a LedgerEvent>) -> Self {
        let mut inventory = Inventory::default();
        for event in events {
            inventory.apply(event);
        }
        inventory
    }

    /// Folds one event in. Infallible and free of rules: events are facts.
    pub fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Workspace(event) => self.apply_workspace(event),
            LedgerEvent::Resource(event) => self.apply_resource(event),
            LedgerEvent::Integration(event) => self.apply_integration(event),
            LedgerEvent::Hold(event) => self.apply_hold(event),
            LedgerEvent::Request(event) => self.apply_request(event),
            LedgerEvent::Callback(_) | LedgerEvent::Privacy(_) => {}
        }
    }

    fn apply_workspace(&mut self, event: &WorkspaceEvent) {
        match event {
            WorkspaceEvent::WorkspaceCreated { workspace, owner } => {
                let members = BTreeMap::from([(owner.clone(), Role::Owner)]);
                self.workspaces.insert(
                    workspace.clone(),
                    WorkspaceFacts {
                        owner: owner.clone(),
                        members,
                        erased: false,
                    },
                );
            }
            WorkspaceEvent::MemberAdded {
                workspace,
                account,
                role,
                ..
            } => {
                if let Some(facts) = self.workspaces.get_mut(workspace) {
                    facts.members.insert(account.clone(), *role);
                }
            }
            WorkspaceEvent::MemberRemoved {
                workspace, account, ..
            } => {
                if let Some(facts) = self.workspaces.get_mut(workspace) {
                    facts.members.remove(account);
                }
            }
        }
    }

    fn apply_resource(&mut self, event: &ResourceEvent) {
        let ResourceEvent::ResourceRegistered {
            resource,
            workspace,
            account,
            parent,
            derived_from,
            references,
            created_by,
        } = event;
        if let Subject::Resource(r) = resource {
            self.resources.insert(
                resource.clone(),
                ResourceFacts {
                    subject: resource.clone(),
                    kind: r.kind,
                    workspace: workspace.clone(),
                    account: account.clone(),
                    parent: parent.clone(),
                    derived_from: derived_from.clone(),
                    references: references.clone(),
                    created_by: created_by.clone(),
                    erased: false,
                    billing_kept_until: None,
                },
            );
        }
    }

    fn apply_integration(&mut self, event: &IntegrationEvent) {
        match event {
            IntegrationEvent::IntegrationConnected {
                integration,
                workspace,
                platform,
                external_account,
                ..
            } => {
                self.integrations.insert(
                    integration.clone(),
                    IntegrationFacts {
                        workspace: workspace.clone(),
                        platform: *platform,
                        external_account: external_account.clone(),
                        disconnected: false,
                        erased: false,
                    },
                );
            }
            IntegrationEvent::IntegrationDisconnected { integration, .. } => {
                if let Some(facts) = self.integrations.get_mut(integration) {
                    facts.disconnected = true;
                }
            }
        }
    }

    fn apply_hold(&mut self, event: &HoldEvent) {
        match event {
            HoldEvent::HoldPlaced {
                hold,
                scope,
                kind,
                matter,
                ..
            } => {
                self.holds.insert(
                    *hold,
                    HoldFacts {
                        scope: scope.clone(),
                        kind: *kind,
                        matter: matter.clone(),
                        active: true,
                    },
                );
            }
            HoldEvent::HoldLifted { hold, .. } => {
                if let Some(facts) = self.holds.get_mut(hold) {
                    facts.active = false;
                }
            }
        }
    }

    fn apply_request(&mut self, event: &RequestEvent) {
        match event {
            RequestEvent::TaskReleased {
                task, step, target, ..
            } => {
                self.tasks.insert(*task, (*step, target.clone()));
                if step.erases_target() {
                    self.erasing.insert(target.clone());
                }
            }
            RequestEvent::TaskCompleted { step, target, .. } if step.erases_target() => {
                self.mark_erased(target);
            }
            RequestEvent::RetentionExceptionRecorded {
                target,
                basis,
                until,
                ..
            } => {
                if let Some(facts) = self.resources.get_mut(target) {
                    if *basis == RetentionBasis::Billing {
                        facts.billing_kept_until = facts.billing_kept_until.max(Some(*until));
                    }
                }
            }
            _ => {}
        }
    }

    fn mark_erased(&mut self, target: &Subject) {
        self.erasing.remove(target);
        match target {
            Subject::Workspace(id) => {
                if let Some(facts) = self.workspaces.get_mut(id) {
                    facts.erased = true;
                }
            }
            Subject::Integration(id) => {
                if let Some(facts) = self.integrations.get_mut(id) {
                    facts.erased = true;
                }
            }
            Subject::Account(id) => {
                self.erased_accounts.insert(id.clone());
            }
            Subject::Resource(_) => {
                if let Some(facts) = self.resources.get_mut(target) {
                    facts.erased = true;
                }
            }
            Subject::External(_) | Subject::Request(_) | Subject::Hold(_) | Subject::Task(_) => {}
        }
    }

    /// R12: true when the subject was erased from active systems.
    pub fn is_erased(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Workspace(id) => self.workspaces.get(id).is_some_and(|w| w.erased),
            Subject::Integration(id) => self.integrations.get(id).is_some_and(|i| i.erased),
            Subject::Account(id) => self.erased_accounts.contains(id),
            Subject::Resource(_) => self.resources.get(subject).is_some_and(|r| r.erased),
            Subject::External(_) | Subject::Request(_) | Subject::Hold(_) | Subject::Task(_) => {
                false
            }
        }
    }

    /// True while a released task that erases the subject is not done: its
    /// erasure is planned and under way.
    pub fn is_being_erased(&self, subject: &Subject) -> bool {
        self.erasing.contains(subject)
    }

    /// True when the ledger has heard of the subject.
    pub fn knows(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Workspace(id) => self.workspaces.contains_key(id),
            Subject::Integration(id) => self.integrations.contains_key(id),
            Subject::Resource(_) => self.resources.contains_key(subject),
            Subject::Account(id) => {
                self.erased_accounts.contains(id)
                    || self.workspaces.values().any(|w| w.members.contains_key(id))
                    || self
                        .resources
                        .values()
                        .any(|r| r.account.as_ref() == Some(id))
            }
            Subject::External(_) | Subject::Request(_) | Subject::Hold(_) | Subject::Task(_) => {
                true
            }
        }
    }

    /// The scopes whose holds cover `target`: the target itself, its
    /// workspace, its account, its parents and its source file, transitively.
    pub fn covering_scopes(&self, target: &Subject) -> Vec<Subject> {
        let mut scopes = BTreeSet::new();
        let mut pending = vec![target.clone()];
        while let Some(subject) = pending.pop() {
            if !scopes.insert(subject.clone()) {
                continue;
            }
            match &subject {
                Subject::Resource(_) => {
                    if let Some(facts) = self.resources.get(&subject) {
                        pending.extend(facts.workspace.iter().cloned().map(Subject::Workspace));
                        pending.extend(facts.account.iter().cloned().map(Subject::Account));
                        pending.extend(facts.parent.iter().cloned());
                        pending.extend(facts.derived_from.iter().cloned());
                    }
                }
                Subject::Integration(id) => {
                    if let Some(facts) = self.integrations.get(id) {
                        pending.push(Subject::Workspace(facts.workspace.clone()));
                    }
                }
                _ => {}
            }
        }
        scopes.into_iter().collect()
    }

    /// The active holds whose scope is one of `scopes`.
    pub fn active_holds_on(&self, scopes: &[Subject]) -> Vec<HoldId> {
        self.holds
            .iter()
            .filter(|(_, hold)| hold.active && scopes.contains(&hold.scope))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Resources that live in `workspace` and are not erased.
    pub fn resources_in<'a>(
        &'a self,
        workspace: &'a WorkspaceId,
    ) -> impl Iterator<Item = &'a ResourceFacts> {
        self.resources
            .values()
            .filter(move |r| !r.erased && r.workspace.as_ref() == Some(workspace))
    }

    /// Artifacts derived from `file` that are not erased.
    pub fn derived_from<'a>(
        &'a self,
        file: &'a Subject,
    ) -> impl Iterator<Item = &'a ResourceFacts> {
        self.resources
            .values()
            .filter(move |r| !r.erased && r.derived_from.as_ref() == Some(file))
    }
}
