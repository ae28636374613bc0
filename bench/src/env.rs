//! Where each measurement runs: a fresh SQLite file in a temporary
//! directory, or a fresh database on the PostgreSQL server named by
//! `DATABASE_URL` (a throwaway cluster under `scripts/with-postgres`).

use std::path::PathBuf;

use anyhow::Context as _;
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug)]
pub struct Env {
    dir: tempfile::TempDir,
    admin_url: Option<String>,
}

impl Env {
    pub fn new(admin_url: Option<String>) -> anyhow::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir().context("creating a temporary directory")?,
            admin_url,
        })
    }

    pub fn has_postgres(&self) -> bool {
        self.admin_url.is_some()
    }

    pub fn admin_url(&self) -> Option<&str> {
        self.admin_url.as_deref()
    }

    /// `DATABASE_URL`, which PostgreSQL measurements need.
    fn required_admin_url(&self) -> anyhow::Result<&str> {
        self.admin_url
            .as_deref()
            .context("PostgreSQL measurements need DATABASE_URL")
    }

    /// A connection to the server's database named by `DATABASE_URL`.
    async fn admin_connection(&self) -> anyhow::Result<PgConnection> {
        PgConnection::connect(self.required_admin_url()?)
            .await
            .context("connecting to DATABASE_URL")
    }

    /// Fails, saying why, unless the PostgreSQL server accepts `needed`
    /// connections: the write side's measurements, taken in turns, hold
    /// all theirs open at once.
    pub async fn require_connections(&self, needed: u32) -> anyhow::Result<()> {
        let mut connection = self.admin_connection().await?;
        let max: String = sqlx::query_scalar("SHOW max_connections")
            .fetch_one(&mut connection)
            .await
            .context("reading max_connections")?;
        connection.close().await.ok();
        let max: u32 = max.parse().context("max_connections is not a number")?;
        anyhow::ensure!(
            max >= needed,
            "the PostgreSQL server takes {max} connections and the benchmark holds up to \
             {needed} at once: start it with max_connections={needed} or more \
             (`make bench` starts one with 400)"
        );
        Ok(())
    }

    pub fn sqlite_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// A URL to an empty database named `name` (dropped first if a
    /// previous run left it). On PostgreSQL the server then takes a
    /// checkpoint: a measurement starts with nothing of the ones before it
    /// left to flush. The write side's measurements, taken in turns, get
    /// their databases one after another before the first turn, so the
    /// last checkpoint precedes them all, and a checkpoint forced by one
    /// group's write volume lands in whichever slice is running; the
    /// command, HTTP and read-side measurements each start after their
    /// own.
    pub async fn fresh(&self, backend: Backend, name: &str) -> anyhow::Result<String> {
        match backend {
            Backend::Sqlite => {
                let path = self.sqlite_path(name);
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Ok(format!("sqlite://{}", path.display()))
            }
            Backend::Postgres => {
                let mut connection = self.admin_connection().await?;
                let database = format!("lethe_bench_{name}");
                // Two round trips: a multi-statement string would run as
                // one transaction, which DROP DATABASE refuses.
                for statement in [
                    format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
                    format!("CREATE DATABASE \"{database}\""),
                    "CHECKPOINT".to_owned(),
                ] {
                    sqlx::raw_sql(&statement)
                        .execute(&mut connection)
                        .await
                        .with_context(|| format!("preparing database {database}: {statement}"))?;
                }
                connection.close().await.ok();
                Ok(with_database(self.required_admin_url()?, &database))
            }
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    // The path starts at the first '/' after "scheme://authority".
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

/// Lets the database finish the work a bulk load leaves behind before
/// the log is read: on PostgreSQL, `VACUUM (ANALYZE)` (visibility, hint
/// bits and statistics, as autovacuum gives a log in service, and which
/// autovacuum would otherwise do during the next measurement) and a
/// checkpoint; on SQLite, a checkpoint that empties the write-ahead log.
pub async fn settle(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(url).await?;
        // SQLite answers a checkpoint it could not finish with busy = 1
        // in its row, not with an error.
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut connection)
            .await
            .context("checkpointing the SQLite log")?;
        connection.close().await.ok();
        if busy != 0 {
            eprintln!("  sqlite    the checkpoint after the load could not finish (busy)");
        }
    } else {
        let mut connection = PgConnection::connect(url).await?;
        for statement in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
            sqlx::raw_sql(statement)
                .execute(&mut connection)
                .await
                .with_context(|| format!("{statement} after the load"))?;
        }
        connection.close().await.ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u:p@localhost:5432/postgres", "x"),
            "postgres://u:p@localhost:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
