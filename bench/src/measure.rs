//! Driving concurrent writers for a time window and summarising what they
//! did: operations, events, latencies.

use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A writer stops after this many failed operations; the figure then
/// reports the errors instead of a rate.
const WRITER_ERRORS_MAX: u64 = 10;

/// One writer's unit of work, e.g. one append or one command.
#[async_trait]
pub trait Op: Send + 'static {
    /// Does one operation and returns how many events it stored; 0 means
    /// the writer has no work left (count-based measurements).
    async fn run(&mut self) -> anyhow::Result<u64>;
}

/// How long writers run before measuring starts, and how long they are
/// measured.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub measure: Duration,
}

/// What a set of writers did inside the measured window.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub ops: u64,
    pub events: u64,
    pub elapsed: Duration,
    /// Latency of every measured operation, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Sample {
    pub fn events_per_s(&self) -> f64 {
        rate(self.events, self.elapsed)
    }

    pub fn ops_per_s(&self) -> f64 {
        rate(self.ops, self.elapsed)
    }

    /// The `p`th percentile latency in milliseconds (p in 0..=100).
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let index = ((p / 100.0) * (n - 1) as f64).round() as usize;
        Some(self.latencies_us[index.min(n - 1)] as f64 / 1_000.0)
    }
}

impl Sample {
    /// Adds `other`'s counts, latencies (unsorted) and time.
    fn add(&mut self, other: Sample) {
        self.ops += other.ops;
        self.events += other.events;
        self.elapsed += other.elapsed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

/// Runs every writer concurrently: first for `window.warmup` (not
/// counted), then for `window.measure`. An operation counts when it
/// started and finished inside the measured window.
pub async fn drive<O: Op>(writers: Vec<O>, window: Window) -> Sample {
    let measure_from = Instant::now() + window.warmup;
    let until = measure_from + window.measure;
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|mut op| tokio::spawn(async move { run_writer(&mut op, measure_from, until).await }))
        .collect();
    let mut total = Sample::default();
    let mut last_end = measure_from;
    for task in tasks {
        let (sample, end) = task
            .await
            .unwrap_or_else(|panic| panicked(&panic, measure_from));
        total.add(sample);
        last_end = last_end.max(end);
    }
    // Count-based writers may finish before the window closes.
    total.elapsed = last_end.min(until) - measure_from;
    total.latencies_us.sort_unstable();
    total
}

/// Slices of the window in [`drive_in_turns`].
pub const TURN_SLICES: u32 = 8;

/// Writers of one measurement in [`drive_in_turns`], each a boxed [`Op`].
pub type Group = Vec<Box<dyn Op>>;

#[async_trait]
impl Op for Box<dyn Op> {
    async fn run(&mut self) -> anyhow::Result<u64> {
        (**self).run().await
    }
}

/// Runs groups of writers in turns, one group at a time: each warms up
/// for `window.warmup`, then each runs a slice of `window.measure` at a
/// time, in turn, [`TURN_SLICES`] times. All thus meet the same moments of
/// a shared, noisy machine (and of a server whose checkpoints fall where
/// the write volume puts them), which a ratio between them needs: measured
/// one after another, a baseline and Lethe could meet different machines.
/// Each group gets `window.measure` in all; one [`Sample`] per group, in
/// the order given.
pub async fn drive_in_turns(groups: Vec<Group>, window: Window) -> Vec<Sample> {
    let slice = window.measure / TURN_SLICES;
    let mut warm = Vec::with_capacity(groups.len());
    for group in groups {
        warm.push(turn(group, window.warmup, Duration::ZERO).await.0);
    }
    let mut totals = vec![Sample::default(); warm.len()];
    for _ in 0..TURN_SLICES {
        for (group, total) in warm.iter_mut().zip(&mut totals) {
            let (ops, sample) = turn(std::mem::take(group), Duration::ZERO, slice).await;
            *group = ops;
            total.add(sample);
        }
    }
    for total in &mut totals {
        total.latencies_us.sort_unstable();
    }
    totals
}

/// One group's turn, each writer on a task of its own as in [`drive`]:
/// `warmup`, then `measure`; hands the writers back with what they did.
async fn turn(group: Group, warmup: Duration, measure: Duration) -> (Group, Sample) {
    let measure_from = Instant::now() + warmup;
    let until = measure_from + measure;
    let tasks: Vec<_> = group
        .into_iter()
        .map(|mut op| {
            tokio::spawn(async move {
                let (sample, _) = run_writer(&mut op, measure_from, until).await;
                (op, sample)
            })
        })
        .collect();
    let mut ops = Vec::with_capacity(tasks.len());
    let mut total = Sample::default();
    for task in tasks {
        match task.await {
            Ok((op, sample)) => {
                ops.push(op);
                total.add(sample);
            }
            // The writer is gone with its task: the benchmark cannot go on.
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        }
    }
    total.elapsed = measure;
    (ops, total)
}

/// One writer until `until`; what it did from `measure_from` on, and when
/// its last counted operation ended.
async fn run_writer<O: Op>(op: &mut O, measure_from: Instant, until: Instant) -> (Sample, Instant) {
    let mut sample = Sample::default();
    let mut last_end = measure_from;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let result = op.run().await;
        let ended = Instant::now();
        match result {
            Ok(0) => break,
            Ok(events) => {
                if started >= measure_from && ended <= until {
                    sample.ops += 1;
                    sample.events += events;
                    sample
                        .latencies_us
                        .push((ended - started).as_micros() as u64);
                    last_end = last_end.max(ended);
                }
            }
            Err(error) => {
                sample.errors += 1;
                sample.first_error.get_or_insert(format!("{error:#}"));
                if sample.errors >= WRITER_ERRORS_MAX {
                    break;
                }
            }
        }
    }
    (sample, last_end)
}

fn panicked(panic: &tokio::task::JoinError, measure_from: Instant) -> (Sample, Instant) {
    (
        Sample {
            errors: 1,
            first_error: Some(format!("writer panicked: {panic}")),
            ..Sample::default()
        },
        measure_from,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records which group ran, one event per operation.
    struct Tagged {
        group: char,
        log: Arc<Mutex<Vec<char>>>,
    }

    #[async_trait]
    impl Op for Tagged {
        async fn run(&mut self) -> anyhow::Result<u64> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.log.lock().expect("log").push(self.group);
            Ok(1)
        }
    }

    fn tagged(group: char, writers: usize, log: &Arc<Mutex<Vec<char>>>) -> Group {
        (0..writers)
            .map(|_| {
                Box::new(Tagged {
                    group,
                    log: log.clone(),
                }) as Box<dyn Op>
            })
            .collect()
    }

    #[tokio::test]
    async fn groups_take_turns_and_each_gets_the_whole_window() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let window = Window {
            warmup: Duration::from_millis(20),
            measure: Duration::from_millis(160),
        };
        let groups = vec![tagged('a', 1, &log), tagged('b', 3, &log)];
        let samples = drive_in_turns(groups, window).await;

        assert_eq!(samples.len(), 2);
        for sample in &samples {
            assert_eq!(sample.elapsed, window.measure);
            assert!(sample.ops > 0, "{sample:?}");
            assert_eq!(sample.ops as usize, sample.latencies_us.len());
            assert!(sample.latencies_us.is_sorted());
        }
        // Three writers in turn with one: about three times the operations.
        assert!(samples[1].ops > 2 * samples[0].ops, "{samples:?}");

        // Never two groups at once: the log changes group once per turn,
        // the warmups (a, then b) and then eight slices of each.
        let log = log.lock().expect("log");
        let mut runs = log.clone();
        runs.dedup();
        let expected: Vec<char> = "ab".repeat(1 + TURN_SLICES as usize).chars().collect();
        assert_eq!(runs, expected);
    }
}
