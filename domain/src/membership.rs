//! Decisions on workspaces, their members and product resources.

use crate::error::DomainError;
use crate::events::{ResourceEvent, WorkspaceEvent};
use crate::ids::{AccountId, WorkspaceId};
use crate::inventory::{Inventory, WorkspaceFacts};
use crate::subject::Subject;
use crate::values::{Initiator, Role};

/// The workspace, known and not erased (R12).
pub fn live_workspace<'a>(
    inventory: &'a Inventory,
    workspace: &WorkspaceId,
) -> Result<&'a WorkspaceFacts, DomainError> {
    let subject = Subject::Workspace(workspace.clone());
    let facts = inventory
        .workspaces
        .get(workspace)
        .ok_or_else(|| DomainError::UnknownSubject(subject.clone()))?;
    if facts.erased {
        return Err(DomainError::Erased(subject));
    }
    Ok(facts)
}

/// The workspace, known, not erased and not being erased: what is added
/// to a workspace whose erasure is planned already would be left behind
/// by it (R9).
pub fn open_workspace<'a>(
    inventory: &'a Inventory,
    workspace: &WorkspaceId,
) -> Result<&'a WorkspaceFacts, DomainError> {
    let facts = live_workspace(inventory, workspace)?;
    let subject = Subject::Workspace(workspace.clone());
    if inventory.is_being_erased(&subject) {
        return Err(DomainError::BeingErased(subject));
    }
    Ok(facts)
}

/// The account, neither erased (R12) nor being erased: a workspace or
/// membership given to an account whose erasure is under way would
/// outlive it.
fn open_account(inventory: &Inventory, account: &AccountId) -> Result<(), DomainError> {
    let subject = Subject::Account(account.clone());
    if inventory.is_erased(&subject) {
        return Err(DomainError::Erased(subject));
    }
    if inventory.is_being_erased(&subject) {
        return Err(DomainError::BeingErased(subject));
    }
    Ok(())
}

/// R1: an owner or admin of the workspace, or the platform itself.
pub fn require_owner_or_admin(
    facts: &WorkspaceFacts,
    workspace: &WorkspaceId,
    by: &Initiator,
) -> Result<(), DomainError> {
    match by {
        Initiator::Platform => Ok(()),
        Initiator::Member { account } => match facts.role_of(account) {
            Some(Role::Owner | Role::Admin) => Ok(()),
            _ => Err(DomainError::NotOwnerOrAdmin {
                workspace: Subject::Workspace(workspace.clone()),
            }),
        },
    }
}

pub fn create_workspace(
    inventory: &Inventory,
    workspace: WorkspaceId,
    owner: AccountId,
) -> Result<Vec<WorkspaceEvent>, DomainError> {
    let subject = Subject::Workspace(workspace.clone());
    if inventory.is_erased(&subject) {
        return Err(DomainError::Erased(subject));
    }
    if inventory.knows(&subject) {
        return Err(DomainError::AlreadyExists(subject));
    }
    open_account(inventory, &owner)?;
    Ok(vec![WorkspaceEvent::WorkspaceCreated { workspace, owner }])
}

pub fn add_member(
    inventory: &Inventory,
    workspace: WorkspaceId,
    account: AccountId,
    role: Role,
    added_by: Initiator,
) -> Result<Vec<WorkspaceEvent>, DomainError> {
    let facts = open_workspace(inventory, &workspace)?;
    require_owner_or_admin(facts, &workspace, &added_by)?;
    // R9: an owner may delete the workspace, so only an owner (or the
    // platform) makes another; an admin adds admins and members.
    if role == Role::Owner {
        if let Initiator::Member { account: by } = &added_by {
            if facts.role_of(by) != Some(Role::Owner) {
                return Err(DomainError::NotOwnerToGrantOwner {
                    workspace: Subject::Workspace(workspace),
                });
            }
        }
    }
    open_account(inventory, &account)?;
    if facts.members.contains_key(&account) {
        return Err(DomainError::AlreadyExists(Subject::Account(account)));
    }
    Ok(vec![WorkspaceEvent::MemberAdded {
        workspace,
        account,
        role,
        added_by,
    }])
}

/// R10: the member loses access; content they created stays, so nothing
/// but the membership changes.
pub fn remove_member(
    inventory: &Inventory,
    workspace: WorkspaceId,
    account: AccountId,
    removed_by: Initiator,
) -> Result<Vec<WorkspaceEvent>, DomainError> {
    let facts = live_workspace(inventory, &workspace)?;
    let removing_self = matches!(&removed_by, Initiator::Member { account: a } if *a == account);
    if !removing_self {
        require_owner_or_admin(facts, &workspace, &removed_by)?;
    }
    match facts.role_of(&account) {
        None => Err(DomainError::NotAMember {
            workspace: Subject::Workspace(workspace),
            account: Subject::Account(account),
        }),
        Some(Role::Owner) => Err(DomainError::CannotRemoveOwner {
            workspace: Subject::Workspace(workspace),
        }),
        Some(_) => Ok(vec![WorkspaceEvent::MemberRemoved {
            workspace,
            account,
            removed_by,
        }]),
    }
}

/// What a product service tells the ledger about a new resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub resource: Subject,
    pub workspace: Option<WorkspaceId>,
    pub account: Option<AccountId>,
    pub parent: Option<Subject>,
    pub derived_from: Option<Subject>,
    pub references: Vec<Subject>,
    pub created_by: Option<AccountId>,
}

pub fn register_resource(
    inventory: &Inventory,
    registration: Registration,
) -> Result<Vec<ResourceEvent>, DomainError> {
    let Subject::Resource(resource) = &registration.resource else {
        return Err(crate::error::InvalidInput::new(
            "resource",
            "must name a product resource such as file:ID",
        )
        .into());
    };
    if inventory.is_erased(&registration.resource) {
        return Err(DomainError::Erased(registration.resource.clone()));
    }
    if inventory.knows(&registration.resource) {
        return Err(DomainError::AlreadyExists(registration.resource.clone()));
    }
    if let Some(workspace) = &registration.workspace {
        open_workspace(inventory, workspace)?;
    } else if !resource.kind.is_account_data() {
        return Err(crate::error::InvalidInput::new(
            "workspace",
            "is required for workspace resources",
        )
        .into());
    }
    if resource.kind.is_account_data() && registration.account.is_none() {
        return Err(crate::error::InvalidInput::new(
            "account",
            "is required for account profiles and credentials",
        )
        .into());
    }
    if let Some(account) = &registration.account {
        open_account(inventory, account)?;
    }
    match (
        &registration.derived_from,
        resource.kind.is_derived_artifact(),
    ) {
        (None, true) => {
            return Err(crate::error::InvalidInput::new(
                "derived_from",
                "is required for derived artifacts (the file they come from)",
            )
            .into())
        }
        (Some(_), false) => {
            return Err(crate::error::InvalidInput::new(
                "derived_from",
                "is only for derived artifacts",
            )
            .into())
        }
        // An artifact names the resource it comes from, so that erasing
        // that resource finds every artifact of it (R6).
        (Some(Subject::Resource(source)), true) if source.kind.is_derived_artifact() => {
            return Err(crate::error::InvalidInput::new(
                "derived_from",
                "names the file or record the artifact comes from, not another derived artifact",
            )
            .into())
        }
        _ => {}
    }
    for related in registration
        .parent
        .iter()
        .chain(&registration.derived_from)
        .chain(&registration.references)
    {
        if !matches!(related, Subject::Resource(_)) {
            return Err(crate::error::InvalidInput::new(
                "parent",
                "parents, sources and references must be product resources",
            )
            .into());
        }
        if inventory.is_erased(related) {
            return Err(DomainError::Erased(related.clone()));
        }
        if inventory.is_being_erased(related) {
            return Err(DomainError::BeingErased(related.clone()));
        }
        if !inventory.knows(related) {
            return Err(DomainError::UnknownSubject(related.clone()));
        }
    }
    // R6 / R9: an artifact lives where its source does. A workspace's
    // erasure reaches its artifacts through their sources; one registered
    // in another workspace would outlive the workspace it names.
    if let Some(source) = registration
        .derived_from
        .as_ref()
        .and_then(|s| inventory.resources.get(s))
    {
        if source.workspace != registration.workspace {
            return Err(crate::error::InvalidInput::new(
                "workspace_id",
                "must be the workspace of the resource the artifact is derived from",
            )
            .into());
        }
    }
    Ok(vec![ResourceEvent::ResourceRegistered {
        resource: registration.resource,
        workspace: registration.workspace,
        account: registration.account,
        parent: registration.parent,
        derived_from: registration.derived_from,
        references: registration.references,
        created_by: registration.created_by,
    }])
}
