//! Group commit: one writer per opened store serialises every append of
//! this process, batching what callers queued meanwhile into one
//! transaction.
//!
//! Why one writer: positions are assigned inside the transaction that
//! holds the cross-process lock, so the global order is the commit order
//! and a follower can never see position N+1 before N. Batching amortises
//! the lock, the round trips and the fsync over many callers.
//!
//! Where it runs ([`Placement`]):
//! - **PostgreSQL: on its own thread** (a single-threaded runtime). The
//!   writer answers a whole batch at once. As a task on the callers'
//!   multi-threaded runtime, each answer woke its caller on the writer's
//!   worker and woke the parked other worker to take it, a system call
//!   each: 64 answers took about 0.22 ms of a 1.5 ms batch. Answered from
//!   another thread, the callers go to the runtime's shared queue, which
//!   its workers drain together: about 0.03 ms.
//! - **SQLite: as a task on the callers' runtime.** sqlx already runs each
//!   SQLite statement on a thread of its own, so a writer thread added two
//!   more hand-offs per append: one writer's append took about 0.04 ms
//!   longer, and 64 writers went no faster.

use std::time::{Duration, Instant};

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

/// Most times a writer task yields, while its queue keeps growing, before
/// it starts a batch.
const GATHER_YIELDS_MAX: usize = 8;
/// Longest a writer thread waits for the callers of the previous batch to
/// queue again. It bounds the latency the gathering adds under any load.
const GATHER_MAX: Duration = Duration::from_micros(300);
/// A writer thread starts a batch when its queue has not grown for this
/// long, even if fewer callers came back than the previous batch answered.
const GATHER_QUIET: Duration = Duration::from_micros(30);

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

/// Where the writer runs; see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// A task on the runtime of whoever opened the store.
    Task,
    /// A thread of its own, named `lethe-writer`.
    Thread,
}

/// Starts the writer. It stops when every sender is dropped, after
/// committing what was queued (a [`Placement::Task`] writer only while its
/// runtime lives).
pub(crate) fn spawn<C: BatchCommitter>(
    committer: C,
    head: watch::Sender<Position>,
    placement: Placement,
) -> Result<mpsc::Sender<Job>, StoreError> {
    let (sender, receiver) = mpsc::channel(QUEUE_APPENDS_MAX);
    match placement {
        Placement::Task => {
            tokio::spawn(run(committer, receiver, head, placement));
        }
        Placement::Thread => {
            let not_started = |e: std::io::Error| {
                StoreError::Unavailable(format!("starting the append writer: {e}"))
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(not_started)?;
            std::thread::Builder::new()
                .name("lethe-writer".into())
                .spawn(move || runtime.block_on(run(committer, receiver, head, placement)))
                .map_err(not_started)?;
        }
    }
    Ok(sender)
}

async fn run<C: BatchCommitter>(
    mut committer: C,
    mut receiver: mpsc::Receiver<Job>,
    head: watch::Sender<Position>,
    placement: Placement,
) {
    let mut carried: Option<Job> = None;
    // Requests of the batch answered last: dropped while the next batch is
    // in flight rather than between answering and gathering.
    let mut answered: Vec<AppendRequest> = Vec::new();
    let mut last_batch_appends = 1;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match receiver.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        match placement {
            Placement::Task => yield_to_callers(&receiver).await,
            Placement::Thread => wait_for_callers(&receiver, last_batch_appends),
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
        last_batch_appends = jobs.len();
        // A caller that gave up (dropped its future) still gets its append
        // committed: it may have been retried elsewhere with the same
        // idempotency key, which then deduplicates.
        let requests: Vec<&AppendRequest> = jobs.iter().map(|job| &job.request).collect();
        let earlier = std::mem::take(&mut answered);
        // `join` polls the commit first: the batch is decided and sent
        // before the earlier requests are freed.
        let (result, ()) = tokio::join!(committer.commit(&requests), async move {
            drop(earlier);
        });
        drop(requests);
        let outcomes = match result {
            Ok(committed) => {
                debug_assert_eq!(committed.outcomes.len(), jobs.len());
                head.send_if_modified(|seen| {
                    let moved = committed.head > *seen;
                    if moved {
                        *seen = committed.head;
                    }
                    moved
                });
                committed.outcomes
            }
            Err(error) => {
                tracing::warn!(%error, appends = jobs.len(), "append batch failed");
                let message = error.to_string();
                jobs.iter()
                    .map(|_| {
                        Err(match &error {
                            StoreError::Corrupt(_) => StoreError::Corrupt(message.clone()),
                            _ => StoreError::Unavailable(message.clone()),
                        })
                    })
                    .collect()
            }
        };
        answered.reserve(jobs.len());
        for (Job { request, reply }, outcome) in jobs.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
            answered.push(request);
        }
    }
}

/// Callers answered by the previous batch are runnable but may not have
/// queued their next append yet. Yielding until the queue stops growing
/// lets them (on this runtime's threads), so that a batch is as large as
/// the load: each batch pays its round trips and fsync once. An idle
/// writer yields once, which costs microseconds.
async fn yield_to_callers(receiver: &mpsc::Receiver<Job>) {
    let mut queued = receiver.len();
    for _ in 0..GATHER_YIELDS_MAX {
        tokio::task::yield_now().await;
        let now = receiver.len();
        if now == queued {
            return;
        }
        queued = now;
    }
}

/// Waits, on the writer's own thread, until the queue holds as many
/// appends as the previous batch answered (`expected`), so that a batch is
/// as large as the load. The callers answered by the previous batch run on
/// other threads and queue their next append within microseconds; yielding
/// the task would not wait for them, as nothing else runs on this thread. The wait ends early when the queue
/// stops growing for [`GATHER_QUIET`] (fewer callers came back) and always
/// after [`GATHER_MAX`]. One caller at a time (`expected` 1) never waits.
fn wait_for_callers(receiver: &mpsc::Receiver<Job>, expected: usize) {
    let start = Instant::now();
    let mut queued = receiver.len();
    let mut grew = start;
    // `queued` excludes the first append, already taken.
    while queued + 1 < expected {
        std::thread::yield_now();
        let now = Instant::now();
        let length = receiver.len();
        if length != queued {
            queued = length;
            grew = now;
        } else if now - grew >= GATHER_QUIET {
            return;
        }
        if now - start >= GATHER_MAX {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use commands::log::{ExpectedVersion, Metadata, NewEvent, StreamId};

    use super::*;

    /// Stores nothing; takes `pause` per batch, as a round trip and an
    /// fsync would, and records each batch's size and positions.
    struct Recorder {
        pause: Duration,
        batches: Arc<Mutex<Vec<usize>>>,
        head: Position,
        dropped: Arc<AtomicBool>,
    }

    #[async_trait]
    impl BatchCommitter for Recorder {
        async fn commit(&mut self, batch: &[&AppendRequest]) -> Result<Committed, StoreError> {
            tokio::time::sleep(self.pause).await;
            self.batches.lock().unwrap().push(batch.len());
            let outcomes = batch
                .iter()
                .map(|request| {
                    let first_position = self.head + 1;
                    self.head += request.events.len() as Position;
                    Ok(Appended {
                        first_position,
                        last_position: self.head,
                        stream_version: 0,
                        deduplicated: false,
                    })
                })
                .collect();
            Ok(Committed {
                outcomes,
                head: self.head,
            })
        }
    }

    impl Drop for Recorder {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    struct Started {
        sender: mpsc::Sender<Job>,
        batches: Arc<Mutex<Vec<usize>>>,
        dropped: Arc<AtomicBool>,
        head: watch::Receiver<Position>,
    }

    fn start(placement: Placement, pause: Duration) -> Started {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicBool::new(false));
        let (head_sender, head) = watch::channel(0);
        let recorder = Recorder {
            pause,
            batches: batches.clone(),
            head: 0,
            dropped: dropped.clone(),
        };
        let sender = spawn(recorder, head_sender, placement).expect("the writer starts");
        Started {
            sender,
            batches,
            dropped,
            head,
        }
    }

    fn one_event(stream: &str) -> AppendRequest {
        AppendRequest {
            stream: StreamId::new(stream),
            expected: ExpectedVersion::Any,
            condition: None,
            idempotency_key: None,
            events: vec![NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "Test".into(),
                schema_version: 1,
                occurred_at: chrono::Utc::now(),
                payload: serde_json::json!({}),
                metadata: Metadata::default(),
                tags: Vec::new(),
            }],
        }
    }

    async fn append(sender: &mpsc::Sender<Job>, stream: &str) -> Appended {
        let (reply, answer) = oneshot::channel();
        sender
            .send(Job {
                request: one_event(stream),
                reply,
            })
            .await
            .expect("the writer runs");
        answer.await.expect("answered").expect("committed")
    }

    /// 32 callers, each appending again as soon as it is answered: every
    /// append is answered once, in gap-free positions, and batches form.
    async fn callers_are_batched(placement: Placement) {
        const CALLERS: usize = 32;
        const APPENDS: usize = 20;
        let started = start(placement, Duration::from_millis(2));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let sender = started.sender.clone();
                tokio::spawn(async move {
                    let mut positions = Vec::new();
                    for _ in 0..APPENDS {
                        positions
                            .push(append(&sender, &format!("s-{caller}")).await.first_position);
                    }
                    positions
                })
            })
            .collect();
        let mut positions = Vec::new();
        for task in tasks {
            positions.extend(task.await.unwrap());
        }
        positions.sort_unstable();
        let total = (CALLERS * APPENDS) as Position;
        assert_eq!(positions, (1..=total).collect::<Vec<_>>());
        assert_eq!(*started.head.borrow(), total);
        let batches = started.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), CALLERS * APPENDS);
        // One caller per batch would take 640 batches. Callers queue
        // during each 2 ms batch, so far fewer form.
        assert!(
            batches.len() <= CALLERS * APPENDS / 4,
            "{} batches for {} appends: {batches:?}",
            batches.len(),
            CALLERS * APPENDS
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_task_batches_its_callers() {
        callers_are_batched(Placement::Task).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_thread_batches_its_callers() {
        callers_are_batched(Placement::Thread).await;
    }

    /// Dropping every sender lets the writer thread commit what is queued
    /// and stop: its committer is dropped with it.
    #[tokio::test]
    async fn a_writer_thread_stops_after_its_queue() {
        let started = start(Placement::Thread, Duration::from_millis(1));
        let answers: Vec<_> = (0..10)
            .map(|i| {
                let (reply, answer) = oneshot::channel();
                started
                    .sender
                    .try_send(Job {
                        request: one_event(&format!("s-{i}")),
                        reply,
                    })
                    .expect("room in the queue");
                answer
            })
            .collect();
        drop(started.sender);
        for answer in answers {
            answer.await.expect("answered").expect("committed");
        }
        for _ in 0..500 {
            if started.dropped.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the writer thread still runs 5 s after its last sender was dropped");
    }
}
