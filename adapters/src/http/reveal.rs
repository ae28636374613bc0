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
    let bytes = match collect(body, REVEAL_BODY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.into_response(),
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

/// The answer's bytes, or a 422 that says to narrow the query when there
/// are more than `limit` of them (never a 500: nothing failed).
async fn collect(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, limit).await.map_err(|error| {
        tracing::warn!(%error, "an answer too large to reveal");
        ApiError::answer_too_large()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_over_the_limit_is_a_422_that_says_to_narrow_the_query() {
        let fits = collect(Body::from(vec![b'1'; 8]), 8).await.expect("fits");
        assert_eq!(fits.len(), 8);
        let refused = collect(Body::from(vec![b'1'; 9]), 8)
            .await
            .expect_err("too large")
            .into_response();
        assert_eq!(refused.status(), 422);
        let body = to_bytes(refused.into_body(), 4096).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], "urn:lethe:problem:answer-too-large");
        assert!(problem["detail"]
            .as_str()
            .unwrap()
            .contains("narrow the query"));
    }
}
