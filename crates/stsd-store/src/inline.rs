//! Point reads on SQLite run on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own: each query is a message to that thread
//! and an answer back, two thread wake-ups and context switches, which on a small machine cost more
//! than the read itself. A sign-in with MFA reads its access key and its device (the key is not yet
//! cached: the sign-in is its first use), so in a burst of sign-ins those hand-offs were a large part
//! of the work (issue 20, bench/README.md "sixth round"). The reads on that path (`Store::access_key`,
//! `Store::access_key_and_mfa_device` and `Store::mfa_device`: one row through primary keys), and the
//! user lookups that IAM calls make first (`Store::user_by_name`, `Store::user_by_id`: one row through
//! a unique index), therefore run here, on a few read-only rusqlite connections to the same file, on
//! the caller's thread and without an await.
//!
//! Why this is safe to do on an async worker: with WAL, readers never wait for the writer (SQLite's
//! only reader waits are a WAL recovery after a crash and a checkpoint that truncates the WAL, both
//! bounded by the busy timeout), and a point read through two indexes touches a handful of pages, in
//! the OS page cache after the first use. Each read runs in its own implicit transaction, so it sees
//! every commit made before it started, through the pool or the writer, as the pool's reads do.
//!
//! In-memory databases (tests) are private to a connection, so there the reads stay on the pool.

use crate::Result;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Idle connections kept; a reader beyond them is opened for the read and closed after it. At most one
/// read runs per thread at a time (no await inside), so a node needs about one per runtime thread.
const MAX_IDLE: usize = 16;
/// How long a read waits for SQLite's locks (WAL recovery, a truncating checkpoint) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Read-only connections to one SQLite file, used on the calling thread.
pub(crate) struct InlineReaders {
    path: String,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// Set by `close`: connections are then closed after each read instead of kept.
    closed: AtomicBool,
}

impl std::fmt::Debug for InlineReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReaders")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl InlineReaders {
    /// Readers for a `sqlite://PATH[?…]` URL naming a file; `None` for an in-memory database.
    pub(crate) fn for_url(url: &str) -> Option<InlineReaders> {
        let rest = url.strip_prefix("sqlite://")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
            return None;
        }
        Some(InlineReaders {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    fn open(&self) -> Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let c = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(BUSY_TIMEOUT)?;
        Ok(c)
    }

    /// Closes the idle connections (at shutdown, before the pool: see `Store::close`). A read after this
    /// opens a connection of its own and closes it after.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }

    /// The first row of `sql` (parameters `$1`, `$2`, … are `args`, in order), decoded by `decode`.
    ///
    /// # Errors
    /// The connection cannot be opened; the statement's errors; whatever `decode` returns.
    pub(crate) fn read_row<T>(
        &self,
        sql: &str,
        args: &[&str],
        decode: &dyn Fn(&dyn Cols) -> Result<T>,
    ) -> Result<Option<T>> {
        let names: Vec<String> = (1..=args.len()).map(|i| format!("${i}")).collect();
        let params: Vec<(&str, &dyn rusqlite::ToSql)> = names
            .iter()
            .zip(args)
            .map(|(n, a)| (n.as_str(), a as &dyn rusqlite::ToSql))
            .collect();
        self.read(|c| {
            let mut st = c.prepare_cached(sql)?;
            let mut rows = st.query(params.as_slice())?;
            rows.next()?.map(|r| decode(r)).transpose()
        })
    }

    /// Runs `read` on an idle connection (or a new one) on this thread.
    ///
    /// # Errors
    /// The connection cannot be opened; whatever `read` returns.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let out = read(&conn);
        // A connection is returned even after an error of the read: the statement's own error leaves the
        // connection usable (it holds no transaction once the statement is reset).
        if let Ok(mut v) = self.idle.lock()
            && v.len() < MAX_IDLE
            && !self.closed.load(Ordering::SeqCst)
        {
            v.push(conn);
        }
        out
    }
}

/// A result row read by column position, from either driver: sqlx's for the pool, rusqlite's for the
/// inline reads. Each entity is decoded from it in one place.
pub(crate) trait Cols {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn blob(&self, i: usize) -> Result<Vec<u8>>;
}

impl Cols for sqlx::any::AnyRow {
    fn text(&self, i: usize) -> Result<String> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>> {
        Ok(self.get(i)?)
    }
}

#[cfg(test)]
mod tests {
    use super::InlineReaders;

    /// The bundled SQLite (one build, shared by sqlx and rusqlite) is compiled with the options of
    /// `.cargo/config.toml`: each page cache its own, with a first allocation of pages it keeps.
    #[test]
    fn sqlite_is_built_with_our_options() {
        let c = rusqlite::Connection::open_in_memory().expect("open");
        let mut q = c.prepare("PRAGMA compile_options").expect("prepare");
        let options: Vec<String> = q
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        assert!(
            options.iter().any(|o| o == "DEFAULT_PCACHE_INITSZ=64"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[test]
    fn only_file_urls_get_inline_readers() {
        assert!(InlineReaders::for_url("sqlite::memory:").is_none());
        assert!(InlineReaders::for_url("sqlite://:memory:").is_none());
        assert!(InlineReaders::for_url("sqlite://x.db?mode=memory&cache=shared").is_none());
        assert!(InlineReaders::for_url("postgres://h/db").is_none());
        let r = InlineReaders::for_url("sqlite:///data/stsd.db?mode=rwc").expect("a file");
        assert_eq!(r.path, "/data/stsd.db");
    }

    #[test]
    fn a_read_sees_every_commit_made_before_it() {
        let dir = std::env::temp_dir().join(format!("stsd_inline_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        let w = rusqlite::Connection::open(&path).expect("open");
        w.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER);")
            .expect("schema");
        let r = InlineReaders::for_url(&format!("sqlite://{}?mode=rwc", path.display()))
            .expect("a file");
        let count = |r: &InlineReaders| {
            r.read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))?))
                .expect("read")
        };
        assert_eq!(count(&r), 0);
        for n in 1..=3 {
            w.execute("INSERT INTO t VALUES (?1)", [n]).expect("insert");
            // The idle connection is reused and still sees the new commit.
            assert_eq!(count(&r), n);
        }
        assert_eq!(r.idle.lock().expect("lock").len(), 1);
        // A write through a reader is refused: the connections are read-only.
        let refused = r.read(|c| Ok(c.execute("INSERT INTO t VALUES (9)", [])?));
        assert!(refused.is_err());
        assert_eq!(count(&r), 3);
        // After close, reads still work but keep no connection open.
        r.close();
        assert_eq!(count(&r), 3);
        assert!(r.idle.lock().expect("lock").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
