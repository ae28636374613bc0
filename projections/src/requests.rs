//! Deletion requests and their deadline facts: policy, receipt, due time,
//! extension, verification, blocks by holds (and for how long), tasks,
//! refusal, completion. The deadline report, the request detail and the
//! Meta deletion status page are queries over these rows.

use chrono::{DateTime, Utc};
use commands::log::RecordedEvent;
use domain::events::{LedgerEvent, RequestEvent};
use domain::values::{Initiator, Verification};

use crate::error::ReadModelError;
use crate::rows::{ReadModelTx, RequestRow};

pub async fn apply(
    tx: &mut dyn ReadModelTx,
    recorded: &RecordedEvent,
    event: &LedgerEvent,
) -> Result<(), ReadModelError> {
    let LedgerEvent::Request(event) = event else {
        return Ok(());
    };
    let at = recorded.occurred_at;
    let id = event.request().to_string();
    let mut row = match event {
        RequestEvent::DeletionRequested {
            scope,
            channel,
            policy,
            asked_policy,
            received_at,
            due_at,
            requested_by,
            recorded_by,
            verification,
            confirmation_code,
            ..
        } => RequestRow {
            request: id,
            scope: scope.to_string(),
            channel: channel.to_string(),
            policy: policy.to_string(),
            asked_policy: asked_policy.map(|asked| asked.to_string()),
            requested_by: match requested_by {
                Initiator::Member { account } => format!("member:{account}"),
                Initiator::Platform => "platform".to_owned(),
            },
            recorded_by: recorded_by.clone(),
            received_at: *received_at,
            original_due_at: *due_at,
            due_at: *due_at,
            extension_reason: None,
            verified: !matches!(verification, Verification::Pending),
            state: String::new(),
            blocked_by: Vec::new(),
            blocked_since: None,
            blocked_seconds: 0,
            tasks_total: 0,
            tasks_done: 0,
            retained: 0,
            refusal_code: None,
            refusal_reason: None,
            refused_at: None,
            completed_at: None,
            residual_copies_purged_by: None,
            confirmation_code: confirmation_code.clone(),
            receipt_confirmed_at: None,
            updated_at: at,
            position: recorded.position,
        },
        _ => {
            let Some(mut row) = tx.request(&id).await? else {
                // An event of a request whose receipt is not in the log:
                // nothing to attach it to.
                return Ok(());
            };
            edit(&mut row, event, at);
            row
        }
    };
    row.state = state_of(&row).to_owned();
    row.updated_at = at;
    row.position = recorded.position;
    tx.put_request(row).await
}

fn edit(row: &mut RequestRow, event: &RequestEvent, at: DateTime<Utc>) {
    match event {
        RequestEvent::DeletionRequested { .. } => {}
        RequestEvent::RequestVerified { .. } => row.verified = true,
        RequestEvent::DeletionRefused { reason, .. } => {
            end_block(row, at);
            row.refusal_code = Some(reason.code().to_owned());
            row.refusal_reason = Some(reason.explain());
            row.refused_at = Some(at);
        }
        RequestEvent::DeletionBlocked { holds, .. } => {
            row.blocked_by = holds.iter().map(ToString::to_string).collect();
            row.blocked_since.get_or_insert(at);
        }
        RequestEvent::DeletionResumed { .. } => end_block(row, at),
        RequestEvent::DeadlineExtended { due_at, reason, .. } => {
            row.due_at = *due_at;
            row.extension_reason = Some(reason.to_string());
        }
        RequestEvent::ReceiptConfirmed { confirmed_at, .. } => {
            row.receipt_confirmed_at.get_or_insert(*confirmed_at);
        }
        RequestEvent::TaskReleased { .. } => row.tasks_total += 1,
        RequestEvent::TaskCompleted { .. } => row.tasks_done += 1,
        RequestEvent::RetentionExceptionRecorded { .. } => row.retained += 1,
        RequestEvent::DeletionCompleted {
            completed_at,
            residual_copies_purged_by,
            ..
        } => {
            end_block(row, at);
            row.completed_at = Some(*completed_at);
            row.residual_copies_purged_by = Some(*residual_copies_purged_by);
        }
        RequestEvent::TaskClaimed { .. } | RequestEvent::TaskFailed { .. } => {}
    }
}

/// Closes the current blocked period, adding its length.
fn end_block(row: &mut RequestRow, at: DateTime<Utc>) {
    if let Some(since) = row.blocked_since.take() {
        row.blocked_seconds += (at - since).num_seconds().max(0);
    }
    row.blocked_by.clear();
}

/// The request's state, by the same precedence as
/// `domain::request::Request::state`.
pub fn state_of(row: &RequestRow) -> &'static str {
    if row.refusal_code.is_some() {
        "refused"
    } else if row.completed_at.is_some() {
        "completed"
    } else if !row.verified {
        "awaiting-verification"
    } else if !row.blocked_by.is_empty() {
        "blocked"
    } else {
        "in-progress"
    }
}

/// Blocked time up to `now`, the running period included, in seconds.
pub fn blocked_seconds_at(row: &RequestRow, now: DateTime<Utc>) -> i64 {
    row.blocked_seconds
        + row
            .blocked_since
            .map_or(0, |since| (now - since).num_seconds().max(0))
}

/// R5: the status a person sees behind the Meta status link, in words.
/// It names no hold, matter or worker: those are not the requester's to
/// know; a refusal gives its reason.
pub fn explain(row: &RequestRow, now: DateTime<Utc>) -> String {
    let day = |at: DateTime<Utc>| at.format("%Y-%m-%d").to_string();
    match row.state.as_str() {
        "refused" => format!(
            "Your deletion request of {} was refused: {}.",
            day(row.received_at),
            row.refusal_reason.as_deref().unwrap_or("no reason was recorded")
        ),
        "completed" => {
            let mut text = format!(
                "Your data was deleted on {}.",
                day(row.completed_at.unwrap_or(row.updated_at))
            );
            if let Some(purge) = row.residual_copies_purged_by {
                text.push_str(&format!(
                    " Copies in backups and logs are purged by {}.",
                    day(purge)
                ));
            }
            if row.retained > 0 {
                text.push_str(&format!(
                    " {} record(s) are kept for a recorded reason (such as tax, security or a legal duty), and deleted when that period ends.",
                    row.retained
                ));
            }
            text
        }
        "awaiting-verification" => format!(
            "We received your deletion request on {} and are verifying it.",
            day(row.received_at)
        ),
        "blocked" => format!(
            "We received your deletion request on {}. Deletion is paused while the data is under a legal or moderation review; it resumes by itself when the review ends.",
            day(row.received_at)
        ),
        _ if now > row.due_at => format!(
            "We received your deletion request on {} and are deleting your data: {} of {} steps done. It was due by {}; it is late, and we are completing it.",
            day(row.received_at),
            row.tasks_done,
            row.tasks_total,
            day(row.due_at)
        ),
        _ => format!(
            "We received your deletion request on {} and are deleting your data: {} of {} steps done. It will be completed by {}.",
            day(row.received_at),
            row.tasks_done,
            row.tasks_total,
            day(row.due_at)
        ),
    }
}
