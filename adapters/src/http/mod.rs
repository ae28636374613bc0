//! The HTTP API (axum): commands for product services, holds for legal,
//! reads for auditors, the Meta callbacks and the public status page.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it
//! with `tower::ServiceExt::oneshot` and no socket.
//!
//! Queries answer from the read models ([`ReadModels`]), each after a
//! `catch_up` to the log's head, so a caller reads its own writes.
//!
//! **Boundary:** handlers parse the request into domain values (`TryFrom`
//! on the DTOs), call the [`Ledger`], and map every error to a problem
//! document. No rule is decided here, and nothing is stored on any error
//! but the record of a refusal: a refused Meta callback (R5), and an API
//! call refused with 401 or 403 ([`refusals`]; DESIGN: every refusal is
//! audited).

pub mod callbacks;
pub mod commands;
pub mod dto;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod queries;
pub mod refusals;
pub mod reveal;

use ::commands::Ledger;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::auth::Tokens;
use crate::meta::MetaConfig;
use crate::readmodel::ReadModels;

/// Largest request body, in bytes (64 KiB); larger ones get 413.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub ledger: Ledger,
    /// The read models of the ledger's database; every query route
    /// answers from them after catching them up (read-your-writes).
    pub read_models: ReadModels,
    pub tokens: Tokens,
    /// `None` when `LETHE_META_APP_SECRET` is unset: the callbacks answer
    /// 503 and say so.
    pub meta: Option<MetaConfig>,
    /// The base of status links, e.g. `https://lethe.example.com`, from
    /// `LETHE_PUBLIC_URL`; no trailing slash.
    pub public_url: String,
    /// How many refused Meta callbacks this minute were recorded one by
    /// one (anyone can send them, and the log keeps every event).
    pub(crate) refusals: std::sync::Arc<std::sync::Mutex<callbacks::RefusalWindow>>,
    /// The same, for API calls refused without a known token (401).
    pub(crate) access_refusals: std::sync::Arc<std::sync::Mutex<callbacks::RefusalWindow>>,
    /// The same, for API calls of known tokens refused (403).
    pub(crate) token_refusals: std::sync::Arc<std::sync::Mutex<callbacks::RefusalWindow>>,
}

impl AppState {
    pub fn new(
        ledger: Ledger,
        read_models: ReadModels,
        tokens: Tokens,
        meta: Option<MetaConfig>,
        public_url: &str,
    ) -> Self {
        let read_models = read_models.with_vault(ledger.vault().clone());
        Self {
            ledger,
            read_models,
            tokens,
            meta,
            public_url: public_url.trim_end_matches('/').to_owned(),
            refusals: Default::default(),
            access_refusals: Default::default(),
            token_refusals: Default::default(),
        }
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(queries::health))
        .route("/openapi.json", get(openapi::document))
        // Product services.
        .route("/v1/workspaces", post(commands::create_workspace))
        .route("/v1/workspaces/{id}/members", post(commands::add_member))
        .route(
            "/v1/workspaces/{id}/members/{account}",
            delete(commands::remove_member),
        )
        .route(
            "/v1/resources",
            post(commands::register_resource).get(queries::resources),
        )
        .route("/v1/integrations", post(commands::connect_integration))
        .route(
            "/v1/integrations/{id}/disconnect",
            post(commands::disconnect_integration),
        )
        .route("/v1/deletion-requests", post(commands::request_deletion))
        .route("/v1/deletion-requests/{id}", get(queries::deletion_request))
        .route(
            "/v1/deletion-requests/{id}/verify",
            post(commands::verify_request),
        )
        .route(
            "/v1/deletion-requests/{id}/refuse",
            post(commands::refuse_request),
        )
        .route(
            "/v1/deletion-requests/{id}/extend",
            post(commands::extend_deadline),
        )
        .route(
            "/v1/deletion-requests/{id}/confirm-receipt",
            post(commands::confirm_receipt),
        )
        .route(
            "/v1/deletion-requests/{id}/retentions",
            post(commands::record_retention),
        )
        .route("/v1/tasks/claim", post(commands::claim_task))
        .route("/v1/tasks/{id}/complete", post(commands::complete_task))
        .route("/v1/tasks/{id}/fail", post(commands::fail_task))
        // Legal.
        .route("/v1/holds", post(commands::place_hold).get(queries::holds))
        .route("/v1/holds/{id}/lift", post(commands::lift_hold))
        // Auditors.
        .route("/v1/audit", get(queries::audit))
        .route("/v1/audit/export", get(queries::export))
        .route("/v1/reports/deadlines", get(queries::deadline_report))
        .route("/v1/policies", get(queries::policies))
        // Administrators.
        .route(
            "/v1/subjects/{subject}/forget",
            post(commands::forget_subject),
        )
        // Meta and the people it sends.
        .route(
            "/callbacks/meta/deauthorize",
            post(callbacks::meta_deauthorize),
        )
        .route(
            "/callbacks/meta/data-deletion",
            post(callbacks::meta_data_deletion),
        )
        .route("/deletion-status/{code}", get(callbacks::deletion_status))
        .fallback(|| async { ApiError::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            reveal::reveal_personal_data,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refusals::record_refusals,
        ))
        .layer(middleware::from_fn(error::problem_for_other_errors))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        // Spans name the route's pattern, never the path or query as sent:
        // those hold subjects, external account ids among them.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("(no route)", axum::extract::MatchedPath::as_str);
                tracing::debug_span!("request", method = %request.method(), route)
            }),
        )
        .with_state(state)
}
