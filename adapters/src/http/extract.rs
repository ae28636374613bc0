//! Extractors of the HTTP edge: the authenticated caller with the role a
//! route needs, JSON bodies that fail as problem documents naming the bad
//! field, and the `Idempotency-Key` header.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::auth::{ApiRole, Principal};

/// Longest `Idempotency-Key`, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 200;

/// A group of routes and the roles allowed to call them.
pub trait Permission: Send + Sync + 'static {
    /// The roles that may call the routes of this group.
    const ROLES: &'static [ApiRole];
    /// What the group is, for the 403 answer.
    const WHAT: &'static str;
}

/// Commands of product services (and operators).
#[derive(Debug)]
pub struct ServiceCommands;
impl Permission for ServiceCommands {
    const ROLES: &'static [ApiRole] = &[ApiRole::Service, ApiRole::Admin];
    const WHAT: &'static str = "service commands (roles service, admin)";
}

/// Placing and lifting holds: legal only (DESIGN: "only legal places /
/// lifts holds"; not even admin).
#[derive(Debug)]
pub struct HoldCommands;
impl Permission for HoldCommands {
    const ROLES: &'static [ApiRole] = &[ApiRole::Legal];
    const WHAT: &'static str = "placing and lifting holds (role legal)";
}

/// Forgetting a subject's personal data (crypto-shredding): admins only.
#[derive(Debug)]
pub struct Forgetting;
impl Permission for Forgetting {
    const ROLES: &'static [ApiRole] = &[ApiRole::Admin];
    const WHAT: &'static str = "forgetting a subject (role admin)";
}

/// Reads of the ledger: auditors, legal and admins. Services do not read
/// the audit trail, which spans every tenant.
#[derive(Debug)]
pub struct Reads;
impl Permission for Reads {
    const ROLES: &'static [ApiRole] = &[ApiRole::Auditor, ApiRole::Legal, ApiRole::Admin];
    const WHAT: &'static str = "reads (roles auditor, legal, admin)";
}

/// The authenticated caller, allowed by `P`.
#[derive(Debug)]
pub struct Caller<P> {
    pub principal: Principal,
    _permission: PhantomData<P>,
}

impl<P> Caller<P> {
    /// The actor recorded in the events this call causes.
    pub fn actor(&self) -> String {
        self.principal.actor()
    }
}

/// The principal behind the request's bearer token.
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "send Authorization: Bearer <token> (create one with `lethe token create`)",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthenticated("the Authorization header must be Bearer <token>")
        })?;
    state
        .tokens
        .authenticate(token)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the token is unknown or revoked"))
}

impl<P: Permission> FromRequestParts<AppState> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(&parts.headers, state).await?;
        if !P::ROLES.contains(&principal.role) {
            let mut refused = ApiError::forbidden(format!(
                "role {} may not do this: {}",
                principal.role,
                P::WHAT
            ));
            refused.principal = Some(principal.actor());
            return Err(refused);
        }
        Ok(Caller {
            principal,
            _permission: PhantomData,
        })
    }
}

/// A JSON body parsed into `T`; errors are problem documents: 415 for
/// another media type, 413 over the body limit, 400 for text that is not
/// JSON, 422 naming the field for JSON of the wrong shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"))
}

/// Reads the body within the limit; 413 beyond it.
pub async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large()
        } else {
            ApiError::malformed(rejection.body_text())
        }
    })
}

/// Parses JSON text into `T`, naming the field that does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::malformed(format!("the body is not valid JSON: {inner}"))
            }
            serde_json::error::Category::Io => ApiError::malformed(inner.to_string()),
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = missing_or_unknown_field(&message)
                    .map(|name| {
                        if path == "." {
                            name
                        } else {
                            format!("{path}.{name}")
                        }
                    })
                    .unwrap_or_else(|| if path == "." { "body".into() } else { path });
                ApiError::invalid(field, message)
            }
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The field name in serde's "missing field `x`" and "unknown field `x`".
fn missing_or_unknown_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The optional `Idempotency-Key` header: a replayed command with the same
/// key and caller answers like the first one and stores nothing new.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value.to_str().ok().map(str::trim).unwrap_or_default();
        let valid = !key.is_empty()
            && key.len() <= IDEMPOTENCY_KEY_BYTES_MAX
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {IDEMPOTENCY_KEY_BYTES_MAX} visible ASCII characters"),
            ));
        }
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}
