//! Bearer tokens of the HTTP API and the principals they stand for.
//!
//! A token is `lethe_` followed by 32 random bytes in base64url (no
//! padding). Only its SHA-256 is stored, in the `tokens` table next to the
//! event log (migration 0200); the token itself is shown once, when it is
//! created. A lookup hashes the presented token and finds the row by hash,
//! so no comparison of secrets happens in application code.
//!
//! **Invariant:** a revoked token never authenticates again; a name is
//! never reused, so the actor recorded in old events keeps meaning one
//! principal.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::side_pool::{self, SidePool};

/// The readable prefix of every token, so that a leaked one is easy to
/// recognise in logs and by secret scanners.
pub const TOKEN_PREFIX: &str = "lethe_";
/// Random bytes in a token.
pub const TOKEN_RANDOM_BYTES: usize = 32;
/// Longest token name, in characters.
pub const TOKEN_NAME_CHARS_MAX: usize = 64;
/// Longest bearer value looked up at all, in bytes; longer ones are
/// refused without touching the database.
pub const TOKEN_BYTES_MAX: usize = 128;

/// What a principal may do. The HTTP layer decides which role may call
/// which route (see `http::routes` and the OpenAPI document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Product services: register resources, issue commands, pull tasks.
    Service,
    /// Legal and trust & safety: place and lift holds; read.
    Legal,
    /// Compliance auditors: read only.
    Auditor,
    /// Operators: every command and every read, except holds.
    Admin,
}

impl ApiRole {
    pub const ALL: [ApiRole; 4] = [
        ApiRole::Service,
        ApiRole::Legal,
        ApiRole::Auditor,
        ApiRole::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Service => "service",
            ApiRole::Legal => "legal",
            ApiRole::Auditor => "auditor",
            ApiRole::Admin => "admin",
        }
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiRole {
    type Err = AuthError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "service" => Ok(ApiRole::Service),
            "legal" => Ok(ApiRole::Legal),
            "auditor" => Ok(ApiRole::Auditor),
            "admin" => Ok(ApiRole::Admin),
            other => Err(AuthError::InvalidRole(other.to_owned())),
        }
    }
}

/// Who is calling: the token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: ApiRole,
}

impl Principal {
    /// The actor recorded in the events this principal causes, e.g.
    /// `service:file-manager`.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }
}

/// A token as `lethe token list` shows it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: ApiRole,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The role is not one of service, legal, auditor, admin. Pick one.
    #[error("unknown role {0:?}; expected service, legal, auditor or admin")]
    InvalidRole(String),
    /// The name is empty, too long, or has characters other than letters,
    /// digits and `. _ -`. Choose another name.
    #[error(
        "token names are 1 to {TOKEN_NAME_CHARS_MAX} letters, digits, '.', '_' or '-'; got {0:?}"
    )]
    InvalidName(String),
    /// A token with this name exists (or existed and was revoked: names
    /// are never reused). Choose another name.
    #[error("a token named {0:?} exists already (names are never reused)")]
    NameTaken(String),
    /// No active token has this name. Check `lethe token list`.
    #[error("no active token is named {0:?}")]
    UnknownName(String),
    /// The database could not be reached or failed. Retry later; the HTTP
    /// API answers 503 meanwhile.
    #[error("token store unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(error: impl fmt::Display) -> AuthError {
    AuthError::Unavailable(error.to_string())
}

/// `hex(SHA-256(token))`: what the table keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token.
pub fn generate_token() -> String {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn check_name(name: &str) -> Result<(), AuthError> {
    let valid = !name.is_empty()
        && name.chars().count() <= TOKEN_NAME_CHARS_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(AuthError::InvalidName(name.to_owned()))
    }
}

/// The token table, next to the event log.
#[derive(Debug, Clone)]
pub struct Tokens {
    pool: SidePool,
}

impl Tokens {
    /// Connects to the database of the store at `url`. The store must have
    /// been opened once before ([`crate::store::open`] creates the file
    /// and applies the migrations, this one included).
    pub async fn connect(url: &str) -> Result<Self, AuthError> {
        let pool = side_pool::connect(url, |o| o).await.map_err(unavailable)?;
        Ok(Self { pool })
    }

    /// Creates a token and returns it. This is the only time the token
    /// is available in clear.
    pub async fn create(&self, name: &str, role: ApiRole) -> Result<String, AuthError> {
        check_name(name)?;
        let token = generate_token();
        let hash = hash_token(&token);
        let now = Utc::now();
        let result = match &self.pool {
            SidePool::Sqlite(pool) => sqlx::query(
                "INSERT INTO tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(&hash)
            .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .execute(pool)
            .await
            .map(|_| ()),
            SidePool::Postgres(pool) => sqlx::query(
                "INSERT INTO tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(&hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(token),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Err(AuthError::NameTaken(name.to_owned()))
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Every token, active or revoked, by name.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, AuthError> {
        const SQL: &str = "SELECT name, role, created_at, revoked_at FROM tokens ORDER BY name";
        match &self.pool {
            SidePool::Sqlite(pool) => {
                let rows = sqlx::query(SQL)
                    .fetch_all(pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|row| {
                        let created: String = row.try_get(2).map_err(unavailable)?;
                        let revoked: Option<String> = row.try_get(3).map_err(unavailable)?;
                        Ok(TokenInfo {
                            name: row.try_get(0).map_err(unavailable)?,
                            role: row.try_get::<String, _>(1).map_err(unavailable)?.parse()?,
                            created_at: parse_time(&created)?,
                            revoked_at: revoked.as_deref().map(parse_time).transpose()?,
                        })
                    })
                    .collect()
            }
            SidePool::Postgres(pool) => {
                let rows = sqlx::query(SQL)
                    .fetch_all(pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|row| {
                        Ok(TokenInfo {
                            name: row.try_get(0).map_err(unavailable)?,
                            role: row.try_get::<String, _>(1).map_err(unavailable)?.parse()?,
                            created_at: row.try_get(2).map_err(unavailable)?,
                            revoked_at: row.try_get(3).map_err(unavailable)?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Revokes the active token named `name`; it stops working at once.
    pub async fn revoke(&self, name: &str) -> Result<(), AuthError> {
        let now = Utc::now();
        let affected = match &self.pool {
            SidePool::Sqlite(pool) => sqlx::query(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            )
            .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .bind(name)
            .execute(pool)
            .await
            .map_err(unavailable)?
            .rows_affected(),
            SidePool::Postgres(pool) => sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(name)
            .execute(pool)
            .await
            .map_err(unavailable)?
            .rows_affected(),
        };
        if affected == 0 {
            return Err(AuthError::UnknownName(name.to_owned()));
        }
        Ok(())
    }

    /// The principal of an active token, or `None` for an unknown,
    /// revoked or malformed one.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > TOKEN_BYTES_MAX {
            return Ok(None);
        }
        let hash = hash_token(token);
        let row = match &self.pool {
            SidePool::Sqlite(pool) => sqlx::query(
                "SELECT name, role FROM tokens WHERE token_hash = ? AND revoked_at IS NULL",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?
            .map(|row| (row.try_get::<String, _>(0), row.try_get::<String, _>(1))),
            SidePool::Postgres(pool) => sqlx::query(
                "SELECT name, role FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?
            .map(|row| (row.try_get::<String, _>(0), row.try_get::<String, _>(1))),
        };
        let Some((name, role)) = row else {
            return Ok(None);
        };
        Ok(Some(Principal {
            name: name.map_err(unavailable)?,
            role: role.map_err(unavailable)?.parse()?,
        }))
    }

    /// How many tokens were ever created; `make run` creates the first
    /// ones when this is 0.
    pub async fn count(&self) -> Result<u64, AuthError> {
        let count: i64 = match &self.pool {
            SidePool::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
                .fetch_one(pool)
                .await
                .map_err(unavailable)?,
            SidePool::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
                .fetch_one(pool)
                .await
                .map_err(unavailable)?,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.pool {
            SidePool::Sqlite(pool) => pool.close().await,
            SidePool::Postgres(pool) => pool.close().await,
        }
    }
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, AuthError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| AuthError::Unavailable(format!("bad time {raw:?} in tokens: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> (tempfile::TempDir, Tokens) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/lethe.db", dir.path().display());
        let store = crate::store::open(&url).await.unwrap();
        store.close().await;
        (dir, Tokens::connect(&url).await.unwrap())
    }

    #[tokio::test]
    async fn a_created_token_authenticates_until_revoked() {
        let (_dir, tokens) = fresh().await;
        let token = tokens
            .create("file-manager", ApiRole::Service)
            .await
            .unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
        let principal = tokens.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(principal.actor(), "service:file-manager");
        assert_eq!(tokens.authenticate("lethe_nope").await.unwrap(), None);
        tokens.revoke("file-manager").await.unwrap();
        assert_eq!(tokens.authenticate(&token).await.unwrap(), None);
        let listed = tokens.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
        assert!(matches!(
            tokens.create("file-manager", ApiRole::Admin).await,
            Err(AuthError::NameTaken(_))
        ));
        assert!(matches!(
            tokens.revoke("file-manager").await,
            Err(AuthError::UnknownName(_))
        ));
    }

    #[tokio::test]
    async fn only_the_hash_is_stored() {
        let (dir, tokens) = fresh().await;
        let token = tokens.create("auditor-1", ApiRole::Auditor).await.unwrap();
        tokens.close().await;
        let bytes = std::fs::read(dir.path().join("lethe.db")).unwrap();
        let wal = std::fs::read(dir.path().join("lethe.db-wal")).unwrap_or_default();
        for haystack in [bytes, wal] {
            assert!(!haystack
                .windows(token.len())
                .any(|window| window == token.as_bytes()));
        }
    }

    #[test]
    fn bad_names_and_roles_are_refused() {
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("legal-team.1").is_ok());
        assert!("root".parse::<ApiRole>().is_err());
    }
}
