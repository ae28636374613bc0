//! Group commit: one writer task per opened store serialises every append
//! of this process, batching what callers queued meanwhile into one
//! transaction.
//!
//! Why one writer: positions are assigned inside the transaction that
//! holds the cross-process lock, so the global order is the commit order
//! and a follower can never see position N+1 before N. Batching amortises
//! the lock, the round trips and the fsync over many callers.

use async_trait::async_trait;
use commands::log::{AppendRequest, Appended, Position, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

/// Most events that one batch (one transaction) carries. A single append
/// larger than this still goes alone in its own batch.
pub const BATCH_EVENTS_MAX: usize = 512;
/// Most condition tags that one batch carries (they travel in one bound
/// value or message); a single append with more still goes alone.
pub const BATCH_CONDITION_TAGS_MAX: usize = 100_000;
/// Most appends waiting for the writer; callers wait for room beyond it.
pub const QUEUE_APPENDS_MAX: usize = 4_096;

/// Most times the writer yields, while its queue keeps growing, before it
/// starts a batch.
const GATHER_YIELDS_MAX: usize = 8;

/// One caller's append and where to send its answer.
#[derive(Debug)]
pub(crate) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// What a committed batch produced.
#[derive(Debug)]
pub(crate) struct Committed {
    /// One answer per request, in batch order.
    pub outcomes: Vec<Result<Appended, StoreError>>,
    pub head: Position,
}

/// A backend's side of the writer: run one batch in one transaction.
#[async_trait]
pub(crate) trait BatchCommitter: Send + 'static {
    /// Decides and stores the batch atomically. `Err` means the
    /// transaction failed and nothing of the batch was stored.
    async fn commit(&mut self, batch: &[&AppendRequest]) -> Result<Committed, StoreError>;
}

/// Starts the writer task. It stops when every sender is dropped.
pub(crate) fn spawn<C: BatchCommitter>(
    committer: C,
    head: watch::Sender<Position>,
) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel(QUEUE_APPENDS_MAX);
    tokio::spawn(run(committer, receiver, head));
    sender
}

async fn run<C: BatchCommitter>(
    mut committer: C,
    mut receiver: mpsc::Receiver<Job>,
    head: watch::Sender<Position>,
) {
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match receiver.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        // Callers answered by the previous batch are runnable but may not
        // have queued their next append yet. Yielding until the queue stops
        // growing lets them (on this runtime's threads), so that a batch is
        // as large as the load: each batch pays its round trips and fsync
        // once. An idle writer yields once, which costs microseconds.
        let mut queued = receiver.len();
        for _ in 0..GATHER_YIELDS_MAX {
            tokio::task::yield_now().await;
            let now = receiver.len();
            if now == queued {
                break;
            }
            queued = now;
        }
        let condition_tags = |job: &Job| job.request.condition.as_ref().map_or(0, |c| c.tags.len());
        let mut events = first.request.events.len();
        let mut tags = condition_tags(&first);
        let mut jobs = vec![first];
        while events < BATCH_EVENTS_MAX {
            let Ok(job) = receiver.try_recv() else { break };
            if events + job.request.events.len() > BATCH_EVENTS_MAX
                || tags + condition_tags(&job) > BATCH_CONDITION_TAGS_MAX
            {
                carried = Some(job);
                break;
            }
            events += job.request.events.len();
            tags += condition_tags(&job);
            jobs.push(job);
        }
        // A caller that gave up (dropped its future) still gets its append
        // committed: it may have been retried elsewhere with the same
        // idempotency key, which then deduplicates.
        let requests: Vec<&AppendRequest> = jobs.iter().map(|job| &job.request).collect();
        match committer.commit(&requests).await {
            Ok(committed) => {
                debug_assert_eq!(committed.outcomes.len(), jobs.len());
                head.send_if_modified(|seen| {
                    let moved = committed.head > *seen;
                    if moved {
                        *seen = committed.head;
                    }
                    moved
                });
                for (job, outcome) in jobs.into_iter().zip(committed.outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, appends = jobs.len(), "append batch failed");
                let message = error.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(match &error {
                        StoreError::Corrupt(_) => StoreError::Corrupt(message.clone()),
                        _ => StoreError::Unavailable(message.clone()),
                    }));
                }
            }
        }
    }
}
