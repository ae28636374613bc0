//! A fresh PostgreSQL database per test, and the gate that decides whether
//! the PostgreSQL suites run. Shared by every test binary that needs one
//! (included with `#[path]`, since test binaries share no crate).
#![allow(dead_code)]

use sqlx::Connection;
use uuid::Uuid;

/// The PostgreSQL server to test against, if any. With `CI=true` a missing
/// `DATABASE_URL` fails the test: CI must never skip this suite silently.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "CI=true but DATABASE_URL is unset: the PostgreSQL suite must run in CI \
                     (use `make test`, which starts a throwaway PostgreSQL)"
                );
            }
            eprintln!(
                "\n#############################################################\n\
                 PostgreSQL suite SKIPPED: DATABASE_URL unset (run `make test`)\n\
                 #############################################################\n"
            );
            None
        }
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A database made for one test, dropped by [`FreshDatabase::drop_now`].
#[derive(Debug)]
pub struct FreshDatabase {
    pub admin_url: String,
    pub name: String,
    /// The URL of the fresh database itself.
    pub url: String,
}

impl FreshDatabase {
    /// Creates `PREFIX_<uuid>` on the server of `DATABASE_URL`; `None` when
    /// the PostgreSQL suite is skipped.
    pub async fn create(prefix: &str) -> Option<Self> {
        let admin_url = postgres_url()?;
        let name = format!("{prefix}_{}", Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.expect("close admin connection");
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    /// Drops the database. FORCE ends connections that a store's writer
    /// still holds (it closes on its own only once its task notices).
    pub async fn drop_now(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
        }
    }
}
