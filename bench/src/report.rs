//! The figures of one run, their ratios to the baselines of the same run,
//! the targets of issues 3 and 6, the printed table and the JSON file.

use serde::Serialize;

use crate::measure::Sample;

/// One measured (or deliberately unmeasured) figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable id, e.g. `postgres.raw.one_per_tx.64`.
    pub key: String,
    pub backend: &'static str,
    pub system: &'static str,
    pub measurement: String,
    pub writers: usize,
    /// `events/s`, `commands/s`, `lookups/s`, or `MB` for memory.
    pub unit: &'static str,
    /// The rate, or for memory the size in `unit`.
    pub rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub ops: u64,
    pub events: u64,
    pub elapsed_s: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// The figure this one is compared with, and `rate / baseline rate`.
    pub baseline: Option<String>,
    pub ratio: Option<f64>,
    /// Why there is no number (not built yet, no PostgreSQL, failed).
    pub not_measured: Option<String>,
}

impl Figure {
    /// This figure with the numbers of `sample`.
    pub fn with_sample(mut self, sample: &Sample) -> Self {
        let rate = if self.unit == "commands/s" {
            sample.ops_per_s()
        } else {
            sample.events_per_s()
        };
        self.rate = (sample.ops > 0).then_some(rate);
        self.p50_ms = sample.percentile_ms(50.0);
        self.p99_ms = sample.percentile_ms(99.0);
        self.ops = sample.ops;
        self.events = sample.events;
        self.elapsed_s = sample.elapsed.as_secs_f64();
        self.errors = sample.errors;
        self.first_error.clone_from(&sample.first_error);
        self.not_measured = None;
        self
    }

    /// This figure with a size (memory) in place of its rate; the rest of
    /// its sample still says how much work it covered and how long that
    /// took.
    pub fn with_size(mut self, size: f64) -> Self {
        self.rate = Some(size);
        self.not_measured = None;
        self.p50_ms = None;
        self.p99_ms = None;
        self
    }

    pub fn not_measured(
        key: String,
        backend: &'static str,
        system: &'static str,
        measurement: &str,
        writers: usize,
        unit: &'static str,
        why: String,
    ) -> Self {
        Self {
            key,
            backend,
            system,
            measurement: measurement.into(),
            writers,
            unit,
            rate: None,
            p50_ms: None,
            p99_ms: None,
            ops: 0,
            events: 0,
            elapsed_s: 0.0,
            errors: 0,
            first_error: None,
            baseline: None,
            ratio: None,
            not_measured: Some(why),
        }
    }

    /// A measurement that could not run at all counts as a failure of
    /// the benchmark; one that is not built yet does not.
    pub fn failed(&self) -> bool {
        self.errors > 0
            || self
                .not_measured
                .as_deref()
                .is_some_and(|why| why.starts_with("failed"))
    }
}

/// What a target compares.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `rate(figure) / rate(baseline) >= bound`.
    RateRatioAtLeast,
    /// `p50(figure) / p50(baseline) <= bound`.
    LatencyRatioAtMost,
    /// `rate(figure) >= bound`.
    RateAtLeast,
    /// `p99(figure) <= bound` milliseconds.
    P99AtMostMs,
    /// `value(figure) <= bound` (memory in MB).
    AtMost,
    /// `value(figure) / value(baseline) <= bound`, each value taken as at
    /// least [`SIZE_FLOOR_MB`] (memory growth).
    SizeRatioAtMost,
}

/// Below this, a rise of resident memory is noise: the allocator's arenas
/// and SQLite's page caches grow and shrink by a few MB on their own, so
/// ratios of memory compare at least this much. Memory that grows with the
/// number of entries exported goes far past it at full size (a million
/// entries are about 400 MB of CSV).
pub const SIZE_FLOOR_MB: f64 = 8.0;

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub figure: String,
    pub baseline: Option<String>,
    pub rule: Rule,
    pub bound: f64,
    pub value: Option<f64>,
    /// None: not measured.
    pub met: Option<bool>,
    pub note: Option<String>,
}

impl Target {
    pub fn new(name: &str, figure: &str, baseline: Option<&str>, rule: Rule, bound: f64) -> Self {
        Self {
            name: name.into(),
            figure: figure.into(),
            baseline: baseline.map(Into::into),
            rule,
            bound,
            value: None,
            met: None,
            note: None,
        }
    }
}

fn find<'a>(figures: &'a [Figure], key: &str) -> Option<&'a Figure> {
    figures.iter().find(|f| f.key == key)
}

/// Fills every figure's ratio to its baseline (for memory, each size
/// taken as at least [`SIZE_FLOOR_MB`]).
pub fn fill_ratios(figures: &mut [Figure]) {
    let rates: Vec<(String, Option<f64>)> =
        figures.iter().map(|f| (f.key.clone(), f.rate)).collect();
    for figure in figures.iter_mut() {
        let Some(baseline) = &figure.baseline else {
            continue;
        };
        let base = rates
            .iter()
            .find(|(key, _)| key == baseline)
            .and_then(|(_, rate)| *rate);
        figure.ratio = match (figure.rate, base) {
            (Some(size), Some(base)) if figure.unit == "MB" => {
                Some(size.max(SIZE_FLOOR_MB) / base.max(SIZE_FLOOR_MB))
            }
            (Some(rate), Some(base)) if base > 0.0 => Some(rate / base),
            _ => None,
        };
    }
}

/// A ratio printed beside the targets to explain them, not judged: a
/// figure against a reference measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub name: String,
    pub figure: String,
    pub baseline: String,
    /// `rate(figure) / rate(baseline)`; None: one of them not measured.
    pub ratio: Option<f64>,
}

impl Context {
    pub fn new(name: &str, figure: &str, baseline: &str) -> Self {
        Self {
            name: name.into(),
            figure: figure.into(),
            baseline: baseline.into(),
            ratio: None,
        }
    }
}

/// Fills every context ratio from the figures.
pub fn explain(contexts: &mut [Context], figures: &[Figure]) {
    for context in contexts.iter_mut() {
        let rate = |key: &str| find(figures, key).and_then(|f| f.rate);
        context.ratio = match (rate(&context.figure), rate(&context.baseline)) {
            (Some(rate), Some(base)) if base > 0.0 => Some(rate / base),
            _ => None,
        };
    }
}

/// Decides every target against the figures.
pub fn judge(targets: &mut [Target], figures: &[Figure]) {
    for target in targets.iter_mut() {
        if target.note.is_some() && target.value.is_none() {
            continue;
        }
        let figure = find(figures, &target.figure);
        let baseline = target
            .baseline
            .as_deref()
            .and_then(|key| find(figures, key));
        target.value = match target.rule {
            Rule::RateRatioAtLeast => {
                match (figure.and_then(|f| f.rate), baseline.and_then(|b| b.rate)) {
                    (Some(rate), Some(base)) if base > 0.0 => Some(rate / base),
                    _ => None,
                }
            }
            Rule::LatencyRatioAtMost => {
                match (
                    figure.and_then(|f| f.p50_ms),
                    baseline.and_then(|b| b.p50_ms),
                ) {
                    (Some(p50), Some(base)) if base > 0.0 => Some(p50 / base),
                    _ => None,
                }
            }
            Rule::RateAtLeast | Rule::AtMost => figure.and_then(|f| f.rate),
            Rule::P99AtMostMs => figure.and_then(|f| f.p99_ms),
            Rule::SizeRatioAtMost => {
                match (figure.and_then(|f| f.rate), baseline.and_then(|b| b.rate)) {
                    (Some(size), Some(base)) => {
                        Some(size.max(SIZE_FLOOR_MB) / base.max(SIZE_FLOOR_MB))
                    }
                    _ => None,
                }
            }
        };
        target.met = target.value.map(|value| match target.rule {
            Rule::RateRatioAtLeast | Rule::RateAtLeast => value >= target.bound,
            Rule::LatencyRatioAtMost | Rule::P99AtMostMs | Rule::AtMost | Rule::SizeRatioAtMost => {
                value <= target.bound
            }
        });
        if target.value.is_none() && target.note.is_none() {
            target.note = Some(
                figure
                    .and_then(|f| f.not_measured.clone())
                    .unwrap_or_else(|| "no figure to judge".into()),
            );
        }
    }
}

pub fn num(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v >= 1_000.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The table that `make bench` prints.
pub fn table(figures: &[Figure], targets: &[Target], contexts: &[Context]) -> String {
    let mut out = String::new();
    let header = format!(
        "{:<9} {:<13} {:<44} {:>4} {:>10} {:<10} {:>8} {:>8} {:>7}  {}",
        "backend",
        "system",
        "measurement",
        "conc",
        "value",
        "unit",
        "p50 ms",
        "p99 ms",
        "ratio",
        "ratio against"
    );
    out.push_str(&header);
    out.push('\n');
    out.push_str(&"-".repeat(header.len() + 20));
    out.push('\n');
    for f in figures {
        if let Some(why) = &f.not_measured {
            out.push_str(&format!(
                "{:<9} {:<13} {:<44} {:>4} {:>10} {:<10} not measured: {why}\n",
                f.backend, f.system, f.measurement, f.writers, "-", f.unit
            ));
            continue;
        }
        let against = match (&f.baseline, f.ratio) {
            // A figure that others compare with, or one without a peer.
            (None, _) if figures.iter().any(|o| o.baseline.as_ref() == Some(&f.key)) => {
                "(baseline)".to_owned()
            }
            (None, _) => String::new(),
            (Some(key), _) => figures
                .iter()
                .find(|b| &b.key == key)
                .map(|b| format!("{} {} x{}", b.system, b.measurement, b.writers))
                .unwrap_or_else(|| key.clone()),
        };
        let errors = if f.errors > 0 {
            format!(
                "  ERRORS: {} ({})",
                f.errors,
                f.first_error.as_deref().unwrap_or("")
            )
        } else {
            String::new()
        };
        let line = format!(
            "{:<9} {:<13} {:<44} {:>4} {:>10} {:<10} {:>8} {:>8} {:>7}  {}{}",
            f.backend,
            f.system,
            f.measurement,
            f.writers,
            num(f.rate),
            f.unit,
            num(f.p50_ms),
            num(f.p99_ms),
            f.ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x")),
            against,
            errors
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    out.push_str("Targets (issues 3 and 6)\n");
    for t in targets {
        let verdict = match t.met {
            Some(true) => "MET   ",
            Some(false) => "MISSED",
            None => "NOT MEASURED",
        };
        let required = match t.rule {
            Rule::RateRatioAtLeast => format!(">= {}x", t.bound),
            Rule::LatencyRatioAtMost => format!("<= {}x", t.bound),
            Rule::RateAtLeast => format!(">= {}/s", t.bound),
            Rule::P99AtMostMs => format!("<= {} ms", t.bound),
            Rule::AtMost => format!("<= {} MB", t.bound),
            Rule::SizeRatioAtMost => format!("<= {}x", t.bound),
        };
        let value = match (t.value, t.rule) {
            (None, _) => "-".to_owned(),
            (
                Some(v),
                Rule::RateRatioAtLeast | Rule::LatencyRatioAtMost | Rule::SizeRatioAtMost,
            ) => format!("{v:.2}x"),
            (Some(v), _) => num(Some(v)),
        };
        out.push_str(&format!(
            "  {verdict}  {:<70} measured {:>9}, required {}{}\n",
            t.name,
            value,
            required,
            t.note
                .as_deref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        ));
    }
    if !contexts.is_empty() {
        out.push_str("\nContext (not targets)\n");
    }
    for c in contexts {
        out.push_str(&format!(
            "  {:<78} measured {:>9}\n",
            c.name,
            c.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(key: &str, rate: Option<f64>) -> Figure {
        let mut figure = Figure::not_measured(
            key.into(),
            "sqlite",
            "raw sqlx",
            "",
            1,
            "events/s",
            "failed".into(),
        );
        if rate.is_some() {
            figure.rate = rate;
            figure.not_measured = None;
        }
        figure
    }

    #[test]
    fn a_context_ratio_needs_both_figures() {
        let figures = [
            figure("a", Some(30.0)),
            figure("b", Some(120.0)),
            figure("c", None),
        ];
        let mut contexts = [
            Context::new("a / b", "a", "b"),
            Context::new("a / c", "a", "c"),
            Context::new("a / missing", "a", "missing"),
        ];
        explain(&mut contexts, &figures);
        assert_eq!(contexts[0].ratio, Some(0.25));
        assert_eq!(contexts[1].ratio, None);
        assert_eq!(contexts[2].ratio, None);
        let printed = table(&figures, &[], &contexts);
        assert!(printed.contains("Context (not targets)"), "{printed}");
        assert!(printed.contains("0.25x"), "{printed}");
    }
}
