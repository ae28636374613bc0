//! Acting on the end of a retention exception (R1, R14): a record kept on
//! purpose is kept until its end date, then erased like any other. This
//! sweep opens, for each record whose retention has ended, a deletion
//! request by the platform's retention policy; its tasks erase the record
//! and its completion is the proof. The planner no longer keeps a record
//! past its end date (`domain::request::plan`).

use chrono::{DateTime, Utc};
use commands::ledger::{Context, DeletionRequestInput};
use commands::Ledger;
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
    /// Records whose erasure was requested by this sweep, or had been by
    /// an earlier one (a request blocked by a hold leaves its record kept;
    /// asking again answers with the same request and stores nothing).
    pub requested: usize,
    /// Records the ledger refused to open a request for; each is logged
    /// and tried again by the next sweep.
    pub failed: usize,
}

/// Requests the erasure of every record whose retention exception ended
/// at or before `now` (at most [`RETENTION_RECORDS_MAX`]). Each request is
/// keyed by the record and the end date, so that a repeated sweep finds
/// the request it opened instead of opening another. Catches the read
/// models up first.
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
            match request_erasure(ledger, ended).await {
                Ok(()) => done.requested += 1,
                Err(error) => {
                    tracing::warn!(subject = %ended.subject, %error, "the erasure of a record whose retention ended could not be requested");
                    done.failed += 1;
                }
            }
        }
        after = Some(last);
    }
    Ok(done)
}

/// Opens (or finds) the request; the error says why it could not.
async fn request_erasure(ledger: &Ledger, ended: &EndedRetention) -> Result<(), String> {
    let record = Subject::parse(&ended.subject).map_err(|e| e.to_string())?;
    let key = format!(
        "retention-ended:{}:{}",
        ended.subject,
        commands::log::rfc3339_micros(ended.until)
    );
    let ctx = Context::new("system:retention", "retention-policy").with_idempotency_key(Some(key));
    ledger
        .request_deletion(
            &ctx,
            DeletionRequestInput {
                scope: record,
                channel: Channel::RetentionPolicy,
                policy: None,
                requested_by: Initiator::Platform,
                recorded_by: None,
                verification: None,
                contact: None,
                received_at: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
