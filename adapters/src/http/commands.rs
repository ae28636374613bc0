//! Handlers of the commands: parse, call the ledger, answer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::ledger::Context;
use commands::{CommandError, DeletionRequestInput};
use domain::error::DomainError;
use domain::events::ForgetCause;
use domain::ids::{AccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId};
use domain::membership::Registration;
use domain::request::RequestState;
use domain::text::{Note, Reason};
use serde::Deserialize;
use serde_json::json;

use super::dto::{self, field, parse_worker};
use super::error::ApiError;
use super::extract::{
    ApiJson, Caller, Forgetting, HoldCommands, IdempotencyKey, Permission, ServiceCommands,
};
use super::queries;
use super::AppState;
use crate::readmodel::PAGE_ROWS_MAX;

/// How many claimable candidates one claim tries before answering 204.
pub const CLAIM_ATTEMPTS_MAX: usize = 50;

fn context<P: Permission>(caller: &Caller<P>, key: IdempotencyKey) -> Context {
    Context::new(caller.actor(), "http").with_idempotency_key(key.0)
}

/// A Lethe id in a path; one that does not parse names nothing (404).
fn path_id<T>(
    what: &str,
    raw: &str,
    parse: impl Fn(&str) -> Result<T, domain::error::InvalidInput>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|_| ApiError::not_found(format!("{what} {raw:?} not found")))
}

pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<dto::CreateWorkspace>,
) -> Result<Response, ApiError> {
    let (workspace, owner) = body.try_into()?;
    state
        .ledger
        .create_workspace(&context(&caller, key), workspace.clone(), owner.clone())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "workspace_id": workspace, "owner_account_id": owner })),
    )
        .into_response())
}

pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::AddMember>,
) -> Result<Response, ApiError> {
    let workspace = field("workspace_id", WorkspaceId::parse(&id))?;
    let member: dto::NewMember = body.try_into()?;
    state
        .ledger
        .add_member(
            &context(&caller, key),
            workspace.clone(),
            member.account.clone(),
            member.role,
            member.added_by,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "workspace_id": workspace,
            "account_id": member.account,
            "role": member.role.as_str(),
        })),
    )
        .into_response())
}

/// Query of `DELETE /v1/workspaces/{id}/members/{account}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedBy {
    /// `platform` (default) or `account:ID` of the owner or admin, or of
    /// the member leaving.
    pub removed_by: Option<String>,
}

pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path((id, account)): Path<(String, String)>,
    query: Result<Query<RemovedBy>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("removed_by", e.body_text()))?;
    let workspace = field("workspace_id", WorkspaceId::parse(&id))?;
    let account = field("account_id", AccountId::parse(&account))?;
    let by = match query.removed_by.as_deref() {
        Some(raw) => dto::parse_initiator("removed_by", raw)?,
        None => domain::values::Initiator::Platform,
    };
    state
        .ledger
        .remove_member(&context(&caller, key), workspace, account, by)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn register_resource(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<dto::RegisterResource>,
) -> Result<Response, ApiError> {
    let registration: Registration = body.try_into()?;
    let resource = registration.resource.to_string();
    state
        .ledger
        .register_resource(&context(&caller, key), registration)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "resource": resource }))).into_response())
}

pub async fn connect_integration(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<dto::ConnectIntegration>,
) -> Result<Response, ApiError> {
    let new: dto::NewIntegration = body.try_into()?;
    state
        .ledger
        .connect_integration(
            &context(&caller, key),
            new.integration.clone(),
            new.workspace.clone(),
            new.platform,
            new.external_account,
            new.connected_by,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "integration_id": new.integration,
            "workspace_id": new.workspace,
            "platform": new.platform.as_str(),
        })),
    )
        .into_response())
}

pub async fn disconnect_integration(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::Disconnect>,
) -> Result<Response, ApiError> {
    let integration = field("integration_id", IntegrationId::parse(&id))?;
    let d: dto::Disconnection = body.try_into()?;
    let summary = state
        .ledger
        .disconnect_integration(
            &context(&caller, key),
            integration,
            d.by,
            d.channel,
            d.reason,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(dto::RequestAnswer::from(summary)),
    )
        .into_response())
}

pub async fn request_deletion(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<dto::RequestDeletion>,
) -> Result<Response, ApiError> {
    let input: DeletionRequestInput = body.try_into()?;
    let summary = state
        .ledger
        .request_deletion(&context(&caller, key), input)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(dto::RequestAnswer::from(summary)),
    )
        .into_response())
}

pub async fn verify_request(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::VerifyRequest>,
) -> Result<Response, ApiError> {
    let id = path_id("request", &id, RequestId::parse)?;
    let method = field("method", Note::parse(&body.method))?;
    let summary = state
        .ledger
        .verify_request(&context(&caller, key), id, method)
        .await?;
    Ok(Json(dto::RequestAnswer::from(summary)).into_response())
}

/// Refuses a request whose requester could not be verified (R11, R15):
/// nothing is deleted, and the request is closed.
pub async fn refuse_request(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::RefuseRequest>,
) -> Result<Response, ApiError> {
    let id = path_id("request", &id, RequestId::parse)?;
    let reason = field("reason", Note::parse(&body.reason))?;
    let summary = state
        .ledger
        .refuse_unverified(&context(&caller, key), id, reason)
        .await?;
    Ok(Json(dto::RequestAnswer::from(summary)).into_response())
}

/// Extends a request's deadline once, as its policy allows (CCPA: by 45
/// days, with a reason).
pub async fn extend_deadline(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::ExtendDeadline>,
) -> Result<Response, ApiError> {
    let id = path_id("request", &id, RequestId::parse)?;
    let reason = body.reason()?;
    let summary = state
        .ledger
        .extend_deadline(&context(&caller, key), id, reason)
        .await?;
    Ok(Json(dto::RequestAnswer::from(summary)).into_response())
}

/// Records that the requester was told their request was received (CCPA
/// asks for it within 10 business days). A repeat answers with the first
/// confirmation's time and stores nothing.
pub async fn confirm_receipt(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::ConfirmReceipt>,
) -> Result<Response, ApiError> {
    let id = path_id("request", &id, RequestId::parse)?;
    let confirmed_at = state
        .ledger
        .confirm_receipt(&context(&caller, key), id, body.confirmed_at()?)
        .await?;
    Ok(Json(json!({
        "request_id": id,
        "receipt_confirmed_at": confirmed_at,
    }))
    .into_response())
}

/// Records a retention exception: a record of the request's scope that
/// is kept on purpose, on a basis, until a date (R1, R14). A target
/// outside the scope is refused with 422 on `target`.
pub async fn record_retention(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::RecordRetention>,
) -> Result<Response, ApiError> {
    let id = path_id("request", &id, RequestId::parse)?;
    let kept: dto::NewRetention = body.try_into()?;
    let answer = json!({
        "request_id": id,
        "target": kept.target.to_string(),
        "basis": kept.basis,
        "until": commands::log::rfc3339_micros(kept.until),
    });
    state
        .ledger
        .record_retention(
            &context(&caller, key),
            id,
            kept.target,
            kept.basis,
            kept.until,
            kept.note,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Leases a task: the one named, or the oldest claimable one. 204 when
/// nothing can be claimed now (every open task is held, leased or waits
/// for its retry time).
pub async fn claim_task(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<dto::ClaimTask>,
) -> Result<Response, ApiError> {
    let claim: dto::Claim = body.try_into()?;
    let ctx = context(&caller, key);
    if let Some(task) = claim.task {
        let claimed = state
            .ledger
            .claim_task(&ctx, task, &claim.worker, claim.lease_seconds)
            .await?;
        return Ok(Json(dto::ClaimAnswer::from(claimed)).into_response());
    }
    // Claiming the next task is not repeatable: a retry leases what is
    // next then (the first lease runs out by itself). The key is for
    // claims that name their task.
    let ctx = commands::ledger::Context {
        idempotency_key: None,
        ..ctx
    };
    let now = state.ledger.clock().now();
    queries::caught_up(&state).await?;
    // The read model proposes, the log decides: a candidate taken, held
    // or finished since the read model saw it is refused and skipped.
    let candidates: Vec<TaskId> = state
        .read_models
        .claimable_tasks(now, 0, claim.step.map(|s| s.as_str()), PAGE_ROWS_MAX)
        .await?
        .into_iter()
        .filter_map(|row| TaskId::parse(&row.task).ok())
        .collect();
    for task in candidates.into_iter().take(CLAIM_ATTEMPTS_MAX) {
        match state
            .ledger
            .claim_task(&ctx, task, &claim.worker, claim.lease_seconds)
            .await
        {
            Ok(claimed) => return Ok(Json(dto::ClaimAnswer::from(claimed)).into_response()),
            // Taken, held or finished since the candidates were read:
            // try the next one.
            Err(CommandError::Rejected(
                DomainError::TaskNotClaimable { .. }
                | DomainError::TaskAlreadyCompleted(_)
                | DomainError::RequestClosed { .. }
                | DomainError::NotVerified,
            ))
            | Err(CommandError::Contended) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn complete_task(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::CompleteTask>,
) -> Result<Response, ApiError> {
    let task = path_id("task", &id, TaskId::parse)?;
    let worker = parse_worker(&body.worker)?;
    let summary = state
        .ledger
        .complete_task(&context(&caller, key), task, &worker)
        .await?;
    Ok(Json(dto::RequestAnswer::from(summary)).into_response())
}

pub async fn fail_task(
    State(state): State<AppState>,
    caller: Caller<ServiceCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::FailTask>,
) -> Result<Response, ApiError> {
    let task = path_id("task", &id, TaskId::parse)?;
    let worker = parse_worker(&body.worker)?;
    let error = field("error", Note::parse(&body.error))?;
    let summary = state
        .ledger
        .fail_task(&context(&caller, key), task, &worker, error)
        .await?;
    Ok(Json(dto::RequestAnswer::from(summary)).into_response())
}

pub async fn place_hold(
    State(state): State<AppState>,
    caller: Caller<HoldCommands>,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<dto::PlaceHold>,
) -> Result<Response, ApiError> {
    let new: dto::NewHold = body.try_into()?;
    let scope = new.scope.to_string();
    let hold = state
        .ledger
        .place_hold(
            &context(&caller, key),
            new.scope,
            new.kind,
            new.matter,
            new.reason,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "hold_id": hold, "scope": scope, "active": true })),
    )
        .into_response())
}

pub async fn lift_hold(
    State(state): State<AppState>,
    caller: Caller<HoldCommands>,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<dto::LiftHold>,
) -> Result<Response, ApiError> {
    let hold = path_id("hold", &id, HoldId::parse)?;
    let reason = field("reason", Reason::parse(&body.reason))?;
    state
        .ledger
        .lift_hold(&context(&caller, key), hold, reason)
        .await?;
    Ok(Json(json!({ "hold_id": hold, "active": false })).into_response())
}

/// True for the states in which a request may still have work to claim.
pub fn is_open(state: RequestState) -> bool {
    matches!(state, RequestState::InProgress | RequestState::Blocked)
}

/// Forgets a subject's personal data; see [`commands::Ledger::forget`].
pub async fn forget_subject(
    State(state): State<AppState>,
    caller: Caller<Forgetting>,
    key: IdempotencyKey,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let subject = field("subject", domain::subject::Subject::parse(&raw))?;
    let forgotten = state
        .ledger
        .forget(&context(&caller, key), &subject, ForgetCause::OnRequest)
        .await?;
    Ok(Json(json!({
        "subject": forgotten.subject,
        "forgotten": true,
        "first_time": forgotten.first_time,
    }))
    .into_response())
}
