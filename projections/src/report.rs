//! The deadline compliance report, computed at query time against an
//! injected `now` with the domain's deadline engine: per request its
//! status, and per policy and month of receipt the counts, on-time rate,
//! median and p95 days to complete, overdue, at risk and blocked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::deadline::{DeadlineFacts, DeadlineStatus, PolicyName, PolicyTable};
use domain::ids::HoldId;
use serde::Serialize;

use crate::requests::blocked_seconds_at;
use crate::rows::RequestRow;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// One request in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlineRow {
    pub request: String,
    pub scope: String,
    pub policy: String,
    /// R3: the policy the caller named, when the request is held to
    /// another.
    pub asked_policy: Option<String>,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    /// `YYYY-MM` of receipt (UTC), the summary's month.
    pub month: String,
    pub original_due_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub extended: bool,
    pub extension_reason: Option<String>,
    pub state: String,
    /// Where it stands at the report's `now` (domain::deadline).
    pub status: DeadlineStatus,
    pub completed_at: Option<DateTime<Utc>>,
    /// Days from receipt to completion.
    pub days_to_complete: Option<f64>,
    pub on_time: Option<bool>,
    /// Time spent blocked by holds up to `now`, in seconds.
    pub blocked_seconds: i64,
    pub blocked_by: Vec<String>,
    pub refusal_code: Option<String>,
    /// When the requester must be told the request was received, for the
    /// policies that ask for it (CCPA: 10 business days).
    pub confirm_receipt_by: Option<DateTime<Utc>>,
    pub receipt_confirmed_at: Option<DateTime<Utc>>,
    /// Where that confirmation stands at `now`; `None` when the policy
    /// asks for none.
    pub receipt: Option<ReceiptStatus>,
}

/// Where the confirmation of receipt of a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptStatus {
    /// Not confirmed yet, and its date has not passed.
    Due,
    /// Not confirmed, and its date has passed.
    Overdue,
    ConfirmedOnTime,
    ConfirmedLate,
}

impl ReceiptStatus {
    /// Whether the confirmation missed its date (made late, or not made).
    pub fn is_late(self) -> bool {
        matches!(self, ReceiptStatus::Overdue | ReceiptStatus::ConfirmedLate)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Due => "due",
            ReceiptStatus::Overdue => "overdue",
            ReceiptStatus::ConfirmedOnTime => "confirmed-on-time",
            ReceiptStatus::ConfirmedLate => "confirmed-late",
        }
    }
}

/// The confirmation date of `row` under `table` and where it stands at
/// `now`.
fn receipt(
    row: &RequestRow,
    table: &PolicyTable,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<ReceiptStatus>) {
    // R3: a request held to a stricter policy than the one its caller
    // named still owes the named policy's confirmation.
    let by = [Some(row.policy.as_str()), row.asked_policy.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(PolicyName::from_name)
        .filter_map(|policy| table.confirm_receipt_by(policy, row.received_at))
        .min();
    let status = by.map(|by| match row.receipt_confirmed_at {
        Some(at) if at <= by => ReceiptStatus::ConfirmedOnTime,
        Some(_) => ReceiptStatus::ConfirmedLate,
        None if now > by => ReceiptStatus::Overdue,
        None => ReceiptStatus::Due,
    });
    (by, status)
}

/// The deadline row of a request at `now`.
pub fn deadline_row(row: &RequestRow, table: &PolicyTable, now: DateTime<Utc>) -> DeadlineRow {
    // A hold that came after the request was already late does not excuse
    // the lateness: the request stays overdue in the report.
    let late_before_held = row.blocked_since.is_some_and(|since| since > row.due_at);
    let blocking_holds: Vec<HoldId> = row
        .blocked_by
        .iter()
        .filter(|_| !late_before_held)
        .filter_map(|hold| HoldId::parse(hold).ok())
        .collect();
    let facts = DeadlineFacts {
        due_at: row.due_at,
        completed_at: row.completed_at,
        refused: row.refusal_code.is_some(),
        blocking_holds,
    };
    let status = table.status(&facts, now);
    let (confirm_receipt_by, receipt) = receipt(row, table, now);
    DeadlineRow {
        request: row.request.clone(),
        scope: row.scope.clone(),
        policy: row.policy.clone(),
        asked_policy: row.asked_policy.clone(),
        channel: row.channel.clone(),
        received_at: row.received_at,
        month: row.received_at.format("%Y-%m").to_string(),
        original_due_at: row.original_due_at,
        due_at: row.due_at,
        extended: row.extension_reason.is_some(),
        extension_reason: row.extension_reason.clone(),
        state: row.state.clone(),
        status,
        completed_at: row.completed_at,
        days_to_complete: row
            .completed_at
            .map(|done| (done - row.received_at).num_seconds() as f64 / SECONDS_PER_DAY),
        on_time: row.completed_at.map(|done| done <= row.due_at),
        blocked_seconds: blocked_seconds_at(row, now),
        blocked_by: row.blocked_by.clone(),
        refusal_code: row.refusal_code.clone(),
        confirm_receipt_by,
        receipt_confirmed_at: row.receipt_confirmed_at,
        receipt,
    }
}

/// The summary of one policy in one month of receipt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub policy: String,
    pub month: String,
    pub received: u64,
    pub completed: u64,
    pub completed_on_time: u64,
    /// Refusals by reason code (the CCPA "denied" count is their sum).
    pub refused: BTreeMap<String, u64>,
    /// Completed on time over the requests whose deadline is decided:
    /// completed, or open past due and not held (a request already late
    /// counts as late before it completes). `None` before any is decided.
    pub on_time_rate: Option<f64>,
    pub median_days: Option<f64>,
    pub p95_days: Option<f64>,
    /// Open and past due, not held.
    pub overdue: u64,
    /// Open and due within the at-risk window.
    pub at_risk: u64,
    /// Open and blocked by holds.
    pub blocked: u64,
    /// Open in any way.
    pub open: u64,
    /// Confirmations of receipt that missed their date: made late, or not
    /// made and past it (CCPA).
    pub receipts_late: u64,
}

/// Folds deadline rows into per-policy, per-month summaries. Keeps one
/// number per completed request (for the percentiles), nothing else per row.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    groups: BTreeMap<(String, String), (SummaryRow, Vec<f64>)>,
}

impl SummaryBuilder {
    pub fn add(&mut self, row: &DeadlineRow) {
        let (summary, days) = self
            .groups
            .entry((row.policy.clone(), row.month.clone()))
            .or_insert_with(|| {
                (
                    SummaryRow {
                        policy: row.policy.clone(),
                        month: row.month.clone(),
                        received: 0,
                        completed: 0,
                        completed_on_time: 0,
                        refused: BTreeMap::new(),
                        on_time_rate: None,
                        median_days: None,
                        p95_days: None,
                        overdue: 0,
                        at_risk: 0,
                        blocked: 0,
                        open: 0,
                        receipts_late: 0,
                    },
                    Vec::new(),
                )
            });
        summary.received += 1;
        if row.receipt.is_some_and(ReceiptStatus::is_late) {
            summary.receipts_late += 1;
        }
        match &row.status {
            DeadlineStatus::CompletedOnTime | DeadlineStatus::CompletedLate => {
                summary.completed += 1;
                if row.status == DeadlineStatus::CompletedOnTime {
                    summary.completed_on_time += 1;
                }
                days.extend(row.days_to_complete);
            }
            DeadlineStatus::Refused => {
                let code = row.refusal_code.clone().unwrap_or_default();
                *summary.refused.entry(code).or_default() += 1;
            }
            DeadlineStatus::Overdue => {
                summary.open += 1;
                summary.overdue += 1;
            }
            DeadlineStatus::AtRisk => {
                summary.open += 1;
                summary.at_risk += 1;
            }
            DeadlineStatus::BlockedByHold { .. } => {
                summary.open += 1;
                summary.blocked += 1;
            }
            DeadlineStatus::OnTrack => summary.open += 1,
        }
    }

    pub fn finish(self) -> Vec<SummaryRow> {
        self.groups
            .into_values()
            .map(|(mut summary, mut days)| {
                days.sort_by(f64::total_cmp);
                summary.on_time_rate = on_time_rate(
                    summary.completed_on_time,
                    summary.completed + summary.overdue,
                );
                summary.median_days = median(&days);
                summary.p95_days = nearest_rank(&days, 95);
                summary
            })
            .collect()
    }
}

/// Completed on time over `decided` (completed, or open past due);
/// `None` when nothing is decided yet.
pub fn on_time_rate(on_time: u64, decided: u64) -> Option<f64> {
    (decided > 0).then(|| on_time as f64 / decided as f64)
}

/// The median of sorted values: the middle one, or the mean of the two.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The `percent`th percentile of sorted values by the nearest-rank method:
/// the smallest value with at least `percent`% of values at or below it.
pub fn nearest_rank(sorted: &[f64], percent: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlineReport {
    pub now: DateTime<Utc>,
    /// The requests received in the report's range, oldest first.
    pub rows: Vec<DeadlineRow>,
    pub summary: Vec<SummaryRow>,
    /// Open requests past due (from all time, not only the range).
    pub overdue: Vec<DeadlineRow>,
    /// Open requests due within the at-risk window.
    pub at_risk: Vec<DeadlineRow>,
    /// Open requests blocked by holds, with the holds.
    pub blocked: Vec<DeadlineRow>,
    /// Requests whose receipt was not confirmed by its date (from all
    /// time), oldest first.
    pub receipts_overdue: Vec<DeadlineRow>,
}

/// Column names of the report rows as CSV.
pub const DEADLINE_CSV_HEADER: &[&str] = &[
    "request",
    "scope",
    "policy",
    "channel",
    "received_at",
    "original_due_at",
    "due_at",
    "extended",
    "extension_reason",
    "state",
    "status",
    "completed_at",
    "days_to_complete",
    "on_time",
    "blocked_seconds",
    "blocked_by",
    "refusal_code",
    "confirm_receipt_by",
    "receipt_confirmed_at",
    "receipt",
    "asked_policy",
];

/// One report row as CSV cells, in [`DEADLINE_CSV_HEADER`] order.
pub fn deadline_csv_cells(row: &DeadlineRow) -> Vec<String> {
    let time = |at: DateTime<Utc>| commands::log::rfc3339_micros(at);
    vec![
        row.request.clone(),
        row.scope.clone(),
        row.policy.clone(),
        row.channel.clone(),
        time(row.received_at),
        time(row.original_due_at),
        time(row.due_at),
        row.extended.to_string(),
        row.extension_reason.clone().unwrap_or_default(),
        row.state.clone(),
        row.status.label(),
        row.completed_at.map(time).unwrap_or_default(),
        row.days_to_complete
            .map(|d| format!("{d:.2}"))
            .unwrap_or_default(),
        row.on_time.map(|b| b.to_string()).unwrap_or_default(),
        row.blocked_seconds.to_string(),
        row.blocked_by.join(" "),
        row.refusal_code.clone().unwrap_or_default(),
        row.confirm_receipt_by.map(time).unwrap_or_default(),
        row.receipt_confirmed_at.map(time).unwrap_or_default(),
        row.receipt
            .map(ReceiptStatus::as_str)
            .unwrap_or_default()
            .to_owned(),
        row.asked_policy.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(median(&values), Some(10.5));
        assert_eq!(nearest_rank(&values, 95), Some(19.0));
        assert_eq!(nearest_rank(&[4.0], 95), Some(4.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
    }
}
