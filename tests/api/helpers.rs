//! `spawn_app()`: the whole API over a fresh database, with a token per
//! role and a clock that the test moves. Most calls go through
//! `tower::ServiceExt::oneshot` (no socket); `serve()` also binds port 0
//! for the tests that want a real connection.

use std::sync::Arc;

use adapters::auth::{ApiRole, Tokens};
use adapters::http::{app, AppState};
use adapters::keys::SqlKeyTable;
use adapters::meta::{self, MetaConfig};
use adapters::readmodel::ReadModels;
use adapters::store::{self, Store};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use commands::clock::ManualClock;
use commands::log::{EventStore, RecordedEvent};
use commands::{Ledger, MasterKey, Vault};
use domain::deadline::PolicyTable;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

#[path = "../../adapters/tests/support/fresh_db.rs"]
mod fresh_db;
use fresh_db::FreshDatabase;

/// The Meta app secret of every test app.
pub const META_SECRET: &[u8] = b"test-app-secret";
pub const PUBLIC_URL: &str = "https://lethe.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// An answer, with the body as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

pub struct TestApp {
    pub router: Router,
    /// The database, for tests that open it again or read its bytes.
    pub url: String,
    pub master: MasterKey,
    pub store: Arc<Store>,
    pub ledger: Ledger,
    pub clock: Arc<ManualClock>,
    tokens: Vec<(ApiRole, String)>,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<FreshDatabase>,
}

/// A fresh app, or `None` when the PostgreSQL suite is skipped.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Some(MetaConfig::new(META_SECRET, 3_600))).await
}

pub async fn spawn_app_with(backend: Backend, meta: Option<MetaConfig>) -> Option<TestApp> {
    let (url, dir, postgres) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
            (url, Some(dir), None)
        }
        Backend::Postgres => {
            let fresh = FreshDatabase::create("lethe_api").await?;
            (fresh.url.clone(), None, Some(fresh))
        }
    };
    let store = Arc::new(store::open(&url).await.expect("open the store"));
    let tokens = Tokens::connect(&url).await.expect("token table");
    let mut issued = Vec::new();
    for role in ApiRole::ALL {
        let token = tokens
            .create(&format!("{role}-test"), role)
            .await
            .expect("create token");
        issued.push((role, token));
    }
    let clock = Arc::new(ManualClock::new(start()));
    let master = MasterKey::generate();
    let key_table = SqlKeyTable::connect(&url).await.expect("key table");
    let vault = Vault::open(Arc::new(key_table), master.clone())
        .await
        .expect("open the vault");
    let ledger = Ledger::new(
        store.clone(),
        clock.clone(),
        PolicyTable::default(),
        Arc::new(vault),
    );
    let read_models = ReadModels::open(&url).await.expect("open the read models");
    let state = AppState::new(ledger.clone(), read_models, tokens, meta, PUBLIC_URL);
    Some(TestApp {
        router: app(state),
        url,
        master,
        store,
        ledger,
        clock,
        tokens: issued,
        _dir: dir,
        postgres,
    })
}

impl TestApp {
    pub fn token(&self, role: ApiRole) -> &str {
        &self
            .tokens
            .iter()
            .find(|(r, _)| *r == role)
            .expect("a token per role")
            .1
    }

    /// Any request; `token` and `body` optional.
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).expect("request"))
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn post(&self, role: ApiRole, uri: &str, body: Value) -> Answer {
        self.post_keyed(role, uri, body, None).await
    }

    /// A JSON post as `role`, with an `Idempotency-Key` header when `key`
    /// is given.
    pub async fn post_keyed(
        &self,
        role: ApiRole,
        uri: &str,
        body: Value,
        key: Option<&str>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.raw(
            Method::POST,
            uri,
            Some(self.token(role)),
            Some("application/json"),
            body.to_string().into_bytes(),
            &headers,
        )
        .await
    }

    pub async fn get(&self, role: ApiRole, uri: &str) -> Answer {
        self.raw(
            Method::GET,
            uri,
            Some(self.token(role)),
            None,
            Vec::new(),
            &[],
        )
        .await
    }

    /// The row of `subject` in the `/v1/resources` page at `uri`, as an
    /// auditor reads it (the page must answer 200), or `None`.
    /// The summaries of the audit entries `GET /v1/audit?{query}` answers
    /// an auditor, in log order.
    pub async fn audit_summaries(&self, query: &str) -> Vec<String> {
        let audit = self
            .get(ApiRole::Auditor, &format!("/v1/audit?{query}"))
            .await;
        expect(&audit, 200);
        audit.json["events"]
            .as_array()
            .expect("audit entries")
            .iter()
            .map(|e| e["summary"].as_str().expect("a summary").to_owned())
            .collect()
    }

    pub async fn resource_row(&self, uri: &str, subject: &str) -> Option<Value> {
        let page = self.get(ApiRole::Auditor, uri).await;
        expect(&page, 200);
        page.json["resources"]
            .as_array()
            .expect("a resources page")
            .iter()
            .find(|row| row["subject"] == subject)
            .cloned()
    }

    pub async fn delete(&self, role: ApiRole, uri: &str) -> Answer {
        self.raw(
            Method::DELETE,
            uri,
            Some(self.token(role)),
            None,
            Vec::new(),
            &[],
        )
        .await
    }

    /// A Meta callback with `signed_request` as the form field.
    pub async fn meta(&self, endpoint: &str, signed_request: &str) -> Answer {
        let body = format!("signed_request={}", signed_request.replace('=', "%3D"));
        self.raw(
            Method::POST,
            endpoint,
            None,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
            &[],
        )
        .await
    }

    /// A signed_request for `user_id`, issued now.
    pub fn signed_request(&self, user_id: &str) -> String {
        meta::sign(
            META_SECRET,
            &json!({
                "algorithm": "HMAC-SHA256",
                "issued_at": self.clock_now().timestamp(),
                "user_id": user_id,
            }),
        )
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use commands::Clock;
        self.clock.now()
    }

    pub async fn head(&self) -> u64 {
        self.store.head().await.expect("head")
    }

    pub async fn events(&self) -> Vec<RecordedEvent> {
        self.store.read_all(0, 10_000).await.expect("read")
    }

    /// Appends `event` to `stream` straight to the log, past the ledger
    /// and whatever it does after an append: the state a process leaves
    /// when it stops right after storing one event of a command.
    pub async fn append_directly(
        &self,
        stream: commands::log::StreamId,
        event: domain::events::LedgerEvent,
    ) {
        use commands::log::{AppendRequest, ExpectedVersion, NewEvent, Tag};
        self.store
            .append(AppendRequest {
                stream,
                expected: ExpectedVersion::Any,
                condition: None,
                idempotency_key: None,
                events: vec![NewEvent {
                    event_id: uuid::Uuid::now_v7(),
                    event_type: event.event_type().to_owned(),
                    schema_version: 1,
                    occurred_at: self.clock_now(),
                    payload: serde_json::to_value(&event).expect("events serialize"),
                    metadata: Default::default(),
                    tags: event.tags().into_iter().map(Tag::new).collect(),
                }],
            })
            .await
            .expect("append directly");
    }

    /// The first stored event of type `event_type`, decoded.
    pub async fn first_event(&self, event_type: &str) -> domain::events::LedgerEvent {
        let recorded = self
            .events()
            .await
            .into_iter()
            .find(|e| e.event_type == event_type)
            .unwrap_or_else(|| panic!("no {event_type} in the log"));
        domain::events::LedgerEvent::decode(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        )
        .expect("decode")
    }

    /// Every byte the database holds: the SQLite file with its WAL and
    /// shared memory, or the output of `pg_dump` (schema and data).
    pub async fn stored_bytes(&self) -> Vec<u8> {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm", "-journal"] {
                if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(more);
                }
            }
            assert!(!bytes.is_empty(), "no database file at {path}");
            bytes
        } else {
            let output = std::process::Command::new("pg_dump")
                .arg("--dbname")
                .arg(&self.url)
                .output()
                .expect("run pg_dump");
            assert!(
                output.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            output.stdout
        }
    }

    /// Runs one SQL statement on the database (for tamper tests).
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        use sqlx::Connection as _;
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("execute")
                .rows_affected()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("execute")
                .rows_affected()
        }
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn finish(self) {
        let Self {
            store,
            ledger,
            router,
            postgres,
            ..
        } = self;
        drop(router);
        drop(ledger);
        store.close().await;
        drop(store);
        if let Some(fresh) = postgres {
            fresh.drop_now().await;
        }
    }
}

/// Asserts the status, showing the body when it differs.
#[track_caller]
pub fn expect(answer: &Answer, status: u16) {
    assert_eq!(
        answer.status.as_u16(),
        status,
        "expected {status}, got {}: {}",
        answer.status,
        answer.text
    );
}

/// Claims every claimable task and completes it; returns how many.
pub async fn work_all(app: &TestApp) -> usize {
    let mut done = 0;
    loop {
        let claimed = app
            .post(
                ApiRole::Service,
                "/v1/tasks/claim",
                json!({ "worker": "worker-1" }),
            )
            .await;
        if claimed.status.as_u16() == 204 {
            return done;
        }
        expect(&claimed, 200);
        let task = claimed.json["task_id"].as_str().unwrap().to_owned();
        expect(
            &app.post(
                ApiRole::Service,
                &format!("/v1/tasks/{task}/complete"),
                json!({ "worker": "worker-1" }),
            )
            .await,
            200,
        );
        done += 1;
    }
}

/// A workspace `ws` owned by `acct-owner`, with `acct-admin` (admin) and
/// `acct-member` (member), a project, a file and its derived data.
pub async fn seed_workspace(app: &TestApp, ws: &str) {
    use ApiRole::Service;
    expect(
        &app.post(
            Service,
            "/v1/workspaces",
            json!({ "workspace_id": ws, "owner_account_id": "acct-owner" }),
        )
        .await,
        201,
    );
    for (account, role) in [("acct-admin", "admin"), ("acct-member", "member")] {
        expect(
            &app.post(
                Service,
                &format!("/v1/workspaces/{ws}/members"),
                json!({ "account_id": account, "role": role, "added_by": "account:acct-owner" }),
            )
            .await,
            201,
        );
    }
    let resources = [
        json!({ "resource": format!("project:{ws}-p"), "workspace_id": ws }),
        json!({ "resource": format!("file:{ws}-f"), "workspace_id": ws, "parent": format!("project:{ws}-p"), "created_by": "acct-member" }),
        json!({ "resource": format!("transcript:{ws}-f-t"), "workspace_id": ws, "derived_from": format!("file:{ws}-f") }),
        json!({ "resource": format!("thumbnail:{ws}-f-th"), "workspace_id": ws, "derived_from": format!("file:{ws}-f") }),
        json!({ "resource": format!("embedding:{ws}-f-e"), "workspace_id": ws, "derived_from": format!("file:{ws}-f") }),
    ];
    for resource in resources {
        expect(&app.post(Service, "/v1/resources", resource).await, 201);
    }
}

/// Runs each named story on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_every_backend {
    ($($story:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite)
                        .await
                        .expect("SQLite always runs");
                    super::$story(&app).await;
                    app.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                        return;
                    };
                    super::$story(&app).await;
                    app.finish().await;
                }
            )+
        }
    };
}
