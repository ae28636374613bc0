//! Resuming blocked deletions whose holds are all lifted (R7: a blocked
//! deletion "resumes by itself when the last covering hold is lifted"),
//! and marking blocked the deletions a new hold suspends. A lift or a
//! hold takes the requests it touches forward at once; this sweep is for
//! those it did not reach: the reaction failed, or the process stopped
//! between the hold or lift and its reaction.

use commands::ledger::Context;
use commands::Ledger;
use domain::ids::RequestId;

use crate::privacy::SweepError;
use crate::readmodel::ReadModels;

/// Most requests one sweep takes forward; the next sweep goes on.
pub const RESUME_REQUESTS_MAX: usize = 1_000;

/// Takes forward every request the read models show blocked by holds
/// that are all lifted, then every one shown in progress with a pending
/// task under an active hold (at most [`RESUME_REQUESTS_MAX`] in all):
/// each resumes, or is marked blocked by the holds that cover it now. A
/// request that fails is logged and left for the next sweep; the others
/// go on. Answers how many requests were taken forward.
pub async fn resume_unblocked_requests(
    ledger: &Ledger,
    models: &ReadModels,
) -> Result<usize, SweepError> {
    models.catch_up(ledger.store().as_ref()).await?;
    let ctx = Context::new("lethe:reactor", "reactor");
    let mut resumed = 0;
    let mut requests = models
        .stranded_blocked_requests(RESUME_REQUESTS_MAX)
        .await?;
    if requests.len() < RESUME_REQUESTS_MAX {
        requests.extend(
            models
                .unmarked_held_requests(RESUME_REQUESTS_MAX - requests.len())
                .await?,
        );
    }
    for request in requests {
        let Ok(id) = RequestId::parse(&request) else {
            tracing::error!(%request, "a request id in the read model does not parse");
            continue;
        };
        match ledger.advance(&ctx, id).await {
            Ok(_) => resumed += 1,
            Err(error) => {
                tracing::warn!(%request, %error, "a blocked request could not be taken forward");
            }
        }
    }
    Ok(resumed)
}
