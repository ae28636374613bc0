//! Decisions on legal and moderation holds (R7).

use crate::error::{DomainError, InvalidInput};
use crate::events::HoldEvent;
use crate::ids::HoldId;
use crate::inventory::Inventory;
use crate::subject::Subject;
use crate::text::{refuse_card_number, MatterRef, Reason};
use crate::values::HoldKind;

/// Places a hold on a resource, a workspace or an account. A subject may
/// be under several holds. A hold may name a subject the ledger has not
/// heard of yet (a preservation order can come first), but not an erased
/// one: there is nothing left to preserve.
pub fn place(
    inventory: &Inventory,
    hold: HoldId,
    scope: Subject,
    kind: HoldKind,
    matter: MatterRef,
    reason: Reason,
    placed_by: String,
) -> Result<Vec<HoldEvent>, DomainError> {
    refuse_card_number("placed_by", &placed_by)?;
    if !matches!(
        scope,
        Subject::Resource(_) | Subject::Workspace(_) | Subject::Account(_)
    ) {
        return Err(InvalidInput::new(
            "scope",
            "a hold covers a resource, a workspace or an account",
        )
        .into());
    }
    if inventory.is_erased(&scope) {
        return Err(DomainError::Erased(scope));
    }
    if inventory.holds.contains_key(&hold) {
        return Err(DomainError::AlreadyExists(Subject::Hold(hold)));
    }
    Ok(vec![HoldEvent::HoldPlaced {
        hold,
        scope,
        kind,
        matter: matter.into(),
        reason: reason.into(),
        placed_by,
    }])
}

/// Lifts an active hold. Deletions it blocked resume once no other hold
/// covers them; that follow-up is the application layer's reaction.
pub fn lift(
    inventory: &Inventory,
    hold: HoldId,
    reason: Reason,
    lifted_by: String,
) -> Result<Vec<HoldEvent>, DomainError> {
    refuse_card_number("lifted_by", &lifted_by)?;
    match inventory.holds.get(&hold) {
        Some(facts) if facts.active => Ok(vec![HoldEvent::HoldLifted {
            hold,
            scope: facts.scope.clone(),
            reason: reason.into(),
            lifted_by,
        }]),
        _ => Err(DomainError::HoldNotActive(hold)),
    }
}
