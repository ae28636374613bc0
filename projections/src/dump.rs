//! A deterministic text dump of every read model, for snapshot tests and
//! for comparing an incremental run with a rebuild row by row.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::rows::{AuditEntry, HoldRow, RequestRow, ResourceRow, TaskRow};
use crate::ProjectionName;

/// Every row of every read model, each table sorted by its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadModelDump {
    pub audit: Vec<AuditEntry>,
    pub resources: Vec<ResourceRow>,
    pub requests: Vec<RequestRow>,
    pub holds: Vec<HoldRow>,
    pub tasks: Vec<TaskRow>,
}

fn t(at: DateTime<Utc>) -> String {
    commands::log::rfc3339_micros(at)
}

fn ot(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), t)
}

fn os(value: Option<&String>) -> &str {
    value.map_or("-", String::as_str)
}

impl ReadModelDump {
    /// Sorts every table by its key, so that dumps from any backend compare.
    pub fn sorted(mut self) -> Self {
        self.audit.sort_by_key(|e| e.position);
        self.resources.sort_by(|a, b| a.subject.cmp(&b.subject));
        self.requests.sort_by(|a, b| a.request.cmp(&b.request));
        self.holds.sort_by(|a, b| a.hold.cmp(&b.hold));
        self.tasks.sort_by(|a, b| a.task.cmp(&b.task));
        self
    }

    /// The whole dump. `recorded_at` (set by the store's clock, not by the
    /// events) is left out when `with_recorded_at` is false, for snapshots.
    pub fn render(&self, with_recorded_at: bool) -> String {
        let mut out = String::new();
        for name in ProjectionName::ALL {
            out.push_str(&self.render_one(name, with_recorded_at));
        }
        out
    }

    /// One read model's rows.
    pub fn render_one(&self, name: ProjectionName, with_recorded_at: bool) -> String {
        let mut out = format!("== {name}\n");
        match name {
            ProjectionName::Audit => {
                for e in &self.audit {
                    let _ = write!(
                        out,
                        "{} {} {} by {}",
                        e.position,
                        t(e.occurred_at),
                        e.event_type,
                        e.actor
                    );
                    if with_recorded_at {
                        let _ = write!(
                            out,
                            " recorded={} id={} stream={} channel={} corr={} cause={}",
                            t(e.recorded_at),
                            e.event_id,
                            e.stream,
                            os(e.source_channel.as_ref()),
                            e.correlation_id.map_or("-".into(), |u| u.to_string()),
                            e.causation_id.map_or("-".into(), |u| u.to_string()),
                        );
                    }
                    let _ = write!(out, "\n    {}", e.summary);
                    if let Some(reason) = &e.reason {
                        let _ = write!(out, "\n    why: {reason}");
                    }
                    let _ = writeln!(out, "\n    subjects: {}", e.subjects.join(" "));
                }
            }
            ProjectionName::Resources => {
                for r in &self.resources {
                    let _ = writeln!(
                        out,
                        "{} {} kind={} ws={} acct={} parent={} from={} ext={} pending={} erased={} retained={}/{} disconnected={} registered={} since={} pos={}\n    scopes: {}",
                        r.subject,
                        r.state.as_str(),
                        r.kind,
                        os(r.workspace.as_ref()),
                        os(r.account.as_ref()),
                        os(r.parent.as_ref()),
                        os(r.derived_from.as_ref()),
                        os(r.external_account.as_ref()),
                        r.tasks_pending,
                        ot(r.erased_at),
                        os(r.retained_basis.as_ref()),
                        ot(r.retained_until),
                        ot(r.disconnected_at),
                        t(r.registered_at),
                        t(r.since),
                        r.position,
                        r.scopes.join(" "),
                    );
                }
            }
            ProjectionName::Requests => {
                for q in &self.requests {
                    let _ = writeln!(
                        out,
                        "{} {} scope={} policy={}{} channel={} by={} recorded_by={} verified={}\n    received={} due={} original_due={} extension={}\n    blocked_by=[{}] blocked_since={} blocked_s={} tasks={}/{} retained={}\n    refusal={} {} at {}\n    completed={} purge_by={} code={} receipt_confirmed={} updated={} pos={}",
                        q.request,
                        q.state,
                        q.scope,
                        q.policy,
                        q.asked_policy
                            .as_ref()
                            .map(|asked| format!(" asked={asked}"))
                            .unwrap_or_default(),
                        q.channel,
                        q.requested_by,
                        os(q.recorded_by.as_ref()),
                        q.verified,
                        t(q.received_at),
                        t(q.due_at),
                        t(q.original_due_at),
                        os(q.extension_reason.as_ref()),
                        q.blocked_by.join(" "),
                        ot(q.blocked_since),
                        q.blocked_seconds,
                        q.tasks_done,
                        q.tasks_total,
                        q.retained,
                        os(q.refusal_code.as_ref()),
                        os(q.refusal_reason.as_ref()),
                        ot(q.refused_at),
                        ot(q.completed_at),
                        ot(q.residual_copies_purged_by),
                        os(q.confirmation_code.as_ref()),
                        ot(q.receipt_confirmed_at),
                        t(q.updated_at),
                        q.position,
                    );
                }
            }
            ProjectionName::Holds => {
                for h in &self.holds {
                    let _ = writeln!(
                        out,
                        "{} {} on {} kind={} matter={} placed={} by {} at {} reason={:?}\n    lifted={} by {} at {} reason={:?}",
                        h.hold,
                        if h.active() { "active" } else { "lifted" },
                        h.scope,
                        h.kind,
                        h.matter,
                        t(h.placed_at),
                        h.placed_by,
                        h.placed_position,
                        h.reason,
                        ot(h.lifted_at),
                        os(h.lifted_by.as_ref()),
                        h.lifted_position.map_or("-".into(), |p| p.to_string()),
                        os(h.lift_reason.as_ref()),
                    );
                }
            }
            ProjectionName::Tasks => {
                for k in &self.tasks {
                    let _ = writeln!(
                        out,
                        "{} {} {} on {} request={} ws={} lease={}@{} attempts={} next={} error={:?}\n    released={} at {} completed={} by {} pos={}\n    covered_by: {}",
                        k.task,
                        k.state.as_str(),
                        k.step,
                        k.target,
                        k.request,
                        os(k.workspace.as_ref()),
                        os(k.lease_holder.as_ref()),
                        ot(k.lease_until),
                        k.attempts,
                        ot(k.next_attempt_at),
                        os(k.last_error.as_ref()),
                        t(k.released_at),
                        k.released_position,
                        ot(k.completed_at),
                        os(k.completed_by.as_ref()),
                        k.position,
                        k.covered_by.join(" "),
                    );
                }
            }
        }
        out
    }
}
