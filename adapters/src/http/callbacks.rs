//! Meta's deauthorization and data-deletion callbacks (R4, R5) and the
//! public status page the person is sent to.
//!
//! A callback has no bearer token: the `signed_request` is its
//! credential. Every refusal is recorded in the log (`CallbackRefused`)
//! before it is answered, and deletes nothing.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use commands::ledger::Context;
use domain::ids::ExternalAccountId;
use serde_json::json;

use super::error::ApiError;
use super::extract::read_body;
use super::AppState;
use crate::meta::{self, SignedRequest};

/// The actor of what a valid callback causes.
pub const META_ACTOR: &str = "meta:callback";
const DEAUTHORIZE: &str = "/callbacks/meta/deauthorize";
const DATA_DELETION: &str = "/callbacks/meta/data-deletion";

fn context() -> Context {
    Context::new(META_ACTOR, "meta-callback")
}

/// Most refused callbacks recorded one by one in a minute. The callbacks
/// take no token, so without a limit anyone could grow the log, which is
/// never pruned, by one event per request.
pub const REFUSALS_RECORDED_PER_MINUTE: u32 = 60;

/// The refusals of the current minute (by the ledger's clock).
#[derive(Debug, Default)]
pub struct RefusalWindow {
    started: Option<chrono::DateTime<chrono::Utc>>,
    recorded: u32,
    /// Refused past the limit and not recorded yet; the next recorded
    /// refusal says how many.
    unrecorded: u64,
}

impl RefusalWindow {
    /// Whether a refusal at `now` is recorded, and if so how many before
    /// it were not.
    fn admit(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
        if self
            .started
            .is_none_or(|started| now - started >= chrono::Duration::minutes(1))
        {
            self.started = Some(now);
            self.recorded = 0;
        }
        if self.recorded >= REFUSALS_RECORDED_PER_MINUTE {
            self.unrecorded += 1;
            return None;
        }
        self.recorded += 1;
        Some(std::mem::take(&mut self.unrecorded))
    }
}

/// Whether a refusal at `now` is recorded one by one under `window`'s
/// limit, and the reason to record: `reason`, preceded by how many
/// refusals before it were over the limit and not recorded (`what` names
/// them). `None`: over the limit, answer and log only.
pub(crate) fn admitted_reason(
    window: &std::sync::Mutex<RefusalWindow>,
    now: chrono::DateTime<chrono::Utc>,
    reason: String,
    what: &str,
) -> Option<String> {
    let admitted = window
        .lock()
        .map(|mut window| window.admit(now))
        .unwrap_or(Some(0));
    match admitted? {
        0 => Some(reason),
        unrecorded => Some(format!(
            "({unrecorded} refused {what} before this one were over the limit of \
             {REFUSALS_RECORDED_PER_MINUTE} a minute and not recorded one by one) {reason}"
        )),
    }
}

/// Records the refusal, then answers with `error`. If even the record
/// cannot be written, answers 503 so that Meta retries. Past
/// [`REFUSALS_RECORDED_PER_MINUTE`] the refusal is answered and logged but
/// not recorded; the next one recorded counts those that were not.
async fn refuse(state: &AppState, endpoint: &str, error: ApiError) -> ApiError {
    let reason = format!("{}: {}", error.title, error.detail);
    let Some(reason) = admitted_reason(
        &state.refusals,
        state.ledger.clock().now(),
        reason.clone(),
        "callbacks",
    ) else {
        tracing::warn!(endpoint, %reason, "Meta callback refused (not recorded: over the limit)");
        return error;
    };
    match state
        .ledger
        .record_refused_callback(&context(), endpoint, &reason)
        .await
    {
        Ok(()) => {
            tracing::warn!(endpoint, %reason, "Meta callback refused");
            error
        }
        Err(failure) => {
            tracing::error!(endpoint, %reason, %failure, "could not record a refused Meta callback");
            ApiError::unavailable("the ledger cannot record this callback now; retry later")
        }
    }
}

/// Checks configuration, media type and signature.
async fn verified(
    state: &AppState,
    headers: &HeaderMap,
    req: Request,
) -> Result<SignedRequest, ApiError> {
    let Some(config) = &state.meta else {
        return Err(ApiError::unavailable(
            "Meta callbacks are not configured: set LETHE_META_APP_SECRET to the app secret",
        ));
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(ApiError::unsupported_media_type(
            "application/x-www-form-urlencoded with a signed_request field",
        ));
    }
    let body = read_body(req, state).await?;
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::malformed(format!("the body is not a form: {e}")))?;
    let raw = form
        .get("signed_request")
        .ok_or_else(|| ApiError::invalid("signed_request", "the form has no signed_request"))?;
    meta::verify(config, raw, state.ledger.clock().now()).map_err(|error| match error {
        meta::MetaError::NoUserId => ApiError::invalid("signed_request", error.to_string()),
        _ => ApiError::malformed(error.to_string()),
    })
}

fn external_account(signed: &SignedRequest) -> Result<ExternalAccountId, ApiError> {
    super::dto::external_account_id("signed_request", &signed.user_id)
        .map_err(|e| ApiError::invalid("signed_request", format!("user_id: {}", e.detail)))
}

/// The verified callback and the person it names, or the answer to a
/// refused one (recorded first, as every refusal is).
async fn verified_account(
    state: &AppState,
    endpoint: &'static str,
    headers: &HeaderMap,
    req: Request,
) -> Result<(SignedRequest, ExternalAccountId), Response> {
    let checked = match verified(state, headers, req).await {
        Ok(signed) => external_account(&signed).map(|external| (signed, external)),
        Err(error) => Err(error),
    };
    match checked {
        Ok(checked) => Ok(checked),
        Err(error) => Err(refuse(state, endpoint, error).await.into_response()),
    }
}

/// R4: disconnects every Instagram connection of the person.
pub async fn meta_deauthorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let (_, external) = match verified_account(&state, DEAUTHORIZE, &headers, req).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    match state.ledger.meta_deauthorize(&context(), external).await {
        Ok(summaries) => Json(json!({
            "disconnected": summaries.len(),
            "cleanup_requests": summaries.iter().map(|s| s.request_id).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// R5: removes the person's Instagram data; answers the status link and
/// the confirmation code (the same one when the callback is replayed).
pub async fn meta_data_deletion(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let (signed, external) = match verified_account(&state, DATA_DELETION, &headers, req).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    match state
        .ledger
        .meta_data_deletion(&context(), external, &signed.callback_key)
        .await
    {
        Ok(summary) => {
            let code = summary.confirmation_code.unwrap_or_default();
            Json(json!({
                "url": format!("{}/deletion-status/{code}", state.public_url),
                "confirmation_code": code,
            }))
            .into_response()
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

fn is_code(raw: &str) -> bool {
    raw.len() == 15
        && raw.starts_with("LTH")
        && raw[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /deletion-status/{code}`: HTML, or JSON with `Accept: application/json`.
pub async fn deletion_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("no deletion request has this confirmation code");
    if !is_code(&code) {
        return Err(not_found());
    }
    super::queries::caught_up(&state).await?;
    let status = state
        .read_models
        .meta_status(&code, state.ledger.clock().now())
        .await?
        .ok_or_else(not_found)?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(Json(&status).into_response());
    }
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Deletion request {code}</title></head>\n<body>\n\
         <h1>Your data deletion request</h1>\n\
         <p>Confirmation code: <strong>{code}</strong></p>\n\
         <p>Status: <strong>{state}</strong></p>\n\
         <p>{explanation}</p>\n\
         <p>Received {received}.</p>\n</body></html>\n",
        code = escape(&code),
        state = escape(&status.state),
        explanation = escape(&status.explanation),
        received = status.received_at.format("%Y-%m-%d %H:%M UTC"),
    );
    Ok((StatusCode::OK, Html(page)).into_response())
}
