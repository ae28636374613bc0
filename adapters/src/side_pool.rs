//! A small connection pool to the store's database for the tables beside
//! the log (tokens, keys), on either backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

/// Connections each side pool keeps at most: these tables see little load.
const POOL_CONNECTIONS_MAX: u32 = 2;
/// How long a SQLite statement waits for the writer's lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum SidePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The file of a `sqlite://PATH` or `sqlite:PATH` URL.
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

/// Connects to the database of the store at `url` (opened before: the
/// store creates the file and applies the migrations). `sqlite` adjusts
/// the SQLite options, e.g. with a pragma.
pub(crate) async fn connect(
    url: &str,
    sqlite: impl FnOnce(SqliteConnectOptions) -> SqliteConnectOptions,
) -> Result<SidePool, sqlx::Error> {
    Ok(if let Some(path) = sqlite_path(url) {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT);
        SidePool::Sqlite(
            crate::pools::without_reaper::<sqlx::Sqlite>()
                .max_connections(POOL_CONNECTIONS_MAX)
                .connect_with(sqlite(options))
                .await?,
        )
    } else {
        SidePool::Postgres(
            crate::pools::without_reaper::<sqlx::Postgres>()
                .max_connections(POOL_CONNECTIONS_MAX)
                .connect_with(PgConnectOptions::from_str(url)?)
                .await?,
        )
    })
}
