//! Automatic forgetting: the requester's contact details (and the other
//! personal values a request owns) are forgotten a set number of days
//! after the request completes. The proof of deletion (ids, times,
//! actions, outcomes) stays in the log.

use chrono::{DateTime, Duration, Utc};
use commands::ledger::Context;
use commands::{CommandError, Ledger};
use domain::events::ForgetCause;
use domain::ids::RequestId;
use domain::subject::Subject;

use crate::readmodel::{ReadModels, RecordedForget, RequestToForget};

/// Days after completion at which a request's personal data is forgotten,
/// unless `LETHE_FORGET_CONTACT_AFTER_DAYS` says otherwise.
pub const FORGET_AFTER_DAYS_DEFAULT: u32 = 30;
/// Most requests forgotten by one sweep; the next sweep goes on.
pub const SWEEP_REQUESTS_MAX: usize = 5_000;
/// Requests read per round of a sweep.
const SWEEP_PAGE: usize = 500;

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The read models could not be read. Retry at the next sweep.
    #[error(transparent)]
    ReadModels(#[from] projections::ReadModelError),
    /// Forgetting one request failed. Retry at the next sweep.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Forgets the personal data of every request completed, or refused, at
/// least `after_days` before `now` (at most [`SWEEP_REQUESTS_MAX`]), and
/// the external account a request was asked for (R5). The read
/// models must be caught up. Answers how many requests were forgotten.
pub async fn forget_completed_requests(
    ledger: &Ledger,
    models: &ReadModels,
    after_days: u32,
    now: DateTime<Utc>,
) -> Result<usize, SweepError> {
    let cutoff = now - Duration::days(i64::from(after_days));
    let ctx = Context::new("system:auto-forget", "retention-policy");
    let mut forgotten = 0;
    while forgotten < SWEEP_REQUESTS_MAX {
        let due = models.requests_to_forget(cutoff, SWEEP_PAGE).await?;
        let before = forgotten;
        for RequestToForget {
            request,
            scope,
            refused,
        } in &due
        {
            let cause = if *refused {
                ForgetCause::AfterRequestRefused
            } else {
                ForgetCause::AfterRequestCompleted
            };
            let Ok(id) = RequestId::parse(request) else {
                tracing::error!(%request, "a request id in the read model does not parse");
                continue;
            };
            // A deletion carried out for an external account (a Meta
            // callback) leaves Lethe's own copy of that account's id,
            // which only its proof needed: it goes with the request's
            // data, first, so that a failure here is retried by the next
            // sweep. A refused request deleted nothing, and the account
            // may still be connected: its id stays.
            if let (Ok(external @ Subject::External(_)), false) = (Subject::parse(scope), refused) {
                ledger.forget(&ctx, &external, cause).await?;
            }
            ledger.forget(&ctx, &Subject::Request(id), cause).await?;
            forgotten += 1;
        }
        if forgotten == before {
            break;
        }
    }
    Ok(forgotten)
}

/// Most recorded forgets one call of [`finish_interrupted_forgets`] reads;
/// the next call goes on from where it stopped.
pub const FORGETS_CHECKED_MAX: usize = 50_000;
/// Recorded forgets read per round.
const FORGETS_PAGE: usize = 1_000;

/// What [`finish_interrupted_forgets`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedForgets {
    /// Forgets finished now: the subject's live key destroyed, or its
    /// tombstone written where it had no key.
    pub finished: usize,
    /// Every recorded forget up to this position is finished: where the
    /// next call starts.
    pub checked_up_to: commands::log::Position,
    /// The call stopped at [`FORGETS_CHECKED_MAX`]: call again from
    /// `checked_up_to`.
    pub more: bool,
}

/// Finishes every forget recorded after position `after` whose second
/// step is missing. A forget appends `SubjectForgotten`, then destroys the
/// subject's key (or writes a tombstone where it had none, so that values
/// sealed for it later are erased at once). A process that stopped between
/// the two, or a key table that failed, left values readable although the
/// trail says forgotten. Reads at most [`FORGETS_CHECKED_MAX`] forgets. The
/// read models must be caught up: forgets they do not show yet are
/// checked by a later call.
pub async fn finish_interrupted_forgets(
    ledger: &Ledger,
    models: &ReadModels,
    after: commands::log::Position,
) -> Result<FinishedForgets, SweepError> {
    let mut done = FinishedForgets {
        finished: 0,
        checked_up_to: after,
        more: false,
    };
    let mut checked = 0;
    loop {
        if checked >= FORGETS_CHECKED_MAX {
            done.more = true;
            break;
        }
        let page = models
            .recorded_forgets(done.checked_up_to, FORGETS_PAGE)
            .await?;
        if page.is_empty() {
            break;
        }
        for RecordedForget {
            position,
            subject,
            unfinished,
        } in &page
        {
            if *unfinished {
                match Subject::parse(subject) {
                    Ok(owner) => {
                        ledger
                            .vault()
                            .forget(&owner)
                            .await
                            .map_err(CommandError::from)?;
                        tracing::warn!(%subject, position, "finished the forget of a subject: its key was not destroyed");
                        done.finished += 1;
                    }
                    Err(error) => {
                        tracing::error!(%subject, position, %error, "a forgotten subject in the audit trail does not parse");
                    }
                }
            }
            done.checked_up_to = *position;
        }
        checked += page.len();
    }
    Ok(done)
}

/// [`finish_interrupted_forgets`] from `after` to the end of what the
/// read models show, call after call: what the command line and each
/// sweep of the service do. Answers the forgets finished in all and
/// where the last call stopped (`more` is false).
pub async fn finish_all_interrupted_forgets(
    ledger: &Ledger,
    models: &ReadModels,
    after: commands::log::Position,
) -> Result<FinishedForgets, SweepError> {
    let mut all = FinishedForgets {
        finished: 0,
        checked_up_to: after,
        more: false,
    };
    loop {
        let done = finish_interrupted_forgets(ledger, models, all.checked_up_to).await?;
        all.finished += done.finished;
        all.checked_up_to = done.checked_up_to;
        if !done.more {
            return Ok(all);
        }
    }
}
