//! The erasure task queue: tasks released to workers, their lease,
//! attempts, next attempt and last error. Whether a task can be claimed
//! at an instant is a query (`claimable`), since it depends on the clock
//! and on the holds register; the log stays the authority, and
//! `Ledger::claim_task` decides.

use chrono::{DateTime, Utc};
use commands::log::RecordedEvent;
use domain::events::{LedgerEvent, RequestEvent};

use crate::error::ReadModelError;
use crate::rows::{HoldRow, ReadModelTx, TaskRow, TaskState};

pub async fn apply(
    tx: &mut dyn ReadModelTx,
    recorded: &RecordedEvent,
    event: &LedgerEvent,
) -> Result<(), ReadModelError> {
    let LedgerEvent::Request(event) = event else {
        return Ok(());
    };
    let at = recorded.occurred_at;
    let row = match event {
        RequestEvent::TaskReleased {
            request,
            task,
            step,
            target,
            workspace,
            covered_by,
        } => {
            let mut covered_by: Vec<String> = covered_by.iter().map(ToString::to_string).collect();
            covered_by.sort();
            covered_by.dedup();
            TaskRow {
                task: task.to_string(),
                request: request.to_string(),
                step: step.to_string(),
                target: target.to_string(),
                workspace: workspace.as_ref().map(ToString::to_string),
                covered_by,
                state: TaskState::Released,
                lease_holder: None,
                lease_until: None,
                attempts: 0,
                next_attempt_at: None,
                last_error: None,
                released_at: at,
                released_position: recorded.position,
                completed_at: None,
                completed_by: None,
                position: recorded.position,
            }
        }
        RequestEvent::TaskClaimed {
            task,
            worker,
            lease_until,
            ..
        } => {
            let Some(mut row) = tx.task(&task.to_string()).await? else {
                return Ok(());
            };
            row.state = TaskState::Leased;
            row.lease_holder = Some(worker.clone());
            row.lease_until = Some(*lease_until);
            row
        }
        RequestEvent::TaskFailed {
            task,
            attempt,
            error,
            next_attempt_at,
            ..
        } => {
            let Some(mut row) = tx.task(&task.to_string()).await? else {
                return Ok(());
            };
            row.state = TaskState::Failed;
            row.lease_holder = None;
            row.lease_until = None;
            row.attempts = i64::from(*attempt);
            row.last_error = Some(error.to_string());
            row.next_attempt_at = Some(*next_attempt_at);
            row
        }
        RequestEvent::TaskCompleted { task, worker, .. } => {
            let Some(mut row) = tx.task(&task.to_string()).await? else {
                return Ok(());
            };
            row.state = TaskState::Completed;
            row.lease_holder = None;
            row.lease_until = None;
            row.completed_at = Some(at);
            row.completed_by = Some(worker.clone());
            row
        }
        _ => return Ok(()),
    };
    let row = TaskRow {
        position: recorded.position,
        ..row
    };
    tx.put_task(row).await
}

/// Whether a worker may try to claim `task` at `now`, given the holds
/// that are active: not completed, no active hold on a covering scope, the
/// lease free or run out, the next attempt due. The SQL query says the
/// same in SQL; this is the reference the tests hold it to.
pub fn claimable(task: &TaskRow, active_holds: &[&HoldRow], now: DateTime<Utc>) -> bool {
    task.state != TaskState::Completed
        && !active_holds
            .iter()
            .any(|hold| hold.active() && task.covered_by.contains(&hold.scope))
        && task.lease_until.is_none_or(|until| until <= now)
        && task.next_attempt_at.is_none_or(|next| next <= now)
}
