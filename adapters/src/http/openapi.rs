//! The OpenAPI 3.1 document of every route, written by hand from one
//! table ([`ROUTES`]) that the role-matrix test also reads, so the
//! document, the router and the tests cannot drift apart silently.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::ApiRole;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token: health, the OpenAPI document, the status page.
    Public,
    /// No token; the Meta `signed_request` is the credential.
    MetaSignature,
    /// Bearer token with one of these roles.
    Roles(&'static [ApiRole]),
}

const SERVICE: Access = Access::Roles(&[ApiRole::Service, ApiRole::Admin]);
const LEGAL: Access = Access::Roles(&[ApiRole::Legal]);
const ADMIN: Access = Access::Roles(&[ApiRole::Admin]);
const READ: Access = Access::Roles(&[ApiRole::Auditor, ApiRole::Legal, ApiRole::Admin]);

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Fields of the JSON body: (name, required, description).
    pub body: &'static [(&'static str, bool, &'static str)],
    /// Query parameters: (name, required, description).
    pub query: &'static [(&'static str, bool, &'static str)],
    /// The success status.
    pub success: u16,
}

const INITIATOR: &str = "\"platform\" or \"account:ID\"";

/// Every route, in the order of the issue that specified them.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc { method: "get", path: "/health", access: Access::Public, summary: "Liveness and the log head.", body: &[], query: &[], success: 200 },
    RouteDoc { method: "get", path: "/openapi.json", access: Access::Public, summary: "This document.", body: &[], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/workspaces", access: SERVICE, summary: "Record a new workspace and its owner.", body: &[("workspace_id", true, "product id"), ("owner_account_id", true, "product id")], query: &[], success: 201 },
    RouteDoc { method: "post", path: "/v1/workspaces/{id}/members", access: SERVICE, summary: "Add a member (by an owner or admin, or the platform; an owner only by an owner or the platform). 409 while the workspace or the account is being erased.", body: &[("account_id", true, "product id"), ("role", true, "owner | admin | member"), ("added_by", true, INITIATOR)], query: &[], success: 201 },
    RouteDoc { method: "delete", path: "/v1/workspaces/{id}/members/{account}", access: SERVICE, summary: "R10: remove a member; their content stays.", body: &[], query: &[("removed_by", false, "\"platform\" (default) or \"account:ID\"")], success: 204 },
    RouteDoc { method: "post", path: "/v1/resources", access: SERVICE, summary: "Register a product resource (file, derived artifact, project, ...).", body: &[("resource", true, "KIND:ID, e.g. file:f-9"), ("workspace_id", false, "required for workspace resources"), ("account_id", false, "for account profiles and credentials"), ("parent", false, "KIND:ID of the containing project or folder"), ("derived_from", false, "KIND:ID of the source file or record, for derived artifacts (not another derived artifact)"), ("references", false, "array of KIND:ID the resource refers to"), ("created_by", false, "account id")], query: &[], success: 201 },
    RouteDoc { method: "post", path: "/v1/integrations", access: SERVICE, summary: "Record a connection to YouTube, TikTok or Instagram.", body: &[("integration_id", true, "product id"), ("workspace_id", true, "product id"), ("platform", true, "youtube | tiktok | instagram"), ("external_account_id", true, "the account on the platform"), ("connected_by", true, INITIATOR)], query: &[], success: 201 },
    RouteDoc { method: "post", path: "/v1/integrations/{id}/disconnect", access: SERVICE, summary: "R1: disconnect; answers the clean-up request (202).", body: &[("disconnected_by", true, INITIATOR), ("channel", false, "default in-product"), ("reason", false, "free text")], query: &[], success: 202 },
    RouteDoc { method: "post", path: "/v1/deletion-requests", access: SERVICE, summary: "Request a deletion; answers request_id, state and due_at (202). Honours the Idempotency-Key header.", body: &[("scope", true, "KIND:ID of what to delete"), ("channel", true, "in-product | google-youtube | email-to-support | retention-policy"), ("policy", false, "gdpr | ccpa | youtube-api-user-data | internal (default from the scope; youtube-api-user-data whenever the scope covers YouTube API data, R3)"), ("requested_by", true, INITIATOR), ("recorded_by", false, "R15: the operator who recorded an e-mail request"), ("verification", false, "how the requester was verified"), ("contact", false, "requester's contact (personal data)"), ("received_at", false, "R15, e-mail requests only: when the e-mail arrived (RFC 3339, within a year); the deadline counts from it")], query: &[], success: 202 },
    RouteDoc { method: "get", path: "/v1/deletion-requests/{id}", access: READ, summary: "A request in full: state, deadline status, holds, a page of its tasks (tasks_next_after names the next), R13 purge date.", body: &[], query: &[("tasks_after", false, "tasks_next_after of the page before"), ("tasks_limit", false, "tasks per page, at most 1000 (the default)")], success: 200 },
    RouteDoc { method: "post", path: "/v1/deletion-requests/{id}/verify", access: SERVICE, summary: "R11 / R15: record how the requester was verified.", body: &[("method", true, "what verification was done")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/deletion-requests/{id}/confirm-receipt", access: SERVICE, summary: "Record that the requester was told the request was received (CCPA: within 10 business days); answers {request_id, receipt_confirmed_at}, the first time again on a repeat. The deadline report lists confirmations past their date.", body: &[("confirmed_at", false, "RFC 3339, between the receipt and now: when the requester was told, if before this call (default: now)")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/deletion-requests/{id}/refuse", access: SERVICE, summary: "R11 / R15: refuse a request whose requester could not be verified; nothing is deleted. Only while it awaits verification (409 once verified).", body: &[("reason", true, "why the requester could not be verified")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/deletion-requests/{id}/extend", access: SERVICE, summary: "Extend the deadline once, as the request's policy allows (CCPA: 45 more days, reason required).", body: &[("reason", false, "why more time is needed (required by CCPA)")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/deletion-requests/{id}/retentions", access: SERVICE, summary: "Record a retention exception: a record kept on purpose, on a basis, until a date.", body: &[("target", true, "KIND:ID of the record kept: the request's scope, a task's target, or what the scope's erasure removes or keeps (a workspace's resources and connections, a file's artifacts, an account's profile and credentials, an external account's connections); anything else is refused with 422"), ("basis", true, "security | audit | troubleshooting | legal | billing | platform-compliance"), ("until", true, "RFC 3339: when it is deleted after all"), ("note", true, "what is kept and why (personal data: stored sealed)")], query: &[], success: 201 },
    RouteDoc { method: "post", path: "/v1/tasks/claim", access: SERVICE, summary: "Lease an erasure task (the named one, or the oldest claimable). 204 when none is claimable.", body: &[("worker", true, "worker name"), ("lease_seconds", false, "1..3600, default 300"), ("task_id", false, "claim this task"), ("step", false, "only this erasure step")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/tasks/{id}/complete", access: SERVICE, summary: "The lease holder reports the step done.", body: &[("worker", true, "the lease holder")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/tasks/{id}/fail", access: SERVICE, summary: "R6: the lease holder reports a failed attempt; retried later.", body: &[("worker", true, "the lease holder"), ("error", true, "what went wrong")], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/v1/holds", access: LEGAL, summary: "R7: place a legal or moderation hold (201 with hold_id). Legal only.", body: &[("scope", true, "KIND:ID: a resource, workspace or account"), ("kind", true, "legal | moderation"), ("matter", true, "matter or case reference"), ("reason", true, "free text")], query: &[], success: 201 },
    RouteDoc { method: "get", path: "/v1/holds", access: READ, summary: "The holds register, with what each hold blocked.", body: &[], query: &[("active", false, "true: only active holds"), ("scope", false, "KIND:ID"), ("after", false, "log position the previous page ended with"), ("limit", false, "page size, at most 1000")], success: 200 },
    RouteDoc { method: "post", path: "/v1/holds/{id}/lift", access: LEGAL, summary: "Lift a hold; blocked deletions resume when no other hold covers them. Legal only.", body: &[("reason", true, "free text")], query: &[], success: 200 },
    RouteDoc { method: "get", path: "/v1/audit", access: READ, summary: "The audit trail, in log order, filtered by subject (KIND:ID, incl. instagram:ID), actor, event type and time range.", body: &[], query: &[("subject", false, "KIND:ID"), ("actor", false, "principal, e.g. service:file-manager"), ("event_type", false, "e.g. HoldPlaced"), ("from", false, "RFC 3339, occurred at or after"), ("to", false, "RFC 3339, occurred before"), ("after", false, "log position the previous page ended with"), ("limit", false, "1..1000, default 100")], success: 200 },
    RouteDoc { method: "get", path: "/v1/audit/export", access: READ, summary: "The audit trail as one streamed CSV or JSON Lines response (constant memory), with the same filters as /v1/audit.", body: &[], query: &[("format", false, "jsonl (default) | csv"), ("subject", false, "KIND:ID"), ("actor", false, "principal"), ("event_type", false, "event type"), ("from", false, "RFC 3339"), ("to", false, "RFC 3339"), ("after", false, "log position to start after")], success: 200 },
    RouteDoc { method: "get", path: "/v1/reports/deadlines", access: READ, summary: "Deadline compliance: counts, on-time rate, median and p95, overdue, at risk, blocked by hold, and confirmations of receipt (CCPA) made late or still missing past their date.", body: &[], query: &[("format", false, "json (default) | csv"), ("from", false, "RFC 3339, received at or after"), ("to", false, "RFC 3339, received before"), ("policy", false, "youtube-api-user-data | gdpr | ccpa | internal: the requests held to it (a request named another policy shows it as asked_policy, R3)")], success: 200 },
    RouteDoc { method: "get", path: "/v1/policies", access: READ, summary: "The deadline policy table in effect: when requests are due under each policy, what extension it allows, which figures are configured, and the residual-copies and at-risk periods.", body: &[], query: &[], success: 200 },
    RouteDoc { method: "get", path: "/v1/resources", access: READ, summary: "What the ledger still knows of a workspace, account or external account, and in which state.", body: &[], query: &[("workspace", false, "workspace id (or scope)"), ("scope", false, "KIND:ID: workspace:W, account:A, instagram:X, ..."), ("state", false, "active | disconnected | deletion-pending | blocked-by-hold | retained | erased"), ("after", false, "subject the previous page ended with"), ("limit", false, "page size, at most 1000")], success: 200 },
    RouteDoc { method: "post", path: "/v1/subjects/{subject}/forget", access: ADMIN, summary: "Forget a subject's personal data (KIND:ID, e.g. request:ID, instagram:ID): records SubjectForgotten and destroys its data key; its values read [erased] from then on. Safe to repeat.", body: &[], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/callbacks/meta/deauthorize", access: Access::MetaSignature, summary: "R4: Meta deauthorization (form field signed_request). 503 when LETHE_META_APP_SECRET is unset. Refusals are recorded.", body: &[], query: &[], success: 200 },
    RouteDoc { method: "post", path: "/callbacks/meta/data-deletion", access: Access::MetaSignature, summary: "R5: Meta data deletion (form field signed_request); answers {url, confirmation_code}, the same code on replay. Refusals are recorded.", body: &[], query: &[], success: 200 },
    RouteDoc { method: "get", path: "/deletion-status/{code}", access: Access::Public, summary: "Human-readable status of a Meta deletion request (HTML; JSON with Accept: application/json).", body: &[], query: &[], success: 200 },
];

fn roles_text(access: Access) -> String {
    match access {
        Access::Public => "Public, no token.".to_owned(),
        Access::MetaSignature => "No bearer token: Meta's signed_request is verified (HMAC-SHA256, constant time, algorithm and issued_at checked).".to_owned(),
        Access::Roles(roles) => format!(
            "Roles: {}.",
            roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// The document.
pub fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(route.query.iter().map(|(name, required, description)| {
            json!({ "name": name, "in": "query", "required": required, "description": description, "schema": { "type": "string" } })
        }));
        if route.method == "post" && matches!(route.access, Access::Roles(_)) {
            parameters.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false, "description": "A replay of the same command with the same key answers like the first call and stores nothing new; the same key with another command is refused (422, field Idempotency-Key). A claim without task_id is not repeatable: a retry leases the next task.", "schema": { "type": "string", "maxLength": 200 } }));
        }
        let mut responses = Map::new();
        responses.insert(
            route.success.to_string(),
            json!({ "description": "Success." }),
        );
        if route.path == "/v1/tasks/claim" {
            responses.insert(
                "204".into(),
                json!({ "description": "No task is claimable now." }),
            );
        }
        match route.access {
            Access::Roles(_) => {
                responses.insert(
                    "401".into(),
                    problem("No, unknown or revoked bearer token."),
                );
                responses.insert(
                    "403".into(),
                    problem(
                        "The token's role may not call this route, or a rule reserves it (R1, R9).",
                    ),
                );
            }
            Access::MetaSignature => {
                responses.insert("400".into(), problem("Malformed, badly signed, stale or wrong-algorithm signed_request (recorded)."));
                responses.insert("503".into(), problem("LETHE_META_APP_SECRET is not set."));
            }
            Access::Public => {}
        }
        if route.method != "get" {
            responses.insert(
                "400".into(),
                problem("The body is not valid JSON (or form)."),
            );
            responses.insert(
                "409".into(),
                problem("The command conflicts with the ledger's state."),
            );
            responses.insert("413".into(), problem("The body is over 64 KiB."));
            responses.insert("415".into(), problem("Wrong Content-Type."));
        }
        responses.insert(
            "404".into(),
            problem("No such request, hold, task or subject."),
        );
        responses.insert(
            "422".into(),
            problem("A field is invalid; `field` names it."),
        );
        responses.insert("503".into(), problem("The store is unavailable; retry."));
        let mut operation = json!({
            "summary": route.summary,
            "description": roles_text(route.access),
            "parameters": parameters,
            "responses": responses,
        });
        if let Access::Roles(_) = route.access {
            operation["security"] = json!([{ "bearer": [] }]);
        } else {
            operation["security"] = json!([]);
        }
        if !route.body.is_empty() {
            let properties: Map<String, Value> = route
                .body
                .iter()
                .map(|(name, _, description)| {
                    let schema = if *name == "references" {
                        json!({ "type": "array", "items": { "type": "string" }, "description": description })
                    } else if *name == "lease_seconds" {
                        json!({ "type": "integer", "minimum": 1, "maximum": 3600, "description": description })
                    } else {
                        json!({ "type": "string", "description": description })
                    };
                    ((*name).to_owned(), schema)
                })
                .collect();
            let required: Vec<&str> = route.body.iter().filter(|f| f.1).map(|f| f.0).collect();
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": properties, "required": required,
                } } }
            });
        } else if matches!(route.access, Access::MetaSignature) {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/x-www-form-urlencoded": { "schema": {
                    "type": "object", "required": ["signed_request"],
                    "properties": { "signed_request": { "type": "string", "description": "base64url(HMAC-SHA256 signature) . base64url(JSON payload)" } }
                } } }
            });
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[route.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Lethe",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An event-sourced deletion ledger. Roles: service (product services: commands and task queue), legal (holds, and every read), auditor (read only), admin (every command and read except holds, which only legal places and lifts). Errors are application/problem+json. Bodies are at most 64 KiB. Times are UTC RFC 3339; subjects are written KIND:ID.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "A token from `lethe token create`." } },
            "schemas": { "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" },
                    "status": { "type": "integer" }, "detail": { "type": "string" },
                    "field": { "type": "string", "description": "The invalid field (422)." }
                }
            } }
        }
    })
}

pub async fn document() -> Response {
    Json(build()).into_response()
}
