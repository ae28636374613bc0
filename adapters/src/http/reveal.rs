//! Shows personal data to the callers of `/v1`: every JSON answer passes
//! through the vault, which replaces sealed values by their plain text (or
//! `[erased]`) and keyed-hash external ids by the ids. The public status
//! page and the streamed export (revealed page by page) are not touched.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// Largest JSON answer revealed, in bytes: a page of 1,000 audit entries
/// is far below it; a larger answer is refused rather than shown sealed.
pub const REVEAL_BODY_BYTES_MAX: usize = 32 * 1024 * 1024;

pub async fn reveal_personal_data(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let under_v1 = request.uri().path().starts_with("/v1/");
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !under_v1 || !json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match to_bytes(body, REVEAL_BODY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "an answer too large to reveal");
            return ApiError::internal().into_response();
        }
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Err(error) = state.read_models.reveal_json(&mut value).await {
        return ApiError::from(error).into_response();
    }
    let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}
