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
        .map(|mut op| {
            tokio::spawn(async move {
                run_writer(&mut op, measure_from, until, WRITER_ERRORS_MAX).await
            })
        })
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
/// time, in turn, [`TURN_SLICES`] times, in the order given and then in
/// the reverse order, alternately (so that no group always follows the
/// same one and meets what it leaves behind). All thus meet the same
/// moments of a shared, noisy machine (and of a server whose checkpoints
/// fall where the write volume puts them), which a ratio between them
/// needs: measured one after another, a baseline and Lethe could meet
/// different machines. Each group gets `window.measure` in all; one
/// [`Sample`] per group, in the order given, with the errors of its
/// warmup too. An operation still running when a slice ends is not
/// counted, as at the end of a window in [`drive`].
pub async fn drive_in_turns(groups: Vec<Group>, window: Window) -> Vec<Sample> {
    let slice = window.measure / TURN_SLICES;
    let mut groups: Vec<Vec<Turner>> = groups
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .map(|op| Turner { op, errors: 0 })
                .collect()
        })
        .collect();
    let mut totals = vec![Sample::default(); groups.len()];
    for (group, total) in groups.iter_mut().zip(&mut totals) {
        let warmup = turn(group, window.warmup, Duration::ZERO).await;
        total.errors += warmup.errors;
        total.first_error = warmup.first_error;
    }
    for round in 0..TURN_SLICES {
        let mut order: Vec<usize> = (0..groups.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let sample = turn(&mut groups[index], Duration::ZERO, slice).await;
            totals[index].add(sample);
        }
    }
    for total in &mut totals {
        total.latencies_us.sort_unstable();
    }
    totals
}

/// A writer of [`drive_in_turns`] and the errors it has had so far: one
/// that has had [`WRITER_ERRORS_MAX`] runs no more.
struct Turner {
    op: Box<dyn Op>,
    errors: u64,
}

/// One group's turn, each writer on a task of its own as in [`drive`]:
/// `warmup`, then `measure`; what they did. A writer that panics is gone,
/// and counts as an error.
async fn turn(group: &mut Vec<Turner>, warmup: Duration, measure: Duration) -> Sample {
    let measure_from = Instant::now() + warmup;
    let until = measure_from + measure;
    let (done, running): (Vec<Turner>, Vec<Turner>) = std::mem::take(group)
        .into_iter()
        .partition(|turner| turner.errors >= WRITER_ERRORS_MAX);
    *group = done;
    let tasks: Vec<_> = running
        .into_iter()
        .map(|mut turner| {
            tokio::spawn(async move {
                let errors_max = WRITER_ERRORS_MAX - turner.errors;
                let (sample, _) = run_writer(&mut turner.op, measure_from, until, errors_max).await;
                turner.errors += sample.errors;
                (turner, sample)
            })
        })
        .collect();
    let mut total = Sample::default();
    for task in tasks {
        match task.await {
            Ok((turner, sample)) => {
                group.push(turner);
                total.add(sample);
            }
            Err(panic) => total.add(panicked(&panic, measure_from).0),
        }
    }
    total.elapsed = measure;
    total
}

/// One writer until `until`; what it did from `measure_from` on, and when
/// its last counted operation ended.
/// It stops after `errors_max` failed operations.
async fn run_writer<O: Op>(
    op: &mut O,
    measure_from: Instant,
    until: Instant,
    errors_max: u64,
) -> (Sample, Instant) {
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
                if sample.errors >= errors_max {
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the writers of the test did: which group ran, in order, and
    /// how many operations of each group were in flight.
    #[derive(Default)]
    struct Log {
        groups: Mutex<Vec<usize>>,
        in_flight: [AtomicUsize; 2],
        overlaps: AtomicUsize,
    }

    /// One millisecond of work of `group`, logged.
    struct Tagged {
        group: usize,
        log: Arc<Log>,
    }

    #[async_trait]
    impl Op for Tagged {
        async fn run(&mut self) -> anyhow::Result<u64> {
            let log = &self.log;
            log.in_flight[self.group].fetch_add(1, Ordering::SeqCst);
            if log.in_flight[1 - self.group].load(Ordering::SeqCst) > 0 {
                log.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            log.groups.lock().expect("log").push(self.group);
            log.in_flight[self.group].fetch_sub(1, Ordering::SeqCst);
            Ok(1)
        }
    }

    fn tagged(group: usize, writers: usize, log: &Arc<Log>) -> Group {
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
        let log = Arc::new(Log::default());
        let window = Window {
            warmup: Duration::from_millis(40),
            measure: Duration::from_millis(400),
        };
        let started = Instant::now();
        let samples = drive_in_turns(vec![tagged(0, 1, &log), tagged(1, 3, &log)], window).await;
        let took = started.elapsed();

        assert_eq!(samples.len(), 2);
        for sample in &samples {
            assert_eq!(sample.elapsed, window.measure);
            assert!(sample.ops > 0, "{sample:?}");
            assert_eq!(sample.ops as usize, sample.latencies_us.len());
            assert!(sample.latencies_us.is_sorted());
            assert_eq!(sample.errors, 0);
        }
        // Three writers in turn with one: about three times the operations.
        assert!(samples[1].ops > 2 * samples[0].ops, "{samples:?}");
        // Each group's warmup and window, one after another.
        assert!(took >= 2 * (window.warmup + window.measure), "{took:?}");

        // Never two groups at once, and the groups in turn: warmups 0 and
        // 1, then rounds in the order given and in reverse, alternately.
        assert_eq!(log.overlaps.load(Ordering::SeqCst), 0);
        let mut turns = vec![0, 1];
        for round in 0..TURN_SLICES {
            turns.extend(if round % 2 == 0 { [0, 1] } else { [1, 0] });
        }
        turns.dedup();
        let mut ran = log.groups.lock().expect("log").clone();
        ran.dedup();
        assert_eq!(ran, turns);
        // What was counted is no more than what ran outside the warmups.
        let logged = log.groups.lock().expect("log").len() as u64;
        assert!(samples[0].ops + samples[1].ops < logged);
    }

    /// Fails every time, or panics.
    struct Failing {
        panics: bool,
    }

    #[async_trait]
    impl Op for Failing {
        async fn run(&mut self) -> anyhow::Result<u64> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.panics {
                panic!("the writer broke");
            }
            anyhow::bail!("the database is gone")
        }
    }

    #[tokio::test]
    async fn a_failing_writer_stops_at_its_error_limit_and_a_panicking_one_is_counted() {
        let log = Arc::new(Log::default());
        let window = Window {
            warmup: Duration::from_millis(10),
            measure: Duration::from_millis(80),
        };
        let groups: Vec<Group> = vec![
            vec![Box::new(Failing { panics: false })],
            vec![Box::new(Failing { panics: true })],
            tagged(0, 1, &log),
        ];
        let samples = drive_in_turns(groups, window).await;

        // Its errors from the warmup on, across every slice, up to the limit.
        assert_eq!(samples[0].errors, WRITER_ERRORS_MAX);
        assert_eq!(samples[0].ops, 0);
        assert_eq!(
            samples[0].first_error.as_deref(),
            Some("the database is gone")
        );
        // Gone with its task after the first panic (in the warmup).
        assert_eq!(samples[1].errors, 1);
        assert!(samples[1]
            .first_error
            .as_deref()
            .is_some_and(|e| e.contains("panicked")));
        // The others are measured as ever.
        assert_eq!(samples[2].errors, 0);
        assert!(samples[2].ops > 0);
    }
}
