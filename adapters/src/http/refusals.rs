//! Every refusal is audited (DESIGN, Security): an API call answered 401
//! (no token, or one unknown or revoked) or 403 (its role, or a rule,
//! reserves it to someone else) is recorded as `AccessRefused`, with the
//! method and route pattern, the token's name when it was known, and why.
//!
//! Anyone can send calls without a token, so the records are limited as
//! the refused Meta callbacks are: [`super::callbacks::REFUSALS_RECORDED_PER_MINUTE`]
//! a minute one by one, and the next one recorded counts those that were
//! not. A record that cannot be written is logged; the caller gets the
//! refusal it was due either way.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use commands::ledger::Context;

use super::callbacks::admitted_reason;
use super::error::Refused;
use super::AppState;

/// The actor of the records of refused calls.
pub const REFUSALS_ACTOR: &str = "lethe:api";

/// Answers the call, and records it when it was refused with 401 or 403
/// on a `/v1` route (the Meta callbacks record their own refusals).
pub async fn record_refusals(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .filter(|path| path.as_str().starts_with("/v1/"))
        .map(|path| format!("{} {}", request.method(), path.as_str()));
    let response = next.run(request).await;
    let (Some(route), Some(refused)) = (route, response.extensions().get::<Refused>()) else {
        return response;
    };
    let status = response.status().as_u16();
    let Some(reason) = admitted_reason(
        &state.access_refusals,
        state.ledger.clock().now(),
        refused.reason.clone(),
        "calls",
    ) else {
        tracing::warn!(%route, status, reason = %refused.reason, "call refused (not recorded: over the limit)");
        return response;
    };
    let ctx = Context::new(REFUSALS_ACTOR, "access-refused");
    match state
        .ledger
        .record_access_refused(&ctx, &route, status, refused.principal.as_deref(), &reason)
        .await
    {
        Ok(()) => tracing::warn!(%route, status, %reason, "call refused"),
        Err(failure) => {
            tracing::error!(%route, status, %reason, %failure, "could not record a refused call");
        }
    }
    response
}
