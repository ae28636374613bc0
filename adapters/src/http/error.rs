//! The errors of the HTTP edge, answered as `application/problem+json`
//! (RFC 9457): `{type, title, status, detail, field?}`.
//!
//! Infrastructure failures are logged with their cause and answered with a
//! generic detail: the client learns that it should retry, not how the
//! database is laid out.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::log::StoreError;
use commands::vault::VaultError;
use commands::CommandError;
use domain::error::{DomainError, InvalidInput};
use projections::ReadModelError;
use serde::Serialize;

use crate::auth::AuthError;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer. Build one with the constructors, or convert a
/// [`CommandError`] / [`InvalidInput`]; nothing was stored in any case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The token's name behind a 403, for the record of the refusal;
    /// never shown.
    #[serde(skip)]
    pub principal: Option<String>,
}

/// What a 401 or 403 answer carries (as a response extension) to the
/// middleware that records it: every refusal is audited (DESIGN).
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub principal: Option<String>,
    pub reason: String,
}

impl ApiError {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:lethe:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            principal: None,
        }
    }

    /// 400: the body is not JSON (or not a form), or is cut short.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "Malformed request",
            detail,
        )
    }

    /// 401: no bearer token, or one that is unknown or revoked.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            detail,
        )
    }

    /// 403: the caller's role may not do this, or a rule reserves it to
    /// someone else (a workspace owner, say).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: no such route, request, hold, task or subject.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405: the route exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this route does not take this method; see /openapi.json",
        )
    }

    /// 409: the command conflicts with the ledger's state; the detail says
    /// why. Retrying the same command will fail the same way, except for
    /// contention.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 413: the body is larger than [`super::BODY_BYTES_MAX`].
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            format!("request bodies are at most {} bytes", super::BODY_BYTES_MAX),
        )
    }

    /// 415: the body is not `application/json` (or not a form, for the
    /// Meta callbacks).
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("send the body as {expected}"),
        )
    }

    /// 422: a field is missing or invalid; `field` names it.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "Invalid field",
            detail,
        );
        error.field = Some(field.into());
        error
    }

    /// 422: the answer would be larger than
    /// [`super::reveal::REVEAL_BODY_BYTES_MAX`] (a deadline report over a
    /// long range, say). Narrow the query, or ask for CSV where the route
    /// offers it (CSV answers are not held in memory to be revealed).
    pub fn answer_too_large() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "answer-too-large",
            "Answer too large",
            format!(
                "the answer is larger than {} MiB; narrow the query (a shorter range, one \
                 policy, a smaller page) or ask for format=csv where the route offers it",
                super::reveal::REVEAL_BODY_BYTES_MAX / (1024 * 1024)
            ),
        )
    }

    /// 503: the store or the configuration is not available. Logged by
    /// the caller; the detail given here is safe to show.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// 500: a stored event does not decode. Logged; an operator must look.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the ledger could not read its own log; an operator has been alerted by the logs",
        )
    }

    /// Stored personal data failed its integrity check: shown as
    /// tampering, never as `[erased]`.
    pub fn tampered() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "tampered",
            "Tampering detected",
            "stored personal data failed its integrity check; nothing is shown. \
             An operator must look (lethe verify)",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).expect("problem documents serialize");
        let mut response = (status, body).into_response();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            response.extensions_mut().insert(Refused {
                principal: self.principal,
                reason: format!("{}: {}", self.title, self.detail),
            });
        }
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl From<InvalidInput> for ApiError {
    fn from(error: InvalidInput) -> Self {
        ApiError::invalid(error.field, error.reason)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let detail = error.to_string();
        match error {
            DomainError::InvalidInput(invalid) => invalid.into(),
            DomainError::UnknownSubject(_) | DomainError::UnknownTask(_) => {
                ApiError::not_found(detail)
            }
            DomainError::NotWorkspaceOwner { .. }
            | DomainError::NotOwnerToGrantOwner { .. }
            | DomainError::NotOwnerOrAdmin { .. } => ApiError::forbidden(detail),
            DomainError::ExtensionRefused(_) => ApiError::invalid("reason", detail),
            DomainError::AlreadyExists(_)
            | DomainError::Erased(_)
            | DomainError::BeingErased(_)
            | DomainError::NotAMember { .. }
            | DomainError::CannotRemoveOwner { .. }
            | DomainError::AlreadyDisconnected(_)
            | DomainError::HoldNotActive(_)
            | DomainError::RequestClosed { .. }
            | DomainError::NotVerified
            | DomainError::AlreadyVerified
            | DomainError::TaskAlreadyCompleted(_)
            | DomainError::TaskNotClaimable { .. }
            | DomainError::NotLeaseHolder { .. } => ApiError::conflict(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            // A decision that still conflicts after the ledger's own
            // retries reaches the edge only through CommandError.
            StoreError::WrongExpectedVersion { .. } | StoreError::ConditionFailed { .. } => {
                ApiError::conflict("concurrent writes changed what this command read; retry")
            }
            StoreError::InvalidEvent(why) => {
                tracing::warn!(%why, "an append was refused as invalid");
                ApiError::invalid("body", why)
            }
            StoreError::Unavailable(why) => {
                tracing::error!(%why, "event store unavailable");
                ApiError::unavailable("the event store is unavailable; retry later")
            }
            StoreError::Corrupt(why) => {
                tracing::error!(%why, "event store corrupt");
                ApiError::internal()
            }
        }
    }
}

impl From<ReadModelError> for ApiError {
    fn from(error: ReadModelError) -> Self {
        match error {
            ReadModelError::InvalidQuery(why) => ApiError::invalid("query", why),
            ReadModelError::InvalidParameter { name, why } => ApiError::invalid(name, why),
            ReadModelError::Store(store) => store.into(),
            ReadModelError::Unavailable(why) => {
                tracing::error!(%why, "read models unavailable");
                ApiError::unavailable("the read models are unavailable; retry later")
            }
            ReadModelError::Corrupt(why) => {
                tracing::error!(%why, "read models corrupt; run `lethe projections rebuild`");
                ApiError::internal()
            }
            ReadModelError::Tampered(why) => {
                tracing::error!(%why, "tampering detected in personal data");
                ApiError::tampered()
            }
            ReadModelError::Injected(why) => {
                tracing::error!(%why, "injected read-model fault");
                ApiError::unavailable("the read models are unavailable; retry later")
            }
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(domain) => domain.into(),
            CommandError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            CommandError::Contended => ApiError::conflict(error.to_string()),
            CommandError::KeyReused { .. } => {
                ApiError::invalid("Idempotency-Key", error.to_string())
            }
            CommandError::Store(store) => store.into(),
            CommandError::Corrupt(decode) => {
                tracing::error!(%decode, "a stored event does not decode");
                ApiError::internal()
            }
            CommandError::Vault(vault) => vault.into(),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Unavailable(why) => {
                tracing::error!(%why, "key table unavailable");
                ApiError::unavailable("the key table is unavailable; retry later")
            }
            VaultError::Tampered(why) => {
                tracing::error!(%why, "tampering detected in personal data");
                ApiError::tampered()
            }
            VaultError::WrongMasterKey { .. } | VaultError::BadMasterKey(_) => {
                tracing::error!(%error, "the master key does not open the key table");
                ApiError::internal()
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        tracing::error!(%error, "token store failed");
        ApiError::unavailable("the token store is unavailable; retry later")
    }
}

/// Longest error text of an extractor's rejection that is carried into a
/// problem document; such texts are a line or two.
const REJECTION_TEXT_BYTES_MAX: usize = 4 * 1024;

/// Turns an error answered by something other than [`ApiError`] (an
/// extractor's rejection: a path that is not UTF-8, say) into a problem
/// document with the same status, so that every error is
/// `application/problem+json`.
pub async fn problem_for_other_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), REJECTION_TEXT_BYTES_MAX)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        "the request could not be read".to_owned()
    } else {
        text
    };
    let mut problem = ApiError::new(status, "rejected", "Request rejected", detail);
    if status.is_server_error() {
        problem.detail = "the request could not be handled; retry later".to_owned();
    }
    problem.into_response()
}
