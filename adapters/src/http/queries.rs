//! The read side of the API.
//!
//! Until the projections' read models are wired in, every query here is
//! answered from the event log itself: a request by replaying its stream,
//! an audit trail by reading a subject's tag, the rest by one bounded scan
//! of the log ([`LOG_SCAN_EVENTS_MAX`]). Correct, but linear in the log.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use commands::log::{EventStore, Position, RecordedEvent, Tag, READ_EVENTS_MAX};
use domain::deadline::{DeadlineFacts, DeadlineStatus, PolicyTable};
use domain::events::{erased_tag, hold_scope_tag, HoldEvent, LedgerEvent, RequestEvent};
use domain::ids::{HoldId, RequestId, TaskId, WorkspaceId};
use domain::inventory::Inventory;
use domain::request::{Request, RequestState};
use domain::subject::Subject;
use domain::values::ErasureStep;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::dto::field;
use super::error::ApiError;
use super::extract::{Caller, Reads};
use super::AppState;

/// Most events one scan of the log reads; beyond it the answer says it
/// is partial rather than taking unbounded time and memory.
pub const LOG_SCAN_EVENTS_MAX: usize = 1_000_000;
/// Default and largest page of the audit trail, in events.
pub const AUDIT_PAGE_EVENTS_DEFAULT: usize = 500;
pub const AUDIT_PAGE_EVENTS_MAX: usize = 5_000;
/// Largest page of an export, in events; follow `next_after` for more.
pub const EXPORT_PAGE_EVENTS_MAX: usize = READ_EVENTS_MAX;

pub async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let head = state.ledger.store().head().await?;
    Ok(Json(json!({ "status": "ok", "head": head })).into_response())
}

// ------------------------------------------------------------- log scan

/// What one pass over the log knows.
#[derive(Debug, Default)]
pub struct LogView {
    pub inventory: Inventory,
    pub requests: BTreeMap<RequestId, Request>,
    pub holds: BTreeMap<HoldId, HoldRow>,
    /// The position the scan stopped at.
    pub head: Position,
    /// True when the scan hit [`LOG_SCAN_EVENTS_MAX`].
    pub partial: bool,
}

/// A hold as the holds register shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HoldRow {
    pub hold_id: HoldId,
    pub scope: String,
    pub kind: String,
    pub matter: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
    pub active: bool,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
    pub lift_reason: Option<String>,
    /// The requests this hold blocked (R7).
    pub blocked_requests: Vec<RequestId>,
}

/// Reads the whole log (up to [`LOG_SCAN_EVENTS_MAX`]) into a [`LogView`].
pub async fn scan(store: &dyn EventStore) -> Result<LogView, ApiError> {
    let mut view = LogView::default();
    let mut request_events: BTreeMap<RequestId, Vec<RequestEvent>> = BTreeMap::new();
    let mut after = 0;
    let mut read = 0;
    loop {
        let page = store.read_all(after, READ_EVENTS_MAX).await?;
        let full = page.len() == READ_EVENTS_MAX;
        for recorded in &page {
            after = recorded.position;
            read += 1;
            let event = decode(recorded)?;
            view.inventory.apply(&event);
            match &event {
                LedgerEvent::Request(e) => {
                    if let RequestEvent::DeletionBlocked { request, holds } = e {
                        for hold in holds {
                            if let Some(row) = view.holds.get_mut(hold) {
                                if !row.blocked_requests.contains(request) {
                                    row.blocked_requests.push(*request);
                                }
                            }
                        }
                    }
                    request_events
                        .entry(e.request())
                        .or_default()
                        .push(e.clone());
                }
                LedgerEvent::Hold(HoldEvent::HoldPlaced {
                    hold,
                    scope,
                    kind,
                    matter,
                    reason,
                    placed_by,
                }) => {
                    view.holds.insert(
                        *hold,
                        HoldRow {
                            hold_id: *hold,
                            scope: scope.to_string(),
                            kind: kind.to_string(),
                            matter: matter.to_string(),
                            reason: reason.to_string(),
                            placed_by: placed_by.clone(),
                            placed_at: recorded.recorded_at,
                            active: true,
                            lifted_at: None,
                            lifted_by: None,
                            lift_reason: None,
                            blocked_requests: Vec::new(),
                        },
                    );
                }
                LedgerEvent::Hold(HoldEvent::HoldLifted {
                    hold,
                    reason,
                    lifted_by,
                    ..
                }) => {
                    if let Some(row) = view.holds.get_mut(hold) {
                        row.active = false;
                        row.lifted_at = Some(recorded.recorded_at);
                        row.lifted_by = Some(lifted_by.clone());
                        row.lift_reason = Some(reason.to_string());
                    }
                }
                _ => {}
            }
        }
        if read >= LOG_SCAN_EVENTS_MAX {
            view.partial = full;
            break;
        }
        if !full {
            break;
        }
    }
    view.head = after;
    for (id, events) in request_events {
        if let Some(request) = Request::from_events(&events) {
            view.requests.insert(id, request);
        }
    }
    Ok(view)
}

fn decode(recorded: &RecordedEvent) -> Result<LedgerEvent, ApiError> {
    LedgerEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
    .map_err(|error| {
        tracing::error!(%error, position = recorded.position, "a stored event does not decode");
        ApiError::internal()
    })
}

/// The tasks a worker could claim now, oldest first.
pub async fn claim_candidates(
    state: &AppState,
    step: Option<ErasureStep>,
    now: DateTime<Utc>,
) -> Result<Vec<TaskId>, ApiError> {
    let view = scan(state.ledger.store().as_ref()).await?;
    let mut candidates = Vec::new();
    for request in view.requests.values() {
        if request.state() != RequestState::InProgress {
            continue;
        }
        for (id, task) in &request.tasks {
            let free = !task.completed
                && task.lease.as_ref().is_none_or(|(_, until)| *until <= now)
                && task.next_attempt_at.is_none_or(|at| at <= now)
                && step.is_none_or(|s| s == task.step)
                && view.inventory.active_holds_on(&task.covered_by).is_empty();
            if free {
                candidates.push(*id);
            }
        }
    }
    candidates.sort();
    Ok(candidates)
}

// ------------------------------------------------------------ requests

/// Where a request stands against its deadline at `now`.
pub fn deadline_status(
    request: &Request,
    policies: &PolicyTable,
    now: DateTime<Utc>,
) -> DeadlineStatus {
    policies.status(
        &DeadlineFacts {
            due_at: request.due_at,
            completed_at: request.completed_at,
            refused: request.refused.is_some(),
            blocking_holds: request.blocked_by.clone(),
        },
        now,
    )
}

/// A request in full, as the API and the CLI show it.
pub fn request_detail(request: &Request, policies: &PolicyTable, now: DateTime<Utc>) -> Value {
    let status = deadline_status(request, policies, now);
    let tasks: Vec<Value> = request
        .tasks
        .iter()
        .map(|(id, task)| {
            json!({
                "task_id": id,
                "step": task.step.as_str(),
                "target": task.target.to_string(),
                "workspace_id": task.workspace,
                "completed": task.completed,
                "attempts": task.attempts,
                "leased_to": task.lease.as_ref().map(|(worker, _)| worker),
                "lease_until": task.lease.as_ref().map(|(_, until)| until),
                "next_attempt_at": task.next_attempt_at,
                "last_error": task.last_error.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    json!({
        "request_id": request.id,
        "scope": request.scope.to_string(),
        "channel": request.channel.as_str(),
        "policy": request.policy.as_str(),
        "state": request.state().as_str(),
        "received_at": request.received_at,
        "due_at": request.due_at,
        "deadline": status,
        "deadline_label": status.label(),
        "verified": request.verified,
        "extended": request.extended,
        "blocked_by": request.blocked_by,
        "refusal": request.refused.as_ref().map(|r| json!({ "code": r.code(), "explanation": r.explain() })),
        "completed_at": request.completed_at,
        "residual_copies_purged_by": request.residual_copies_purged_by,
        "confirmation_code": request.confirmation_code,
        "tasks_total": request.tasks.len(),
        "tasks_done": request.tasks.values().filter(|t| t.completed).count(),
        "tasks": tasks,
    })
}

pub async fn deletion_request(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = RequestId::parse(&id)
        .map_err(|_| ApiError::not_found(format!("request {id:?} not found")))?;
    let request = state.ledger.request(id).await?;
    let now = state.ledger.clock().now();
    Ok(Json(request_detail(&request, state.ledger.policies(), now)).into_response())
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
}

pub async fn holds(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: Result<Query<HoldsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let scope = query
        .scope
        .as_deref()
        .map(|raw| field("scope", Subject::parse(raw)))
        .transpose()?;
    let view = scan(state.ledger.store().as_ref()).await?;
    let holds: Vec<&HoldRow> = view
        .holds
        .values()
        .filter(|h| !query.active.unwrap_or(false) || h.active)
        .filter(|h| scope.as_ref().is_none_or(|s| h.scope == s.to_string()))
        .collect();
    Ok(Json(json!({ "holds": holds })).into_response())
}

// --------------------------------------------------------------- audit

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `KIND:ID` of the subject, resource, request or hold.
    pub subject: String,
    /// Only events after this log position (paging).
    pub after: Option<Position>,
    /// Page size, default 500, at most 5000.
    pub limit: Option<usize>,
}

/// One event as the audit trail and the exports show it. Personal data
/// (a requester's contact) is shown as `[personal data]`.
pub fn audit_entry(recorded: &RecordedEvent) -> Value {
    let mut payload = recorded.payload.clone();
    if let Some(contact) = payload.get_mut("contact") {
        if !contact.is_null() {
            *contact = Value::String("[personal data]".into());
        }
    }
    json!({
        "position": recorded.position,
        "recorded_at": recorded.recorded_at,
        "occurred_at": recorded.occurred_at,
        "event_type": recorded.event_type,
        "stream": recorded.stream.as_str(),
        "actor": recorded.metadata.actor,
        "source_channel": recorded.metadata.source_channel,
        "correlation_id": recorded.metadata.correlation_id,
        "event_id": recorded.event_id,
        "hash": hex::encode(recorded.hash),
        "payload": payload,
    })
}

/// The events about `subject`, in log order.
pub async fn audit_trail(
    store: &dyn EventStore,
    subject: &Subject,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, ApiError> {
    let tags = vec![
        Tag::new(subject.to_string()),
        Tag::new(erased_tag(subject)),
        Tag::new(hold_scope_tag(subject)),
    ];
    Ok(store.read_by_tags(&tags, after, limit).await?)
}

pub async fn audit(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("subject", e.body_text()))?;
    let subject = field("subject", Subject::parse(&query.subject))?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE_EVENTS_DEFAULT);
    if !(1..=AUDIT_PAGE_EVENTS_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {AUDIT_PAGE_EVENTS_MAX}"),
        ));
    }
    let events = audit_trail(
        state.ledger.store().as_ref(),
        &subject,
        query.after.unwrap_or(0),
        limit,
    )
    .await?;
    let next_after = (events.len() == limit).then(|| events.last().map(|e| e.position));
    let entries: Vec<Value> = events.iter().map(audit_entry).collect();
    Ok(Json(json!({
        "subject": subject.to_string(),
        "events": entries,
        "next_after": next_after.flatten(),
    }))
    .into_response())
}

/// Query of `GET /v1/audit/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    pub format: Option<String>,
    pub after: Option<Position>,
    /// At most 10000 events per page.
    pub limit: Option<usize>,
}

/// CSV field quoting (RFC 4180).
pub fn csv_field(raw: &str) -> String {
    if raw.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw.to_owned()
    }
}

/// The header and rows of the CSV export.
pub const EXPORT_CSV_HEADER: &str =
    "position,recorded_at,event_type,stream,actor,source_channel,event_id,hash,payload";

pub fn export_csv_row(entry: &Value) -> String {
    let text = |key: &str| match &entry[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    [
        text("position"),
        text("recorded_at"),
        text("event_type"),
        text("stream"),
        text("actor"),
        text("source_channel"),
        text("event_id"),
        text("hash"),
        entry["payload"].to_string(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

pub async fn export(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("format", e.body_text()))?;
    let format = query.format.as_deref().unwrap_or("jsonl");
    if !matches!(format, "jsonl" | "csv") {
        return Err(ApiError::invalid("format", "must be csv or jsonl"));
    }
    let limit = query.limit.unwrap_or(EXPORT_PAGE_EVENTS_MAX);
    if !(1..=EXPORT_PAGE_EVENTS_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {EXPORT_PAGE_EVENTS_MAX}"),
        ));
    }
    let events = state
        .ledger
        .store()
        .read_all(query.after.unwrap_or(0), limit)
        .await?;
    let mut body = String::new();
    if format == "csv" {
        body.push_str(EXPORT_CSV_HEADER);
        body.push('\n');
    }
    for recorded in &events {
        let entry = audit_entry(recorded);
        if format == "csv" {
            body.push_str(&export_csv_row(&entry));
        } else {
            body.push_str(&entry.to_string());
        }
        body.push('\n');
    }
    let content_type = if format == "csv" {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if events.len() == limit {
        if let Some(last) = events.last() {
            response.headers_mut().insert(
                "lethe-next-after",
                last.position
                    .to_string()
                    .parse()
                    .expect("digits are a header value"),
            );
        }
    }
    Ok(response)
}

// ------------------------------------------------------------- reports

/// Query of `GET /v1/reports/deadlines`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One request in the deadline report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub request_id: RequestId,
    pub scope: String,
    pub policy: &'static str,
    pub channel: &'static str,
    pub state: &'static str,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub status: DeadlineStatus,
    pub label: String,
}

/// The deadline report over the whole log.
pub fn deadline_report_of(view: &LogView, policies: &PolicyTable, now: DateTime<Utc>) -> Value {
    let rows: Vec<ReportRow> = view
        .requests
        .values()
        .map(|r| {
            let status = deadline_status(r, policies, now);
            ReportRow {
                request_id: r.id,
                scope: r.scope.to_string(),
                policy: r.policy.as_str(),
                channel: r.channel.as_str(),
                state: r.state().as_str(),
                received_at: r.received_at,
                due_at: r.due_at,
                completed_at: r.completed_at,
                label: status.label(),
                status,
            }
        })
        .collect();
    let completed: Vec<&ReportRow> = rows.iter().filter(|r| r.completed_at.is_some()).collect();
    let on_time = completed
        .iter()
        .filter(|r| r.status == DeadlineStatus::CompletedOnTime)
        .count();
    let mut hours: Vec<f64> = completed
        .iter()
        .filter_map(|r| {
            r.completed_at
                .map(|c| (c - r.received_at).num_seconds() as f64 / 3600.0)
        })
        .collect();
    hours.sort_by(f64::total_cmp);
    let percentile = |p: f64| -> Option<f64> {
        if hours.is_empty() {
            return None;
        }
        let rank = ((p * hours.len() as f64).ceil() as usize).clamp(1, hours.len());
        Some((hours[rank - 1] * 100.0).round() / 100.0)
    };
    let select = |wanted: fn(&DeadlineStatus) -> bool| -> Vec<&ReportRow> {
        rows.iter().filter(|r| wanted(&r.status)).collect()
    };
    json!({
        "generated_at": now,
        "log_position": view.head,
        "partial": view.partial,
        "received": rows.len(),
        "completed": completed.len(),
        "refused": rows.iter().filter(|r| r.status == DeadlineStatus::Refused).count(),
        "on_time_rate": (!completed.is_empty()).then(|| on_time as f64 / completed.len() as f64),
        "median_hours_to_complete": percentile(0.5),
        "p95_hours_to_complete": percentile(0.95),
        "overdue": select(|s| *s == DeadlineStatus::Overdue),
        "at_risk": select(|s| *s == DeadlineStatus::AtRisk),
        "blocked_by_hold": select(|s| matches!(s, DeadlineStatus::BlockedByHold { .. })),
        "requests": rows,
    })
}

/// The CSV form of the deadline report: one row per request.
pub fn deadline_report_csv(report: &Value) -> String {
    let mut out = String::from(
        "request_id,scope,policy,channel,state,received_at,due_at,completed_at,status\n",
    );
    for row in report["requests"].as_array().into_iter().flatten() {
        let text = |key: &str| match &row[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let fields = [
            text("request_id"),
            text("scope"),
            text("policy"),
            text("channel"),
            text("state"),
            text("received_at"),
            text("due_at"),
            text("completed_at"),
            text("label"),
        ];
        let _ = writeln!(
            out,
            "{}",
            fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    out
}

pub async fn deadline_report(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("format", e.body_text()))?;
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(ApiError::invalid("format", "must be json or csv"));
    }
    let view = scan(state.ledger.store().as_ref()).await?;
    let report = deadline_report_of(&view, state.ledger.policies(), state.ledger.clock().now());
    if format == "csv" {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            deadline_report_csv(&report),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

// ----------------------------------------------------------- resources

/// Query of `GET /v1/resources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesQuery {
    pub workspace: String,
    /// `active`, `erased`, `retained` or `held`.
    pub state: Option<String>,
}

/// A resource's state in the active-resources view.
pub fn resource_state(view: &LogView, subject: &Subject) -> &'static str {
    let Some(facts) = view.inventory.resources.get(subject) else {
        return "unknown";
    };
    if facts.retained.is_some() {
        "retained"
    } else if facts.erased {
        "erased"
    } else if !view
        .inventory
        .active_holds_on(&view.inventory.covering_scopes(subject))
        .is_empty()
    {
        "held"
    } else {
        "active"
    }
}

/// The resources and integrations of a workspace with their state.
pub fn resources_of(view: &LogView, workspace: &WorkspaceId, wanted: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    for (subject, facts) in &view.inventory.resources {
        if facts.workspace.as_ref() != Some(workspace) {
            continue;
        }
        let state = resource_state(view, subject);
        if wanted.is_some_and(|w| w != state) {
            continue;
        }
        out.push(json!({
            "resource": subject.to_string(),
            "kind": facts.kind.as_str(),
            "state": state,
            "parent": facts.parent.as_ref().map(ToString::to_string),
            "derived_from": facts.derived_from.as_ref().map(ToString::to_string),
            "retained": facts.retained.as_ref().map(|(basis, until)| json!({ "basis": basis.as_str(), "until": until })),
        }));
    }
    for (id, facts) in &view.inventory.integrations {
        if &facts.workspace != workspace {
            continue;
        }
        let state = if facts.erased {
            "erased"
        } else if facts.disconnected {
            "disconnected"
        } else {
            "active"
        };
        if wanted.is_some_and(|w| w != state) {
            continue;
        }
        out.push(json!({
            "resource": format!("integration:{id}"),
            "kind": "integration",
            "platform": facts.platform.as_str(),
            "state": state,
        }));
    }
    out
}

pub async fn resources(
    State(state): State<AppState>,
    _caller: Caller<Reads>,
    query: Result<Query<ResourcesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("workspace", e.body_text()))?;
    let workspace = field("workspace", WorkspaceId::parse(&query.workspace))?;
    let wanted = query.state.as_deref();
    if wanted.is_some_and(|w| {
        !matches!(
            w,
            "active" | "erased" | "retained" | "held" | "disconnected"
        )
    }) {
        return Err(ApiError::invalid(
            "state",
            "must be active, held, retained, erased or disconnected",
        ));
    }
    let view = scan(state.ledger.store().as_ref()).await?;
    if !view.inventory.workspaces.contains_key(&workspace) {
        return Err(ApiError::not_found(format!(
            "workspace:{workspace} is not known"
        )));
    }
    Ok(Json(json!({
        "workspace_id": workspace,
        "resources": resources_of(&view, &workspace, wanted),
    }))
    .into_response())
}
