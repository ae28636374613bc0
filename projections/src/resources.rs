//! Active resources: per resource, workspace and integration its place
//! (workspace, account, parent, source), the scopes that cover it, and
//! where it stands: active, disconnected, deletion pending, retained or
//! erased. "What do we still hold for workspace W / account A / Instagram
//! account X?" is a lookup by scope.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use commands::log::RecordedEvent;
use domain::events::{IntegrationEvent, LedgerEvent, RequestEvent, ResourceEvent, WorkspaceEvent};
use domain::subject::{ResourceKind, Subject};
use domain::values::RetentionBasis;

use crate::error::ReadModelError;
use crate::rows::{ReadModelTx, ResourceRow, ResourceState};

pub async fn apply(
    tx: &mut dyn ReadModelTx,
    recorded: &RecordedEvent,
    event: &LedgerEvent,
) -> Result<(), ReadModelError> {
    let at = recorded.occurred_at;
    let position = recorded.position;
    match event {
        LedgerEvent::Workspace(WorkspaceEvent::WorkspaceCreated { workspace, .. }) => {
            let subject = Subject::Workspace(workspace.clone()).to_string();
            let row = new_row(
                subject.clone(),
                "workspace",
                Some(workspace.to_string()),
                vec![subject],
                at,
                position,
            );
            tx.put_resource(row).await
        }
        LedgerEvent::Resource(ResourceEvent::ResourceRegistered {
            resource,
            workspace,
            account,
            parent,
            derived_from,
            ..
        }) => {
            let mut scopes = BTreeSet::from([resource.to_string()]);
            scopes.extend(workspace.iter().map(|w| format!("workspace:{w}")));
            scopes.extend(account.iter().map(|a| format!("account:{a}")));
            // Parents and sources were registered first; their scopes are
            // already transitive, so one level of lookup suffices.
            for above in parent.iter().chain(derived_from) {
                let above = above.to_string();
                match tx.resource(&above).await? {
                    Some(row) => scopes.extend(row.scopes),
                    None => {
                        scopes.insert(above);
                    }
                }
            }
            let mut row = new_row(
                resource.to_string(),
                resource.kind(),
                workspace.as_ref().map(ToString::to_string),
                scopes.into_iter().collect(),
                at,
                position,
            );
            row.account = account.as_ref().map(ToString::to_string);
            row.parent = parent.as_ref().map(ToString::to_string);
            row.derived_from = derived_from.as_ref().map(ToString::to_string);
            tx.put_resource(row).await
        }
        LedgerEvent::Integration(IntegrationEvent::IntegrationConnected {
            integration,
            workspace,
            platform,
            external_account,
            ..
        }) => {
            let subject = format!("integration:{integration}");
            let external = format!("{platform}:{external_account}");
            let scopes: BTreeSet<String> = [
                subject.clone(),
                format!("workspace:{workspace}"),
                external.clone(),
            ]
            .into();
            let mut row = new_row(
                subject,
                "integration",
                Some(workspace.to_string()),
                scopes.into_iter().collect(),
                at,
                position,
            );
            row.external_account = Some(external);
            tx.put_resource(row).await
        }
        LedgerEvent::Integration(IntegrationEvent::IntegrationDisconnected {
            integration, ..
        }) => {
            change(
                tx,
                &format!("integration:{integration}"),
                at,
                position,
                |row| {
                    row.disconnected_at.get_or_insert(at);
                },
            )
            .await
        }
        LedgerEvent::Request(RequestEvent::TaskReleased { target, .. }) => {
            change(tx, &target.to_string(), at, position, |row| {
                row.tasks_pending += 1;
            })
            .await
        }
        LedgerEvent::Request(RequestEvent::TaskCompleted { step, target, .. }) => {
            let erases = step.erases_target();
            change(tx, &target.to_string(), at, position, |row| {
                row.tasks_pending = (row.tasks_pending - 1).max(0);
                if erases {
                    row.erased_at.get_or_insert(at);
                }
            })
            .await
        }
        LedgerEvent::Request(RequestEvent::RetentionExceptionRecorded {
            target,
            basis,
            until,
            ..
        }) => {
            // The exception that ends last stands: a later one keeps the
            // record longer, never shorter. On a billing record only the
            // billing basis does, as for the planner (the others name
            // records kept about it), so that the retention sweep acts on
            // the end of its R14 period.
            change(tx, &target.to_string(), at, position, |row| {
                let counts = row.kind != ResourceKind::BillingRecord.as_str()
                    || *basis == RetentionBasis::Billing;
                if counts && row.retained_until.is_none_or(|kept| *until > kept) {
                    row.retained_basis = Some(basis.to_string());
                    row.retained_until = Some(*until);
                }
            })
            .await
        }
        _ => Ok(()),
    }
}

fn new_row(
    subject: String,
    kind: &str,
    workspace: Option<String>,
    scopes: Vec<String>,
    at: DateTime<Utc>,
    position: u64,
) -> ResourceRow {
    ResourceRow {
        subject,
        kind: kind.to_owned(),
        workspace,
        account: None,
        parent: None,
        derived_from: None,
        external_account: None,
        scopes,
        registered_at: at,
        disconnected_at: None,
        tasks_pending: 0,
        erased_at: None,
        retained_basis: None,
        retained_until: None,
        state: ResourceState::Active,
        since: at,
        position,
    }
}

/// Changes a known row and re-derives its state; events about subjects
/// that are not resources (accounts, external accounts) change nothing.
async fn change(
    tx: &mut dyn ReadModelTx,
    subject: &str,
    at: DateTime<Utc>,
    position: u64,
    edit: impl FnOnce(&mut ResourceRow) + Send,
) -> Result<(), ReadModelError> {
    let Some(mut row) = tx.resource(subject).await? else {
        return Ok(());
    };
    edit(&mut row);
    let state = state_of(&row);
    if state != row.state {
        row.state = state;
        row.since = at;
    }
    row.position = position;
    tx.put_resource(row).await
}

/// The state a row's facts give. Erased wins once no step on it is
/// pending (R12: nothing revives it); pending steps mean deletion pending
/// (the storage object of an erased file record is still there); then a
/// retention exception, then a disconnect.
pub fn state_of(row: &ResourceRow) -> ResourceState {
    if row.tasks_pending > 0 {
        ResourceState::DeletionPending
    } else if row.erased_at.is_some() {
        ResourceState::Erased
    } else if row.retained_basis.is_some() {
        ResourceState::Retained
    } else if row.disconnected_at.is_some() {
        ResourceState::Disconnected
    } else {
        ResourceState::Active
    }
}
