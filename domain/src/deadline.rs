//! The deadline engine: when a deletion request is due under its policy,
//! how it may be extended, and whether it is on track, at risk, overdue or
//! blocked by a hold at a given instant. Time always comes in as an
//! argument; the domain never reads the clock.

use std::fmt;

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::HoldId;
use crate::subject::name_enum;
use crate::text::Reason;

name_enum!(
    /// The deadline policy a request is handled under.
    PolicyName {
        YoutubeApiUserData = "youtube-api-user-data",
        Gdpr = "gdpr",
        Ccpa = "ccpa",
        Internal = "internal",
    }
);

/// The configurable part of the policy table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTable {
    /// Days from receipt for the internal default policy.
    pub internal_due_days: u32,
    /// Days one extension adds under the internal policy (0: none allowed).
    pub internal_extension_days: u32,
    /// R13: days after completion by which backups and logs drop residual copies.
    pub residual_copies_days: u32,
    /// A request due within this many hours is at risk.
    pub at_risk_hours: u32,
}

impl Default for PolicyTable {
    fn default() -> Self {
        Self {
            internal_due_days: 30,
            internal_extension_days: 30,
            residual_copies_days: 35,
            at_risk_hours: 48,
        }
    }
}

/// How many days a YouTube API user-data deletion may take (YouTube API
/// Services Developer Policies: delete within 7 calendar days).
pub const YOUTUBE_DUE_DAYS: u32 = 7;
/// How many calendar days CCPA gives to respond (Cal. Code Regs. tit. 11,
/// § 7021(b)).
pub const CCPA_DUE_DAYS: u32 = 45;
/// How many calendar days the one CCPA extension adds.
pub const CCPA_EXTENSION_DAYS: u32 = 45;
/// How many business days CCPA gives to confirm receipt (§ 7021(a)).
pub const CCPA_CONFIRM_BUSINESS_DAYS: u32 = 10;
/// How many months GDPR Art. 12(3) gives to respond.
pub const GDPR_DUE_MONTHS: u32 = 1;
/// How many further months a GDPR extension may add (Art. 12(3)).
pub const GDPR_EXTENSION_MONTHS: u32 = 2;

/// What one policy of the table promises, in words: what `lethe
/// policies` prints and `GET /v1/policies` answers, so that auditors read
/// the terms the ledger decides by rather than a copy of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyTerms {
    pub policy: PolicyName,
    /// When a request is due, counted from its receipt.
    pub due: String,
    /// What extension it allows.
    pub extension: String,
    /// Another obligation of the policy, if it has one.
    pub also: Option<String>,
    /// Whether the operator sets the figures (the others come from law or
    /// a platform's policy).
    pub configurable: bool,
}

impl PolicyTable {
    /// The terms of every policy under this table, in the table's order.
    pub fn terms(&self) -> Vec<PolicyTerms> {
        let internal_extension = match self.internal_extension_days {
            0 => "none".to_owned(),
            days => {
                format!("one, of {days} days past the due time, with a reason, decided before it")
            }
        };
        vec![
            PolicyTerms {
                policy: PolicyName::YoutubeApiUserData,
                due: format!("{YOUTUBE_DUE_DAYS} calendar days from receipt"),
                extension: "none".to_owned(),
                also: Some(
                    "a request that covers YouTube API data is held to it, whatever policy it names (R3)"
                        .to_owned(),
                ),
                configurable: false,
            },
            PolicyTerms {
                policy: PolicyName::Gdpr,
                due: format!(
                    "{GDPR_DUE_MONTHS} month from receipt, day of receipt excluded, to the end of that UTC day"
                ),
                extension: format!(
                    "up to {GDPR_EXTENSION_MONTHS} more months, announced with reasons within the first month"
                ),
                also: None,
                configurable: false,
            },
            PolicyTerms {
                policy: PolicyName::Ccpa,
                due: format!("{CCPA_DUE_DAYS} calendar days from receipt"),
                extension: format!(
                    "one, of {CCPA_EXTENSION_DAYS} days, with a notice of the reason within the first {CCPA_DUE_DAYS} days"
                ),
                also: Some(format!(
                    "confirm receipt within {CCPA_CONFIRM_BUSINESS_DAYS} business days"
                )),
                configurable: false,
            },
            PolicyTerms {
                policy: PolicyName::Internal,
                due: format!("{} calendar days from receipt", self.internal_due_days),
                extension: internal_extension,
                also: None,
                configurable: true,
            },
        ]
    }

    /// When a request received at `received_at` must be completed under
    /// `policy`. The returned instant is the last one that still counts as
    /// on time: completing at exactly `due_at` is on time, one instant later
    /// is late.
    ///
    /// - youtube-api-user-data: 7 calendar days, same instant, because the
    ///   YouTube policy counts days, not working days.
    /// - gdpr: see [`gdpr_period_end`]; one month with the day of receipt
    ///   excluded, ending at the end of the UTC day.
    /// - ccpa: 45 calendar days, same instant.
    /// - internal: `internal_due_days` calendar days, same instant.
    pub fn due_at(&self, policy: PolicyName, received_at: DateTime<Utc>) -> DateTime<Utc> {
        match policy {
            PolicyName::YoutubeApiUserData => plus_days(received_at, YOUTUBE_DUE_DAYS),
            PolicyName::Gdpr => gdpr_period_end(received_at, GDPR_DUE_MONTHS),
            PolicyName::Ccpa => plus_days(received_at, CCPA_DUE_DAYS),
            PolicyName::Internal => plus_days(received_at, self.internal_due_days),
        }
    }

    /// When receipt of the request must be confirmed to the requester, for
    /// the policies that ask for it; only CCPA does (10 business days).
    ///
    /// Business days are Monday to Friday in UTC, counted from the day after
    /// receipt, and the result keeps the time of day of receipt. There is no
    /// holiday calendar: skipping only weekends gives a date that is never
    /// later than the legal one, so the ledger errs on the early side.
    pub fn confirm_receipt_by(
        &self,
        policy: PolicyName,
        received_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match policy {
            PolicyName::Ccpa => Some(plus_business_days(received_at, CCPA_CONFIRM_BUSINESS_DAYS)),
            PolicyName::YoutubeApiUserData | PolicyName::Gdpr | PolicyName::Internal => None,
        }
    }

    /// Decides an extension of the deadline and returns the new due time.
    ///
    /// `current_due_at` is the due time the request has now and
    /// `already_extended` says whether an extension was granted before;
    /// both come from the request's events. Every policy allows at most one
    /// extension, it must come with a reason (the requester is told why),
    /// and it must be decided while the request is still on time
    /// (`now <= current_due_at`): an extension after the due time would
    /// rewrite a missed deadline as a met one.
    ///
    /// - youtube-api-user-data: never extended; the policy has no extension.
    /// - gdpr: two further months past the original due date, ending at the
    ///   end of that UTC day, clamped to the month's last day. Counting from
    ///   the original due date, not from receipt, gives the earlier of the
    ///   two readings of Art. 12(3) (received 31 January: due 28 February,
    ///   extended to 28 April rather than 30 April).
    /// - ccpa: 45 further days past the original due time (§ 7021(b)).
    /// - internal: `internal_extension_days` past the current due time,
    ///   since the table may have changed since receipt and the recorded due
    ///   time is the one promised; refused when that is 0.
    ///
    /// The statutory policies extend from the due time computed from
    /// `received_at` so that a drifted stored value cannot stretch a legal
    /// limit. The refusal message names the rule that refused.
    pub fn extend(
        &self,
        policy: PolicyName,
        received_at: DateTime<Utc>,
        current_due_at: DateTime<Utc>,
        already_extended: bool,
        reason: Option<&Reason>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, DomainError> {
        let refuse = |rule: String| Err(DomainError::ExtensionRefused(rule));
        // The new due time is computed first, since it is pure; the rules
        // below then decide whether it is granted.
        let (extended, late_rule, reason_rule) = match policy {
            PolicyName::YoutubeApiUserData => {
                return refuse(format!(
                    "{policy} allows no extension (YouTube API Services policy: delete within {YOUTUBE_DUE_DAYS} days)"
                ));
            }
            PolicyName::Internal if self.internal_extension_days == 0 => {
                return refuse(format!(
                    "{policy} allows no extension (internal_extension_days is 0 in the policy table)"
                ));
            }
            PolicyName::Gdpr => (
                gdpr_period_end(self.due_at(policy, received_at), GDPR_EXTENSION_MONTHS),
                "gdpr extension must be announced within the first month (GDPR Art. 12(3))",
                "gdpr extension needs the reasons for the delay (GDPR Art. 12(3))",
            ),
            PolicyName::Ccpa => (
                plus_days(self.due_at(policy, received_at), CCPA_EXTENSION_DAYS),
                "ccpa extension notice must be given within the first 45 days (CCPA § 7021(b))",
                "ccpa extension needs a notice explaining the reason (CCPA § 7021(b))",
            ),
            PolicyName::Internal => (
                plus_days(current_due_at, self.internal_extension_days),
                "internal extension must be decided before the due time",
                "internal extension needs a reason",
            ),
        };
        if already_extended {
            return refuse(format!(
                "{policy} allows one extension only, and it was used"
            ));
        }
        if now > current_due_at {
            return refuse(format!(
                "{late_rule}; the due time {} has passed",
                current_due_at.to_rfc3339()
            ));
        }
        if reason.is_none() {
            return refuse(reason_rule.to_owned());
        }
        Ok(extended)
    }

    /// Where a request stands at `now`. The order of the checks is the
    /// order of precedence: a completed request is judged only by when it
    /// completed; a refused one is closed; a request held by a legal or
    /// moderation hold shows the holds, even past its due time, so that it
    /// never reads as silently overdue; only then do the due time and the
    /// at-risk window decide.
    pub fn status(&self, facts: &DeadlineFacts, now: DateTime<Utc>) -> DeadlineStatus {
        if let Some(completed_at) = facts.completed_at {
            return if completed_at <= facts.due_at {
                DeadlineStatus::CompletedOnTime
            } else {
                DeadlineStatus::CompletedLate
            };
        }
        if facts.refused {
            return DeadlineStatus::Refused;
        }
        if !facts.blocking_holds.is_empty() {
            return DeadlineStatus::BlockedByHold {
                holds: facts.blocking_holds.clone(),
            };
        }
        if now > facts.due_at {
            return DeadlineStatus::Overdue;
        }
        if facts.due_at - now <= Duration::hours(i64::from(self.at_risk_hours)) {
            return DeadlineStatus::AtRisk;
        }
        DeadlineStatus::OnTrack
    }

    /// R13: when backups and logs must have dropped the residual copies of
    /// what a request deleted, `residual_copies_days` after it completed.
    pub fn residual_copies_purged_by(&self, completed_at: DateTime<Utc>) -> DateTime<Utc> {
        plus_days(completed_at, self.residual_copies_days)
    }
}

/// What the deadline engine needs to know about one request to say where it
/// stands; the caller folds these out of the request's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineFacts {
    /// The due time the request has now, extensions included.
    pub due_at: DateTime<Utc>,
    /// When the request completed, if it has.
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the request was refused (and so closed without deletion).
    pub refused: bool,
    /// The active holds that stop the request from completing.
    pub blocking_holds: Vec<HoldId>,
}

/// Where a request stands against its deadline. Serialized with a `status`
/// tag in kebab-case (`{"status":"at-risk"}`) because reports and the HTTP
/// API show it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum DeadlineStatus {
    /// Open, and due later than the at-risk window.
    OnTrack,
    /// Open, and due within `at_risk_hours`.
    AtRisk,
    /// Open, not held, and past its due time.
    Overdue,
    /// Open and stopped by these holds; shown whatever the due time, since
    /// a held request is not late by the ledger's fault.
    BlockedByHold {
        /// The holds that block the request.
        holds: Vec<HoldId>,
    },
    /// Completed at or before its due time.
    CompletedOnTime,
    /// Completed after its due time.
    CompletedLate,
    /// Refused; no deadline applies any more.
    Refused,
}

impl DeadlineStatus {
    /// Human text for reports and the CLI, e.g. "at risk" or
    /// "blocked by hold <id>, <id>"; the holds are named so that a reader
    /// knows whom to ask.
    pub fn label(&self) -> String {
        match self {
            DeadlineStatus::OnTrack => "on track".to_owned(),
            DeadlineStatus::AtRisk => "at risk".to_owned(),
            DeadlineStatus::Overdue => "overdue".to_owned(),
            DeadlineStatus::BlockedByHold { holds } => {
                let ids: Vec<String> = holds.iter().map(ToString::to_string).collect();
                format!("blocked by hold {}", ids.join(", "))
            }
            DeadlineStatus::CompletedOnTime => "completed on time".to_owned(),
            DeadlineStatus::CompletedLate => "completed late".to_owned(),
            DeadlineStatus::Refused => "refused".to_owned(),
        }
    }
}

impl fmt::Display for DeadlineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The end of a period of `months` months that runs from the UTC day of
/// `from`, counted as EU Regulation 1182/71 Art. 3(2)(c) counts it (the
/// rule GDPR deadlines follow): the day of the event is excluded, and the
/// period ends with the last hour of the day in the last month that has the
/// same date, or of that month's last day when it has no such date
/// (31 January + 1 month ends on 28 or 29 February).
///
/// The end is 23:59:59.999999 UTC, the last microsecond before midnight:
/// microseconds because PostgreSQL keeps no finer time, so the value
/// survives a round trip through the store unchanged. Days are UTC days,
/// and the Art. 3(4) move to the next working day when the period ends on
/// a weekend or holiday is not applied; both keep the due time at or before
/// the legal one.
fn gdpr_period_end(from: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    let Some(last_day) = from.date_naive().checked_add_months(Months::new(months)) else {
        return DateTime::<Utc>::MAX_UTC;
    };
    end_of_day(last_day)
}

/// The last microsecond of a UTC day (see [`gdpr_period_end`] for why
/// microseconds).
fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_micro_opt(23, 59, 59, 999_999)
        .expect("23:59:59.999999 is a valid time of day")
        .and_utc()
}

/// `at` plus `days` calendar days. A due time past the end of the
/// representable calendar (a misconfigured `u32` of days) saturates
/// instead of panicking, since the domain must not fail on a number.
fn plus_days(at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    at.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at` plus `days` business days (Monday to Friday, no holidays), keeping
/// the time of day. A request received on a weekend starts counting on the
/// Monday.
fn plus_business_days(at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let mut day = at.date_naive();
    let mut counted = 0;
    while counted < days {
        let Some(next) = day.succ_opt() else {
            return DateTime::<Utc>::MAX_UTC;
        };
        day = next;
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            counted += 1;
        }
    }
    day.and_time(at.time()).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("test instants are valid RFC 3339")
            .with_timezone(&Utc)
    }

    fn day(iso: &str) -> NaiveDate {
        iso.parse().expect("test dates are valid ISO dates")
    }

    fn hold(n: u128) -> HoldId {
        HoldId::from_uuid(Uuid::from_u128(n))
    }

    fn reason() -> Reason {
        Reason::parse("backups of the media store take longer than usual").expect("valid reason")
    }

    #[test]
    fn due_times_follow_each_policy() {
        let table = PolicyTable::default();
        // (policy, received, due)
        let cases = [
            (
                PolicyName::YoutubeApiUserData,
                "2026-03-01T10:00:00Z",
                "2026-03-08T10:00:00Z",
            ),
            (
                PolicyName::YoutubeApiUserData,
                "2026-12-28T23:30:00Z",
                "2027-01-04T23:30:00Z",
            ),
            (
                PolicyName::Ccpa,
                "2026-03-01T10:00:00Z",
                "2026-04-15T10:00:00Z",
            ),
            (
                PolicyName::Ccpa,
                "2026-12-01T00:00:00Z",
                "2027-01-15T00:00:00Z",
            ),
            (
                PolicyName::Internal,
                "2026-03-01T10:00:00Z",
                "2026-03-31T10:00:00Z",
            ),
            (
                PolicyName::Gdpr,
                "2026-03-15T08:00:00Z",
                "2026-04-15T23:59:59.999999Z",
            ),
            (
                PolicyName::Gdpr,
                "2026-03-15T23:59:59Z",
                "2026-04-15T23:59:59.999999Z",
            ),
            (
                PolicyName::Gdpr,
                "2026-01-31T12:00:00Z",
                "2026-02-28T23:59:59.999999Z",
            ),
            (
                PolicyName::Gdpr,
                "2026-03-31T12:00:00Z",
                "2026-04-30T23:59:59.999999Z",
            ),
            (
                PolicyName::Gdpr,
                "2026-12-31T12:00:00Z",
                "2027-01-31T23:59:59.999999Z",
            ),
        ];
        for (policy, received, due) in cases {
            assert_eq!(
                table.due_at(policy, at(received)),
                at(due),
                "{policy} received {received}"
            );
        }
    }

    #[test]
    fn gdpr_received_on_the_31st_of_january_is_due_on_the_last_day_of_february() {
        let table = PolicyTable::default();
        // (received, due date): leap years clamp to the 29th.
        let cases = [
            ("2026-01-31T09:00:00Z", "2026-02-28"),
            ("2024-01-31T09:00:00Z", "2024-02-29"),
            ("2024-01-30T09:00:00Z", "2024-02-29"),
            ("2024-01-29T09:00:00Z", "2024-02-29"),
            ("2000-01-31T09:00:00Z", "2000-02-29"),
            ("2100-01-31T09:00:00Z", "2100-02-28"),
        ];
        for (received, due_date) in cases {
            let due = table.due_at(PolicyName::Gdpr, at(received));
            assert_eq!(due.date_naive(), day(due_date), "received {received}");
            assert_eq!(due, end_of_day(day(due_date)), "ends at the end of the day");
        }
    }

    #[test]
    fn the_terms_name_every_policy_and_the_tables_figures() {
        let table = PolicyTable {
            internal_due_days: 14,
            internal_extension_days: 0,
            ..PolicyTable::default()
        };
        let terms = table.terms();
        let named: Vec<PolicyName> = terms.iter().map(|terms| terms.policy).collect();
        assert_eq!(named, PolicyName::ALL.to_vec());
        let internal = &terms[3];
        assert_eq!(internal.due, "14 calendar days from receipt");
        assert_eq!(internal.extension, "none");
        assert!(internal.configurable);
        assert!(terms[..3].iter().all(|terms| !terms.configurable));
        let extended = PolicyTable::default().terms();
        assert_eq!(
            extended[3].extension,
            "one, of 30 days past the due time, with a reason, decided before it"
        );
        assert_eq!(extended[0].due, "7 calendar days from receipt");
    }

    #[test]
    fn the_internal_due_time_comes_from_the_table() {
        let table = PolicyTable {
            internal_due_days: 14,
            ..PolicyTable::default()
        };
        assert_eq!(
            table.due_at(PolicyName::Internal, at("2026-03-01T10:00:00Z")),
            at("2026-03-15T10:00:00Z")
        );
    }

    #[test]
    fn a_huge_configured_day_count_saturates_instead_of_panicking() {
        let table = PolicyTable {
            internal_due_days: u32::MAX,
            ..PolicyTable::default()
        };
        assert_eq!(
            table.due_at(PolicyName::Internal, at("2026-03-01T10:00:00Z")),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn ccpa_receipt_is_confirmed_within_ten_business_days() {
        let table = PolicyTable::default();
        // (received, confirm by): 2026-03-02 is a Monday.
        let cases = [
            ("2026-03-02T10:00:00Z", "2026-03-16T10:00:00Z"), // Monday -> Monday two weeks on
            ("2026-03-06T10:00:00Z", "2026-03-20T10:00:00Z"), // Friday -> Friday
            ("2026-03-07T10:00:00Z", "2026-03-20T10:00:00Z"), // Saturday counts from Monday
            ("2026-03-08T10:00:00Z", "2026-03-20T10:00:00Z"), // Sunday counts from Monday
        ];
        for (received, by) in cases {
            assert_eq!(
                table.confirm_receipt_by(PolicyName::Ccpa, at(received)),
                Some(at(by)),
                "received {received}"
            );
        }
        for policy in [
            PolicyName::YoutubeApiUserData,
            PolicyName::Gdpr,
            PolicyName::Internal,
        ] {
            assert_eq!(
                table.confirm_receipt_by(policy, at("2026-03-02T10:00:00Z")),
                None
            );
        }
    }

    /// One extension attempt and what it should give.
    struct ExtensionCase {
        name: &'static str,
        policy: PolicyName,
        received: &'static str,
        already_extended: bool,
        with_reason: bool,
        now: &'static str,
        /// The new due time, or a piece of the refusal message.
        expect: Result<&'static str, &'static str>,
    }

    #[test]
    fn extensions_are_granted_or_refused_by_the_policy_rules() {
        let table = PolicyTable::default();
        let cases = [
            ExtensionCase {
                name: "gdpr extends two months past the original due date",
                policy: PolicyName::Gdpr,
                received: "2026-03-15T08:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-04-01T00:00:00Z",
                expect: Ok("2026-06-15T23:59:59.999999Z"),
            },
            ExtensionCase {
                name: "gdpr extension clamps to the month's last day",
                policy: PolicyName::Gdpr,
                received: "2026-01-31T08:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-02-10T00:00:00Z",
                expect: Ok("2026-04-28T23:59:59.999999Z"),
            },
            ExtensionCase {
                name: "gdpr extension on the last instant of the first month",
                policy: PolicyName::Gdpr,
                received: "2026-03-15T08:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-04-15T23:59:59.999999Z",
                expect: Ok("2026-06-15T23:59:59.999999Z"),
            },
            ExtensionCase {
                name: "gdpr extension after the first month",
                policy: PolicyName::Gdpr,
                received: "2026-03-15T08:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-04-16T00:00:00Z",
                expect: Err("within the first month"),
            },
            ExtensionCase {
                name: "gdpr extension without reasons",
                policy: PolicyName::Gdpr,
                received: "2026-03-15T08:00:00Z",
                already_extended: false,
                with_reason: false,
                now: "2026-04-01T00:00:00Z",
                expect: Err("needs the reasons"),
            },
            ExtensionCase {
                name: "a second gdpr extension",
                policy: PolicyName::Gdpr,
                received: "2026-03-15T08:00:00Z",
                already_extended: true,
                with_reason: true,
                now: "2026-04-01T00:00:00Z",
                expect: Err("one extension only"),
            },
            ExtensionCase {
                name: "ccpa extends 45 more days",
                policy: PolicyName::Ccpa,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-04-01T00:00:00Z",
                expect: Ok("2026-05-30T10:00:00Z"),
            },
            ExtensionCase {
                name: "ccpa extension without a reason",
                policy: PolicyName::Ccpa,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: false,
                now: "2026-04-01T00:00:00Z",
                expect: Err("ccpa extension needs a notice"),
            },
            ExtensionCase {
                name: "a second ccpa extension",
                policy: PolicyName::Ccpa,
                received: "2026-03-01T10:00:00Z",
                already_extended: true,
                with_reason: true,
                now: "2026-04-01T00:00:00Z",
                expect: Err("ccpa allows one extension only"),
            },
            ExtensionCase {
                name: "ccpa extension after the due time",
                policy: PolicyName::Ccpa,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-04-15T10:00:01Z",
                expect: Err("within the first 45 days"),
            },
            ExtensionCase {
                name: "youtube never extends",
                policy: PolicyName::YoutubeApiUserData,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-03-02T00:00:00Z",
                expect: Err("youtube-api-user-data allows no extension"),
            },
            ExtensionCase {
                name: "internal extends by the table's days",
                policy: PolicyName::Internal,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-03-02T00:00:00Z",
                expect: Ok("2026-04-30T10:00:00Z"),
            },
            ExtensionCase {
                name: "internal extension without a reason",
                policy: PolicyName::Internal,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: false,
                now: "2026-03-02T00:00:00Z",
                expect: Err("internal extension needs a reason"),
            },
            ExtensionCase {
                name: "a second internal extension",
                policy: PolicyName::Internal,
                received: "2026-03-01T10:00:00Z",
                already_extended: true,
                with_reason: true,
                now: "2026-03-02T00:00:00Z",
                expect: Err("internal allows one extension only"),
            },
            ExtensionCase {
                name: "internal extension after the due time",
                policy: PolicyName::Internal,
                received: "2026-03-01T10:00:00Z",
                already_extended: false,
                with_reason: true,
                now: "2026-04-01T00:00:00Z",
                expect: Err("before the due time"),
            },
        ];
        let reason = reason();
        for case in cases {
            let received = at(case.received);
            let current_due_at = table.due_at(case.policy, received);
            let got = table.extend(
                case.policy,
                received,
                current_due_at,
                case.already_extended,
                case.with_reason.then_some(&reason),
                at(case.now),
            );
            match (got, case.expect) {
                (Ok(due), Ok(want)) => assert_eq!(due, at(want), "{}", case.name),
                (Err(DomainError::ExtensionRefused(message)), Err(want)) => {
                    assert!(
                        message.contains(want),
                        "{}: {message:?} lacks {want:?}",
                        case.name
                    );
                }
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn internal_extension_is_refused_when_the_table_allows_none() {
        let table = PolicyTable {
            internal_extension_days: 0,
            ..PolicyTable::default()
        };
        let received = at("2026-03-01T10:00:00Z");
        let err = table
            .extend(
                PolicyName::Internal,
                received,
                table.due_at(PolicyName::Internal, received),
                false,
                Some(&reason()),
                at("2026-03-02T00:00:00Z"),
            )
            .unwrap_err();
        assert_eq!(
            err,
            DomainError::ExtensionRefused(
                "internal allows no extension (internal_extension_days is 0 in the policy table)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn internal_extension_extends_the_recorded_due_time() {
        // The table changed since receipt: the recorded due time, not the
        // one the new table would give, is what gets extended.
        let table = PolicyTable::default();
        let received = at("2026-03-01T10:00:00Z");
        let recorded_due = at("2026-03-11T10:00:00Z");
        let extended = table
            .extend(
                PolicyName::Internal,
                received,
                recorded_due,
                false,
                Some(&reason()),
                at("2026-03-02T00:00:00Z"),
            )
            .unwrap();
        assert_eq!(extended, at("2026-04-10T10:00:00Z"));
    }

    #[test]
    fn status_follows_completion_refusal_holds_and_the_clock() {
        let table = PolicyTable::default();
        let due = at("2026-03-08T10:00:00Z");
        let open = |holds: Vec<HoldId>| DeadlineFacts {
            due_at: due,
            completed_at: None,
            refused: false,
            blocking_holds: holds,
        };
        let completed = |when: &str| DeadlineFacts {
            completed_at: Some(at(when)),
            ..open(vec![])
        };
        let refused = DeadlineFacts {
            refused: true,
            ..open(vec![])
        };
        // (name, facts, now, status)
        let cases = [
            (
                "well before due",
                open(vec![]),
                "2026-03-01T10:00:00Z",
                DeadlineStatus::OnTrack,
            ),
            (
                "just outside 48 h",
                open(vec![]),
                "2026-03-06T09:59:59Z",
                DeadlineStatus::OnTrack,
            ),
            (
                "exactly 48 h before",
                open(vec![]),
                "2026-03-06T10:00:00Z",
                DeadlineStatus::AtRisk,
            ),
            (
                "within 48 h",
                open(vec![]),
                "2026-03-07T10:00:00Z",
                DeadlineStatus::AtRisk,
            ),
            (
                "at the due instant",
                open(vec![]),
                "2026-03-08T10:00:00Z",
                DeadlineStatus::AtRisk,
            ),
            (
                "past due",
                open(vec![]),
                "2026-03-08T10:00:01Z",
                DeadlineStatus::Overdue,
            ),
            (
                "held and past due",
                open(vec![hold(1), hold(2)]),
                "2026-03-20T00:00:00Z",
                DeadlineStatus::BlockedByHold {
                    holds: vec![hold(1), hold(2)],
                },
            ),
            (
                "held and on track",
                open(vec![hold(1)]),
                "2026-03-01T10:00:00Z",
                DeadlineStatus::BlockedByHold {
                    holds: vec![hold(1)],
                },
            ),
            (
                "completed on the due instant",
                completed("2026-03-08T10:00:00Z"),
                "2026-04-01T00:00:00Z",
                DeadlineStatus::CompletedOnTime,
            ),
            (
                "completed early",
                completed("2026-03-02T10:00:00Z"),
                "2026-04-01T00:00:00Z",
                DeadlineStatus::CompletedOnTime,
            ),
            (
                "completed late",
                completed("2026-03-08T10:00:01Z"),
                "2026-04-01T00:00:00Z",
                DeadlineStatus::CompletedLate,
            ),
            (
                "completed wins over holds and refusal",
                DeadlineFacts {
                    refused: true,
                    ..completed("2026-03-02T10:00:00Z")
                },
                "2026-04-01T00:00:00Z",
                DeadlineStatus::CompletedOnTime,
            ),
            (
                "refused",
                refused.clone(),
                "2026-04-01T00:00:00Z",
                DeadlineStatus::Refused,
            ),
            (
                "refused wins over holds",
                DeadlineFacts {
                    blocking_holds: vec![hold(1)],
                    ..refused
                },
                "2026-04-01T00:00:00Z",
                DeadlineStatus::Refused,
            ),
        ];
        for (name, facts, now, want) in cases {
            assert_eq!(table.status(&facts, at(now)), want, "{name}");
        }
    }

    #[test]
    fn a_blocked_request_past_due_reads_blocked_by_hold_not_overdue() {
        let table = PolicyTable::default();
        let facts = DeadlineFacts {
            due_at: at("2026-03-08T10:00:00Z"),
            completed_at: None,
            refused: false,
            blocking_holds: vec![hold(7)],
        };
        let label = table.status(&facts, at("2026-05-01T00:00:00Z")).label();
        assert_eq!(
            label,
            "blocked by hold 00000000-0000-0000-0000-000000000007"
        );
        assert!(!label.contains("overdue"));
    }

    #[test]
    fn the_at_risk_window_comes_from_the_table() {
        let table = PolicyTable {
            at_risk_hours: 72,
            ..PolicyTable::default()
        };
        let facts = DeadlineFacts {
            due_at: at("2026-03-08T10:00:00Z"),
            completed_at: None,
            refused: false,
            blocking_holds: vec![],
        };
        assert_eq!(
            table.status(&facts, at("2026-03-05T10:00:00Z")),
            DeadlineStatus::AtRisk
        );
        assert_eq!(
            table.status(&facts, at("2026-03-05T09:59:59Z")),
            DeadlineStatus::OnTrack
        );
    }

    #[test]
    fn labels_are_human_text() {
        let cases = [
            (DeadlineStatus::OnTrack, "on track"),
            (DeadlineStatus::AtRisk, "at risk"),
            (DeadlineStatus::Overdue, "overdue"),
            (
                DeadlineStatus::BlockedByHold { holds: vec![hold(1), hold(2)] },
                "blocked by hold 00000000-0000-0000-0000-000000000001, 00000000-0000-0000-0000-000000000002",
            ),
            (DeadlineStatus::CompletedOnTime, "completed on time"),
            (DeadlineStatus::CompletedLate, "completed late"),
            (DeadlineStatus::Refused, "refused"),
        ];
        for (status, label) in cases {
            assert_eq!(status.label(), label);
            assert_eq!(status.to_string(), label);
        }
    }

    #[test]
    fn status_json_is_kebab_case_and_stable() {
        let cases = [
            (DeadlineStatus::OnTrack, r#"{"status":"on-track"}"#),
            (DeadlineStatus::AtRisk, r#"{"status":"at-risk"}"#),
            (DeadlineStatus::Overdue, r#"{"status":"overdue"}"#),
            (
                DeadlineStatus::BlockedByHold {
                    holds: vec![hold(1)],
                },
                r#"{"status":"blocked-by-hold","holds":["00000000-0000-0000-0000-000000000001"]}"#,
            ),
            (
                DeadlineStatus::CompletedOnTime,
                r#"{"status":"completed-on-time"}"#,
            ),
            (
                DeadlineStatus::CompletedLate,
                r#"{"status":"completed-late"}"#,
            ),
            (DeadlineStatus::Refused, r#"{"status":"refused"}"#),
        ];
        for (status, json) in cases {
            assert_eq!(serde_json::to_string(&status).unwrap(), json);
            assert_eq!(
                serde_json::from_str::<DeadlineStatus>(json).unwrap(),
                status
            );
        }
    }

    #[test]
    fn residual_copies_are_purged_within_the_configured_days() {
        let table = PolicyTable::default();
        assert_eq!(
            table.residual_copies_purged_by(at("2026-03-01T10:00:00Z")),
            at("2026-04-05T10:00:00Z")
        );
    }
}
