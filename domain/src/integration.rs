//! Decisions on connections to YouTube, TikTok and Instagram (R1, R2, R4).

use crate::error::DomainError;
use crate::events::IntegrationEvent;
use crate::ids::{ExternalAccountId, IntegrationId, WorkspaceId};
use crate::inventory::Inventory;
use crate::membership::{open_workspace, require_owner_or_admin};
use crate::subject::{Platform, Subject};
use crate::text::Reason;
use crate::values::{Channel, Initiator};

/// R2: disconnecting never claims to delete what the platform itself holds.
pub fn platform_data_notice(platform: Platform) -> String {
    let (name, controls) = match platform {
        Platform::Youtube => ("YouTube and Google", "Google Account security settings"),
        Platform::Tiktok => ("TikTok", "the TikTok app or account permission settings"),
        Platform::Instagram => ("Instagram and Meta", "Meta or Instagram app settings"),
    };
    format!(
        "Disconnecting does not delete your {name} account or any data {name} stores; \
         use {controls} to revoke access or delete data held there."
    )
}

pub fn connect(
    inventory: &Inventory,
    integration: IntegrationId,
    workspace: WorkspaceId,
    platform: Platform,
    external_account: ExternalAccountId,
    connected_by: Initiator,
) -> Result<Vec<IntegrationEvent>, DomainError> {
    let subject = Subject::Integration(integration.clone());
    if inventory.is_erased(&subject) {
        return Err(DomainError::Erased(subject));
    }
    if inventory.knows(&subject) {
        return Err(DomainError::AlreadyExists(subject));
    }
    // R9: a connection made while the workspace's erasure is under way
    // would outlive it, its tokens never revoked.
    let facts = open_workspace(inventory, &workspace)?;
    require_owner_or_admin(facts, &workspace, &connected_by)?;
    Ok(vec![IntegrationEvent::IntegrationConnected {
        integration,
        workspace,
        platform,
        external_account,
        connected_by,
    }])
}

/// R1: by an owner or admin, or by the platform (R4: a Meta
/// deauthorization). From this event on the connection is unusable; the
/// clean-up steps follow as a deletion request scoped to the integration.
pub fn disconnect(
    inventory: &Inventory,
    integration: IntegrationId,
    disconnected_by: Initiator,
    channel: Channel,
    reason: Option<Reason>,
) -> Result<Vec<IntegrationEvent>, DomainError> {
    let subject = Subject::Integration(integration.clone());
    let facts = inventory
        .integrations
        .get(&integration)
        .ok_or_else(|| DomainError::UnknownSubject(subject.clone()))?;
    if facts.erased {
        return Err(DomainError::Erased(subject));
    }
    if facts.disconnected {
        return Err(DomainError::AlreadyDisconnected(subject));
    }
    // A member's role is read from the workspace's events; when they were
    // not read, the member cannot be shown to be owner or admin, so the
    // decision fails closed. The platform needs no role.
    match (inventory.workspaces.get(&facts.workspace), &disconnected_by) {
        (Some(workspace), _) => {
            require_owner_or_admin(workspace, &facts.workspace, &disconnected_by)?;
        }
        (None, Initiator::Platform) => {}
        (None, Initiator::Member { .. }) => {
            return Err(DomainError::NotOwnerOrAdmin {
                workspace: Subject::Workspace(facts.workspace.clone()),
            });
        }
    }
    Ok(vec![IntegrationEvent::IntegrationDisconnected {
        integration,
        workspace: facts.workspace.clone(),
        platform: facts.platform,
        external_account: facts.external_account.clone(),
        disconnected_by,
        channel,
        reason: reason.map(Into::into),
        platform_data_notice: platform_data_notice(facts.platform),
    }])
}

/// R4 / R5: every connection of `external` on `platform` that is not
/// erased, in every workspace. Disconnected ones are included, since their
/// retained records are still there for a data-deletion request; a
/// deauthorization skips those already disconnected.
pub fn connections_of(
    inventory: &Inventory,
    platform: Platform,
    external: &ExternalAccountId,
) -> Vec<IntegrationId> {
    inventory
        .integrations
        .iter()
        .filter(|(_, i)| i.platform == platform && &i.external_account == external && !i.erased)
        .map(|(id, _)| id.clone())
        .collect()
}
