//! Acting on the end of a billing record's retention (R14): a billing
//! record is kept on purpose for a set time, then erased like any other.
//! This sweep opens, for each billing record whose retention has ended, a
//! deletion request by the platform's retention policy; its task erases
//! the record and its completion is the proof. The planner no longer keeps
//! a billing record past its end date (`domain::request::plan`).
//!
//! Only billing records: the planner keeps them itself, whereas a
//! retention exception recorded by hand names records kept *about* its
//! target (an access log about a file, say), not the target, and its end
//! date is for the product service that keeps them.

use chrono::{DateTime, Utc};
use commands::ledger::{Context, DeletionRequestInput};
use commands::{CommandError, Ledger};
use domain::subject::Subject;
use domain::values::{Channel, Initiator};

use crate::privacy::SweepError;
use crate::readmodel::{EndedRetention, ReadModels};

/// Most ended retentions one sweep acts on; the next sweep goes on.
pub const RETENTION_RECORDS_MAX: usize = 5_000;
/// Ended retentions read per round of a sweep.
const RETENTION_PAGE: usize = 500;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndedRetentions {
    /// Records whose erasure this sweep requested. A request blocked by a
    /// hold keeps its record until the hold is lifted; the sweep does not
    /// ask again.
    pub requested: usize,
    /// Records the rules would not open a request for, or whose request
    /// kept conflicting with concurrent writes (each is logged and tried
    /// again by the next sweep).
    pub failed: usize,
}

/// Requests the erasure of every billing record whose retention ended at
/// or before `now` (at most [`RETENTION_RECORDS_MAX`]). Each request is
/// keyed by the record and the end date, so that a sweep repeated before
/// the read models show the first one finds it instead of opening
/// another. Catches the read models up first. Stops at the first failure
/// of the store or the key table (retry at the next sweep) and at a
/// stored event that does not decode (an operator must look).
pub async fn request_ended_retentions(
    ledger: &Ledger,
    models: &ReadModels,
    now: DateTime<Utc>,
) -> Result<EndedRetentions, SweepError> {
    models.catch_up(ledger.store().as_ref()).await?;
    let mut done = EndedRetentions::default();
    let mut after: Option<EndedRetention> = None;
    while done.requested + done.failed < RETENTION_RECORDS_MAX {
        let page = models
            .ended_retentions(now, after.as_ref(), RETENTION_PAGE)
            .await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for ended in &page {
            let record = match Subject::parse(&ended.subject) {
                Ok(record) => record,
                Err(error) => {
                    tracing::error!(subject = %ended.subject, %error, "a retained record in the read model does not parse");
                    done.failed += 1;
                    continue;
                }
            };
            match request_erasure(ledger, &record, ended.until).await {
                Ok(()) => done.requested += 1,
                Err(
                    error @ (CommandError::Rejected(_)
                    | CommandError::NotFound(_)
                    | CommandError::KeyReused { .. }
                    | CommandError::Contended),
                ) => {
                    tracing::warn!(subject = %ended.subject, %error, "the erasure of a record whose retention ended could not be requested");
                    done.failed += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
        after = Some(last);
    }
    Ok(done)
}

async fn request_erasure(
    ledger: &Ledger,
    record: &Subject,
    until: DateTime<Utc>,
) -> Result<(), CommandError> {
    let key = format!(
        "retention-ended:{record}:{}",
        commands::log::rfc3339_micros(until)
    );
    let ctx = Context::new("system:retention", "retention-policy").with_idempotency_key(Some(key));
    ledger
        .request_deletion(
            &ctx,
            DeletionRequestInput {
                scope: record.clone(),
                channel: Channel::RetentionPolicy,
                policy: None,
                requested_by: Initiator::Platform,
                recorded_by: None,
                verification: None,
                contact: None,
                received_at: None,
            },
        )
        .await?;
    Ok(())
}
