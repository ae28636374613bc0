//! The little that differs between SQLite and PostgreSQL, behind one
//! surface: SQL is written once with `$1`-style placeholders (both drivers
//! accept them), arguments are [`Val`]s, and rows are read through
//! [`Row`]. Every value the read models store is an integer (positions,
//! counts, times as microseconds since the epoch) or text, so both
//! backends keep and return it unchanged and dumps compare byte for byte.

use chrono::{DateTime, Utc};
use projections::ReadModelError;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, Row as _, SqliteConnection};

/// Which database the read models live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection of either backend (a pooled one, or a transaction's).
pub(crate) enum Exec<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// One bound argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}
impl From<u64> for Val {
    fn from(v: u64) -> Self {
        Val::Int(Some(int(v)))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(Some(i64::from(v)))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<DateTime<Utc>> for Val {
    fn from(v: DateTime<Utc>) -> Self {
        Val::Int(Some(v.timestamp_micros()))
    }
}
impl From<Option<DateTime<Utc>>> for Val {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Val::Int(v.map(|v| v.timestamp_micros()))
    }
}

/// Positions and counts are u64 in Rust and BIGINT in SQL; values past
/// i64 never occur, and saturate rather than wrap.
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A row of either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

fn column_error(col: &str, error: &sqlx::Error) -> ReadModelError {
    ReadModelError::Corrupt(format!("column {col}: {error}"))
}

impl Row {
    pub fn int(&self, col: &str) -> Result<i64, ReadModelError> {
        match self {
            Row::Sqlite(r) => r.try_get(col),
            Row::Postgres(r) => r.try_get(col),
        }
        .map_err(|e| column_error(col, &e))
    }

    pub fn opt_int(&self, col: &str) -> Result<Option<i64>, ReadModelError> {
        match self {
            Row::Sqlite(r) => r.try_get(col),
            Row::Postgres(r) => r.try_get(col),
        }
        .map_err(|e| column_error(col, &e))
    }

    pub fn text(&self, col: &str) -> Result<String, ReadModelError> {
        match self {
            Row::Sqlite(r) => r.try_get(col),
            Row::Postgres(r) => r.try_get(col),
        }
        .map_err(|e| column_error(col, &e))
    }

    pub fn opt_text(&self, col: &str) -> Result<Option<String>, ReadModelError> {
        match self {
            Row::Sqlite(r) => r.try_get(col),
            Row::Postgres(r) => r.try_get(col),
        }
        .map_err(|e| column_error(col, &e))
    }

    pub fn pos(&self, col: &str) -> Result<u64, ReadModelError> {
        let value = self.int(col)?;
        u64::try_from(value)
            .map_err(|_| ReadModelError::Corrupt(format!("column {col}: negative position")))
    }

    pub fn opt_pos(&self, col: &str) -> Result<Option<u64>, ReadModelError> {
        self.opt_int(col)?
            .map(|value| {
                u64::try_from(value).map_err(|_| {
                    ReadModelError::Corrupt(format!("column {col}: negative position"))
                })
            })
            .transpose()
    }

    pub fn time(&self, col: &str) -> Result<DateTime<Utc>, ReadModelError> {
        micros(col, self.int(col)?)
    }

    pub fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, ReadModelError> {
        self.opt_int(col)?.map(|v| micros(col, v)).transpose()
    }

    pub fn bool(&self, col: &str) -> Result<bool, ReadModelError> {
        Ok(self.int(col)? != 0)
    }

    /// A JSON array of strings stored as text.
    pub fn list(&self, col: &str) -> Result<Vec<String>, ReadModelError> {
        let raw = self.text(col)?;
        serde_json::from_str(&raw)
            .map_err(|e| ReadModelError::Corrupt(format!("column {col}: {e}")))
    }

    pub fn uuid(&self, col: &str) -> Result<uuid::Uuid, ReadModelError> {
        let raw = self.text(col)?;
        uuid::Uuid::parse_str(&raw)
            .map_err(|e| ReadModelError::Corrupt(format!("column {col}: {e}")))
    }

    pub fn opt_uuid(&self, col: &str) -> Result<Option<uuid::Uuid>, ReadModelError> {
        self.opt_text(col)?
            .map(|raw| {
                uuid::Uuid::parse_str(&raw)
                    .map_err(|e| ReadModelError::Corrupt(format!("column {col}: {e}")))
            })
            .transpose()
    }
}

fn micros(col: &str, value: i64) -> Result<DateTime<Utc>, ReadModelError> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| ReadModelError::Corrupt(format!("column {col}: time out of range")))
}

/// A list stored as a JSON array of strings.
pub(crate) fn list(items: &[String]) -> Val {
    Val::Text(Some(
        serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned()),
    ))
}

/// Maps a database error: rows that do not decode are corruption, the
/// rest (I/O, pool, locks, server) makes the read models unavailable.
pub(crate) fn db_error(error: sqlx::Error) -> ReadModelError {
    match error {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => ReadModelError::Corrupt(error.to_string()),
        other => ReadModelError::Unavailable(other.to_string()),
    }
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Val::Int(v) => query.bind(v),
                Val::Text(v) => query.bind(v),
            };
        }
        query
    }};
}

impl Exec<'_> {
    /// The same connection, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> Exec<'_> {
        match self {
            Exec::Sqlite(conn) => Exec::Sqlite(conn),
            Exec::Postgres(conn) => Exec::Postgres(conn),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Exec::Sqlite(_) => Backend::Sqlite,
            Exec::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, ReadModelError> {
        match self {
            Exec::Sqlite(conn) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **conn)
                .await
                .map(|r| r.rows_affected()),
            Exec::Postgres(conn) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **conn)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(db_error)
    }

    /// Runs a statement that takes no arguments, without preparing it
    /// (DDL, transaction control).
    pub async fn raw(&mut self, sql: &str) -> Result<(), ReadModelError> {
        use sqlx::Executor as _;
        match self {
            Exec::Sqlite(conn) => conn.execute(sql).await.map(|_| ()),
            Exec::Postgres(conn) => conn.execute(sql).await.map(|_| ()),
        }
        .map_err(db_error)
    }

    pub async fn fetch_all(
        &mut self,
        sql: &str,
        args: Vec<Val>,
    ) -> Result<Vec<Row>, ReadModelError> {
        match self {
            Exec::Sqlite(conn) => bind_all!(sqlx::query(sql), args)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
            Exec::Postgres(conn) => bind_all!(sqlx::query(sql), args)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.into_iter().map(Row::Postgres).collect()),
        }
        .map_err(db_error)
    }

    pub async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Vec<Val>,
    ) -> Result<Option<Row>, ReadModelError> {
        match self {
            Exec::Sqlite(conn) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(Row::Sqlite)),
            Exec::Postgres(conn) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(Row::Postgres)),
        }
        .map_err(db_error)
    }
}

/// `$first, $first+1, ...` placeholders for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for `count` values bound in order, starting with the
/// `first`th. SQLite gets anonymous `?`s: it looks each numbered or named
/// placeholder up in a list, which makes a statement of thousands of
/// them quadratic to prepare.
pub(crate) fn ordered_placeholders(backend: Backend, first: usize, count: usize) -> String {
    match backend {
        Backend::Sqlite => vec!["?"; count].join(", "),
        Backend::Postgres => placeholders(first, count),
    }
}

/// `($1, $2), ($3, $4), ...` for `rows` rows of `columns` values (`?`s
/// for SQLite, see [`ordered_placeholders`]).
pub(crate) fn value_rows(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            format!(
                "({})",
                ordered_placeholders(backend, r * columns + 1, columns)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
