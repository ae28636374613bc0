//! The holds register: active and lifted holds with scope, kind, matter,
//! who placed and lifted them and when. What each blocks now is a query
//! joining this register with the task queue and the requests.

use commands::log::RecordedEvent;
use domain::events::{HoldEvent, LedgerEvent};

use crate::error::ReadModelError;
use crate::rows::{HoldRow, ReadModelTx};

pub async fn apply(
    tx: &mut dyn ReadModelTx,
    recorded: &RecordedEvent,
    event: &LedgerEvent,
) -> Result<(), ReadModelError> {
    match event {
        LedgerEvent::Hold(HoldEvent::HoldPlaced {
            hold,
            scope,
            kind,
            matter,
            reason,
            placed_by,
        }) => {
            tx.put_hold(HoldRow {
                hold: hold.to_string(),
                scope: scope.to_string(),
                kind: kind.to_string(),
                matter: matter.to_string(),
                reason: reason.to_string(),
                placed_by: placed_by.clone(),
                placed_at: recorded.occurred_at,
                placed_position: recorded.position,
                lifted_by: None,
                lifted_at: None,
                lift_reason: None,
                lifted_position: None,
            })
            .await
        }
        LedgerEvent::Hold(HoldEvent::HoldLifted {
            hold,
            reason,
            lifted_by,
            ..
        }) => {
            let Some(mut row) = tx.hold(&hold.to_string()).await? else {
                return Ok(());
            };
            row.lifted_by = Some(lifted_by.clone());
            row.lifted_at = Some(recorded.occurred_at);
            row.lift_reason = Some(reason.to_string());
            row.lifted_position = Some(recorded.position);
            tx.put_hold(row).await
        }
        _ => Ok(()),
    }
}
