//! stsd's durable store.
//!
//! One implementation over sqlx's `Any` driver serves both backends: the embedded default (SQLite in the
//! data directory, WAL, `synchronous=FULL` so an acknowledged write survives a crash) and PostgreSQL for
//! several nodes. The SQL is portable: `$N` placeholders (numbered in order of first appearance, which
//! SQLite requires), `BIGINT`/`TEXT`, a `{BLOB}` placeholder in migrations, no vendor features.
//!
//! Secrets (secret access keys, token keys) are stored encrypted under the master key, each bound to its
//! row by the AEAD context (`access_key:<id>`, `token_key:<id>`), and are decrypted only in memory.

mod group;
pub mod iam;
mod inline;
pub mod migrations;
pub mod ops;
pub mod passwords;
pub mod policy;
pub mod roles;
pub use group::BoxFuture;

pub use iam::{DeviceKind, KeyMeta, MfaDevice, SealedSeed};
pub use ops::TokenKeyInfo;

use inline::Cols;
use migrations::{Dialect, MIGRATIONS};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::time::Duration;
use stsd_core::crypto::{CryptoError, SealingKey};
use stsd_core::secret::Secret;
use stsd_core::token::KeyRing;

/// The most access keys the root may have (as AWS).
pub const MAX_ROOT_KEYS: i64 = 2;

/// Store failures. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An inline read on SQLite failed (see `inline`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored secret could not be decrypted.
    #[error("stored secret could not be decrypted: {0}")]
    Crypto(#[from] CryptoError),
    /// The master key given at start is not the one this database was created with.
    #[error(
        "the master key does not match this database (it was created with another master key); nothing was changed"
    )]
    WrongMasterKey,
    /// A unique name or id is taken.
    #[error("already exists")]
    AlreadyExists,
    /// The entity does not exist.
    #[error("not found")]
    NotFound,
    /// A limit (keys per user, devices per user) would be exceeded.
    #[error("limit exceeded")]
    LimitExceeded,
    /// The entity still has dependants (keys, devices).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Stored data contradicts the configuration (e.g. another account id).
    #[error("{0}")]
    Mismatch(String),
}

impl StoreError {
    /// True when the database is unreachable, overloaded, out of space or read-only: the request may
    /// succeed later without anyone changing it (answer 503, retry later). Nothing was written.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Db(sqlx::Error::Database(d)) => {
                let Some(code) = d.code() else {
                    return false;
                };
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    sqlite_code_unavailable(&code)
                } else {
                    postgres_state_unavailable(&code)
                }
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                sqlite_code_unavailable(&e.extended_code.to_string())
            }
            _ => false,
        }
    }
}

/// SQLite result codes (extended codes carry the primary code in their low byte) that mean "not now":
/// busy or locked beyond the busy timeout (5, 6), read-only file or file system (8), I/O error (10, e.g. a
/// failing or vanished disk), database or disk full (13), a file (WAL, shared memory) that cannot be
/// opened (14), out of memory (7). Not corruption (11) or a file that is not a database (26): those need
/// an operator, so they stay 500.
pub fn sqlite_code_unavailable(code: &str) -> bool {
    code.parse::<u32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14))
}

/// PostgreSQL SQLSTATEs that mean "not now": connection exceptions (class 08), insufficient resources
/// (class 53, including 53100 disk full), operator intervention such as shutting down or restarting
/// (57P01-57P03), system errors outside PostgreSQL such as an I/O error (class 58), and a read-only
/// transaction (25006: a standby, or `default_transaction_read_only` during a fail-over).
pub fn postgres_state_unavailable(state: &str) -> bool {
    state.starts_with("08")
        || state.starts_with("53")
        || state.starts_with("57P")
        || state.starts_with("58")
        || state == "25006"
}

/// Whether a SQLite connection may go back to the pool. When a disk is full (or an I/O error occurs),
/// SQLite rolls the transaction back by itself, so the ROLLBACK that sqlx queues when the failed
/// transaction is dropped fails ("no transaction is active") and sqlx still counts the connection as inside
/// a transaction: its next `BEGIN` would be a `SAVEPOINT`, whose "commit" (`RELEASE`) can answer success
/// while the transaction stays open, holding the write lock (every other writer then waits for the busy
/// timeout) and never becoming durable. Such a connection is closed instead (closing rolls back whatever
/// it holds); the pool opens a fresh one. The common case (no transaction left) costs nothing.
async fn release_sqlite(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if conn.is_in_transaction() {
        // A rollback queued by a dropped transaction runs before the ping answers.
        conn.ping().await?;
    }
    if conn.is_in_transaction() {
        tracing::warn!("closing a database connection left inside a failed transaction");
        return Ok(false);
    }
    Ok(true)
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Status of an access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Refused with `InvalidClientTokenId`.
    Inactive,
}

impl KeyStatus {
    /// The IAM wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
    pub(crate) fn parse(s: &str) -> KeyStatus {
        if s == "Active" {
            KeyStatus::Active
        } else {
            KeyStatus::Inactive
        }
    }
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `AIDA...`
    pub user_id: String,
    /// Name as created (case preserved; uniqueness is case-insensitive).
    pub name: String,
    /// IAM path.
    pub path: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Sessions issued before this time (unix seconds) are revoked.
    pub sessions_not_before: i64,
}

/// A user with one access key, for [`Store::import_users_with_keys`].
#[derive(Debug, Clone)]
pub struct ImportedUser {
    /// The user (`sessions_not_before` is ignored: imported users start with none revoked).
    pub user: User,
    /// `AKIA...`
    pub access_key_id: String,
    /// The key's secret (sealed with the master key before it is stored; redacted in `Debug`).
    pub secret: Secret,
    /// The key's creation time (unix seconds).
    pub key_created_at: i64,
}

/// Rows per multi-row INSERT in [`Store::import_users_with_keys`]: 6 parameters per user row, well
/// under SQLite's 32,766 and PostgreSQL's 65,535 bind parameters per statement.
pub const IMPORT_ROWS_PER_STATEMENT: usize = 500;

/// `head` followed by `rows` groups of `cols` placeholders: `($1, $2), ($3, $4)` for PostgreSQL,
/// `(?, ?), (?, ?)` for SQLite (which treats `$1` as a named parameter and looks each one up by name:
/// with thousands per statement that made a bulk import three times slower).
fn multi_row_insert(dialect: Dialect, head: &str, rows: usize, cols: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(head.len() + rows * cols * 7);
    sql.push_str(head);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            let sep = if c == 0 { "" } else { ", " };
            match dialect {
                Dialect::Sqlite => {
                    sql.push_str(sep);
                    sql.push('?');
                }
                Dialect::Postgres => {
                    let _ = write!(sql, "{sep}${}", r * cols + c + 1);
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// Who owns an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The account root.
    Root,
    /// An IAM user.
    User(User),
}

/// A long-term access key with its decrypted secret.
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// `AKIA...`
    pub access_key_id: String,
    /// The owner.
    pub owner: Owner,
    /// Secret access key (decrypted; redacted in `Debug`).
    pub secret: Secret,
    /// Active or inactive.
    pub status: KeyStatus,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Whether the owner must use MFA for GetSessionToken (users only; cached with the key).
    pub owner_mfa_required: bool,
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing with 503.
    pub acquire_timeout: Duration,
    /// SQLite page cache per connection in KiB (`PRAGMA cache_size`); `None` keeps SQLite's 2 MiB.
    /// A bulk import into a large table wants its indexes in memory; the server keeps the default.
    pub sqlite_cache_kib: Option<u32>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(2),
            sqlite_cache_kib: None,
        }
    }
}

/// The store: a connection pool, the dialect, and the master key.
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    master: SealingKey,
    /// The group commit of frequent small writes on SQLite, and of MFA step acceptances on both
    /// backends (see `group`).
    writer: group::GroupWriter,
    /// SQLite file only: the reads of a sign-in, run on the calling thread (see `inline`).
    readers: Option<inline::InlineReaders>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

pub(crate) const MASTER_CHECK_NAME: &str = "master_key_check";
pub(crate) const MASTER_CHECK_PLAIN: &[u8] = b"stsd master key check v1";
/// A pooled PostgreSQL connection idle this long is checked (a round trip) before it is used again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// Why a conditional UPDATE of one row (`id_col = id` in `table`) changed nothing: `when_present` if
/// the row exists (its condition failed), [`StoreError::NotFound`] if it does not. `table` and `id_col`
/// are names from the code, never input.
pub(crate) async fn refusal(
    c: &mut sqlx::AnyConnection,
    table: &str,
    id_col: &str,
    id: &str,
    when_present: StoreError,
) -> Result<StoreError> {
    let exists: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT {id_col} FROM {table} WHERE {id_col} = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(if exists.is_some() {
        when_present
    } else {
        StoreError::NotFound
    })
}

pub(crate) fn access_key_context(id: &str) -> Vec<u8> {
    format!("access_key:{id}").into_bytes()
}

pub(crate) fn token_key_context(id: i64) -> Vec<u8> {
    format!("token_key:{id}").into_bytes()
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    ///
    /// # Errors
    /// Database errors, [`StoreError::WrongMasterKey`].
    pub async fn open_sqlite(
        path: &std::path::Path,
        master: SealingKey,
        opts: &OpenOptions,
    ) -> Result<Store> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::open_url(&url, master, opts).await
    }

    /// Opens a database by URL (`sqlite://...` or `postgres://...`), applies pending migrations and checks
    /// the master key.
    ///
    /// # Errors
    /// Database errors, [`StoreError::WrongMasterKey`].
    pub async fn open_url(url: &str, master: SealingKey, opts: &OpenOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        let mut pool_opts = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            // sqlx's check of every connection before use costs a round trip per query (two extra
            // thread hops on SQLite, whose connections are local file handles). sqlx already checks a
            // PostgreSQL connection when it comes back to the pool, so one reused at once is known
            // good; one that sat idle may have lost its server since (a restart) and is checked below.
            .test_before_acquire(false);
        if dialect == Dialect::Postgres {
            pool_opts = pool_opts.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        }
        if dialect == Dialect::Sqlite {
            let cache = opts
                .sqlite_cache_kib
                .map(|kib| format!("PRAGMA cache_size = -{kib};"));
            pool_opts = pool_opts
                .after_connect(move |conn, _meta| {
                    let cache = cache.clone();
                    Box::pin(async move {
                        sqlx::raw_sql(SQLITE_PRAGMAS).execute(&mut *conn).await?;
                        if let Some(cache) = cache {
                            sqlx::raw_sql(sqlx::AssertSqlSafe(cache))
                                .execute(conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .after_release(|conn, _meta| Box::pin(release_sqlite(conn)));
        }
        let pool = pool_opts.connect(url).await?;
        let writer = group::GroupWriter::start(pool.clone(), dialect);
        let readers = match dialect {
            Dialect::Sqlite => inline::InlineReaders::for_url(url),
            Dialect::Postgres => None,
        };
        let store = Store {
            pool,
            dialect,
            master,
            writer,
            readers,
        };
        // An existing database is checked against the master key before anything (a migration) can
        // change it; a new one gets its check value after the first migration created the table.
        let opened = async {
            if store.meta(MASTER_CHECK_NAME).await.is_ok() {
                store.check_master_key().await?;
            }
            store.migrate().await?;
            store.check_master_key().await
        }
        .await;
        if let Err(e) = opened {
            store.pool.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes every connection (call at shutdown). The inline readers go first: they are read-only, so
    /// the pool's last connection is the one that checkpoints the WAL into the database file and
    /// removes it, as SQLite does when the last connection to a file closes.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        self.pool.close().await;
    }

    /// Applies the migrations that have not run yet; returns how many ran.
    ///
    /// # Errors
    /// Database errors.
    pub async fn migrate(&self) -> Result<usize> {
        // Several nodes may start at once: on PostgreSQL they take turns (a session advisory lock held on
        // one pooled connection). SQLite serialises writers by itself.
        let mut lock_conn = None;
        if self.dialect == Dialect::Postgres {
            let mut c = self.pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock(7375640)")
                .execute(&mut *c)
                .await?;
            lock_conn = Some(c);
        }
        let result = self.apply_migrations().await;
        if let Some(mut c) = lock_conn {
            sqlx::query("SELECT pg_advisory_unlock(7375640)")
                .execute(&mut *c)
                .await?;
        }
        result
    }

    async fn apply_migrations(&self) -> Result<usize> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS stsd_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let mut ran = 0;
        for (version, description, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM stsd_migrations WHERE version = $1")
                    .bind(*version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(AssertSqlSafe(self.dialect.render(sql)))
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO stsd_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(*version)
            .bind(*description)
            .bind(stsd_core::timefmt::now_unix())
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    ran += 1;
                    tracing::info!(version, description, "applied migration");
                }
                // Another node applied it concurrently: its transaction won, ours rolls back.
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ran)
    }

    async fn check_master_key(&self) -> Result<()> {
        let stored = self.meta(MASTER_CHECK_NAME).await?;
        match stored {
            Some(hex_blob) => {
                let blob = decode_hex(&hex_blob).ok_or(StoreError::WrongMasterKey)?;
                self.master
                    .decrypt(MASTER_CHECK_NAME.as_bytes(), &blob)
                    .map_err(|_| StoreError::WrongMasterKey)?;
                Ok(())
            }
            None => {
                let blob = self
                    .master
                    .encrypt(MASTER_CHECK_NAME.as_bytes(), MASTER_CHECK_PLAIN);
                // If another node wrote its check first, verify against that one instead.
                if !self
                    .insert_meta(MASTER_CHECK_NAME, &encode_hex(&blob))
                    .await?
                {
                    return Box::pin(self.check_master_key()).await;
                }
                Ok(())
            }
        }
    }

    /// A value from the meta table.
    ///
    /// # Errors
    /// Database errors.
    pub async fn meta(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM stsd_meta WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Inserts a meta value if the name is free; returns false if it was taken.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_meta(&self, name: &str, value: &str) -> Result<bool> {
        match sqlx::query("INSERT INTO stsd_meta (name, value) VALUES ($1, $2)")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The account id of this store: the stored one, or `requested` (or a new random one) stored now.
    ///
    /// # Errors
    /// [`StoreError::Mismatch`] when `requested` differs from the stored account id.
    pub async fn init_account(&self, requested: Option<u64>) -> Result<u64> {
        if let Some(stored) = self.meta("account_id").await? {
            let stored = stsd_core::ids::parse_account(&stored).ok_or_else(|| {
                StoreError::Mismatch(format!("stored account id {stored:?} is not 12 digits"))
            })?;
            if let Some(r) = requested
                && r != stored
            {
                return Err(StoreError::Mismatch(format!(
                    "this data directory belongs to account {} but account id {} was requested; remove --account-id/STSD_ACCOUNT_ID or use a new data directory",
                    stsd_core::ids::format_account(stored),
                    stsd_core::ids::format_account(r)
                )));
            }
            return Ok(stored);
        }
        let account = requested.unwrap_or_else(stsd_core::ids::new_account_id);
        if !self
            .insert_meta("account_id", &stsd_core::ids::format_account(account))
            .await?
        {
            return Box::pin(self.init_account(requested)).await;
        }
        Ok(account)
    }

    // ---- access keys ----

    /// A secret access key encrypted under the master key, bound to its key id.
    fn seal_key_secret(&self, access_key_id: &str, secret: &Secret) -> Vec<u8> {
        self.master.encrypt(
            &access_key_context(access_key_id),
            secret.expose().as_bytes(),
        )
    }

    /// An access key from a row whose first ten columns are `access_key`'s, in its order (the root's
    /// keys have no user: columns 5–9 are then not read).
    fn access_key_from_row(&self, row: &dyn Cols) -> Result<AccessKey> {
        let id = row.text(0)?;
        let blob = row.blob(1)?;
        let secret = self.master.decrypt(&access_key_context(&id), &blob)?;
        let secret = Secret::new(
            String::from_utf8(secret.to_vec())
                .map_err(|_| StoreError::Crypto(CryptoError::Decrypt))?,
        );
        let owner = match row.opt_text(4)? {
            None => Owner::Root,
            Some(user_id) => Owner::User(User {
                user_id,
                name: row.text(5)?,
                path: row.text(6)?,
                created_at: row.int(7)?,
                sessions_not_before: row.int(8)?,
            }),
        };
        let status = row.text(2)?;
        let mfa_required = match owner {
            Owner::Root => false,
            Owner::User(_) => row.int(9)? != 0,
        };
        Ok(AccessKey {
            access_key_id: id,
            owner,
            secret,
            status: KeyStatus::parse(&status),
            created_at: row.int(3)?,
            owner_mfa_required: mfa_required,
        })
    }

    /// Looks up a long-term access key (with its owner) by id.
    ///
    /// On a SQLite file the read runs on the calling thread (see `inline`).
    ///
    /// # Errors
    /// Database errors; [`StoreError::Crypto`] if its secret cannot be decrypted.
    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        const SQL: &str = "SELECT k.access_key_id, k.secret_enc, k.status, k.created_at, k.user_id, \
             u.name, u.path, u.created_at AS user_created_at, u.sessions_not_before, u.mfa_required \
             FROM access_keys k LEFT JOIN users u ON u.user_id = k.user_id \
             WHERE k.access_key_id = $1";
        self.read_row(SQL, &[access_key_id], |r| self.access_key_from_row(r))
            .await
    }

    /// [`Self::access_key`] and [`Self::mfa_device`] in one statement, for a request that names an MFA
    /// device and whose key is not cached (a sign-in with MFA): one round trip instead of two. `None`
    /// when the key does not exist (the device is then not needed); the device is `None` when it does
    /// not exist.
    ///
    /// On a SQLite file the read runs on the calling thread (see `inline`).
    ///
    /// # Errors
    /// Database errors; [`StoreError::Crypto`] if a secret or seed cannot be decrypted.
    pub async fn access_key_and_mfa_device(
        &self,
        access_key_id: &str,
        serial: &str,
    ) -> Result<Option<(AccessKey, Option<MfaDevice>)>> {
        // The key's ten columns as in `access_key`, then the device's in `DEVICE_COLS` order, renamed so
        // that no name is shared with the key's (the device is decoded by position).
        const KEY_COLUMNS: usize = 10;
        const SQL: &str = "SELECT k.access_key_id, k.secret_enc, k.status, k.created_at, k.user_id, \
             u.name, u.path, u.created_at AS user_created_at, u.sessions_not_before, u.mfa_required, \
             d.serial_number AS d_serial_number, d.kind AS d_kind, d.name AS d_name, d.path AS d_path, \
             d.seed_enc AS d_seed_enc, d.created_at AS d_created_at, d.created_by AS d_created_by, \
             d.owner AS d_owner, d.enabled_at AS d_enabled_at, d.last_step AS d_last_step, \
             d.drift_steps AS d_drift_steps, d.failed_count AS d_failed_count, \
             d.locked_until AS d_locked_until \
             FROM access_keys k LEFT JOIN users u ON u.user_id = k.user_id \
             LEFT JOIN mfa_devices d ON d.serial_number = $2 \
             WHERE k.access_key_id = $1";
        let decode = |row: &dyn Cols| -> Result<(AccessKey, Option<MfaDevice>)> {
            let key = self.access_key_from_row(row)?;
            let device = match row.opt_text(KEY_COLUMNS)? {
                None => None,
                Some(_) => Some(self.device_from_row_at(row, KEY_COLUMNS)?),
            };
            Ok((key, device))
        };
        self.read_row(SQL, &[access_key_id, serial], decode).await
    }

    /// The first row of `sql` (parameters `$1`, `$2`, … are `args`, in order), decoded by `decode`: on
    /// the calling thread on a SQLite file (see `inline`), through the pool otherwise.
    async fn read_row<T>(
        &self,
        sql: &'static str,
        args: &[&str],
        decode: impl Fn(&dyn Cols) -> Result<T>,
    ) -> Result<Option<T>> {
        if let Some(readers) = &self.readers {
            return readers.read_row(sql, args, &decode);
        }
        let mut query = sqlx::query(sql);
        for arg in args {
            query = query.bind(*arg);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|r| decode(&r)).transpose()
    }

    /// The root's access keys.
    ///
    /// # Errors
    /// Database errors.
    pub async fn root_keys(&self) -> Result<Vec<AccessKey>> {
        let rows = sqlx::query(
            "SELECT k.access_key_id, k.secret_enc, k.status, k.created_at, k.user_id, \
             NULL AS name, NULL AS path, NULL AS user_created_at, NULL AS sessions_not_before \
             FROM access_keys k WHERE k.user_id IS NULL ORDER BY k.created_at, k.access_key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.access_key_from_row(r)).collect()
    }

    /// Stores a new root access key, refusing a third one (at most [`MAX_ROOT_KEYS`], as AWS). The count
    /// and the insert are one atomic step: see [`Self::lock_root_keys`].
    ///
    /// # Errors
    /// [`StoreError::LimitExceeded`] when the root has its two keys already, [`StoreError::AlreadyExists`]
    /// if the id is taken; database errors.
    pub async fn insert_root_key(
        &self,
        access_key_id: &str,
        secret: &Secret,
        now: i64,
    ) -> Result<()> {
        let blob = self.seal_key_secret(access_key_id, secret);
        let mut tx = self.pool.begin().await?;
        Self::lock_root_keys(&mut tx).await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE user_id IS NULL")
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_ROOT_KEYS {
            return Err(StoreError::LimitExceeded);
        }
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, user_id, secret_enc, status, created_at) VALUES ($1, NULL, $2, 'Active', $3)",
        )
        .bind(access_key_id)
        .bind(blob)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { e.into() })?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces every root access key by a new one in one transaction (`stsd admin root rotate`); returns
    /// the ids of the keys removed.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if the id is taken; database errors.
    pub async fn rotate_root_key(
        &self,
        access_key_id: &str,
        secret: &Secret,
        now: i64,
    ) -> Result<Vec<String>> {
        let blob = self.seal_key_secret(access_key_id, secret);
        let mut tx = self.pool.begin().await?;
        Self::lock_root_keys(&mut tx).await?;
        let old: Vec<String> =
            sqlx::query_scalar("SELECT access_key_id FROM access_keys WHERE user_id IS NULL")
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM access_keys WHERE user_id IS NULL")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, user_id, secret_enc, status, created_at) VALUES ($1, NULL, $2, 'Active', $3)",
        )
        .bind(access_key_id)
        .bind(blob)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { e.into() })?;
        tx.commit().await?;
        Ok(old)
    }

    /// Serialises the transactions that add root keys, so that counting them and inserting one is atomic:
    /// a write to one marker row takes that row's lock on PostgreSQL (a concurrent transaction waits, then
    /// its next statement sees the committed key) and the database's write lock on SQLite.
    async fn lock_root_keys(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
        sqlx::query(
            "INSERT INTO stsd_meta (name, value) VALUES ($1, '') \
             ON CONFLICT (name) DO UPDATE SET value = stsd_meta.value",
        )
        .bind("root_key_lock")
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Deletes an access key (root's or a user's); returns whether it existed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_root_key(&self, access_key_id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1 AND user_id IS NULL")
            .bind(access_key_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Runs a small write transaction, `job` with `args`: on SQLite through the group commit (see
    /// `group`: with other waiting writes in one transaction, inside its own savepoint unless
    /// `savepoint` is false, which only a job that is never refused after it wrote may say, e.g. one
    /// of a single statement; it may run twice, the first run rolled back, hence the borrowed
    /// arguments), on PostgreSQL in a transaction of its own. The job must do all its work on the
    /// connection it is given.
    pub(crate) async fn write<A, T, F>(&self, savepoint: bool, args: A, job: F) -> Result<T>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
        F: group::WriteJob<A, T>,
    {
        match self.dialect {
            Dialect::Sqlite => self.writer.run(savepoint, args, job).await,
            Dialect::Postgres => group::run_direct(&self.pool, &args, job).await,
        }
    }

    // ---- users ----

    /// Creates an IAM user (`name` unique case-insensitively).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; database errors.
    pub async fn create_user(&self, user: &User) -> Result<()> {
        self.create_user_with_policies(user, &[], 0).await
    }

    /// Creates an IAM user with managed policies attached (the server's default user policies: ARN and,
    /// for customer managed ones, the policy id), all in one transaction: a policy that cannot be
    /// attached leaves no user behind.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; as [`Self::attach_policy`] for the policies (`NotFound`: a
    /// customer managed policy is gone); database errors.
    pub async fn create_user_with_policies(
        &self,
        user: &User,
        policies: &[(String, Option<String>)],
        max_policies: i64,
    ) -> Result<()> {
        // A savepoint when a policy may refuse the job after the user row was written.
        let savepoint = !policies.is_empty();
        let args = (user.clone(), policies.to_vec());
        self.write(savepoint, args, move |c, (user, policies)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO users (user_id, name, name_key, path, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&user.user_id)
                .bind(&user.name)
                .bind(user.name.to_lowercase())
                .bind(&user.path)
                .bind(user.created_at)
                .execute(&mut *c)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { e.into() })?;
                for (arn, policy_id) in policies {
                    let attachment = policy::Attachment {
                        kind: policy::EntityKind::User,
                        entity_id: &user.user_id,
                        arn,
                        policy_id: policy_id.as_deref(),
                        max: max_policies,
                        now: user.created_at,
                    };
                    policy::attach_on(&mut *c, &attachment).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Stores a new access key for a user, refusing a third one (at most 2 per user, as IAM).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (no such user), [`StoreError::LimitExceeded`],
    /// [`StoreError::AlreadyExists`] (the key id is taken; nothing was written), database errors.
    pub async fn insert_user_key(
        &self,
        user_id: &str,
        access_key_id: &str,
        secret: &Secret,
        now: i64,
    ) -> Result<()> {
        let blob = self.seal_key_secret(access_key_id, secret);
        let args = (user_id.to_owned(), access_key_id.to_owned(), blob);
        // No savepoint: the job is refused only when its first statement changed nothing or after it
        // undid that change itself; an error after that is the database's, which ends the batch.
        self.write(false, args, move |c, (user_id, access_key_id, blob)| {
            Box::pin(async move {
                // The conditional counter update takes the row's write lock on both backends, so
                // concurrent creations for one user serialise here and the limit holds.
                let bumped = sqlx::query(
                    "UPDATE users SET key_count = key_count + 1 WHERE user_id = $1 AND key_count < 2",
                )
                .bind(user_id)
                .execute(&mut *c)
                .await?;
                if bumped.rows_affected() != 1 {
                    return Err(
                        refusal(c, "users", "user_id", user_id, StoreError::LimitExceeded).await?,
                    );
                }
                let inserted = sqlx::query(
                    "INSERT INTO access_keys (access_key_id, user_id, secret_enc, status, created_at) \
                     VALUES ($1, $2, $3, 'Active', $4) ON CONFLICT (access_key_id) DO NOTHING",
                )
                .bind(access_key_id)
                .bind(user_id)
                .bind(blob)
                .bind(now)
                .execute(&mut *c)
                .await?;
                if inserted.rows_affected() != 1 {
                    // The id is taken (ids carry 39 random bits): undo the count, so the job leaves
                    // nothing written without a savepoint, and let the caller draw another id.
                    sqlx::query("UPDATE users SET key_count = key_count - 1 WHERE user_id = $1")
                        .bind(user_id)
                        .execute(&mut *c)
                        .await?;
                    return Err(StoreError::AlreadyExists);
                }
                Ok(())
            })
        })
        .await
    }

    /// Imports users, each with one active access key, in one transaction: all of them or none
    /// (bulk loading; the IAM API creates users one at a time). Rows go in as multi-row INSERTs of
    /// [`IMPORT_ROWS_PER_STATEMENT`], so a batch of thousands costs a few statements and one commit.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when a name (case-insensitively), user id or key id is taken
    /// (nothing of the batch is stored); database errors.
    pub async fn import_users_with_keys(&self, users: &[ImportedUser]) -> Result<()> {
        let blobs: Vec<Vec<u8>> = users
            .iter()
            .map(|u| self.seal_key_secret(&u.access_key_id, &u.secret))
            .collect();
        // Rows go in in key order: each B-tree page is then visited once per batch, in order, instead
        // of once per row at random (on a large table that is most of the import's time).
        let mut by_user: Vec<&ImportedUser> = users.iter().collect();
        by_user.sort_unstable_by(|a, b| a.user.user_id.cmp(&b.user.user_id));
        let mut by_key: Vec<(&ImportedUser, &Vec<u8>)> = users.iter().zip(&blobs).collect();
        by_key.sort_unstable_by(|a, b| a.0.access_key_id.cmp(&b.0.access_key_id));
        let mut tx = self.pool.begin().await?;
        for chunk in by_user.chunks(IMPORT_ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO users (user_id, name, name_key, path, created_at, key_count) VALUES ",
                chunk.len(),
                6,
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for u in chunk {
                q = q
                    .bind(u.user.user_id.as_str())
                    .bind(u.user.name.as_str())
                    .bind(u.user.name.to_lowercase())
                    .bind(u.user.path.as_str())
                    .bind(u.user.created_at)
                    .bind(1_i64);
            }
            q.execute(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists
                } else {
                    e.into()
                }
            })?;
        }
        for chunk in by_key.chunks(IMPORT_ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO access_keys (access_key_id, user_id, secret_enc, status, created_at) VALUES ",
                chunk.len(),
                5,
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (u, blob) in chunk {
                q = q
                    .bind(u.access_key_id.as_str())
                    .bind(u.user.user_id.as_str())
                    .bind(blob.as_slice())
                    .bind("Active")
                    .bind(u.key_created_at);
            }
            q.execute(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists
                } else {
                    e.into()
                }
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- token key ring ----

    /// Loads every non-retired token key into a key ring whose signing key is the newest key already
    /// valid at `now`. Creates the first key when there is none.
    ///
    /// # Errors
    /// Database or decryption errors.
    pub async fn load_key_ring(&self, now: i64) -> Result<KeyRing> {
        let rows = sqlx::query(
            "SELECT key_id, key_enc, valid_from FROM token_keys WHERE retired_at IS NULL ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            // Several nodes may start on an empty database at once: all of them try key 1 and exactly
            // one insert wins, so every node ends up with the same single key.
            self.create_first_token_key(now).await?;
            return Box::pin(self.load_key_ring(now)).await;
        }
        let mut ring = KeyRing::new();
        let mut signing: Option<(i64, i64)> = None;
        for row in &rows {
            let id: i64 = row.try_get("key_id")?;
            let blob: Vec<u8> = row.try_get("key_enc")?;
            let valid_from: i64 = row.try_get("valid_from")?;
            let bytes = self.master.decrypt(&token_key_context(id), &blob)?;
            let id32 = u32::try_from(id)
                .map_err(|_| StoreError::Mismatch(format!("token key id {id} out of range")))?;
            ring.insert(id32, &bytes)?;
            if valid_from <= now && signing.is_none_or(|(_, vf)| valid_from >= vf) {
                signing = Some((id, valid_from));
            }
        }
        match signing {
            Some((id, _)) => {
                ring.set_signing(u32::try_from(id).unwrap_or_default());
            }
            // Every key is scheduled for the future: seal with the oldest until then.
            None => {
                if let Some(first) = ring.key_ids().first() {
                    ring.set_signing(*first);
                }
            }
        }
        Ok(ring)
    }

    async fn create_first_token_key(&self, now: i64) -> Result<()> {
        let bytes = SealingKey::generate_bytes();
        let blob = self.master.encrypt(&token_key_context(1), bytes.as_ref());
        match sqlx::query(
            "INSERT INTO token_keys (key_id, key_enc, created_at, valid_from) VALUES ($1, $2, $3, $4)",
        )
        .bind(1i64)
        .bind(blob)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the account's first root key unless another node stored one first (returns false then).
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_first_root_key(
        &self,
        access_key_id: &str,
        secret: &Secret,
        now: i64,
    ) -> Result<bool> {
        let blob = self.seal_key_secret(access_key_id, secret);
        let mut tx = self.pool.begin().await?;
        // The marker row is the arbiter: of concurrent first starts, one insert wins.
        match sqlx::query("INSERT INTO stsd_meta (name, value) VALUES ($1, $2)")
            .bind("root_key_created")
            .bind(access_key_id)
            .execute(&mut *tx)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, user_id, secret_enc, status, created_at) VALUES ($1, NULL, $2, 'Active', $3)",
        )
        .bind(access_key_id)
        .bind(blob)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Creates a token key that becomes the signing key at `valid_from`; returns its id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn create_token_key(&self, valid_from: i64) -> Result<i64> {
        loop {
            let next: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(key_id), 0) + 1 FROM token_keys")
                    .fetch_one(&self.pool)
                    .await?;
            let bytes = SealingKey::generate_bytes();
            let blob = self
                .master
                .encrypt(&token_key_context(next), bytes.as_ref());
            match sqlx::query(
                "INSERT INTO token_keys (key_id, key_enc, created_at, valid_from) VALUES ($1, $2, $3, $4)",
            )
            .bind(next)
            .bind(blob)
            .bind(stsd_core::timefmt::now_unix())
            .bind(valid_from)
            .execute(&self.pool)
            .await
            {
                Ok(_) => return Ok(next),
                // Another node took this id at the same moment: try the next one.
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

pub(crate) fn encode_hex(b: &[u8]) -> String {
    let mut out = String::with_capacity(2 * b.len());
    push_hex(&mut out, b);
    out
}

/// Appends `b` to `out` in lower-case hex (a table, not the formatter: the MFA acceptances write
/// every device's sealed seed this way, see `group::accept_steps`).
pub(crate) fn push_hex(out: &mut String, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * b.len());
    for x in b {
        out.push(char::from(DIGITS[usize::from(x >> 4)]));
        out.push(char::from(DIGITS[usize::from(x & 0x0f)]));
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod unavailable_tests {
    //! Which database failures mean "retry later" (503), checked on real SQLite errors where SQLite can
    //! produce them on demand, and on the codes themselves.
    use super::*;

    async fn sqlite_pool(url: &str) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("open SQLite")
    }

    /// A fresh path for a test database in the temporary directory (also used by `group`'s tests).
    pub(crate) fn temp_db(tag: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("stsd-{tag}-{}-{nanos}.db", std::process::id()))
    }

    /// Removes a test database and its companion files.
    pub(crate) fn remove_db(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn a_full_sqlite_database_is_unavailable() {
        // max_page_count makes SQLite answer SQLITE_FULL (13) exactly as a full disk does.
        let pool = sqlite_pool("sqlite::memory:").await;
        sqlx::raw_sql("CREATE TABLE t (v TEXT); PRAGMA max_page_count = 8;")
            .execute(&pool)
            .await
            .expect("set up");
        let mut failure = None;
        for _ in 0..1000 {
            if let Err(e) = sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind("x".repeat(1000))
                .execute(&pool)
                .await
            {
                failure = Some(e);
                break;
            }
        }
        let e = StoreError::from(failure.expect("the 8-page database never filled up"));
        let StoreError::Db(sqlx::Error::Database(d)) = &e else {
            panic!("not a database error: {e:?}");
        };
        assert_eq!(d.code().as_deref(), Some("13"), "{e}");
        assert!(e.is_unavailable(), "{e}");
    }

    #[tokio::test]
    async fn a_read_only_sqlite_database_is_unavailable() {
        let path = temp_db("ro");
        let rw = sqlite_pool(&format!("sqlite://{}?mode=rwc", path.display())).await;
        sqlx::raw_sql("CREATE TABLE t (v TEXT)")
            .execute(&rw)
            .await
            .expect("create");
        rw.close().await;
        let ro = sqlite_pool(&format!("sqlite://{}?mode=ro", path.display())).await;
        let read: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&ro)
            .await;
        let write = sqlx::query("INSERT INTO t (v) VALUES ('x')")
            .execute(&ro)
            .await;
        ro.close().await;
        remove_db(&path);
        assert!(read.is_ok(), "reads work on a read-only database: {read:?}");
        let e = StoreError::from(write.expect_err("a read-only database took a write"));
        let StoreError::Db(sqlx::Error::Database(d)) = &e else {
            panic!("not a database error: {e:?}");
        };
        assert_eq!(
            d.code().map(|c| c.parse::<u32>().map(|c| c & 0xff)),
            Some(Ok(8)),
            "{e}"
        );
        assert!(e.is_unavailable(), "{e}");
    }

    #[tokio::test]
    async fn a_connection_left_in_a_failed_transaction_is_not_reused() {
        use sqlx::Connection;
        let path = temp_db("release");
        let master = SealingKey::from_bytes(SealingKey::generate_bytes().as_ref()).expect("key");
        let opts = OpenOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(2),
            sqlite_cache_kib: None,
        };
        let store = Store::open_sqlite(&path, master, &opts)
            .await
            .expect("open store");
        sqlx::raw_sql("CREATE TABLE filler (v TEXT)")
            .execute(&store.pool)
            .await
            .expect("create");
        // A transaction that fills the database: SQLite answers SQLITE_FULL and rolls the transaction back
        // by itself (max_page_count is per connection, so only this one is limited).
        let mut tx = store.pool.begin().await.expect("begin");
        sqlx::raw_sql("PRAGMA max_page_count = 64")
            .execute(&mut *tx)
            .await
            .expect("limit");
        let mut full = None;
        for _ in 0..1000 {
            if let Err(e) = sqlx::query("INSERT INTO filler (v) VALUES ($1)")
                .bind("x".repeat(2000))
                .execute(&mut *tx)
                .await
            {
                full = Some(e);
                break;
            }
        }
        let full = StoreError::from(full.expect("the database never filled up"));
        assert!(full.is_unavailable(), "{full}");
        assert!(
            tx.commit().await.is_err(),
            "a transaction SQLite rolled back committed"
        );
        // The pool's only connection: it must not still count as being inside that transaction (its next
        // BEGIN would be a SAVEPOINT whose RELEASE does not commit), and a write through it is durable.
        let mut conn = store.pool.acquire().await.expect("acquire");
        assert!(
            !conn.is_in_transaction(),
            "the failed transaction's connection was reused"
        );
        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("INSERT INTO filler (v) VALUES ('after')")
            .execute(&mut *tx)
            .await
            .expect("insert after");
        tx.commit().await.expect("commit after");
        drop(conn);
        store.close().await;
        let reopened = sqlite_pool(&format!("sqlite://{}?mode=ro", path.display())).await;
        let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM filler WHERE v = 'after'")
            .fetch_one(&reopened)
            .await
            .expect("count");
        reopened.close().await;
        remove_db(&path);
        assert_eq!(
            after, 1,
            "the write committed after the failure is not in the database"
        );
    }

    #[test]
    fn multi_row_insert_numbers_every_placeholder() {
        use super::{Dialect, multi_row_insert};
        assert_eq!(
            multi_row_insert(Dialect::Postgres, "INSERT INTO t (a, b) VALUES ", 3, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6)"
        );
        assert_eq!(
            multi_row_insert(Dialect::Sqlite, "INSERT INTO t (a, b) VALUES ", 2, 2),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(multi_row_insert(Dialect::Postgres, "X ", 1, 1), "X ($1)");
    }

    #[tokio::test]
    async fn request_errors_are_not_unavailable() {
        let pool = sqlite_pool("sqlite::memory:").await;
        sqlx::raw_sql("CREATE TABLE t (v TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .expect("set up");
        sqlx::query("INSERT INTO t (v) VALUES ('a')")
            .execute(&pool)
            .await
            .expect("first insert");
        let dup = sqlx::query("INSERT INTO t (v) VALUES ('a')")
            .execute(&pool)
            .await
            .expect_err("duplicate accepted");
        assert!(is_unique_violation(&dup));
        assert!(!StoreError::from(dup).is_unavailable());
        let syntax = sqlx::raw_sql("SELEKT 1")
            .execute(&pool)
            .await
            .expect_err("bad SQL accepted");
        assert!(!StoreError::from(syntax).is_unavailable());
        assert!(!StoreError::NotFound.is_unavailable());
        assert!(!StoreError::Mismatch("x".into()).is_unavailable());
        assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(
            StoreError::Db(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset
            )))
            .is_unavailable()
        );
    }

    #[test]
    fn sqlite_codes() {
        // primary and extended codes: BUSY_TIMEOUT 773, LOCKED_SHAREDCACHE 262, READONLY_RECOVERY 264,
        // IOERR_WRITE 778, IOERR_FSYNC 1034, FULL 13, CANTOPEN 14, NOMEM 7
        for c in [
            "5", "773", "6", "262", "8", "264", "10", "778", "1034", "13", "14", "7",
        ] {
            assert!(sqlite_code_unavailable(c), "{c}");
        }
        // CORRUPT 11, NOTADB 26, CONSTRAINT_UNIQUE 2067, ERROR 1, MISMATCH 20, not a number
        for c in ["11", "26", "2067", "1", "20", "", "x13"] {
            assert!(!sqlite_code_unavailable(c), "{c}");
        }
    }

    #[test]
    fn postgres_states() {
        for s in [
            "08006", "08001", "53100", "53300", "57P01", "57P03", "58030", "25006",
        ] {
            assert!(postgres_state_unavailable(s), "{s}");
        }
        for s in [
            "23505", "40001", "42601", "42501", "XX000", "22001", "25P02",
        ] {
            assert!(!postgres_state_unavailable(s), "{s}");
        }
    }
}

#[cfg(test)]
mod hex_tests {
    /// The table against the formatter, for every byte, and back through `decode_hex`.
    #[test]
    fn hex_is_the_formatters_and_decodes_back() {
        let all: Vec<u8> = (0..=255u8).collect();
        let want: String = all.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(super::encode_hex(&all), want);
        assert_eq!(super::decode_hex(&want), Some(all));
        let mut out = "x".to_owned();
        super::push_hex(&mut out, &[0xab, 0x01]);
        assert_eq!(out, "xab01");
    }
}
