//! Every refusal is audited (DESIGN, Security): an API call answered 401
//! (no token, or one unknown or revoked) or 403 (its role, or a rule,
//! reserves it to someone else) is recorded as `AccessRefused`, with the
//! method and route pattern, the token's name when it was known, and why.
//!
//! Anyone can send calls without a token, so the records are limited as
//! the refused Meta callbacks are: [`super::callbacks::REFUSALS_RECORDED_PER_MINUTE`]
//! a minute one by one, and the next one recorded counts those that were
//! not; the refusals of known tokens have a window of their own. A record that cannot be written is logged; the caller gets the
//! refusal it was due either way.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use commands::ledger::Context;

use super::callbacks::admitted_reason;
use super::error::Refused;
use super::extract::authenticate;
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
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let response = next.run(request).await;
    let (Some(route), Some(refused)) = (route, response.extensions().get::<Refused>()) else {
        return response;
    };
    let status = response.status().as_u16();
    // A rule's 403 comes from the domain, which does not know the token:
    // name it here (a 401's token is unknown by definition).
    let mut principal = refused.principal.clone();
    if let (None, 403, Some(value)) = (&principal, status, authorization) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        principal = authenticate(&headers, &state).await.ok().map(|p| p.actor());
    }
    // Calls without a known token have a limit of their own, so that
    // anyone's flood of them cannot crowd out the refusals of known
    // tokens.
    let window = if principal.is_some() {
        &state.token_refusals
    } else {
        &state.access_refusals
    };
    let Some(reason) = admitted_reason(
        window,
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
        .record_access_refused(&ctx, &route, status, principal.as_deref(), &reason)
        .await
    {
        Ok(()) => tracing::warn!(%route, status, %reason, "call refused"),
        Err(failure) => {
            tracing::error!(%route, status, %reason, %failure, "could not record a refused call");
        }
    }
    response
}
