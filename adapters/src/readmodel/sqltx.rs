//! The SQL side of the projections' storage port: a unit of work for one
//! page of events. Rows read or written during a page stay in memory and
//! each changed row is written once, in multi-row statements, when the
//! page is written, so that a page of a thousand events costs a handful
//! of statements rather than thousands.
//!
//! On PostgreSQL a batch travels as one array per column
//! (`INSERT ... SELECT * FROM UNNEST($1::bigint[], $2::text[], ...)`): one
//! short statement, prepared once, whatever the number of rows, instead
//! of tens of thousands of placeholders to parse, plan and bind.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use projections::rows::{AuditEntry, HoldRow, ReadModelTx, RequestRow, ResourceRow, TaskRow};
use projections::ReadModelError;
use sqlx::PgConnection;

use super::codec;
use super::db::{db_error, value_rows, Exec, Row, Val};
use super::schema::{self, Kind, Table};
use super::{Conn, ReadModels};

/// Most bound values in one statement: under SQLite's 32,766 and
/// PostgreSQL's 65,535.
const STATEMENT_BINDS_MAX: usize = 30_000;
/// Most rows in one multi-row statement.
const STATEMENT_ROWS_MAX: usize = 1_000;
/// The row counts of multi-row statements below the largest. A batch is
/// cut into statements of the largest size, and what is left goes in one
/// statement of the smallest of these sizes that holds it, its unused
/// rows bound as NULL and filtered out (`WHERE column1 IS NOT NULL`: a
/// table's first column is never NULL). So the same few statement texts
/// come back page after page and the drivers' caches of prepared
/// statements hold them, and a page writes each table in one or a few
/// statements. Cutting the rest into exact sizes instead (up to three of
/// each size) took about 50 statements a page rather than 14 on SQLite,
/// and each costs a round trip to the connection's thread: the rebuild
/// was about 8% slower.
const STATEMENT_ROWS_LADDER: [usize; 5] = [256, 64, 16, 4, 1];

/// Most rows in one PostgreSQL statement of column arrays.
const ARRAY_ROWS_MAX: usize = 10_000;

/// The texts of the multi-row statements, made once per process: a
/// statement of a thousand rows is tens of kilobytes of placeholders, and
/// formatting it again for every page cost more than a tenth of a
/// rebuild. Bounded by the tables, their two suffixes, the statement
/// kinds and the few sizes of [`padded_sizes`].
static STATEMENTS: LazyLock<Mutex<HashMap<String, Arc<str>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The statement text known by `key`, made by `make` the first time.
fn statement(key: String, make: impl FnOnce() -> String) -> Arc<str> {
    let mut statements = match STATEMENTS.lock() {
        Ok(statements) => statements,
        // A panic while inserting leaves a usable map.
        Err(poisoned) => poisoned.into_inner(),
    };
    statements
        .entry(key)
        .or_insert_with(|| Arc::from(make()))
        .clone()
}

/// The row counts of the statements that carry `rows` rows, at most
/// `largest` each: as many of `largest` as fit, then one statement of the
/// smallest size in the ladder that holds the rest, its unused rows
/// bound as NULL.
fn padded_sizes(rows: usize, largest: usize) -> Vec<usize> {
    let largest = largest.max(1);
    let mut sizes = vec![largest; rows / largest];
    let left = rows % largest;
    if left > 0 {
        let fits = STATEMENT_ROWS_LADDER
            .iter()
            .rev()
            .copied()
            .find(|&size| size >= left && size < largest)
            .unwrap_or(largest);
        sizes.push(fits);
    }
    sizes
}

/// A row type with its table and, for some, a side table that indexes a
/// list column (a resource's scopes, a task's covering scopes, a
/// request's blocking holds).
trait Entity: Clone + Send + Sync + 'static {
    const TABLE: Table;
    /// (side table, its key column, its value column)
    const SET: Option<(Table, &'static str, &'static str)>;
    fn key(&self) -> &str;
    fn set(&self) -> &[String];
    fn vals(&self) -> Vec<Val>;
    fn from_row(row: &Row) -> Result<Self, ReadModelError>;
}

impl Entity for ResourceRow {
    const TABLE: Table = schema::RESOURCES;
    const SET: Option<(Table, &'static str, &'static str)> =
        Some((schema::RESOURCE_SCOPES, "subject", "scope"));
    fn key(&self) -> &str {
        &self.subject
    }
    fn set(&self) -> &[String] {
        &self.scopes
    }
    fn vals(&self) -> Vec<Val> {
        codec::resource_vals(self)
    }
    fn from_row(row: &Row) -> Result<Self, ReadModelError> {
        codec::resource_from(row)
    }
}

impl Entity for HoldRow {
    const TABLE: Table = schema::HOLDS;
    const SET: Option<(Table, &'static str, &'static str)> = None;
    fn key(&self) -> &str {
        &self.hold
    }
    fn set(&self) -> &[String] {
        &[]
    }
    fn vals(&self) -> Vec<Val> {
        codec::hold_vals(self)
    }
    fn from_row(row: &Row) -> Result<Self, ReadModelError> {
        codec::hold_from(row)
    }
}

impl Entity for RequestRow {
    const TABLE: Table = schema::REQUESTS;
    const SET: Option<(Table, &'static str, &'static str)> =
        Some((schema::REQUEST_HOLDS, "request", "hold"));
    fn key(&self) -> &str {
        &self.request
    }
    fn set(&self) -> &[String] {
        &self.blocked_by
    }
    fn vals(&self) -> Vec<Val> {
        codec::request_vals(self)
    }
    fn from_row(row: &Row) -> Result<Self, ReadModelError> {
        codec::request_from(row)
    }
}

impl Entity for TaskRow {
    const TABLE: Table = schema::TASKS;
    const SET: Option<(Table, &'static str, &'static str)> =
        Some((schema::TASK_SCOPES, "task", "scope"));
    fn key(&self) -> &str {
        &self.task
    }
    fn set(&self) -> &[String] {
        &self.covered_by
    }
    fn vals(&self) -> Vec<Val> {
        codec::task_vals(self)
    }
    fn from_row(row: &Row) -> Result<Self, ReadModelError> {
        codec::task_from(row)
    }
}

/// Most keys one [`Written`] remembers (one per rebuild group): 9 to 18
/// bytes each, so under 20 MB. A rebuild of more rows than this still
/// completes, asking the database for each row instead.
const WRITTEN_KEYS_MAX: usize = 1_000_000;

/// The keys of the rows a rebuild has written to its shadow tables, so
/// far. The rebuild made those tables empty and is the only writer of
/// them, so a key not among these is absent: no round trip to ask, and
/// the row is inserted rather than upserted. Kept as hashes of (table,
/// key), to bound the memory: a collision only makes an absent row look
/// present, which costs the question it would have cost anyway. Past
/// [`WRITTEN_KEYS_MAX`] keys it forgets them all and answers nothing.
#[derive(Debug)]
pub(crate) struct Written {
    hasher: RandomState,
    keys: HashSet<u64>,
    keys_max: usize,
    full: bool,
}

impl Default for Written {
    fn default() -> Self {
        Self::bounded(WRITTEN_KEYS_MAX)
    }
}

impl Written {
    fn bounded(keys_max: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            keys: HashSet::new(),
            keys_max,
            full: false,
        }
    }

    fn hash(&self, table: &Table, key: &str) -> u64 {
        self.hasher.hash_one((table.name, key))
    }

    /// Whether the row of `key` in `table` is surely not stored.
    fn absent(&self, table: &Table, key: &str) -> bool {
        !self.full && !self.keys.contains(&self.hash(table, key))
    }

    fn insert(&mut self, table: &Table, key: &str) {
        if self.full {
            return;
        }
        if self.keys.len() >= self.keys_max {
            self.full = true;
            self.keys = HashSet::new();
            return;
        }
        let hash = self.hash(table, key);
        self.keys.insert(hash);
    }
}

/// What the database holds under a cached key, as far as this page knows.
#[derive(Debug)]
enum Stored {
    /// Put without being read first.
    Unknown,
    /// Read, and not there: the row is new, so it is inserted (no
    /// conflict to check) and has no side rows to clear.
    Absent,
    /// Read, with the side table's values it had.
    Row(Vec<String>),
}

/// One cached row: what the database holds and what it should hold.
#[derive(Debug)]
struct Cached<T> {
    row: Option<T>,
    stored: Stored,
    dirty: bool,
}

#[derive(Debug)]
struct Cache<T> {
    rows: HashMap<String, Cached<T>>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
        }
    }
}

impl<T: Entity> Cache<T> {
    /// The row of `key`: from this page's rows, else from `prev` (the
    /// page before, not yet committed), else absent if `written` knows
    /// so, else read through `reader`.
    async fn get(
        &mut self,
        reader: &mut Reader<'_>,
        suffix: &str,
        written: Option<&Written>,
        prev: Option<&Cache<T>>,
        key: &str,
    ) -> Result<Option<T>, ReadModelError> {
        if let Some(cached) = self.rows.get(key) {
            return Ok(cached.row.clone());
        }
        let row = if let Some(cached) = prev.and_then(|prev| prev.rows.get(key)) {
            cached.row.clone()
        } else if written.is_some_and(|w| w.absent(&T::TABLE, key)) {
            None
        } else {
            let table = T::TABLE;
            let sql = format!(
                "SELECT * FROM {}{suffix} WHERE {} = $1",
                table.name, table.key[0]
            );
            reader
                .exec()
                .await?
                .fetch_optional(&sql, vec![key.into()])
                .await?
                .map(|row| T::from_row(&row))
                .transpose()?
        };
        // A row of the page before is stored as it is there once that
        // page commits, which comes before this one's.
        self.rows.insert(
            key.to_owned(),
            Cached {
                stored: row
                    .as_ref()
                    .map_or(Stored::Absent, |r| Stored::Row(r.set().to_vec())),
                row: row.clone(),
                dirty: false,
            },
        );
        Ok(row)
    }

    fn put(&mut self, written: Option<&Written>, row: T) {
        let key = row.key().to_owned();
        match self.rows.get_mut(&key) {
            Some(cached) => {
                cached.row = Some(row);
                cached.dirty = true;
            }
            None => {
                let stored = if written.is_some_and(|w| w.absent(&T::TABLE, &key)) {
                    Stored::Absent
                } else {
                    Stored::Unknown
                };
                self.rows.insert(
                    key,
                    Cached {
                        row: Some(row),
                        stored,
                        dirty: true,
                    },
                );
            }
        }
    }

    /// The changed rows with what the database holds of each, sorted by
    /// key so that both backends see the same statements.
    fn dirty(&self) -> Vec<(&T, &Stored)> {
        let mut dirty: Vec<(&T, &Stored)> = self
            .rows
            .values()
            .filter_map(|c| match &c.row {
                Some(row) if c.dirty => Some((row, &c.stored)),
                _ => None,
            })
            .collect();
        dirty.sort_by(|(a, _), (b, _)| a.key().cmp(b.key()));
        dirty
    }

    /// Tells `written` which keys this page writes.
    fn record(&self, written: &mut Written) {
        for (key, cached) in &self.rows {
            if cached.dirty {
                written.insert(&T::TABLE, key);
            }
        }
    }

    /// Writes the changed rows: new ones by plain INSERT, the others by
    /// upsert (PostgreSQL's conflict check costs as much again as the
    /// insert); then the side table's rows of those whose set changed.
    async fn write(&self, exec: &mut Exec<'_>, suffix: &str) -> Result<(), ReadModelError> {
        let dirty = self.dirty();
        let (new, known): (Vec<_>, Vec<_>) = dirty
            .iter()
            .partition(|(_, stored)| matches!(stored, Stored::Absent));
        let vals = |rows: Vec<&(&T, &Stored)>| rows.iter().map(|(row, _)| row.vals()).collect();
        insert(exec, &T::TABLE, suffix, vals(new)).await?;
        upsert(exec, &T::TABLE, suffix, vals(known)).await?;
        let Some((set_table, key_col, _)) = T::SET else {
            return Ok(());
        };
        let mut cleared: Vec<&str> = Vec::new();
        let mut pairs: Vec<Vec<Val>> = Vec::new();
        for (row, stored) in &dirty {
            match stored {
                Stored::Row(set) if set.as_slice() == row.set() => continue,
                Stored::Absent => {}
                Stored::Row(_) | Stored::Unknown => cleared.push(row.key()),
            }
            // Each value once: the side table's key is (row key, value).
            let values: BTreeSet<&str> = row.set().iter().map(String::as_str).collect();
            for value in values {
                // Side tables list their columns as the schema does.
                pairs.push(if set_table.columns[0].0 == key_col {
                    vec![Val::from(row.key()), Val::from(value)]
                } else {
                    vec![Val::from(value), Val::from(row.key())]
                });
            }
        }
        if let Exec::Postgres(conn) = exec {
            for chunk in cleared.chunks(ARRAY_ROWS_MAX) {
                // Not prepared: PostgreSQL plans it for these keys and the
                // table as it is now. A prepared statement's generic plan
                // can be made while the table is empty (a rebuild's first
                // pages) and scan the whole table for every page after.
                sqlx::query(&format!(
                    "DELETE FROM {}{suffix} WHERE {key_col} = ANY($1::text[])",
                    set_table.name
                ))
                .bind(chunk)
                .persistent(false)
                .execute(&mut **conn)
                .await
                .map_err(db_error)?;
            }
            return insert(exec, &set_table, suffix, pairs).await;
        }
        let mut cleared = cleared.into_iter();
        for size in padded_sizes(cleared.len(), STATEMENT_ROWS_MAX) {
            let backend = exec.backend();
            let sql = statement(
                format!("delete {}{suffix} {backend:?} {size}", set_table.name),
                || {
                    format!(
                        "DELETE FROM {}{suffix} WHERE {key_col} IN ({})",
                        set_table.name,
                        super::db::ordered_placeholders(backend, 1, size)
                    )
                },
            );
            let mut args: Vec<Val> = cleared.by_ref().take(size).map(Val::from).collect();
            args.resize(size, Val::Text(None));
            exec.execute(&sql, args).await?;
        }
        insert(exec, &set_table, suffix, pairs).await
    }
}

/// Multi-row INSERT of `rows` (each in the table's column order), none
/// of which may exist yet.
pub(crate) async fn insert(
    exec: &mut Exec<'_>,
    table: &Table,
    suffix: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), ReadModelError> {
    write_rows(exec, table, suffix, rows, "insert", "").await
}

/// Multi-row INSERT ... ON CONFLICT DO UPDATE of whole rows.
async fn upsert(
    exec: &mut Exec<'_>,
    table: &Table,
    suffix: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), ReadModelError> {
    let updates: Vec<String> = table
        .column_names()
        .iter()
        .filter(|c| !table.key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let conflict = format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        table.key.join(", "),
        updates.join(", ")
    );
    write_rows(exec, table, suffix, rows, "upsert", &conflict).await
}

/// INSERT of `rows` (each in the table's column order) with `conflict`
/// appended (an ON CONFLICT clause or nothing): one array per column on
/// PostgreSQL, multi-row statements of the ladder's sizes on SQLite.
/// `kind` names the conflict clause in the statement cache's key.
async fn write_rows(
    exec: &mut Exec<'_>,
    table: &Table,
    suffix: &str,
    rows: Vec<Vec<Val>>,
    kind: &str,
    conflict: &str,
) -> Result<(), ReadModelError> {
    if let Exec::Postgres(conn) = exec {
        return insert_arrays(conn, table, suffix, rows, conflict).await;
    }
    let columns = table.column_names();
    let per_statement = (STATEMENT_BINDS_MAX / columns.len()).min(STATEMENT_ROWS_MAX);
    let sizes = padded_sizes(rows.len(), per_statement);
    let mut rows = rows.into_iter();
    for size in sizes {
        let backend = exec.backend();
        let sql = statement(
            format!("{kind} {}{suffix} {backend:?} {size}", table.name),
            || {
                format!(
                    "INSERT INTO {}{suffix} ({}) SELECT * FROM (VALUES {}) \
                     WHERE column1 IS NOT NULL{conflict}",
                    table.name,
                    columns.join(", "),
                    value_rows(backend, size, columns.len())
                )
            },
        );
        let mut args: Vec<Val> = rows.by_ref().take(size).flatten().collect();
        args.resize(size * columns.len(), Val::Int(None));
        exec.execute(&sql, args).await?;
    }
    Ok(())
}

/// One column of a batch, as the array PostgreSQL receives.
enum Column {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

/// PostgreSQL: INSERT of `rows` (each in the table's column order) as one
/// array per column, `conflict` appended (an ON CONFLICT clause or
/// nothing). The rows of one call must have distinct keys when
/// `conflict` updates.
async fn insert_arrays(
    conn: &mut PgConnection,
    table: &Table,
    suffix: &str,
    rows: Vec<Vec<Val>>,
    conflict: &str,
) -> Result<(), ReadModelError> {
    let casts: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            Kind::Int | Kind::OptInt => format!("${}::bigint[]", i + 1),
            Kind::Text | Kind::OptText => format!("${}::text[]", i + 1),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {}{suffix} ({}) SELECT * FROM UNNEST({}){conflict}",
        table.name,
        table.column_names().join(", "),
        casts.join(", ")
    );
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut columns: Vec<Column> = table
            .columns
            .iter()
            .map(|(_, kind)| match kind {
                Kind::Int | Kind::OptInt => Column::Int(Vec::new()),
                Kind::Text | Kind::OptText => Column::Text(Vec::new()),
            })
            .collect();
        for row in rows.by_ref().take(ARRAY_ROWS_MAX) {
            if row.len() != columns.len() {
                return Err(ReadModelError::Corrupt(format!(
                    "a row of {} has {} values for {} columns",
                    table.name,
                    row.len(),
                    columns.len()
                )));
            }
            for (column, value) in columns.iter_mut().zip(row) {
                match (column, value) {
                    (Column::Int(values), Val::Int(v)) => values.push(v),
                    (Column::Text(values), Val::Text(v)) => values.push(v),
                    _ => {
                        return Err(ReadModelError::Corrupt(format!(
                            "a value of {} does not match its column's type",
                            table.name
                        )))
                    }
                }
            }
        }
        let mut query = sqlx::query(&sql);
        for column in columns {
            query = match column {
                Column::Int(values) => query.bind(values),
                Column::Text(values) => query.bind(values),
            };
        }
        query.execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(())
}

/// Where a page reads the rows it has not seen yet.
pub(crate) enum Reader<'a> {
    /// The page's own transaction (the live tables, which other runners
    /// may write too).
    Tx(Exec<'a>),
    /// A pooled connection taken at the first read: a rebuild projects a
    /// page while the page before it is still being written, and reads
    /// what is committed. The page before is passed as `prev` to
    /// [`SqlTx::new`], so nothing it writes is read here.
    Pool(&'a ReadModels, Option<Conn>),
}

impl Reader<'_> {
    async fn exec(&mut self) -> Result<Exec<'_>, ReadModelError> {
        match self {
            Reader::Tx(exec) => Ok(exec.reborrow()),
            Reader::Pool(models, conn) => {
                let conn = match conn {
                    Some(conn) => conn,
                    None => conn.insert(models.conn().await?),
                };
                Ok(conn.exec())
            }
        }
    }
}

/// The rows one page of events changed, ready to write: what
/// [`SqlTx::finish`] returns. A rebuild writes it while it projects the
/// next page, which finds the rows of this one here.
#[derive(Debug, Default)]
pub(crate) struct PageRows {
    audit: Vec<AuditEntry>,
    resources: Cache<ResourceRow>,
    holds: Cache<HoldRow>,
    requests: Cache<RequestRow>,
    tasks: Cache<TaskRow>,
}

impl PageRows {
    /// Writes every changed row into the tables of `suffix`. The caller
    /// moves the checkpoints and commits.
    pub async fn write(&self, exec: &mut Exec<'_>, suffix: &str) -> Result<(), ReadModelError> {
        let entries: Vec<Vec<Val>> = self.audit.iter().map(codec::audit_vals).collect();
        insert(exec, &schema::AUDIT, suffix, entries).await?;
        self.resources.write(exec, suffix).await?;
        self.holds.write(exec, suffix).await?;
        self.requests.write(exec, suffix).await?;
        self.tasks.write(exec, suffix).await
    }
}

/// The projections' storage port for one page: reads through a
/// [`Reader`], keeps every row in memory, and hands the changed ones over
/// as [`PageRows`].
pub(crate) struct SqlTx<'a> {
    reader: Reader<'a>,
    /// `""` for the live tables, `schema::SHADOW` during a rebuild.
    suffix: &'static str,
    /// A rebuild's knowledge of the rows in its shadow tables.
    written: Option<&'a mut Written>,
    /// The page before, when it may not be committed yet.
    prev: Option<&'a PageRows>,
    rows: PageRows,
}

impl<'a> SqlTx<'a> {
    pub fn new(
        reader: Reader<'a>,
        suffix: &'static str,
        written: Option<&'a mut Written>,
        prev: Option<&'a PageRows>,
    ) -> Self {
        Self {
            reader,
            suffix,
            written,
            prev,
            rows: PageRows::default(),
        }
    }

    /// The row of `key` in the cache `rows` picks (and `prev`, the same
    /// cache of the page before).
    async fn get<T: Entity>(
        &mut self,
        rows: fn(&mut PageRows) -> &mut Cache<T>,
        prev: fn(&PageRows) -> &Cache<T>,
        key: &str,
    ) -> Result<Option<T>, ReadModelError> {
        rows(&mut self.rows)
            .get(
                &mut self.reader,
                self.suffix,
                self.written.as_deref(),
                self.prev.map(prev),
                key,
            )
            .await
    }

    /// The rows this page changed; `written` learns their keys.
    pub fn finish(self) -> PageRows {
        if let Some(written) = self.written {
            self.rows.resources.record(written);
            self.rows.holds.record(written);
            self.rows.requests.record(written);
            self.rows.tasks.record(written);
        }
        self.rows
    }
}

#[async_trait]
impl ReadModelTx for SqlTx<'_> {
    async fn append_audit(&mut self, entry: AuditEntry) -> Result<(), ReadModelError> {
        self.rows.audit.push(entry);
        Ok(())
    }

    async fn resource(&mut self, subject: &str) -> Result<Option<ResourceRow>, ReadModelError> {
        self.get(|r| &mut r.resources, |r| &r.resources, subject)
            .await
    }

    async fn put_resource(&mut self, row: ResourceRow) -> Result<(), ReadModelError> {
        self.rows.resources.put(self.written.as_deref(), row);
        Ok(())
    }

    async fn hold(&mut self, hold: &str) -> Result<Option<HoldRow>, ReadModelError> {
        self.get(|r| &mut r.holds, |r| &r.holds, hold).await
    }

    async fn put_hold(&mut self, row: HoldRow) -> Result<(), ReadModelError> {
        self.rows.holds.put(self.written.as_deref(), row);
        Ok(())
    }

    async fn request(&mut self, request: &str) -> Result<Option<RequestRow>, ReadModelError> {
        self.get(|r| &mut r.requests, |r| &r.requests, request)
            .await
    }

    async fn put_request(&mut self, row: RequestRow) -> Result<(), ReadModelError> {
        self.rows.requests.put(self.written.as_deref(), row);
        Ok(())
    }

    async fn task(&mut self, task: &str) -> Result<Option<TaskRow>, ReadModelError> {
        self.get(|r| &mut r.tasks, |r| &r.tasks, task).await
    }

    async fn put_task(&mut self, row: TaskRow) -> Result<(), ReadModelError> {
        self.rows.tasks.put(self.written.as_deref(), row);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{padded_sizes, schema, Written};
    use projections::ProjectionName;

    #[test]
    fn written_knows_absent_rows_until_it_is_full() {
        let mut written = Written::bounded(3);
        assert!(written.absent(&schema::RESOURCES, "file:f-1"));
        written.insert(&schema::RESOURCES, "file:f-1");
        assert!(!written.absent(&schema::RESOURCES, "file:f-1"));
        // Keys are per table.
        assert!(written.absent(&schema::TASKS, "file:f-1"));
        written.insert(&schema::TASKS, "file:f-1");
        written.insert(&schema::TASKS, "task-2");
        assert!(written.absent(&schema::TASKS, "task-3"));
        // Past its bound it forgets everything and claims nothing absent.
        written.insert(&schema::TASKS, "task-3");
        assert!(!written.absent(&schema::TASKS, "task-3"));
        assert!(!written.absent(&schema::HOLDS, "never-written"));
        written.insert(&schema::HOLDS, "hold-1");
        assert!(!written.absent(&schema::HOLDS, "other"));
    }

    #[test]
    fn batches_are_cut_into_statements_of_a_few_sizes() {
        assert_eq!(padded_sizes(0, 1_000), Vec::<usize>::new());
        // Full statements, then the rest in one padded statement.
        assert_eq!(padded_sizes(3_014, 1_000), [1_000, 1_000, 1_000, 16]);
        assert_eq!(padded_sizes(130, 100), [100, 64]);
        assert_eq!(padded_sizes(300, 100), [100, 100, 100]);
        assert_eq!(padded_sizes(3, 1_000), [4]);
        assert_eq!(padded_sizes(1, 1_000), [1]);
        // A rest past the ladder's largest size takes a full statement.
        assert_eq!(padded_sizes(700, 1_000), [1_000]);
        // A largest size inside the ladder is not exceeded.
        assert_eq!(padded_sizes(5, 10), [10]);
        assert_eq!(padded_sizes(3, 2), [2, 1]);
        for largest in [1, 7, 256, 1_000] {
            for rows in 0..1_200 {
                let sizes = padded_sizes(rows, largest);
                let carried: usize = sizes.iter().sum();
                assert!(carried >= rows, "{rows} rows in {sizes:?}");
                assert!(sizes.iter().all(|&size| size <= largest));
                // Padding fills only the last statement.
                assert!(carried - rows < sizes.last().copied().unwrap_or(1));
            }
        }
    }

    #[test]
    fn every_tables_first_column_is_never_null() {
        // Padded rows are told apart by a NULL first column.
        for name in ProjectionName::ALL {
            for table in schema::tables(name) {
                assert!(
                    matches!(table.columns[0].1, schema::Kind::Int | schema::Kind::Text),
                    "{}'s first column may be NULL",
                    table.name
                );
            }
        }
    }
}
