//! The read side of the API, answered from the read models
//! ([`ReadModels`](crate::readmodel::ReadModels)).
//!
//! Every query first catches the read models up with the log
//! ([`caught_up`]): a caller reads its own writes, and when the background
//! runner is already at the head this costs two small queries. Pages are
//! keyset-paged and capped by the read models.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use commands::log::Position;
use domain::deadline::PolicyTable;
use domain::ids::{RequestId, WorkspaceId};
use projections::csv::record;
use projections::report::{deadline_csv_cells, DeadlineReport, DEADLINE_CSV_HEADER};
use serde::Deserialize;
use serde_json::{json, Value};

use super::dto::{field, rfc3339};
use super::error::ApiError;
use super::extract::{Caller, Reads};
use super::AppState;
use crate::readmodel::{
    AuditQuery as AuditFilter, DeadlineQuery, ExportFormat, HoldQuery, RequestDetail,
    ResourceQuery, PAGE_ROWS_MAX,
};

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

pub async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let head = state.ledger.store().head().await?;
    Ok(Json(json!({ "status": "ok", "head": head })).into_response())
}

/// Brings the read models up to the log's head (read-your-writes) and
/// returns the position they answer at. Safe beside the background
/// runner: each page re-reads the checkpoints under the write lock and
/// applies only the events past them.
pub async fn caught_up(state: &AppState) -> Result<Position, ApiError> {
    Ok(state
        .read_models
        .catch_up(state.ledger.store().as_ref())
        .await?)
}

fn time_field(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| field(name, rfc3339(raw))).transpose()
}

fn limit_field(name: &'static str, raw: Option<usize>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(0),
        Some(n) if (1..=PAGE_ROWS_MAX).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            name,
            format!("must be 1 to {PAGE_ROWS_MAX}"),
        )),
    }
}

// ------------------------------------------------------------ requests

/// A request in full, as the API and the CLI show it.
pub fn request_json(detail: &RequestDetail) -> Value {
    let request = &detail.request;
    let status = &detail.deadline.status;
    let tasks: Vec<Value> = detail
        .tasks
        .iter()
        .map(|task| {
            json!({
                "task_id": task.task,
                "step": task.step,
                "target": task.target,
                "workspace_id": task.workspace,
                "state": task.state,
                "completed": task.completed_at.is_some(),
                "attempts": task.attempts,
                "leased_to": task.lease_holder,
                "lease_until": task.lease_until,
                "next_attempt_at": task.next_attempt_at,
                "last_error": task.last_error,
            })
        })
        .collect();
    json!({
        "request_id": request.request,
        "scope": request.scope,
        "channel": request.channel,
        "policy": request.policy,
        "asked_policy": request.asked_policy,
        "state": request.state,
        "received_at": request.received_at,
        "due_at": request.due_at,
        "deadline": status,
        "deadline_label": status.label(),
        "verified": request.verified,
        "extended": detail.deadline.extended,
        "extension_reason": request.extension_reason,
        "blocked_by": request.blocked_by,
        "refusal": request.refusal_code.as_ref().map(|code| json!({
            "code": code,
            "explanation": request.refusal_reason,
        })),
        "completed_at": request.completed_at,
        "residual_copies_purged_by": request.residual_copies_purged_by,
        "confirm_receipt_by": detail.deadline.confirm_receipt_by,
        "receipt_confirmed_at": request.receipt_confirmed_at,
        "receipt": detail.deadline.receipt,
        "confirmation_code": request.confirmation_code,
        "explanation": detail.explanation,
        "tasks_total": request.tasks_total,
        "tasks_done": request.tasks_done,
        "tasks": tasks,
        "tasks_next_after": detail.tasks_next_after,
    })
}

/// Query of `GET /v1/deletion-requests/{id}`: which page of its tasks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDetailQuery {
    /// The `tasks_next_after` of the page before.
    pub tasks_after: Option<Position>,
    pub tasks_limit: Option<usize>,
}

pub async fn deletion_request(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    Path(id): Path<String>,
    query: QueryResult<RequestDetailQuery>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let not_found = || ApiError::not_found(format!("request {id:?} not found"));
    let request = RequestId::parse(&id).map_err(|_| not_found())?;
    // Unset: the whole first page the detail has always shown.
    let tasks_limit = match limit_field("tasks_limit", query.tasks_limit)? {
        0 => PAGE_ROWS_MAX,
        limit => limit,
    };
    caught_up(&state).await?;
    let detail = state
        .read_models
        .request_detail_page(
            &request.to_string(),
            state.ledger.policies(),
            state.ledger.clock().now(),
            query.tasks_after.unwrap_or(0),
            tasks_limit,
        )
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(request_json(&detail)).into_response())
}

// --------------------------------------------------------------- holds

/// Query of `GET /v1/holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldsQuery {
    /// Only active holds.
    pub active: Option<bool>,
    /// Only holds on this `KIND:ID`.
    pub scope: Option<String>,
    /// Holds placed after this log position (paging).
    pub after: Option<Position>,
    pub limit: Option<usize>,
}

pub async fn holds(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: QueryResult<HoldsQuery>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    if let Some(raw) = query.scope.as_deref() {
        field("scope", domain::subject::Subject::parse(raw))?;
    }
    let filter = HoldQuery {
        active_only: query.active.unwrap_or(false),
        scope: query.scope,
        after: query.after.unwrap_or(0),
        limit: limit_field("limit", query.limit)?,
    };
    caught_up(&state).await?;
    let holds = state.read_models.holds(&filter).await?;
    Ok(Json(json!({ "holds": holds })).into_response())
}

// --------------------------------------------------------------- audit

/// The filters shared by `GET /v1/audit` and `GET /v1/audit/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// `KIND:ID` of the subject, resource, request, hold or external
    /// account.
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    /// RFC 3339: occurred at or after.
    pub from: Option<String>,
    /// RFC 3339: occurred before.
    pub to: Option<String>,
    /// Only events after this log position (paging).
    pub after: Option<Position>,
    /// Page size of `GET /v1/audit` (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Export only: `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

impl AuditParams {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        if let Some(raw) = self.subject.as_deref() {
            field("subject", domain::subject::Subject::parse(raw))?;
            no_marker("subject", raw)?;
        }
        if let Some(raw) = self.actor.as_deref() {
            no_marker("actor", raw)?;
        }
        Ok(AuditFilter {
            subject: self.subject.clone(),
            actor: self.actor.clone(),
            event_type: self.event_type.clone(),
            from: time_field("from", self.from.as_deref())?,
            to: time_field("to", self.to.as_deref())?,
            after: self.after.unwrap_or(0),
            limit: limit_field("limit", self.limit)?,
        })
    }
}

/// Refuses a query value that holds a sealed- or erased-value marker.
/// No subject or actor is written so (the ledger refuses such ids), and
/// an answer that echoed one would read as a tampered sealed value.
fn no_marker(name: &'static str, raw: &str) -> Result<(), ApiError> {
    if domain::personal::Personal::holds_marker(raw) {
        return Err(ApiError::invalid(
            name,
            "holds sealed1: or erased1:, which mark sealed personal values; give the subject \
             as it was sent to the ledger",
        ));
    }
    Ok(())
}

pub async fn audit(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: QueryResult<AuditParams>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    if query.format.is_some() {
        return Err(ApiError::invalid(
            "format",
            "only GET /v1/audit/export takes a format",
        ));
    }
    let filter = query.filter()?;
    caught_up(&state).await?;
    // As stored: the reveal middleware opens the whole answer once.
    let page = state.read_models.audit_stored(&filter).await?;
    Ok(Json(json!({
        // As stored: the answer is revealed on the way out, so a
        // forgotten subject reads [erased] here too.
        "subject": filter.subject.as_deref().map(|s| state.read_models.stored_subject(s)),
        "events": page.entries,
        "next_after": page.next_after,
    }))
    .into_response())
}

/// `GET /v1/audit/export`: the whole selection, streamed one page at a
/// time (constant memory whatever its size).
pub async fn export(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: QueryResult<AuditParams>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let (format, content_type) = match query.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => (ExportFormat::JsonLines, "application/x-ndjson"),
        "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8"),
        _ => return Err(ApiError::invalid("format", "must be csv or jsonl")),
    };
    if query.limit.is_some() {
        return Err(ApiError::invalid(
            "limit",
            "an export has no limit; narrow it with after, from, to or subject",
        ));
    }
    let filter = query.filter()?;
    caught_up(&state).await?;
    let mut export = state.read_models.export_audit(filter, format);
    // The first page is read before answering, so that a failure to read
    // is a 503 rather than a truncated 200.
    let first = export.next_chunk().await?;
    let pages =
        futures_util::stream::try_unfold((first, export), |(pending, mut export)| async move {
            let Some(chunk) = pending else {
                return Ok(None);
            };
            let next = export.next_chunk().await.inspect_err(|error| {
                tracing::error!(%error, rows = export.rows(), "the audit export stopped");
            })?;
            Ok::<_, projections::ReadModelError>(Some((Bytes::from(chunk), (next, export))))
        });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(pages),
    )
        .into_response())
}

// ------------------------------------------------------------- reports

/// Query of `GET /v1/reports/deadlines`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// RFC 3339: requests received at or after (default: all).
    pub from: Option<String>,
    /// RFC 3339: requests received before (default: all).
    pub to: Option<String>,
    /// Only this policy (`gdpr`, `ccpa`, ...).
    pub policy: Option<String>,
}

/// The range a report covers when the caller names none: all time.
pub fn report_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    policy: Option<String>,
) -> DeadlineQuery {
    DeadlineQuery {
        received_from: from.unwrap_or(DateTime::UNIX_EPOCH),
        received_to: to.unwrap_or_else(|| {
            Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        }),
        policy,
    }
}

/// The policy table as JSON: each policy's terms, then the periods that
/// apply to every policy.
pub fn policies_json(table: &PolicyTable) -> Value {
    json!({
        "policies": table.terms(),
        "residual_copies_days": table.residual_copies_days,
        "at_risk_hours": table.at_risk_hours,
    })
}

/// `GET /v1/policies`: the table the ledger decides deadlines by.
pub async fn policies(State(state): State<AppState>, _caller: Caller<Reads>) -> Response {
    Json(policies_json(state.ledger.policies())).into_response()
}

/// The report as JSON: the read model's report with its totals over
/// every policy and month on top.
pub fn report_json(report: &DeadlineReport, log_position: Position) -> Value {
    let (mut received, mut completed, mut on_time, mut refused, mut overdue) =
        (0_u64, 0_u64, 0_u64, 0_u64, 0_u64);
    let mut receipts_late = 0_u64;
    for row in &report.summary {
        received += row.received;
        completed += row.completed;
        on_time += row.completed_on_time;
        refused += row.refused.values().sum::<u64>();
        overdue += row.overdue;
        receipts_late += row.receipts_late;
    }
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.insert("log_position".into(), json!(log_position));
        map.insert("received".into(), json!(received));
        map.insert("completed".into(), json!(completed));
        map.insert("completed_on_time".into(), json!(on_time));
        map.insert("refused".into(), json!(refused));
        map.insert("receipts_late".into(), json!(receipts_late));
        map.insert(
            "on_time_rate".into(),
            json!(projections::report::on_time_rate(
                on_time,
                completed + overdue
            )),
        );
    }
    value
}

/// The report's rows as CSV, header first.
pub fn report_csv(report: &DeadlineReport) -> String {
    let mut out = record(DEADLINE_CSV_HEADER);
    for row in &report.rows {
        out.push_str(&record(&deadline_csv_cells(row)));
    }
    out
}

pub async fn deadline_report(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: QueryResult<ReportQuery>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let csv = match query.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" => true,
        _ => return Err(ApiError::invalid("format", "must be json or csv")),
    };
    // A policy the ledger does not know would answer an empty report,
    // which reads as "nothing overdue".
    if let Some(policy) = query.policy.as_deref() {
        field("policy", policy.parse::<domain::deadline::PolicyName>())?;
    }
    let from = time_field("from", query.from.as_deref())?;
    let to = time_field("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            return Err(ApiError::invalid("to", "must be after from"));
        }
    }
    let range = report_range(from, to, query.policy);
    let position = caught_up(&state).await?;
    let report = state
        .read_models
        .deadline_report(&range, state.ledger.policies(), state.ledger.clock().now())
        .await?;
    if csv {
        // Not JSON, so the reveal middleware passes it by: revealed here,
        // as the CLI does.
        let mut csv = report_csv(&report);
        state.read_models.reveal(&mut [&mut csv]).await?;
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv,
        )
            .into_response());
    }
    Ok(Json(report_json(&report, position)).into_response())
}

// ----------------------------------------------------------- resources

/// Query of `GET /v1/resources`: `workspace=W` or `scope=KIND:ID`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesQuery {
    pub workspace: Option<String>,
    /// `workspace:W`, `account:A`, `instagram:X`, a file...
    pub scope: Option<String>,
    /// active, disconnected, deletion-pending, blocked-by-hold, retained
    /// or erased.
    pub state: Option<String>,
    /// The subject the previous page ended with (paging).
    pub after: Option<String>,
    pub limit: Option<usize>,
}

pub async fn resources(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: QueryResult<ResourcesQuery>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let scope = match (query.workspace.as_deref(), query.scope) {
        (Some(raw), None) => {
            no_marker("workspace", raw)?;
            format!("workspace:{}", field("workspace", WorkspaceId::parse(raw))?)
        }
        (None, Some(scope)) => {
            field("scope", domain::subject::Subject::parse(&scope))?;
            no_marker("scope", &scope)?;
            scope
        }
        _ => {
            return Err(ApiError::invalid(
                "workspace",
                "give either workspace=W or scope=KIND:ID",
            ))
        }
    };
    let filter = ResourceQuery {
        scope,
        state: query.state,
        after: query.after,
        limit: limit_field("limit", query.limit)?,
    };
    caught_up(&state).await?;
    let page = state.read_models.resources(&filter).await?;
    Ok(Json(json!({
        "scope": state.read_models.stored_subject(&filter.scope),
        "resources": page.resources,
        "next_after": page.next_after,
    }))
    .into_response())
}
