//! Group commit of the frequent small writes on SQLite: MFA step acceptances, the IAM writes that
//! come in bursts (CreateUser, CreateAccessKey, CreateVirtualMFADevice, EnableMFADevice) and the access
//! keys' last use.
//!
//! SQLite commits one transaction at a time and each commit waits for an fsync (`synchronous=FULL`),
//! so concurrent writers used to queue behind one fsync each (and behind SQLite's busy handler, which
//! sleeps). On SQLite these writes therefore go through one writer task: it takes every job waiting
//! when it is free and runs them, in arrival order, in one transaction, each job inside its own
//! SAVEPOINT (a job that is refused, if at all, before it writes needs none, e.g. one of a single
//! statement: SQLite undoes a failed statement by itself): one
//! fsync for the batch. A job refused for a reason of its own (a name taken, a limit reached, no such
//! entity) is rolled back to its savepoint alone and its caller gets that answer; the others go on.
//! Any other error (the database's) ends the batch, since SQLite may have rolled back the whole
//! transaction. Each job sees the ones before it (a code presented twice
//! in one batch wins once), and each caller hears only after the commit, so an answer never precedes
//! durability. If the batch fails as a whole (its BEGIN, a savepoint or the COMMIT), its jobs are run
//! again one by one, each in its own transaction, so each caller gets its own result or its own error
//! and nothing is half-written. Jobs are therefore `Fn`: they may run twice, the first run rolled back.
//!
//! Step acceptances are the most frequent job and the simplest: one conditional UPDATE each. The
//! writer runs consecutive ones for distinct devices as one statement (`UPDATE … FROM (VALUES …)
//! RETURNING`, the asks as bound parameters), which gives the same answers as running them one after another: each row of the
//! statement touches a device of its own. A device that comes again starts the next statement, so a
//! code presented twice still wins once. A batch made only of step acceptances (a burst of sign-ins)
//! needs no transaction around them: each such statement runs on its own and commits by itself (one
//! fsync per statement, and one round trip to the connection instead of three, which on a busy
//! machine each wait for a thread to be scheduled).
//!
//! A job must do all its work on the connection it is given: the writer holds SQLite's write lock
//! while the batch runs, so a write through the pool from inside a job would wait for itself.
//!
//! PostgreSQL commits concurrent transactions together by itself, and several nodes share it, so there
//! the IAM writes run directly, each in a transaction of its own. Step acceptances still go through the
//! writer there: it runs the ones waiting, for distinct devices, as one statement of its own
//! (`UPDATE … FROM json_array_elements(…) RETURNING`, committed by itself), instead of one statement
//! and one commit per code, each holding a pooled connection for its round trips. Another node may
//! accept codes for the same devices at the same time: the conditions of the UPDATE make each step win
//! once across nodes, and the devices are listed in serial-number order so that two nodes' statements
//! lock common rows in the same order. Should one fail anyway (a deadlock), its acceptances run again
//! one by one; when the database is unavailable, each of them gets that answer at once.

use crate::Result;
use crate::migrations::Dialect;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool, Connection};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What a job returns: a boxed future borrowing the connection it was given.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write job: on the connection it is given, with the arguments it borrows, a future of its result.
pub(crate) trait WriteJob<A, T>:
    for<'c> Fn(&'c mut AnyConnection, &'c A) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static
{
}

impl<A, T, F> WriteJob<A, T> for F where
    F: for<'c> Fn(&'c mut AnyConnection, &'c A) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static
{
}

/// Jobs one batch takes at most.
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer at most (senders wait beyond that).
const QUEUE: usize = 1024;

/// The conditional UPDATE that accepts a step for a device (see `Store::mfa_accept_step`).
pub(crate) async fn accept_step(c: &mut AnyConnection, ask: &StepAccept) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE mfa_devices SET last_step = $1, failed_count = 0, first_failed_at = NULL \
         WHERE serial_number = $2 AND owner = $3 AND drift_steps = $4 AND seed_enc = $5 \
         AND (last_step IS NULL OR last_step < $1) AND (locked_until IS NULL OR locked_until <= $6)",
    )
    .bind(ask.step)
    .bind(&ask.serial)
    .bind(&ask.owner)
    .bind(ask.drift_steps)
    .bind(&ask.sealed_seed)
    .bind(ask.now)
    .execute(c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Accepts several steps, each for a device of its own, with one statement: the same conditional
/// UPDATE as [`accept_step`] for every ask. Returns, for each, whether it was accepted. The serials
/// must be distinct (one row of the UPDATE per device).
async fn accept_steps(
    c: &mut AnyConnection,
    dialect: Dialect,
    asks: &[&StepAccept],
) -> Result<Vec<bool>> {
    // In serial-number order (see the module).
    let mut sorted = asks.to_vec();
    sorted.sort_unstable_by(|a, b| a.serial.cmp(&b.serial));
    let accepted: Vec<(String,)> = match dialect {
        Dialect::Sqlite => {
            // The asks as bound parameters of a VALUES list, six per row; the list is padded with rows
            // of NULLs (which match no device) up to the next size of [`accept_rows`], so that a few
            // dozen statements serve every batch size and stay prepared.
            // A batch holds at most MAX_BATCH jobs; chunks keep any longer list within the statements.
            let mut accepted = Vec::with_capacity(sorted.len());
            for chunk in sorted.chunks(MAX_BATCH) {
                let rows = accept_rows(chunk.len());
                let mut q = sqlx::query_as(sqlite_accept_statement(rows));
                for a in chunk {
                    q = q
                        .bind(a.serial.as_str())
                        .bind(a.step)
                        .bind(a.now)
                        .bind(a.owner.as_str())
                        .bind(a.drift_steps)
                        .bind(a.sealed_seed.as_slice());
                }
                for _ in chunk.len()..rows {
                    q = q
                        .bind(None::<&str>)
                        .bind(None::<i64>)
                        .bind(None::<i64>)
                        .bind(None::<&str>)
                        .bind(None::<i64>)
                        .bind(None::<&[u8]>);
                }
                accepted.extend(q.fetch_all(&mut *c).await?);
            }
            accepted
        }
        Dialect::Postgres => {
            use std::fmt::Write as _;
            // [[serial, step, now, owner, drift, sealed seed in hex], …]
            let mut rows = String::with_capacity(asks.len() * 256 + 2);
            rows.push('[');
            for (i, a) in sorted.iter().enumerate() {
                if i > 0 {
                    rows.push(',');
                }
                rows.push('[');
                json_string(&mut rows, &a.serial);
                let _ = write!(rows, ",{},{},", a.step, a.now);
                json_string(&mut rows, &a.owner);
                let _ = write!(rows, ",{},\"", a.drift_steps);
                crate::push_hex(&mut rows, &a.sealed_seed);
                rows.push_str("\"]");
            }
            rows.push(']');
            sqlx::query_as(
                "UPDATE mfa_devices SET last_step = (a.value ->> 1)::bigint, failed_count = 0, \
                 first_failed_at = NULL \
                 FROM json_array_elements($1::json) AS a \
                 WHERE mfa_devices.serial_number = a.value ->> 0 AND owner = a.value ->> 3 \
                 AND drift_steps = (a.value ->> 4)::bigint AND seed_enc = decode(a.value ->> 5, 'hex') \
                 AND (last_step IS NULL OR last_step < (a.value ->> 1)::bigint) \
                 AND (locked_until IS NULL OR locked_until <= (a.value ->> 2)::bigint) \
                 RETURNING mfa_devices.serial_number",
            )
            .bind(rows)
            .fetch_all(c)
            .await?
        }
    };
    Ok(asks
        .iter()
        .map(|a| accepted.iter().any(|(s,)| *s == a.serial))
        .collect())
}

/// The row counts the SQLite statement of [`accept_steps`] comes in: powers of two up to 8, then
/// multiples of 8 up to [`MAX_BATCH`]. `accept_rows(n)` is the smallest of them that holds `n` asks.
fn accept_rows(n: usize) -> usize {
    if n <= 8 {
        n.max(1).next_power_of_two()
    } else {
        n.div_ceil(8).saturating_mul(8).min(MAX_BATCH)
    }
}

/// The SQLite statement of [`accept_steps`] for `rows` rows of parameters (a value of
/// [`accept_rows`]; each built once). Columns of the VALUES list: serial, step, now, owner, drift, sealed
/// seed. Anonymous `?` parameters: SQLite looks a numbered one's name up in a list, once per bind.
fn sqlite_accept_statement(rows: usize) -> &'static str {
    static STATEMENTS: std::sync::OnceLock<Vec<(usize, String)>> = std::sync::OnceLock::new();
    let all = STATEMENTS.get_or_init(|| {
        let mut sizes = vec![1, 2, 4];
        sizes.extend((1..=MAX_BATCH / 8).map(|k| k * 8));
        sizes
            .into_iter()
            .map(|n| {
                let values = vec!["(?,?,?,?,?,?)"; n].join(",");
                let sql = format!(
                    "UPDATE mfa_devices SET last_step = a.column2, failed_count = 0, \
                     first_failed_at = NULL FROM (VALUES {values}) AS a \
                     WHERE mfa_devices.serial_number = a.column1 AND owner = a.column4 \
                     AND drift_steps = a.column5 AND seed_enc = a.column6 \
                     AND (last_step IS NULL OR last_step < a.column2) \
                     AND (locked_until IS NULL OR locked_until <= a.column3) \
                     RETURNING mfa_devices.serial_number"
                );
                (n, sql)
            })
            .collect()
    });
    all.iter()
        .find(|(n, _)| *n >= rows)
        .or(all.last())
        .map_or("", |(_, sql)| sql.as_str())
}

/// Appends `s` to `out` as a JSON string.
pub(crate) fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

type Output = Box<dyn Any + Send>;
type JobFn =
    Box<dyn for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<Output>> + Send + Sync>;

struct Job {
    /// The job run on its own (always, for a step acceptance when it runs alone or again).
    run: JobFn,
    /// False for a job that is never refused after it wrote (no savepoint needed).
    savepoint: bool,
    /// A step acceptance, which the writer may merge with its neighbours (see the module).
    step: Option<Arc<StepAccept>>,
    reply: oneshot::Sender<Result<Output>>,
}

/// What a step acceptance asks (see [`accept_step`]): the step, and the device as the code was
/// checked against it.
pub(crate) struct StepAccept {
    pub(crate) serial: String,
    pub(crate) owner: String,
    pub(crate) drift_steps: i64,
    pub(crate) sealed_seed: Vec<u8>,
    pub(crate) step: i64,
    pub(crate) now: i64,
}

/// An error that belongs to the job alone (its request was refused), after which the batch can go on.
fn refused(e: &crate::StoreError) -> bool {
    use crate::StoreError as E;
    matches!(
        e,
        E::AlreadyExists | E::NotFound | E::LimitExceeded | E::Conflict(_)
    )
}

/// The handle of the writer task; the task ends when the handle is dropped.
pub(crate) struct GroupWriter {
    tx: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(pool: AnyPool, dialect: Dialect) -> GroupWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, dialect, rx));
        GroupWriter { tx }
    }

    /// Runs `job` with `args` as part of the next batch and returns its result once the batch is
    /// committed. SQLite only (on PostgreSQL the IAM writes run directly, see the module).
    /// `savepoint` is false only for a job that is never refused after it wrote (see the module). The
    /// job may run twice (the first run rolled back), so it borrows its arguments.
    pub(crate) async fn run<A, T, F>(&self, savepoint: bool, args: A, job: F) -> Result<T>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
        F: WriteJob<A, T>,
    {
        self.submit(savepoint, None, Arc::new(args), job).await
    }

    /// Accepts a step (see [`accept_step`]) in the next batch, merged with the other acceptances next
    /// to it; the answer comes once the batch is committed.
    pub(crate) async fn accept_step(&self, ask: StepAccept) -> Result<bool> {
        let ask = Arc::new(ask);
        self.submit(false, Some(Arc::clone(&ask)), ask, |c, ask| {
            Box::pin(accept_step(c, ask))
        })
        .await
    }

    async fn submit<A, T, F>(
        &self,
        savepoint: bool,
        step: Option<Arc<StepAccept>>,
        args: Arc<A>,
        job: F,
    ) -> Result<T>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
        F: WriteJob<A, T>,
    {
        let (reply, answer) = oneshot::channel();
        let job = Arc::new(job);
        let run: JobFn = Box::new(move |c| {
            let (job, args) = (Arc::clone(&job), Arc::clone(&args));
            Box::pin(async move { job(c, &args).await.map(|v| Box::new(v) as Output) })
        });
        self.tx
            .send(Job {
                run,
                savepoint,
                step,
                reply,
            })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        // The writer drops the reply only when it stops, i.e. when the store is going away.
        let out = answer.await.map_err(|_| sqlx::Error::PoolClosed)??;
        out.downcast::<T>().map(|v| *v).map_err(|_| {
            sqlx::Error::Protocol("group commit: a job's result had another type".into()).into()
        })
    }
}

/// Runs `job` with `args` in a transaction of its own (the IAM writes on PostgreSQL).
pub(crate) async fn run_direct<A, T, F>(pool: &AnyPool, args: &A, job: F) -> Result<T>
where
    F: WriteJob<A, T>,
{
    let mut tx = pool.begin().await?;
    let v = job(&mut tx, args).await?;
    tx.commit().await?;
    Ok(v)
}

/// Runs a queued job in a transaction of its own (a batch of one, or again after a failed batch).
async fn run_alone(conn: &mut WriterConn, run: &JobFn) -> Result<Output> {
    let out = async {
        let mut tx = conn.get().await?.begin().await?;
        let v = run(&mut tx).await?;
        tx.commit().await?;
        Ok(v)
    }
    .await;
    conn.release(out.is_ok());
    out
}

/// The writer's connection. On SQLite (a file: a pool of more than one connection) the writer keeps
/// one connection from batch to batch while the pool is open: SQLite empties a connection's page cache
/// whenever another connection has committed since its last read, so a writer that took whichever
/// pooled connection was idle (the pool hands them out in turn) read every page of each batch again,
/// from the WAL, and prepared each merged statement once per connection. On PostgreSQL each statement
/// takes a pooled connection and gives it back (there a broken connection must not outlive its error).
struct WriterConn {
    pool: AnyPool,
    held: Option<PoolConnection<sqlx::Any>>,
    /// Keep the connection after a success (SQLite, until the pool closes).
    keep: bool,
}

impl WriterConn {
    fn new(pool: AnyPool, keep: bool) -> WriterConn {
        WriterConn {
            pool,
            held: None,
            keep,
        }
    }

    /// The held connection, or one from the pool.
    async fn get(&mut self) -> Result<&mut AnyConnection> {
        let c = match self.held.take() {
            Some(c) => c,
            None => self.pool.acquire().await?,
        };
        Ok(&mut **self.held.insert(c))
    }

    /// After a statement or a transaction: the connection goes back to the pool unless it is kept, what
    /// ran on it succeeded and it holds no transaction (after an error it may hold one to roll back, or
    /// be broken; the pool's release check deals with both).
    fn release(&mut self, ok: bool) {
        let clean = self.held.as_deref().is_some_and(|c| !c.is_in_transaction());
        if !(self.keep && ok && clean) {
            self.held = None;
        }
    }

    /// The pool is closing: give the connection back now (the close waits for it) and keep none.
    fn stop_keeping(&mut self) {
        self.keep = false;
        self.held = None;
    }
}

async fn writer(pool: AnyPool, dialect: Dialect, rx: mpsc::Receiver<Job>) {
    match dialect {
        Dialect::Sqlite => writer_sqlite(pool, rx).await,
        Dialect::Postgres => writer_postgres(pool, rx).await,
    }
}

/// Answers each job of a batch with its result.
fn reply(batch: &mut Vec<Job>, results: Vec<Result<Output>>) {
    for (job, result) in batch.drain(..).zip(results) {
        // A caller that gave up (its request was cancelled) no longer listens.
        let _ = job.reply.send(result);
    }
}

async fn writer_sqlite(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let closed = pool.close_event();
    tokio::pin!(closed);
    // A pool of one connection (an in-memory database) must not lose it to the writer.
    let keep = pool.options().get_max_connections() > 1;
    let mut conn = WriterConn::new(pool, keep);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            () = &mut closed, if conn.keep => {
                conn.stop_keeping();
                continue;
            }
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
        };
        if received == 0 {
            break;
        }
        let results = if batch.iter().all(|j| j.step.is_some()) {
            // Only step acceptances (a burst of sign-ins): each run of distinct devices is one statement
            // that commits by itself, one round trip to the connection instead of three (see the module).
            accept_batch(&mut conn, Dialect::Sqlite, &batch).await
        } else if let [only] = batch.as_slice() {
            vec![run_alone(&mut conn, &only.run).await]
        } else {
            let committed = commit_batch(&mut conn, &batch).await;
            match committed {
                Ok(results) => results,
                Err(e) => {
                    tracing::warn!(error = %e, jobs = batch.len(), "write batch failed; running its jobs one by one");
                    let mut results = Vec::with_capacity(batch.len());
                    for job in &batch {
                        results.push(run_alone(&mut conn, &job.run).await);
                    }
                    results
                }
            }
        };
        reply(&mut batch, results);
    }
}

async fn writer_postgres(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut conn = WriterConn::new(pool, false);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = accept_batch(&mut conn, Dialect::Postgres, &batch).await;
        reply(&mut batch, results);
    }
}

/// The step acceptances of `batch` from `*next` on, up to a job of another kind or a device that comes
/// again (those can run as one statement); advances `*next` past them.
fn distinct_acceptances<'a>(batch: &'a [Job], next: &mut usize) -> Vec<&'a StepAccept> {
    let mut asks: Vec<&StepAccept> = Vec::new();
    while let Some(ask) = batch.get(*next).and_then(|j| j.step.as_deref()) {
        if asks.iter().any(|a| a.serial == ask.serial) {
            break;
        }
        asks.push(ask);
        *next += 1;
    }
    asks
}

/// Runs a batch of step acceptances (on PostgreSQL the only jobs queued; on SQLite a batch with no
/// other job): each run of consecutive distinct devices as one statement that commits by itself. A run
/// that fails is retried one by one, unless the database is unavailable: then each of its acceptances
/// gets that answer at once.
async fn accept_batch(
    conn: &mut WriterConn,
    dialect: Dialect,
    batch: &[Job],
) -> Vec<Result<Output>> {
    let mut results = Vec::with_capacity(batch.len());
    let mut next = 0;
    while next < batch.len() {
        let start = next;
        let asks = distinct_acceptances(batch, &mut next);
        if asks.len() > 1 {
            let merged = async { accept_steps(conn.get().await?, dialect, &asks).await }.await;
            conn.release(merged.is_ok());
            match merged {
                Ok(accepted) => {
                    results.extend(accepted.into_iter().map(|a| Ok(Box::new(a) as Output)));
                    continue;
                }
                Err(e) if e.is_unavailable() => {
                    // The database is not there (unreachable, restarting, full): every acceptance of the
                    // run gets that answer now; one by one, each would wait for the pool again.
                    let text = e.to_string();
                    results.push(Err(e));
                    for _ in 1..asks.len() {
                        let again = std::io::Error::other(text.clone());
                        results.push(Err(sqlx::Error::Io(again).into()));
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = asks.len(), "merged MFA acceptances failed; running them one by one");
                }
            }
        }
        // One acceptance, or again after a failed statement: each on its own, committed by itself. (A
        // job of another kind, which this is never given, would get a transaction.)
        let jobs = batch.get(start..next.max(start + 1)).unwrap_or_default();
        next = start + jobs.len();
        for job in jobs {
            results.push(match job.step {
                Some(_) => run_autocommit(conn, &job.run).await,
                None => run_alone(conn, &job.run).await,
            });
        }
    }
    results
}

/// Runs a queued job of a single statement on a pooled connection, outside a transaction.
async fn run_autocommit(conn: &mut WriterConn, run: &JobFn) -> Result<Output> {
    let out = async { run(conn.get().await?).await }.await;
    conn.release(out.is_ok());
    out
}

/// Runs a mixed batch in one transaction on the writer's connection (see the module).
async fn commit_batch(conn: &mut WriterConn, batch: &[Job]) -> Result<Vec<Result<Output>>> {
    let out = commit_batch_on(conn.get().await?, batch).await;
    conn.release(out.is_ok());
    out
}

async fn commit_batch_on(c: &mut AnyConnection, batch: &[Job]) -> Result<Vec<Result<Output>>> {
    let mut tx = c.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    let mut next = 0;
    while let Some(job) = batch.get(next) {
        if job.step.is_some() {
            let asks = distinct_acceptances(batch, &mut next);
            for accepted in accept_steps(&mut tx, Dialect::Sqlite, &asks).await? {
                results.push(Ok(Box::new(accepted) as Output));
            }
            continue;
        }
        next += 1;
        if !job.savepoint {
            match (job.run)(&mut tx).await {
                Err(e) if !refused(&e) => return Err(e),
                result => results.push(result),
            }
            continue;
        }
        let mut savepoint = tx.begin().await?;
        match (job.run)(&mut savepoint).await {
            Ok(v) => {
                savepoint.commit().await?;
                results.push(Ok(v));
            }
            Err(e) if refused(&e) => {
                savepoint.rollback().await?;
                results.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok(results)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed step is a failed test
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn memory_pool(with_table: bool) -> AnyPool {
        sqlx::any::install_default_drivers();
        // One connection: an in-memory SQLite database lives and dies with its connection.
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        if with_table {
            sqlx::raw_sql(
                "CREATE TABLE mfa_devices (serial_number TEXT PRIMARY KEY, owner TEXT, last_step BIGINT, \
                 failed_count BIGINT, first_failed_at BIGINT, locked_until BIGINT, drift_steps BIGINT, seed_enc BLOB); \
                 INSERT INTO mfa_devices VALUES ('a', 'u', 5, 2, 1, NULL, 0, x'00'), ('b', 'u', NULL, 0, NULL, NULL, 0, x'00')",
            )
            .execute(&pool)
            .await
            .unwrap();
        }
        pool
    }

    /// An acceptance for a device of owner `u`, drift 0 and sealed seed `00` (as `memory_pool` makes).
    #[test]
    fn accept_statements_hold_every_batch_size_and_match_their_row_count() {
        for n in 1..=MAX_BATCH {
            let rows = accept_rows(n);
            assert!(rows >= n && rows <= MAX_BATCH, "{n} -> {rows}");
            assert!(rows < n + 8, "{n} -> {rows}");
            let sql = sqlite_accept_statement(rows);
            assert_eq!(sql.matches('?').count(), rows * 6, "{n}");
        }
        assert_eq!(accept_rows(3), 4);
        assert_eq!(accept_rows(9), 16);
        assert_eq!(accept_rows(19), 24);
    }

    fn ask(serial: &str, step: i64, now: i64) -> StepAccept {
        StepAccept {
            serial: serial.to_owned(),
            owner: "u".to_owned(),
            drift_steps: 0,
            sealed_seed: vec![0],
            step,
            now,
        }
    }

    fn accept(
        w: &Arc<GroupWriter>,
        serial: &'static str,
        step: i64,
    ) -> tokio::task::JoinHandle<Result<bool>> {
        let w = Arc::clone(w);
        tokio::spawn(async move { w.accept_step(ask(serial, step, 0)).await })
    }

    async fn accept_all(w: Arc<GroupWriter>, asks: &[(&'static str, i64)]) -> Vec<Result<bool>> {
        let tasks: Vec<_> = asks.iter().map(|&(s, step)| accept(&w, s, step)).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_batch_applies_each_job_after_the_ones_before_it() {
        let pool = memory_pool(true).await;
        let w = Arc::new(GroupWriter::start(pool.clone(), Dialect::Sqlite));
        // On a current-thread runtime these are usually queued before the writer runs (one batch); the
        // answers must be those of running them in order either way.
        let got = accept_all(
            Arc::clone(&w),
            &[("a", 6), ("a", 6), ("a", 5), ("b", 1), ("a", 7), ("c", 1)],
        )
        .await;
        let got: Vec<bool> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [true, false, false, true, true, false]);
        let row: (i64, i64) = sqlx::query_as(
            "SELECT last_step, failed_count FROM mfa_devices WHERE serial_number = 'a'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(row, (7, 0));
    }

    /// The merged statement against its oracle, the single UPDATE run once per device: same answers,
    /// same rows afterwards, over devices in every state (unowned, locked until before / after `now`,
    /// no step yet, with failures counted, another drift or seed than the ask's) and serials that need
    /// escaping in JSON. On SQLite, and on PostgreSQL when `STSD_TEST_DATABASE_URL` names a server (a
    /// temporary table per connection there).
    #[tokio::test]
    async fn merged_acceptances_match_one_update_per_device() {
        check_merged_against_single(Dialect::Sqlite).await;
        if std::env::var_os("STSD_TEST_DATABASE_URL").is_some() {
            check_merged_against_single(Dialect::Postgres).await;
        }
    }

    async fn check_merged_against_single(dialect: Dialect) {
        const SERIALS: [&str; 6] = [
            "a",
            "b",
            "q\"uote",
            "back\\slash",
            "tab\tx",
            "arn:aws:iam::1:mfa/é",
        ];
        async fn pool(dialect: Dialect) -> AnyPool {
            match dialect {
                Dialect::Sqlite => memory_pool(false).await,
                Dialect::Postgres => sqlx::any::AnyPoolOptions::new()
                    .max_connections(1) // one session: its temporary table
                    .connect(&std::env::var("STSD_TEST_DATABASE_URL").unwrap())
                    .await
                    .unwrap(),
            }
        }
        async fn fresh(pool: &AnyPool, dialect: Dialect) {
            // PostgreSQL: a temporary table (it hides any real one of the name for this session),
            // and only that one is dropped.
            let (old, table, blob) = match dialect {
                Dialect::Sqlite => ("mfa_devices", "TABLE", "BLOB"),
                Dialect::Postgres => ("pg_temp.mfa_devices", "TEMPORARY TABLE", "BYTEA"),
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {old}; \
                 CREATE {table} mfa_devices (serial_number TEXT PRIMARY KEY, owner TEXT, last_step BIGINT, \
                 failed_count BIGINT, first_failed_at BIGINT, locked_until BIGINT, drift_steps BIGINT, \
                 seed_enc {blob})"
            )))
            .execute(pool)
            .await
            .unwrap();
            // (owner, last_step, failed_count, first_failed_at, locked_until, drift, seed) per serial.
            type Row = (
                Option<&'static str>,
                Option<i64>,
                i64,
                Option<i64>,
                Option<i64>,
                i64,
                &'static [u8],
            );
            let states: [Row; 6] = [
                (Some("u"), Some(5), 2, Some(1), None, 0, &[0]),
                (Some("u"), None, 0, None, Some(10), 1, &[0]),
                (None, Some(3), 0, None, None, 0, &[0]),
                (Some("u"), Some(7), 1, Some(4), Some(30), 0, &[1, 2]),
                (Some("u"), None, 3, Some(2), None, 0, &[0]),
                (Some("v"), Some(6), 0, None, Some(20), 0, &[0]),
            ];
            for (serial, (owner, last, failed, first, locked, drift, seed)) in
                SERIALS.iter().zip(states)
            {
                sqlx::query("INSERT INTO mfa_devices VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(*serial)
                    .bind(owner)
                    .bind(last)
                    .bind(failed)
                    .bind(first)
                    .bind(locked)
                    .bind(drift)
                    .bind(seed.to_vec())
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        async fn rows(pool: &AnyPool) -> Vec<(String, Option<i64>, i64, Option<i64>)> {
            sqlx::query_as(
                "SELECT serial_number, last_step, failed_count, first_failed_at FROM mfa_devices \
                 ORDER BY serial_number",
            )
            .fetch_all(pool)
            .await
            .unwrap()
        }
        /// Runs `asks` merged on a fresh table in `merged_pool` and one by one on a fresh table in
        /// `single_pool`, checks that the answers and the rows agree, and returns the merged answers.
        async fn merged_matches_single(
            merged_pool: &AnyPool,
            single_pool: &AnyPool,
            dialect: Dialect,
            asks: &[StepAccept],
        ) -> Vec<bool> {
            fresh(merged_pool, dialect).await;
            let mut c = merged_pool.acquire().await.unwrap();
            let refs: Vec<&StepAccept> = asks.iter().collect();
            let merged = accept_steps(&mut c, dialect, &refs).await.unwrap();
            drop(c);
            fresh(single_pool, dialect).await;
            let mut c = single_pool.acquire().await.unwrap();
            let mut single = Vec::new();
            for a in asks {
                single.push(accept_step(&mut c, a).await.unwrap());
            }
            drop(c);
            assert_eq!(merged, single, "{dialect:?}");
            assert_eq!(
                rows(merged_pool).await,
                rows(single_pool).await,
                "{dialect:?}"
            );
            merged
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (merged_pool, single_pool) = (pool(dialect).await, pool(dialect).await);
        let mut accepted = 0;
        for _ in 0..200 {
            // Distinct serials (plus one unknown), in a random order, with random steps and times, and
            // now and then another owner, drift or seed than the device's.
            let mut asks: Vec<StepAccept> = Vec::new();
            for serial in SERIALS.iter().copied().chain(["unknown"]) {
                if next(3) > 0 {
                    let at = usize::try_from(next(asks.len() as u64 + 1)).unwrap();
                    let mut a = ask(
                        serial,
                        i64::try_from(next(10)).unwrap(),
                        i64::try_from(next(40)).unwrap(),
                    );
                    match next(8) {
                        0 => a.owner = "v".to_owned(),
                        1 => a.drift_steps = 1,
                        2 => a.sealed_seed = vec![1, 2],
                        _ => {}
                    }
                    asks.insert(at, a);
                }
            }
            let merged = merged_matches_single(&merged_pool, &single_pool, dialect, &asks).await;
            accepted += merged.iter().filter(|&&a| a).count();
        }
        // The cases are not all refusals.
        assert!(accepted > 50, "{dialect:?}: {accepted}");
        // More asks than one batch holds (SQLite: more than the largest statement's rows).
        let asks: Vec<StepAccept> = SERIALS
            .iter()
            .map(|s| (*s).to_owned())
            .chain((0..300).map(|i| format!("unknown-{i}")))
            .map(|serial| ask(&serial, 8, 20))
            .collect();
        let merged = merged_matches_single(&merged_pool, &single_pool, dialect, &asks).await;
        assert!(merged.iter().any(|&a| a), "{dialect:?}");
    }

    /// When the database is unavailable, every acceptance waiting in a batch is answered with an error
    /// that means so (503 to the client), not only the first: on PostgreSQL, and on SQLite, where a
    /// batch made only of acceptances takes the same path.
    #[tokio::test]
    async fn acceptances_all_hear_that_the_database_is_unavailable() {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let pool = memory_pool(false).await;
            let w = Arc::new(GroupWriter::start(pool.clone(), dialect));
            pool.close().await;
            let got = accept_all(w, &[("a", 1), ("b", 1), ("c", 1), ("a", 2)]).await;
            assert_eq!(got.len(), 4);
            for r in got {
                assert!(
                    matches!(&r, Err(e) if e.is_unavailable()),
                    "{dialect:?}: {r:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_failing_job_is_rolled_back_alone() {
        let pool = memory_pool(true).await;
        let w = Arc::new(GroupWriter::start(pool.clone(), Dialect::Sqlite));
        // The middle job writes, then is refused: its write must vanish, the others' must stay.
        let refused = |w: &Arc<GroupWriter>| {
            let w = Arc::clone(w);
            tokio::spawn(async move {
                w.run(true, (), |c, _| {
                    Box::pin(async move {
                        accept_step(&mut *c, &ask("b", 9, 0)).await?;
                        Err::<(), _>(crate::StoreError::LimitExceeded)
                    })
                })
                .await
            })
        };
        let first = accept(&w, "a", 8);
        let middle = refused(&w);
        let last = accept(&w, "b", 3);
        assert!(first.await.unwrap().unwrap());
        assert!(matches!(
            middle.await.unwrap(),
            Err(crate::StoreError::LimitExceeded)
        ));
        assert!(last.await.unwrap().unwrap());
        let steps: Vec<(String, i64)> = sqlx::query_as(
            "SELECT serial_number, last_step FROM mfa_devices ORDER BY serial_number",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(steps, [("a".to_owned(), 8), ("b".to_owned(), 3)]);
    }

    #[tokio::test]
    async fn a_database_error_ends_the_batch_and_every_job_runs_alone() {
        let pool = memory_pool(true).await;
        let w = Arc::new(GroupWriter::start(pool.clone(), Dialect::Sqlite));
        // The middle job fails with a database error after writing: the batch ends, is rolled back,
        // and each job runs again alone, so the others still get their own (successful) answers.
        let broken = {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.run(true, (), |c, _| {
                    Box::pin(async move {
                        accept_step(&mut *c, &ask("b", 9, 0)).await?;
                        sqlx::query("INSERT INTO no_such_table VALUES (1)")
                            .execute(&mut *c)
                            .await?;
                        Ok(())
                    })
                })
                .await
            })
        };
        let first = accept(&w, "a", 8);
        let last = accept(&w, "b", 3);
        let got_first = first.await.unwrap().unwrap();
        let e = broken.await.unwrap().unwrap_err().to_string();
        assert!(e.contains("no such table"), "{e}");
        assert!(got_first);
        assert!(last.await.unwrap().unwrap());
        let steps: Vec<(String, i64)> = sqlx::query_as(
            "SELECT serial_number, last_step FROM mfa_devices ORDER BY serial_number",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(steps, [("a".to_owned(), 8), ("b".to_owned(), 3)]);
    }

    #[tokio::test]
    async fn failed_jobs_answer_every_caller_with_its_own_error() {
        let w = Arc::new(GroupWriter::start(
            memory_pool(false).await,
            Dialect::Sqlite,
        ));
        let got = accept_all(Arc::clone(&w), &[("a", 1), ("b", 2), ("a", 3)]).await;
        assert_eq!(got.len(), 3);
        for r in got {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("no such table"), "{e}");
        }
    }

    /// On a SQLite file the writer keeps one connection from batch to batch (see `WriterConn`), the rest
    /// of the pool stays usable meanwhile, and closing the pool does not wait for the writer forever: it
    /// gives its connection back.
    #[tokio::test]
    async fn the_writer_keeps_one_connection_and_gives_it_back_when_the_pool_closes() {
        sqlx::any::install_default_drivers();
        let path = crate::unavailable_tests::temp_db("group-writer");
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(3)
            .connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE mfa_devices (serial_number TEXT PRIMARY KEY, owner TEXT, last_step BIGINT, \
             failed_count BIGINT, first_failed_at BIGINT, locked_until BIGINT, drift_steps BIGINT, seed_enc BLOB); \
             INSERT INTO mfa_devices VALUES ('a', 'u', 5, 0, NULL, NULL, 0, x'00')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let w = Arc::new(GroupWriter::start(pool.clone(), Dialect::Sqlite));
        for step in 6..10 {
            assert!(accept(&w, "a", step).await.unwrap().unwrap(), "step {step}");
        }
        // Another connection of the pool reads what the writer committed, and the writer still holds one.
        let last: i64 =
            sqlx::query_scalar("SELECT last_step FROM mfa_devices WHERE serial_number = 'a'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(last, 9);
        // A connection goes back to the pool a moment after its query answered: wait for the reader's.
        let open = pool.size() as usize;
        for _ in 0..100 {
            if pool.num_idle() + 1 >= open {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            pool.num_idle() + 1,
            open,
            "the writer does not hold exactly one connection"
        );
        tokio::time::timeout(std::time::Duration::from_secs(10), pool.close())
            .await
            .expect("closing the pool waited for the writer's connection");
        // After the close, acceptances get an error that says the database is unavailable.
        let after = accept(&w, "a", 10).await.unwrap();
        assert!(matches!(&after, Err(e) if e.is_unavailable()), "{after:?}");
        crate::unavailable_tests::remove_db(&path);
    }
}
