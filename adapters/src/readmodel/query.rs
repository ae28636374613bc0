//! The queries of the read side. Every page is capped
//! ([`PAGE_ROWS_MAX`]) and keyset-paged (after a position or a key), so a
//! page costs the same at the start and at the end of a large table.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use commands::log::Position;
use domain::deadline::{DeadlineStatus, PolicyName, PolicyTable};
use domain::subject::Subject;
use projections::report::{
    deadline_row, DeadlineReport, DeadlineRow, ReceiptStatus, SummaryBuilder,
};
use projections::rows::{AuditEntry, HoldRow, RequestRow, ResourceRow, TaskRow};
use projections::ReadModelError;
use serde::Serialize;

use super::codec;
use super::db::{Exec, Val};
use super::ReadModels;

/// Rows a page holds when the caller does not say.
pub const PAGE_ROWS_DEFAULT: usize = 100;
/// Most rows one page holds, whatever the caller asks.
pub const PAGE_ROWS_MAX: usize = 1_000;
/// Most requests one deadline report covers; a longer range is refused
/// (narrow the range).
pub const REPORT_REQUESTS_MAX: usize = 100_000;
/// Most rows each list of the deadline report (overdue, at risk, blocked)
/// holds.
pub const REPORT_LIST_ROWS_MAX: usize = 1_000;

fn page_rows(limit: usize) -> usize {
    if limit == 0 {
        PAGE_ROWS_DEFAULT
    } else {
        limit.min(PAGE_ROWS_MAX)
    }
}

fn subject(raw: &str) -> Result<String, ReadModelError> {
    Subject::parse(raw)
        .map(|s| s.to_string())
        .map_err(|e| ReadModelError::InvalidQuery(format!("subject {raw:?}: {e}")))
}

/// Which audit entries to read. Every filter is optional; entries come in
/// log order after `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// `KIND:ID`: a workspace, account, resource, request, hold, task or
    /// external account (`instagram:ID`).
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    /// Occurred at or after.
    pub from: Option<DateTime<Utc>>,
    /// Occurred before.
    pub to: Option<DateTime<Utc>>,
    /// The keyset: entries with a position past this one.
    pub after: Position,
    /// 0: [`PAGE_ROWS_DEFAULT`]; capped at [`PAGE_ROWS_MAX`].
    pub limit: usize,
}

/// One page of audit entries; `next_after` is the `after` of the next
/// page, `None` when this one is the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_after: Option<Position>,
}

pub(crate) fn audit_sql(
    query: &AuditQuery,
    backend: super::Backend,
) -> Result<(String, Vec<Val>, usize), ReadModelError> {
    let limit = page_rows(query.limit);
    let mut args: Vec<Val> = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    let arg = |v: Val, args: &mut Vec<Val>| {
        args.push(v);
        format!("${}", args.len())
    };
    let from_clause = if let Some(raw) = &query.subject {
        let s = arg(subject(raw)?.into(), &mut args);
        let after = arg(query.after.into(), &mut args);
        // The log's tag index, which holds an entry's subjects as tags
        // (`projections::audit::subjects`), for the subject and for every
        // request asked for it, for something it covers (a file of a
        // workspace, a connection of an external account: from the
        // request's first event on, not only once its tasks are out, so
        // that a trail never gains entries behind a reader's `after`), or
        // with a task on it: a request's own
        // events (verified, blocked, resumed, claims, failures, completed)
        // carry only the request's tag, and they are the subject's story
        // as much as the request for it. The join keeps the events the
        // audit trail has caught up with.
        filters.push(format!("a.position > {after}"));
        let tagged = format!(
            "s.position > {after} \
             AND s.tag IN (SELECT CAST({s} AS TEXT) \
                 UNION SELECT 'request:' || q.request FROM rm_requests q WHERE q.scope = {s} \
                 UNION SELECT 'request:' || q.request FROM rm_resource_scopes c \
                     JOIN rm_requests q ON q.scope = c.subject WHERE c.scope = {s} \
                 UNION SELECT 'request:' || t.request FROM rm_task_scopes c \
                     JOIN rm_tasks t ON t.task = c.task WHERE c.scope = {s})"
        );
        filters.push(format!(
            "a.position IN ({})",
            tag_positions(backend, &tagged)
        ));
        "rm_audit a"
    } else {
        let after = arg(query.after.into(), &mut args);
        filters.push(format!("a.position > {after}"));
        "rm_audit a"
    };
    if let Some(actor) = &query.actor {
        let p = arg(actor.as_str().into(), &mut args);
        filters.push(format!("a.actor = {p}"));
    }
    if let Some(event_type) = &query.event_type {
        let p = arg(event_type.as_str().into(), &mut args);
        filters.push(format!("a.event_type = {p}"));
    }
    if let Some(from) = query.from {
        let p = arg(from.into(), &mut args);
        filters.push(format!("a.occurred_at >= {p}"));
    }
    if let Some(to) = query.to {
        let p = arg(to.into(), &mut args);
        filters.push(format!("a.occurred_at < {p}"));
    }
    let order = "a.position";
    let fetch = arg(
        i64::try_from(limit + 1).unwrap_or(i64::MAX).into(),
        &mut args,
    );
    Ok((
        format!(
            "SELECT a.* FROM {from_clause} WHERE {} ORDER BY {order} LIMIT {fetch}",
            filters.join(" AND ")
        ),
        args,
        limit,
    ))
}

/// A closed request whose personal data is due to be forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestToForget {
    pub request: String,
    /// As stored: an external account by its keyed hash.
    pub scope: String,
    /// Refused rather than completed.
    pub refused: bool,
}

/// A record still kept although its retention exception has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedRetention {
    /// The record, as stored.
    pub subject: String,
    /// The end date of its retention.
    pub until: DateTime<Utc>,
}

/// A `SubjectForgotten` event as the audit trail holds it, and whether
/// its second step, the key's destruction, is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedForget {
    /// The event's position in the log.
    pub position: Position,
    /// The subject as stored (an external account by its keyed hash): the
    /// owner of its data key.
    pub subject: String,
    /// The key table holds no tombstone for the subject: its key is live,
    /// or (a subject that had none) no tombstone was written to erase
    /// values sealed for it later. The process stopped between the event
    /// and the key table, or the key table failed.
    pub unfinished: bool,
}

/// Which resources to list: those under `scope`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    /// `workspace:W`, `account:A`, `instagram:X`, a file, ...: every
    /// resource this scope covers (itself included).
    pub scope: String,
    /// One of active, disconnected, deletion-pending, blocked-by-hold,
    /// retained, erased; `None` for all.
    pub state: Option<String>,
    /// The keyset: subjects after this one.
    pub after: Option<String>,
    pub limit: usize,
}

/// A resource as people read it: its row, its state with "blocked by
/// hold" decided now, and the active holds that cover it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceView {
    #[serde(flatten)]
    pub row: ResourceRow,
    /// The stored state, or `blocked-by-hold` for a pending deletion under
    /// an active hold, for an active resource whose deletion met a hold
    /// before any task was released, or for a retained record with a
    /// blocked request for itself.
    pub display_state: String,
    pub holds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourcePage {
    pub resources: Vec<ResourceView>,
    pub next_after: Option<String>,
}

const ACTIVE_HOLD_ON_RESOURCE: &str = "EXISTS (SELECT 1 FROM rm_resource_scopes c \
     JOIN rm_holds h ON h.scope = c.scope AND h.lifted_at IS NULL WHERE c.subject = r.subject)";

/// A deletion asked for the resource or a scope covering it, blocked by a
/// hold before any task was released: the resource is still active in
/// every system, but it is waiting on a hold, not forgotten.
const BLOCKED_REQUEST_ON_RESOURCE: &str = "EXISTS (SELECT 1 FROM rm_resource_scopes c \
     JOIN rm_requests q ON q.scope = c.scope AND q.state = 'blocked' WHERE c.subject = r.subject)";

/// A retained record with a request for itself that met a hold before
/// any task was released (the retention sweep's, once its retention has
/// ended; a request before then keeps it and completes).
const BLOCKED_REQUEST_ON_RECORD: &str =
    "EXISTS (SELECT 1 FROM rm_requests q WHERE q.scope = r.subject AND q.state = 'blocked')";

/// The positions of the log's tag index rows (as `s`) that `filter`
/// keeps. SQLite's index is two tables (its migration 0500), each
/// searched by its own key: through their union view the filter would
/// not reach the keys.
fn tag_positions(backend: super::Backend, filter: &str) -> String {
    match backend {
        super::Backend::Postgres => format!("SELECT s.position FROM event_tags s WHERE {filter}"),
        super::Backend::Sqlite => format!(
            "SELECT s.position FROM event_tags_settled s WHERE {filter} \
             UNION ALL SELECT s.position FROM event_tags_recent s WHERE {filter}"
        ),
    }
}

/// The resources shown blocked by a hold: tasks released and stopped by
/// an active hold, or a deletion that met a hold before its release (a
/// disconnected connection's clean-up among them).
fn blocked_by_hold_filter() -> String {
    format!(
        " AND ((r.state = 'deletion-pending' AND {ACTIVE_HOLD_ON_RESOURCE}) \
         OR (r.state IN ('active', 'disconnected') AND {BLOCKED_REQUEST_ON_RESOURCE}) \
         OR (r.state = 'retained' AND {BLOCKED_REQUEST_ON_RECORD}))"
    )
}

/// Which holds to list, in order of placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldQuery {
    pub active_only: bool,
    pub scope: Option<String>,
    /// The keyset: holds placed after this position.
    pub after: Position,
    pub limit: usize,
}

/// A hold and what it blocks now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldView {
    #[serde(flatten)]
    pub hold: HoldRow,
    pub active: bool,
    /// Open requests blocked by it (at most [`PAGE_ROWS_MAX`]).
    pub blocked_requests: Vec<String>,
    /// Open erasure tasks it stops.
    pub tasks_stopped: i64,
    /// Resources not erased that it covers.
    pub resources_covered: i64,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    pub request: Option<String>,
    /// released, leased, failed or completed.
    pub state: Option<String>,
    /// The keyset: tasks released after this position.
    pub after: Position,
    pub limit: usize,
}

/// A request with its deadline, tasks and the explanation a requester
/// reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestDetail {
    pub request: RequestRow,
    pub deadline: DeadlineRow,
    /// One page of its tasks, in release order.
    pub tasks: Vec<TaskRow>,
    /// The `tasks_after` of the next page of tasks; `None` on the last.
    pub tasks_next_after: Option<Position>,
    pub explanation: String,
}

/// R5: what the Meta status link shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaStatus {
    pub confirmation_code: String,
    pub state: String,
    /// In words, with the reason of a refusal.
    pub explanation: String,
    pub received_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The deadline report's range: requests received in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineQuery {
    pub received_from: DateTime<Utc>,
    pub received_to: DateTime<Utc>,
    pub policy: Option<String>,
}

pub(crate) fn report_sql(query: &DeadlineQuery) -> (String, Vec<Val>) {
    let mut args: Vec<Val> = vec![query.received_from.into(), query.received_to.into()];
    let mut sql =
        "SELECT * FROM rm_requests WHERE received_at >= $1 AND received_at < $2".to_owned();
    if let Some(policy) = &query.policy {
        args.push(policy.as_str().into());
        sql.push_str(" AND policy = $3");
    }
    args.push(
        i64::try_from(REPORT_REQUESTS_MAX + 1)
            .unwrap_or(i64::MAX)
            .into(),
    );
    sql.push_str(&format!(
        " ORDER BY received_at, request LIMIT ${}",
        args.len()
    ));
    (sql, args)
}

const OPEN_STATES: &str = "('awaiting-verification', 'in-progress', 'blocked')";

impl ReadModels {
    /// A page of the audit trail.
    /// Personal data shows in plain text (or `[erased]`) when these read
    /// models have a vault; a subject filter on an external account is
    /// matched by its keyed hash.
    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditPage, ReadModelError> {
        let mut page = self.audit_stored(query).await?;
        let mut texts: Vec<&mut String> = Vec::new();
        for entry in &mut page.entries {
            texts.push(&mut entry.summary);
            texts.extend(entry.reason.as_mut());
            texts.extend(entry.subjects.iter_mut());
        }
        self.reveal(&mut texts).await?;
        Ok(page)
    }

    /// A page of the audit trail as stored: sealed values and keyed-hash
    /// ids as they are, for a caller that reveals the whole answer itself
    /// (the HTTP API does, once; twice would read revealed text as
    /// tokens).
    pub async fn audit_stored(&self, query: &AuditQuery) -> Result<AuditPage, ReadModelError> {
        let query = AuditQuery {
            subject: query.subject.as_deref().map(|s| self.stored_subject(s)),
            ..query.clone()
        };
        let (sql, args, limit) = audit_sql(&query, self.backend())?;
        let mut conn = self.conn().await?;
        let rows = conn.exec().fetch_all(&sql, args).await?;
        let mut entries = rows
            .iter()
            .map(codec::audit_from)
            .collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_after = more.then(|| entries.last().map(|e| e.position)).flatten();
        Ok(AuditPage {
            entries,
            next_after,
        })
    }

    /// Resources under a scope, with their covering holds.
    pub async fn resources(&self, query: &ResourceQuery) -> Result<ResourcePage, ReadModelError> {
        let scope = subject(&self.stored_subject(&query.scope))?;
        let limit = page_rows(query.limit);
        let mut args: Vec<Val> = vec![
            scope.into(),
            query
                .after
                .as_deref()
                .map(|a| self.stored_subject(a))
                .unwrap_or_default()
                .into(),
        ];
        let state_filter = match query.state.as_deref() {
            None => String::new(),
            Some("blocked-by-hold") => blocked_by_hold_filter(),
            Some("active") => {
                format!(" AND r.state = 'active' AND NOT {BLOCKED_REQUEST_ON_RESOURCE}")
            }
            Some("deletion-pending") => {
                format!(" AND r.state = 'deletion-pending' AND NOT {ACTIVE_HOLD_ON_RESOURCE}")
            }
            Some("retained") => {
                format!(" AND r.state = 'retained' AND NOT {BLOCKED_REQUEST_ON_RECORD}")
            }
            Some("disconnected") => {
                format!(" AND r.state = 'disconnected' AND NOT {BLOCKED_REQUEST_ON_RESOURCE}")
            }
            Some(state) if projections::rows::ResourceState::parse(state).is_some() => {
                args.push(state.into());
                format!(" AND r.state = ${}", args.len())
            }
            Some(other) => {
                return Err(ReadModelError::InvalidParameter {
                    name: "state",
                    why: format!(
                        "unknown resource state {other:?}; expected one of: active, \
                         disconnected, deletion-pending, blocked-by-hold, retained, erased"
                    ),
                })
            }
        };
        args.push(i64::try_from(limit + 1).unwrap_or(i64::MAX).into());
        let sql = format!(
            "SELECT r.* FROM rm_resource_scopes s JOIN rm_resources r ON r.subject = s.subject \
             WHERE s.scope = $1 AND s.subject > $2{state_filter} ORDER BY s.subject LIMIT ${}",
            args.len()
        );
        let mut conn = self.conn().await?;
        let mut exec = conn.exec();
        let rows = exec.fetch_all(&sql, args).await?;
        let mut resources = rows
            .iter()
            .map(codec::resource_from)
            .collect::<Result<Vec<_>, _>>()?;
        let more = resources.len() > limit;
        resources.truncate(limit);
        let holds = covering_holds(&mut exec, &resources).await?;
        let waiting = waiting_on_blocked_requests(&mut exec, &resources).await?;
        let next_after = more
            .then(|| resources.last().map(|r| r.subject.clone()))
            .flatten();
        let resources = resources
            .into_iter()
            .map(|row| {
                let holds = holds.get(&row.subject).cloned().unwrap_or_default();
                use projections::rows::ResourceState::{
                    Active, DeletionPending, Disconnected, Retained,
                };
                let display_state = if (row.state == DeletionPending && !holds.is_empty())
                    || (matches!(row.state, Active | Disconnected | Retained)
                        && waiting.contains(&row.subject))
                {
                    "blocked-by-hold".to_owned()
                } else {
                    row.state.as_str().to_owned()
                };
                ResourceView {
                    row,
                    display_state,
                    holds,
                }
            })
            .collect();
        Ok(ResourcePage {
            resources,
            next_after,
        })
    }

    /// The holds register with what each active hold blocks now.
    pub async fn holds(&self, query: &HoldQuery) -> Result<Vec<HoldView>, ReadModelError> {
        let limit = page_rows(query.limit);
        let mut args: Vec<Val> = vec![query.after.into()];
        let mut sql = "SELECT * FROM rm_holds WHERE placed_position > $1".to_owned();
        if query.active_only {
            sql.push_str(" AND lifted_at IS NULL");
        }
        if let Some(scope) = &query.scope {
            args.push(subject(&self.stored_subject(scope))?.into());
            sql.push_str(&format!(" AND scope = ${}", args.len()));
        }
        args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(" ORDER BY placed_position LIMIT ${}", args.len()));
        let mut conn = self.conn().await?;
        let mut exec = conn.exec();
        let rows = exec.fetch_all(&sql, args).await?;
        let mut views = Vec::new();
        for row in rows {
            let hold = codec::hold_from(&row)?;
            let active = hold.active();
            let (blocked_requests, tasks_stopped, resources_covered) = if active {
                blocks(&mut exec, &hold).await?
            } else {
                (Vec::new(), 0, 0)
            };
            views.push(HoldView {
                hold,
                active,
                blocked_requests,
                tasks_stopped,
                resources_covered,
            });
        }
        Ok(views)
    }

    /// The tasks a worker may try to claim at `now`, oldest release first,
    /// of one erasure step when `step` is given: not completed, lease free
    /// or run out, next attempt due, no active hold on a covering scope,
    /// their request neither completed nor refused. `POST /v1/tasks/claim`
    /// tries `Ledger::claim_task` on these in order; the log decides.
    pub async fn claimable_tasks(
        &self,
        now: DateTime<Utc>,
        after: Position,
        step: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TaskRow>, ReadModelError> {
        let limit = page_rows(limit);
        let mut args: Vec<Val> = vec![
            now.into(),
            after.into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ];
        // The step is filtered here, not after the limit: a worker of one
        // step must not be told there is nothing to do because older tasks
        // of other steps filled the page.
        let of_step = match step {
            Some(step) => {
                args.push(step.into());
                "AND t.step = $4"
            }
            None => "",
        };
        let sql = format!(
            "SELECT t.* FROM rm_tasks t WHERE t.state <> 'completed' {of_step} \
             AND t.released_position > $2 \
             AND (t.lease_until IS NULL OR t.lease_until <= $1) \
             AND (t.next_attempt_at IS NULL OR t.next_attempt_at <= $1) \
             AND NOT EXISTS (SELECT 1 FROM rm_task_scopes s JOIN rm_holds h \
                 ON h.scope = s.scope AND h.lifted_at IS NULL WHERE s.task = t.task) \
             AND NOT EXISTS (SELECT 1 FROM rm_requests q WHERE q.request = t.request \
                 AND q.state IN ('completed', 'refused')) \
             ORDER BY t.released_position LIMIT $3"
        );
        let mut conn = self.conn().await?;
        let rows = conn.exec().fetch_all(&sql, args).await?;
        rows.iter().map(codec::task_from).collect()
    }

    /// Tasks by request and state, in release order.
    pub async fn tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRow>, ReadModelError> {
        let limit = page_rows(query.limit);
        let mut args: Vec<Val> = vec![query.after.into()];
        let mut sql = "SELECT * FROM rm_tasks WHERE released_position > $1".to_owned();
        if let Some(request) = &query.request {
            args.push(request.as_str().into());
            sql.push_str(&format!(" AND request = ${}", args.len()));
        }
        if let Some(state) = &query.state {
            if projections::rows::TaskState::parse(state).is_none() {
                return Err(ReadModelError::InvalidQuery(format!(
                    "unknown task state {state:?}; expected released, leased, failed or completed"
                )));
            }
            args.push(state.as_str().into());
            sql.push_str(&format!(" AND state = ${}", args.len()));
        }
        args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(
            " ORDER BY released_position LIMIT ${}",
            args.len()
        ));
        let mut conn = self.conn().await?;
        let rows = conn.exec().fetch_all(&sql, args).await?;
        rows.iter().map(codec::task_from).collect()
    }

    /// One request with its deadline at `now` and the first page of its
    /// tasks ([`PAGE_ROWS_MAX`]).
    pub async fn request_detail(
        &self,
        request: &str,
        table: &PolicyTable,
        now: DateTime<Utc>,
    ) -> Result<Option<RequestDetail>, ReadModelError> {
        self.request_detail_page(request, table, now, 0, PAGE_ROWS_MAX)
            .await
    }

    /// One request with its deadline at `now` and the page of its tasks
    /// released after position `tasks_after`, at most `tasks_limit` (0:
    /// [`PAGE_ROWS_DEFAULT`]; capped at [`PAGE_ROWS_MAX`]).
    pub async fn request_detail_page(
        &self,
        request: &str,
        table: &PolicyTable,
        now: DateTime<Utc>,
        tasks_after: Position,
        tasks_limit: usize,
    ) -> Result<Option<RequestDetail>, ReadModelError> {
        let limit = page_rows(tasks_limit);
        let mut conn = self.conn().await?;
        let mut exec = conn.exec();
        let Some(row) = exec
            .fetch_optional(
                "SELECT * FROM rm_requests WHERE request = $1",
                vec![request.into()],
            )
            .await?
        else {
            return Ok(None);
        };
        let request = codec::request_from(&row)?;
        let mut tasks = exec
            .fetch_all(
                "SELECT * FROM rm_tasks WHERE request = $1 AND released_position > $2 \
                 ORDER BY released_position LIMIT $3",
                vec![
                    request.request.as_str().into(),
                    tasks_after.into(),
                    i64::try_from(limit + 1).unwrap_or(i64::MAX).into(),
                ],
            )
            .await?
            .iter()
            .map(codec::task_from)
            .collect::<Result<Vec<_>, _>>()?;
        let more = tasks.len() > limit;
        tasks.truncate(limit);
        let tasks_next_after = more
            .then(|| tasks.last().map(|t| t.released_position))
            .flatten();
        Ok(Some(RequestDetail {
            deadline: deadline_row(&request, table, now),
            explanation: projections::requests::explain(&request, now),
            request,
            tasks,
            tasks_next_after,
        }))
    }

    /// R5: the status behind a Meta confirmation code.
    pub async fn meta_status(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MetaStatus>, ReadModelError> {
        let mut conn = self.conn().await?;
        let row = conn
            .exec()
            .fetch_optional(
                "SELECT * FROM rm_requests WHERE confirmation_code = $1",
                vec![code.into()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let request = codec::request_from(&row)?;
        Ok(Some(MetaStatus {
            confirmation_code: code.to_owned(),
            state: request.state.clone(),
            explanation: projections::requests::explain(&request, now),
            received_at: request.received_at,
            completed_at: request.completed_at,
        }))
    }

    /// Requests closed at or before `cutoff` (completed, or refused:
    /// counted from the refusal, whatever was recorded after it, such as
    /// a confirmation of receipt) whose personal data is not forgotten
    /// yet (their data key is live, or that of the external account they
    /// were asked for), oldest first, at most `limit`, with their scopes:
    /// what automatic forgetting must do next. Joins the requests read
    /// model with the key table of the same database.
    pub async fn requests_to_forget(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestToForget>, ReadModelError> {
        let limit = page_rows(limit);
        let mut conn = self.conn().await?;
        let rows = conn
            .exec()
            .fetch_all(
                "SELECT r.request, r.scope, r.state FROM rm_requests r \
                 WHERE COALESCE(r.completed_at, r.refused_at) <= $1 \
                 AND EXISTS (SELECT 1 FROM data_keys k \
                     WHERE k.owner IN ('request:' || r.request, r.scope) \
                     AND k.wrapped IS NOT NULL) \
                 ORDER BY COALESCE(r.completed_at, r.refused_at), r.request LIMIT $2",
                vec![
                    cutoff.into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RequestToForget {
                    request: r.text("request")?,
                    scope: r.text("scope")?,
                    refused: r.text("state")? == "refused",
                })
            })
            .collect()
    }

    /// The forgets recorded after position `after`, in log order, at
    /// most `limit`, each with whether its subject's key table still
    /// lacks a tombstone: what finishing interrupted forgets must check.
    /// Joins the audit trail with the key table of the same database; a
    /// forget's stream is `subject-` and the key's owner.
    pub async fn recorded_forgets(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedForget>, ReadModelError> {
        let limit = page_rows(limit);
        let mut conn = self.conn().await?;
        let rows = conn
            .exec()
            .fetch_all(
                &format!(
                    "SELECT a.position, substr(a.stream, 9) AS subject, \
                         CAST(CASE WHEN {} THEN 0 ELSE 1 END AS BIGINT) AS unfinished \
                     FROM rm_audit a \
                     WHERE a.event_type = 'SubjectForgotten' AND a.position > $1 \
                     ORDER BY a.position LIMIT $2",
                    crate::keys::tombstone_for_forget("a.stream")
                ),
                vec![
                    after.into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordedForget {
                    position: r.pos("position")?,
                    subject: r.text("subject")?,
                    unfinished: r.int("unfinished")? != 0,
                })
            })
            .collect()
    }

    /// Billing records (R14) kept under a retention exception whose end
    /// date is at or before `now`, still kept (no erasure released for
    /// them since) and with no request for them received since that date
    /// (such a request erases them, or waits on a hold), earliest end
    /// first, after the keyset `after` (end date, subject), at most
    /// `limit`: what the retention sweep must ask to erase.
    pub async fn ended_retentions(
        &self,
        now: DateTime<Utc>,
        after: Option<&EndedRetention>,
        limit: usize,
    ) -> Result<Vec<EndedRetention>, ReadModelError> {
        let limit = page_rows(limit);
        let (after_until, after_subject) = match after {
            Some(after) => (Val::from(after.until), after.subject.clone()),
            None => (Val::Int(Some(i64::MIN)), String::new()),
        };
        let mut conn = self.conn().await?;
        let rows = conn
            .exec()
            .fetch_all(
                "SELECT r.subject, r.retained_until FROM rm_resources r \
                 WHERE r.state = 'retained' AND r.kind = 'billing-record' \
                 AND r.retained_until <= $1 \
                 AND (r.retained_until > $2 OR (r.retained_until = $2 AND r.subject > $3)) \
                 AND NOT EXISTS (SELECT 1 FROM rm_requests q WHERE q.scope = r.subject \
                     AND q.received_at >= r.retained_until) \
                 ORDER BY r.retained_until, r.subject LIMIT $4",
                vec![
                    now.into(),
                    after_until,
                    after_subject.into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EndedRetention {
                    subject: r.text("subject")?,
                    until: r.time("retained_until")?,
                })
            })
            .collect()
    }

    /// Requests shown blocked although none of the holds that blocked
    /// them is still active, earliest due first, at most `limit`: a lift
    /// whose reaction did not run (it failed, or the process stopped
    /// between the lift and its reaction). Resuming them is the job of
    /// `crate::resume`.
    pub async fn stranded_blocked_requests(
        &self,
        limit: usize,
    ) -> Result<Vec<String>, ReadModelError> {
        self.request_ids(
            "SELECT q.request FROM rm_requests q WHERE q.state = 'blocked' \
             AND NOT EXISTS (SELECT 1 FROM rm_request_holds b \
                 JOIN rm_holds h ON h.hold = b.hold \
                 WHERE b.request = q.request AND h.lifted_at IS NULL) \
             ORDER BY q.due_at, q.request LIMIT $1",
            limit,
        )
        .await
    }

    /// The `request` column of `sql`'s rows, whose one parameter is the
    /// row limit ([`page_rows`] of `limit`).
    async fn request_ids(&self, sql: &str, limit: usize) -> Result<Vec<String>, ReadModelError> {
        let limit = page_rows(limit);
        let mut conn = self.conn().await?;
        let rows = conn
            .exec()
            .fetch_all(sql, vec![i64::try_from(limit).unwrap_or(i64::MAX).into()])
            .await?;
        rows.iter().map(|r| r.text("request")).collect()
    }

    /// Requests shown in progress although an active hold covers one of
    /// their pending tasks, earliest due first, at most `limit`: a hold
    /// whose reaction did not mark them blocked (it failed, or the process
    /// stopped between the hold and its reaction). Their tasks cannot be
    /// claimed, so without the mark the report would count them overdue
    /// rather than blocked by hold. Marking them is the job of
    /// `crate::resume`.
    pub async fn unmarked_held_requests(
        &self,
        limit: usize,
    ) -> Result<Vec<String>, ReadModelError> {
        // From the open tasks (their partial index), not from the holds:
        // a long hold on a busy workspace covers every task ever released
        // in it.
        self.request_ids(
            "SELECT q.request FROM rm_requests q WHERE q.state = 'in-progress' \
             AND q.request IN (SELECT t.request FROM rm_tasks t \
                 WHERE t.state <> 'completed' AND EXISTS (SELECT 1 FROM rm_task_scopes s \
                     JOIN rm_holds h ON h.scope = s.scope AND h.lifted_at IS NULL \
                     WHERE s.task = t.task)) \
             ORDER BY q.due_at, q.request LIMIT $1",
            limit,
        )
        .await
    }

    /// The deadline compliance report at `now`: rows and per-policy,
    /// per-month summary of the requests received in the range, and the
    /// open requests overdue, at risk and blocked (from all time).
    pub async fn deadline_report(
        &self,
        query: &DeadlineQuery,
        table: &PolicyTable,
        now: DateTime<Utc>,
    ) -> Result<DeadlineReport, ReadModelError> {
        if query.received_to <= query.received_from {
            return Err(ReadModelError::InvalidQuery(
                "received_to must be after received_from".into(),
            ));
        }
        let (sql, args) = report_sql(query);
        let mut conn = self.conn().await?;
        let mut exec = conn.exec();
        let requests = exec.fetch_all(&sql, args).await?;
        if requests.len() > REPORT_REQUESTS_MAX {
            return Err(ReadModelError::InvalidQuery(format!(
                "more than {REPORT_REQUESTS_MAX} requests in the range; narrow it"
            )));
        }
        let mut summary = SummaryBuilder::default();
        let mut rows = Vec::with_capacity(requests.len());
        for row in &requests {
            let line = deadline_row(&codec::request_from(row)?, table, now);
            summary.add(&line);
            rows.push(line);
        }
        // Each list by its own condition and limit, with the report's
        // policy: one window of the earliest-due open requests let a
        // blocked request due later fall out behind 3,000 on-track ones.
        let at_risk_until = now + chrono::Duration::hours(i64::from(table.at_risk_hours));
        // A request blocked only once it was late stays overdue
        // (`deadline_row`), so it is taken with the overdue list, not with
        // the blocked one: each list is then one query under one limit.
        let lists = [
            ("state = 'blocked' AND blocked_since <= due_at", Vec::new()),
            (
                "(state IN ('awaiting-verification', 'in-progress') AND due_at < $2) \
                 OR (state = 'blocked' AND blocked_since > due_at)",
                vec![Val::from(now)],
            ),
            (
                "state IN ('awaiting-verification', 'in-progress') AND due_at >= $2 \
                 AND due_at <= $3",
                vec![Val::from(now), Val::from(at_risk_until)],
            ),
        ];
        let (mut overdue, mut at_risk, mut blocked) = (Vec::new(), Vec::new(), Vec::new());
        for (condition, extra) in lists {
            let mut args: Vec<Val> = vec![i64::try_from(REPORT_LIST_ROWS_MAX)
                .unwrap_or(i64::MAX)
                .into()];
            args.extend(extra);
            let policy = match &query.policy {
                Some(policy) => {
                    args.push(policy.as_str().into());
                    format!(" AND policy = ${}", args.len())
                }
                None => String::new(),
            };
            let open = exec
                .fetch_all(
                    &format!(
                        "SELECT * FROM rm_requests WHERE ({condition}){policy} \
                         ORDER BY due_at, request LIMIT $1"
                    ),
                    args,
                )
                .await?;
            for row in &open {
                let line = deadline_row(&codec::request_from(row)?, table, now);
                let list = match line.status {
                    DeadlineStatus::Overdue => &mut overdue,
                    DeadlineStatus::AtRisk => &mut at_risk,
                    DeadlineStatus::BlockedByHold { .. } => &mut blocked,
                    _ => continue,
                };
                list.push(line);
            }
        }
        let receipts_overdue =
            receipts_overdue(&mut exec, query.policy.as_deref(), table, now).await?;
        Ok(DeadlineReport {
            now,
            rows,
            summary: summary.finish(),
            overdue,
            at_risk,
            blocked,
            receipts_overdue,
        })
    }

    /// PostgreSQL's plan for the audit lookup of one subject (for the
    /// index test).
    #[doc(hidden)]
    pub async fn explain_audit(&self, query: &AuditQuery) -> Result<String, ReadModelError> {
        let (sql, args, _) = audit_sql(query, self.backend())?;
        self.explain(&sql, args).await
    }

    /// The plan of the deadline report's range query.
    #[doc(hidden)]
    pub async fn explain_report(&self, query: &DeadlineQuery) -> Result<String, ReadModelError> {
        let (sql, args) = report_sql(query);
        self.explain(&sql, args).await
    }

    async fn explain(&self, sql: &str, args: Vec<Val>) -> Result<String, ReadModelError> {
        let prefix = match self.backend() {
            super::Backend::Postgres => "EXPLAIN ",
            super::Backend::Sqlite => "EXPLAIN QUERY PLAN ",
        };
        let mut conn = self.conn().await?;
        let rows = conn
            .exec()
            .fetch_all(&format!("{prefix}{sql}"), args)
            .await?;
        let mut plan = Vec::new();
        for row in rows {
            plan.push(match self.backend() {
                super::Backend::Postgres => row.text("QUERY PLAN")?,
                super::Backend::Sqlite => row.text("detail")?,
            });
        }
        Ok(plan.join("\n"))
    }
}

/// The active holds covering each of `resources`.
async fn covering_holds(
    exec: &mut Exec<'_>,
    resources: &[ResourceRow],
) -> Result<BTreeMap<String, Vec<String>>, ReadModelError> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if resources.is_empty() {
        return Ok(found);
    }
    let sql = format!(
        "SELECT c.subject AS subject, h.hold AS hold FROM rm_resource_scopes c \
         JOIN rm_holds h ON h.scope = c.scope AND h.lifted_at IS NULL \
         WHERE c.subject IN ({}) ORDER BY c.subject, h.hold",
        super::db::ordered_placeholders(exec.backend(), 1, resources.len())
    );
    let rows = exec
        .fetch_all(
            &sql,
            resources
                .iter()
                .map(|r| Val::from(r.subject.as_str()))
                .collect(),
        )
        .await?;
    for row in rows {
        found
            .entry(row.text("subject")?)
            .or_default()
            .push(row.text("hold")?);
    }
    Ok(found)
}

/// Which of `resources` are active (or disconnected) while a deletion
/// asked for them (or a scope covering them) is blocked by a hold before
/// its release.
async fn waiting_on_blocked_requests(
    exec: &mut Exec<'_>,
    resources: &[ResourceRow],
) -> Result<BTreeSet<String>, ReadModelError> {
    use projections::rows::ResourceState::{Active, Disconnected, Retained};
    let mut waiting = BTreeSet::new();
    // An active resource or a disconnected connection waits on a blocked
    // request for any scope that covers it; a retained record only on one
    // for itself (a request for its workspace would keep it).
    for (state, own_scope_only) in [
        (Active, ""),
        (Disconnected, ""),
        (Retained, " AND c.scope = c.subject"),
    ] {
        let subjects: Vec<Val> = resources
            .iter()
            .filter(|r| r.state == state)
            .map(|r| Val::from(r.subject.as_str()))
            .collect();
        if subjects.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT DISTINCT c.subject AS subject FROM rm_resource_scopes c \
             JOIN rm_requests q ON q.scope = c.scope AND q.state = 'blocked' \
             WHERE c.subject IN ({}){own_scope_only}",
            super::db::ordered_placeholders(exec.backend(), 1, subjects.len())
        );
        for row in exec.fetch_all(&sql, subjects).await? {
            waiting.insert(row.text("subject")?);
        }
    }
    Ok(waiting)
}

/// What an active hold blocks now: open requests it blocks, open tasks
/// it stops, resources it covers.
async fn blocks(
    exec: &mut Exec<'_>,
    hold: &HoldRow,
) -> Result<(Vec<String>, i64, i64), ReadModelError> {
    let requests = exec
        .fetch_all(
            &format!(
                "SELECT q.request AS request FROM rm_request_holds b \
                 JOIN rm_requests q ON q.request = b.request \
                 WHERE b.hold = $1 AND q.state IN {OPEN_STATES} ORDER BY q.request LIMIT $2"
            ),
            vec![
                hold.hold.as_str().into(),
                i64::try_from(PAGE_ROWS_MAX).unwrap_or(i64::MAX).into(),
            ],
        )
        .await?
        .iter()
        .map(|r| r.text("request"))
        .collect::<Result<Vec<_>, _>>()?;
    let tasks = exec
        .fetch_optional(
            "SELECT COUNT(*) AS n FROM rm_task_scopes s JOIN rm_tasks t ON t.task = s.task \
             WHERE s.scope = $1 AND t.state <> 'completed'",
            vec![hold.scope.as_str().into()],
        )
        .await?
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0);
    let resources = exec
        .fetch_optional(
            "SELECT COUNT(*) AS n FROM rm_resource_scopes s JOIN rm_resources r \
             ON r.subject = s.subject WHERE s.scope = $1 AND r.state <> 'erased'",
            vec![hold.scope.as_str().into()],
        )
        .await?
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0);
    Ok((requests, tasks, resources))
}

/// No confirmation of receipt is overdue sooner than this many calendar
/// days after receipt (CCPA: 10 business days are 12 to 14 days).
const RECEIPT_OVERDUE_DAYS_MIN: i64 = 12;

/// The requests whose confirmation of receipt is missing past its date,
/// oldest first, at most [`REPORT_LIST_ROWS_MAX`]: those held to a policy
/// that asks for one, and (R3) those whose caller named such a policy but
/// that are held to a stricter one. With `only`, those held to that
/// policy.
async fn receipts_overdue(
    exec: &mut Exec<'_>,
    only: Option<&str>,
    table: &PolicyTable,
    now: DateTime<Utc>,
) -> Result<Vec<DeadlineRow>, ReadModelError> {
    let mut overdue: Vec<DeadlineRow> = Vec::new();
    // Ten business days span 12 to 14 calendar days, so a receipt of the
    // last 12 days is never overdue; the oldest come first, and those the
    // limit cuts off are the newest (a receipt on a weekend can fall due
    // before one of the Friday before it, but only within those two
    // days).
    let received_before = now - chrono::Duration::days(RECEIPT_OVERDUE_DAYS_MIN);
    let limit = i64::try_from(REPORT_LIST_ROWS_MAX).unwrap_or(i64::MAX);
    // Only the policies that ask for a confirmation, each by its index.
    for asking in PolicyName::ALL.iter().copied() {
        if table.confirm_receipt_by(asking, now).is_none() {
            continue;
        }
        let mut queries = Vec::new();
        if only.is_none_or(|only| only == asking.as_str()) {
            queries.push((
                "SELECT * FROM rm_requests WHERE policy = $1 AND receipt_confirmed_at IS NULL \
                 AND received_at < $2 ORDER BY received_at, request LIMIT $3",
                vec![
                    asking.as_str().into(),
                    Val::from(received_before),
                    limit.into(),
                ],
            ));
        }
        let mut args = vec![
            asking.as_str().into(),
            Val::from(received_before),
            limit.into(),
        ];
        let held_to = match only {
            Some(only) => {
                args.push(only.into());
                " AND policy = $4"
            }
            None => "",
        };
        let asked = format!(
            "SELECT * FROM rm_requests WHERE asked_policy = $1 AND receipt_confirmed_at IS NULL \
             AND received_at < $2{held_to} ORDER BY received_at, request LIMIT $3"
        );
        // None is held to the policy it named (that is kept only when
        // another one holds it).
        if only != Some(asking.as_str()) {
            queries.push((asked.as_str(), args));
        }
        for (sql, args) in queries {
            for row in &exec.fetch_all(sql, args).await? {
                let line = deadline_row(&codec::request_from(row)?, table, now);
                if line.receipt == Some(ReceiptStatus::Overdue)
                    && !overdue.iter().any(|seen| seen.request == line.request)
                {
                    overdue.push(line);
                }
            }
        }
    }
    overdue.sort_by(|a, b| (a.received_at, &a.request).cmp(&(b.received_at, &b.request)));
    overdue.truncate(REPORT_LIST_ROWS_MAX);
    Ok(overdue)
}
