//! The key table of crypto-shredding on SQLite and PostgreSQL (tables
//! `data_keys` and `external_ids`, next to the log but outside it), and
//! where the master key comes from.
//!
//! The master key is read, in this order, from `LETHE_MASTER_KEY` (32
//! bytes as base64), from the key file named by `--master-key-file` /
//! `LETHE_MASTER_KEY_FILE`, or, for a SQLite store, from the file
//! `PATH.master-key` beside the database. A missing key file is created
//! only while the store has no keys yet (its first start); a store whose
//! keys exist refuses to start without the key that wraps them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use commands::vault::{KeyTable, StoredKey, VaultError, KEYS_PER_READ_MAX};
use commands::{MasterKey, Vault};
use sqlx::Row;

use crate::side_pool::{self, sqlite_path, SidePool};

/// The environment variable holding the master key itself (base64).
pub const MASTER_KEY_ENV: &str = "LETHE_MASTER_KEY";
/// The environment variable naming the master key file.
pub const MASTER_KEY_FILE_ENV: &str = "LETHE_MASTER_KEY_FILE";

/// SQL: the key table holds a tombstone for the subject of the forget
/// whose stream is the column `stream` (a forget's stream is `subject-`
/// and the key's owner): its key destroyed, or a tombstone written where
/// it had none. Without one, the forget did not finish. The log's
/// verification and the read models' list of recorded forgets both ask.
pub(crate) fn tombstone_for_forget(stream: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM data_keys k \
             WHERE k.owner = substr({stream}, 9) AND k.wrapped IS NULL)"
    )
}

fn unavailable(error: impl fmt::Display) -> VaultError {
    VaultError::Unavailable(error.to_string())
}

/// Runs the same code on either pool: the SQL is written with `$n`
/// placeholders, which both backends take.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            SidePool::Sqlite($p) => $body,
            SidePool::Postgres($p) => $body,
        }
    };
}

/// How long the WAL checkpoint right after a destroyed key waits for
/// readers (and the writer) before SQLite answers "busy". SQLite holds
/// the write lock while it waits, so appends wait as long.
const WAL_CHECKPOINT_WAIT: Duration = Duration::from_secs(1);
/// The same wait for the attempts that follow in the background, short
/// so that they never hold up appends for long.
const WAL_RETRY_WAIT: Duration = Duration::from_millis(50);
/// After a busy checkpoint, how often it is tried again in the
/// background, and at most how many times since the last key destroyed
/// (an hour).
const WAL_RETRY_EVERY: Duration = Duration::from_secs(2);
const WAL_RETRY_ATTEMPTS_MAX: u32 = 1_800;

/// SQLite: what the background checkpoint owes. `owed` counts the
/// destroyed keys whose checkpoint was busy; a checkpoint that completes
/// settles every one counted when it started. `retrying` is set while a
/// task tries.
#[derive(Debug, Default)]
struct WalDebt {
    owed: AtomicU64,
    retrying: AtomicBool,
}

/// The key table in the store's database.
#[derive(Debug, Clone)]
pub struct SqlKeyTable {
    pool: SidePool,
    /// SQLite: destroyed keys whose old pages may still be in the WAL.
    wal_debt: Arc<WalDebt>,
}

impl SqlKeyTable {
    /// Connects to the database of the store at `url` (open the store
    /// first: it creates the file and applies the migrations).
    pub async fn connect(url: &str) -> Result<Self, VaultError> {
        // A destroyed key is overwritten on disk, not just unlinked.
        let pool = side_pool::connect(url, |o| o.pragma("secure_delete", "ON"))
            .await
            .map_err(unavailable)?;
        Ok(Self {
            pool,
            wal_debt: Arc::new(WalDebt::default()),
        })
    }

    /// SQLite, when the store holds a destroyed key: empties the WAL as
    /// right after a key is destroyed ([`Self::checkpoint_wal`], retried
    /// in the background while busy). A process that stopped while that
    /// checkpoint was owed may have left old pages of the key in the WAL,
    /// which SQLite keeps across restarts. For a long-running process
    /// (`lethe serve`) at start-up: the checkpoint holds SQLite's write
    /// lock while it waits for readers, so short commands do not run it.
    pub async fn empty_wal_after_restart(&self) -> Result<(), VaultError> {
        let SidePool::Sqlite(pool) = &self.pool else {
            return Ok(());
        };
        let destroyed: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM data_keys WHERE wrapped IS NULL)")
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
        if destroyed {
            self.checkpoint_wal().await;
        }
        Ok(())
    }

    /// SQLite: copies the WAL into the database file and empties it, so
    /// that no old copy of a destroyed key's page stays in the WAL
    /// (`secure_delete` zeroed it in the page itself). A reader of an
    /// older snapshot, the writer or another checkpoint keeps SQLite from
    /// emptying the WAL, which it answers as "busy" rather than as an
    /// error; the checkpoint is then tried again in the background until
    /// one that started after this call completes, for up to an hour
    /// after the last key destroyed.
    async fn checkpoint_wal(&self) {
        let SidePool::Sqlite(pool) = &self.pool else {
            return;
        };
        if checkpoint_once(pool, WAL_CHECKPOINT_WAIT).await {
            return;
        }
        let debt = &self.wal_debt;
        debt.owed.fetch_add(1, Ordering::SeqCst);
        // One retrying task at a time; a running one sees the new debt.
        if debt.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            "the WAL could not be emptied after a key was destroyed; \
             the checkpoint is tried again every {WAL_RETRY_EVERY:?}"
        );
        tokio::spawn(retry_checkpoint(pool.clone(), Arc::clone(debt)));
    }

    /// Whether no key was ever stored (a new store).
    pub async fn is_empty(&self) -> Result<bool, VaultError> {
        let count: i64 = on_pool!(&self.pool, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM data_keys"
        )
        .fetch_one(pool)
        .await
        .map_err(unavailable)?);
        Ok(count == 0)
    }

    pub async fn close(&self) {
        on_pool!(&self.pool, |pool| pool.close().await);
    }
}

/// The background attempts of [`SqlKeyTable::checkpoint_wal`]: until a
/// checkpoint that started after the last debt completes, or
/// [`WAL_RETRY_ATTEMPTS_MAX`] attempts after it.
async fn retry_checkpoint(pool: sqlx::SqlitePool, debt: Arc<WalDebt>) {
    loop {
        let mut owed = debt.owed.load(Ordering::SeqCst);
        let mut attempts = 0;
        let settled = loop {
            if attempts >= WAL_RETRY_ATTEMPTS_MAX {
                break false;
            }
            tokio::time::sleep(WAL_RETRY_EVERY).await;
            attempts += 1;
            let now = debt.owed.load(Ordering::SeqCst);
            if now != owed {
                (owed, attempts) = (now, 1);
            }
            if checkpoint_once(&pool, WAL_RETRY_WAIT).await
                && debt.owed.load(Ordering::SeqCst) == owed
            {
                break true;
            }
        };
        if settled {
            tracing::info!("the WAL was emptied after a destroyed key");
        } else {
            tracing::error!(
                "the WAL still holds old pages of destroyed keys after an hour of attempts; \
                 the next key destroyed tries again"
            );
        }
        debt.retrying.store(false, Ordering::SeqCst);
        // A key destroyed after the last load above, whose caller saw
        // this task still running, is not left without attempts.
        let unsettled = debt.owed.load(Ordering::SeqCst) != owed;
        if !(unsettled
            && debt
                .retrying
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok())
        {
            return;
        }
    }
}

/// One `wal_checkpoint(TRUNCATE)`, waiting at most `wait` for readers
/// and the writer; whether it completed. It runs on a task of its own,
/// so that a caller that goes away (an HTTP client hanging up) cannot
/// leave the pooled connection with the short wait.
async fn checkpoint_once(pool: &sqlx::SqlitePool, wait: Duration) -> bool {
    let pool = pool.clone();
    let attempt = tokio::spawn(async move {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "no connection for the WAL checkpoint");
                return false;
            }
        };
        let wait = format!("PRAGMA busy_timeout = {}", wait.as_millis());
        let restore = format!(
            "PRAGMA busy_timeout = {}",
            side_pool::BUSY_TIMEOUT.as_millis()
        );
        let mut completed = false;
        if sqlx::query(&wait).execute(&mut *conn).await.is_ok() {
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await
            {
                // The first value is 1 when the checkpoint was kept from
                // completing.
                Ok((busy, _, _)) => completed = busy == 0,
                Err(error) => tracing::warn!(%error, "the WAL checkpoint failed"),
            }
        }
        if sqlx::query(&restore).execute(&mut *conn).await.is_err() {
            // Not back in the pool with the short wait.
            conn.close_on_drop();
        }
        completed
    });
    attempt.await.unwrap_or(false)
}

fn stored_key<R: Row>(row: &R) -> Result<StoredKey, VaultError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredKey {
        owner: row.try_get("owner").map_err(unavailable)?,
        wrapped: row.try_get("wrapped").map_err(unavailable)?,
        master_id: row.try_get("master_id").map_err(unavailable)?,
    })
}

#[async_trait]
impl KeyTable for SqlKeyTable {
    async fn keys(&self, owners: &[String]) -> Result<Vec<StoredKey>, VaultError> {
        debug_assert!(owners.len() <= KEYS_PER_READ_MAX);
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let owners = serde_json::to_string(owners).expect("strings serialize");
        let sql = match &self.pool {
            SidePool::Sqlite(_) => {
                "SELECT owner, wrapped, master_id FROM data_keys \
                 WHERE owner IN (SELECT value FROM json_each($1))"
            }
            SidePool::Postgres(_) => {
                "SELECT owner, wrapped, master_id FROM data_keys \
                 WHERE owner IN (SELECT jsonb_array_elements_text($1::jsonb))"
            }
        };
        on_pool!(&self.pool, |pool| sqlx::query(sql)
            .bind(&owners)
            .fetch_all(pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(stored_key)
            .collect())
    }

    async fn insert_key(&self, key: StoredKey) -> Result<StoredKey, VaultError> {
        on_pool!(&self.pool, |pool| {
            sqlx::query(
                "INSERT INTO data_keys (owner, wrapped, master_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (owner) DO NOTHING",
            )
            .bind(&key.owner)
            .bind(&key.wrapped)
            .bind(&key.master_id)
            .execute(pool)
            .await
            .map_err(unavailable)?;
            let row =
                sqlx::query("SELECT owner, wrapped, master_id FROM data_keys WHERE owner = $1")
                    .bind(&key.owner)
                    .fetch_one(pool)
                    .await
                    .map_err(unavailable)?;
            stored_key(&row)
        })
    }

    async fn destroy_key(&self, owner: &str, master_id: &str) -> Result<bool, VaultError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let destroyed = match &self.pool {
            SidePool::Sqlite(pool) => sqlx::query(
                "UPDATE data_keys SET wrapped = NULL, destroyed_at = $2 \
                 WHERE owner = $1 AND wrapped IS NOT NULL",
            )
            .bind(owner)
            .bind(&now)
            .execute(pool)
            .await
            .map_err(unavailable)?
            .rows_affected(),
            SidePool::Postgres(pool) => sqlx::query(
                "UPDATE data_keys SET wrapped = NULL, destroyed_at = now() \
                 WHERE owner = $1 AND wrapped IS NOT NULL",
            )
            .bind(owner)
            .execute(pool)
            .await
            .map_err(unavailable)?
            .rows_affected(),
        };
        on_pool!(&self.pool, |pool| sqlx::query(
            "INSERT INTO data_keys (owner, wrapped, master_id) VALUES ($1, NULL, $2) \
             ON CONFLICT (owner) DO NOTHING",
        )
        .bind(owner)
        .bind(master_id)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(unavailable)?);
        if destroyed == 1 {
            self.checkpoint_wal().await;
        }
        Ok(destroyed == 1)
    }

    async fn key_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredKey>, VaultError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(&self.pool, |pool| sqlx::query(
            "SELECT owner, wrapped, master_id FROM data_keys \
             WHERE owner > $1 ORDER BY owner LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(stored_key)
        .collect())
    }

    async fn rewrap(&self, old_master_id: &str, keys: &[StoredKey]) -> Result<(), VaultError> {
        on_pool!(&self.pool, |pool| {
            let mut tx = pool.begin().await.map_err(unavailable)?;
            for key in keys {
                sqlx::query(
                    // A key destroyed since it was read (forgotten) is not
                    // brought back by its re-wrapped copy.
                    "UPDATE data_keys SET wrapped = $1, master_id = $2 \
                     WHERE owner = $3 AND master_id = $4 AND (wrapped IS NOT NULL OR $1 IS NULL)",
                )
                .bind(&key.wrapped)
                .bind(&key.master_id)
                .bind(&key.owner)
                .bind(old_master_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            tx.commit().await.map_err(unavailable)
        })
    }

    async fn insert_directory(&self, pseudonym: &str, token: &str) -> Result<(), VaultError> {
        on_pool!(&self.pool, |pool| sqlx::query(
            "INSERT INTO external_ids (pseudonym, sealed) VALUES ($1, $2) \
             ON CONFLICT (pseudonym) DO NOTHING",
        )
        .bind(pseudonym)
        .bind(token)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(unavailable))
    }

    async fn directory(&self, pseudonyms: &[String]) -> Result<Vec<(String, String)>, VaultError> {
        if pseudonyms.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(pseudonyms).expect("strings serialize");
        let sql = match &self.pool {
            SidePool::Sqlite(_) => {
                "SELECT pseudonym, sealed FROM external_ids \
                 WHERE pseudonym IN (SELECT value FROM json_each($1))"
            }
            SidePool::Postgres(_) => {
                "SELECT pseudonym, sealed FROM external_ids \
                 WHERE pseudonym IN (SELECT jsonb_array_elements_text($1::jsonb))"
            }
        };
        on_pool!(&self.pool, |pool| sqlx::query_as::<_, (String, String)>(
            sql
        )
        .bind(&list)
        .fetch_all(pool)
        .await
        .map_err(unavailable))
    }
}

/// Where the master key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyOrigin {
    Environment,
    File(PathBuf),
    /// Created now, on the store's first start.
    Created(PathBuf),
}

/// Opens the vault of the store at `url` (opened before), finding the
/// master key as the module says. `key_file` is `--master-key-file`.
/// The key table of the store at `url` and the master key configured for
/// it (as [`open_vault`] finds it), without opening a vault: for a
/// rotation, which must run even when the lookup key is already under
/// the new master key.
pub async fn key_table_and_master(
    url: &str,
    key_file: Option<&Path>,
) -> Result<(SqlKeyTable, MasterKey), VaultError> {
    let table = SqlKeyTable::connect(url).await?;
    let (master, _) = find_master_key(url, key_file, &table).await?;
    Ok((table, master))
}

/// What opening a vault does first besides: [`Startup::Service`] also
/// runs [`SqlKeyTable::empty_wal_after_restart`] on the vault's own key
/// table, whose busy checkpoint then keeps retrying in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// A short command: nothing more.
    Command,
    /// A long-running process (`lethe serve`).
    Service,
}

pub async fn open_vault(
    url: &str,
    key_file: Option<&Path>,
    startup: Startup,
) -> Result<(Arc<Vault>, MasterKeyOrigin), VaultError> {
    let table = SqlKeyTable::connect(url).await?;
    if startup == Startup::Service {
        table.empty_wal_after_restart().await?;
    }
    let (master, origin) = find_master_key(url, key_file, &table).await?;
    let vault = Vault::open(Arc::new(table), master).await?;
    Ok((Arc::new(vault), origin))
}

async fn find_master_key(
    url: &str,
    key_file: Option<&Path>,
    table: &SqlKeyTable,
) -> Result<(MasterKey, MasterKeyOrigin), VaultError> {
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return Ok((MasterKey::from_base64(&text)?, MasterKeyOrigin::Environment));
    }
    let path = match (
        key_file,
        std::env::var_os(MASTER_KEY_FILE_ENV),
        sqlite_path(url),
    ) {
        (Some(path), _, _) => path.to_owned(),
        (None, Some(path), _) => PathBuf::from(path),
        (None, None, Some(db)) => default_key_file(db),
        (None, None, None) => {
            return Err(VaultError::BadMasterKey(format!(
                "a PostgreSQL store needs a master key: set {MASTER_KEY_ENV} (32 bytes, base64) \
                 or {MASTER_KEY_FILE_ENV}"
            )))
        }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((
            MasterKey::from_base64(&text)
                .map_err(|e| VaultError::BadMasterKey(format!("{}: {e}", path.display())))?,
            MasterKeyOrigin::File(path),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if !table.is_empty().await? {
                return Err(VaultError::BadMasterKey(format!(
                    "the key file {} is missing, and this store's keys need the master key \
                     that wrapped them; restore the file or set {MASTER_KEY_ENV}",
                    path.display()
                )));
            }
            let master = MasterKey::generate();
            write_key_file(&path, &master)?;
            Ok((master, MasterKeyOrigin::Created(path)))
        }
        Err(error) => Err(VaultError::BadMasterKey(format!(
            "cannot read {}: {error}",
            path.display()
        ))),
    }
}

/// The key file of a SQLite store whose database is `db`.
pub fn default_key_file(db: &str) -> PathBuf {
    PathBuf::from(format!("{db}.master-key"))
}

/// Writes a master key to a new file readable by its owner only.
pub fn write_key_file(path: &Path, master: &MasterKey) -> Result<(), VaultError> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| {
        VaultError::BadMasterKey(format!("cannot write {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(format!("{}\n", master.to_base64()).as_bytes())
        .map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sqlx::{Connection, SqliteConnection};

    use super::*;

    /// Whether `needle` is in the database file or its WAL.
    fn on_disk(db: &Path, needle: &[u8]) -> bool {
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        [db.to_path_buf(), wal].iter().any(|file| {
            std::fs::read(file).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
    }

    /// A SQLite store in a temporary directory whose key table holds one
    /// live key for `owner`, wrapped as `wrapped`.
    struct OneKey {
        _dir: tempfile::TempDir,
        _store: crate::store::Store,
        db: PathBuf,
        url: String,
        keys: SqlKeyTable,
    }

    async fn one_key(owner: &str, wrapped: &str) -> OneKey {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("lethe.db");
        let url = format!("sqlite://{}", db.display());
        let store = crate::store::open(&url).await.expect("store");
        let keys = SqlKeyTable::connect(&url).await.expect("key table");
        keys.insert_key(StoredKey {
            owner: owner.into(),
            wrapped: Some(wrapped.into()),
            master_id: "m-1".into(),
        })
        .await
        .expect("key stored");
        OneKey {
            _dir: dir,
            _store: store,
            db,
            url,
            keys,
        }
    }

    #[tokio::test]
    async fn a_destroyed_key_leaves_the_wal_once_its_readers_let_go() {
        let wrapped = "WRAPPED-DATA-KEY-4f1c".repeat(3);
        let fixture = one_key("request:r-1", &wrapped).await;
        let (db, url, keys) = (&fixture.db, &fixture.url, &fixture.keys);

        // A reader holds a snapshot from before the key is destroyed.
        let mut reader = SqliteConnection::connect(url).await.expect("reader");
        sqlx::query("BEGIN")
            .execute(&mut reader)
            .await
            .expect("begin");
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys")
            .fetch_one(&mut reader)
            .await
            .expect("read");
        assert!(keys
            .destroy_key("request:r-1", "m-1")
            .await
            .expect("destroyed"));
        assert!(
            on_disk(db, wrapped.as_bytes()),
            "the reader's snapshot keeps the old page in the WAL"
        );
        assert!(keys.wal_debt.retrying.load(Ordering::SeqCst));

        sqlx::query("COMMIT")
            .execute(&mut reader)
            .await
            .expect("commit");
        let deadline = Instant::now() + WAL_RETRY_EVERY * 10;
        while on_disk(db, wrapped.as_bytes()) {
            assert!(
                Instant::now() < deadline,
                "the destroyed key is still on disk after its reader let go"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the WAL was emptied");
    }

    /// A key destroyed by a process that stopped before its checkpoint
    /// completed (here: destroyed with plain SQL, which checkpoints
    /// nothing) leaves the WAL when the next process starts.
    #[tokio::test]
    async fn a_key_destroyed_before_a_restart_leaves_the_wal_at_start_up() {
        let wrapped = "WRAPPED-DATA-KEY-71ab".repeat(3);
        let fixture = one_key("request:r-3", &wrapped).await;
        let (db, url) = (&fixture.db, &fixture.url);
        let mut stopped = SqliteConnection::connect(url).await.expect("connection");
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut stopped)
            .await
            .expect("secure_delete");
        sqlx::query(
            "UPDATE data_keys SET wrapped = NULL, destroyed_at = '2026-03-01T10:00:00Z' \
             WHERE owner = 'request:r-3'",
        )
        .execute(&mut stopped)
        .await
        .expect("destroyed");
        assert!(
            on_disk(db, wrapped.as_bytes()),
            "the old page is still in the WAL"
        );

        let restarted = SqlKeyTable::connect(url).await.expect("key table");
        assert!(
            on_disk(db, wrapped.as_bytes()),
            "connecting checkpoints nothing"
        );
        restarted.empty_wal_after_restart().await.expect("emptied");
        assert!(!on_disk(db, wrapped.as_bytes()));
        restarted.close().await;
    }

    #[tokio::test]
    async fn a_destroyed_key_leaves_the_wal_at_once_without_readers() {
        let wrapped = "WRAPPED-DATA-KEY-9d2e".repeat(3);
        let fixture = one_key("request:r-2", &wrapped).await;
        let (db, keys) = (&fixture.db, &fixture.keys);
        assert!(on_disk(db, wrapped.as_bytes()));
        assert!(keys
            .destroy_key("request:r-2", "m-1")
            .await
            .expect("destroyed"));
        assert!(!on_disk(db, wrapped.as_bytes()));
        assert!(!keys.wal_debt.retrying.load(Ordering::SeqCst));
    }
}
