//! Group commit of the frequent small writes on SQLite: MFA step acceptances and the IAM writes that
//! come in bursts (CreateUser, CreateAccessKey, CreateVirtualMFADevice, EnableMFADevice).
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
//! A job must do all its work on the connection it is given: the writer holds SQLite's write lock
//! while the batch runs, so a write through the pool from inside a job would wait for itself.
//!
//! PostgreSQL commits concurrent transactions together by itself, and several nodes share it, so there
//! each job runs directly in a transaction of its own.

use crate::Result;
use sqlx::{AnyConnection, AnyPool, Connection};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot};

/// What a job returns: a boxed future borrowing the connection it was given.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Jobs one batch takes at most.
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer at most (senders wait beyond that).
const QUEUE: usize = 1024;

/// The conditional UPDATE that accepts `step` for a device (see `Store::mfa_accept_step`).
pub(crate) async fn accept_step(
    c: &mut AnyConnection,
    serial: &str,
    step: i64,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE mfa_devices SET last_step = $1, failed_count = 0, first_failed_at = NULL \
         WHERE serial_number = $2 AND owner IS NOT NULL AND (last_step IS NULL OR last_step < $3) \
         AND (locked_until IS NULL OR locked_until <= $4)",
    )
    .bind(step)
    .bind(serial)
    .bind(step)
    .bind(now)
    .execute(c)
    .await?;
    Ok(r.rows_affected() == 1)
}

type Output = Box<dyn Any + Send>;
type JobFn =
    Box<dyn for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<Output>> + Send + Sync>;

struct Job {
    run: JobFn,
    /// False for a job that is never refused after it wrote (no savepoint needed).
    savepoint: bool,
    reply: oneshot::Sender<Result<Output>>,
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
    pub(crate) fn start(pool: AnyPool) -> GroupWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, rx));
        GroupWriter { tx }
    }

    /// Runs `job` as part of the next batch and returns its result once the batch is committed.
    /// `savepoint` is false only for a job that is never refused after it wrote (see the module).
    pub(crate) async fn run<T, F>(&self, savepoint: bool, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + Sync + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let run: JobFn = Box::new(move |c| {
            let fut = job(c);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
        });
        self.tx
            .send(Job {
                run,
                savepoint,
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

/// Runs `job` in a transaction of its own (PostgreSQL, and SQLite without a writer).
pub(crate) async fn run_direct<T, F>(pool: &AnyPool, job: F) -> Result<T>
where
    F: for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>>,
{
    let mut tx = pool.begin().await?;
    let v = job(&mut tx).await?;
    tx.commit().await?;
    Ok(v)
}

async fn writer(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = if let [only] = batch.as_slice() {
            vec![run_direct(&pool, &only.run).await]
        } else {
            match commit_batch(&pool, &batch).await {
                Ok(results) => results,
                Err(e) => {
                    tracing::warn!(error = %e, jobs = batch.len(), "write batch failed; running its jobs one by one");
                    let mut results = Vec::with_capacity(batch.len());
                    for job in &batch {
                        results.push(run_direct(&pool, &job.run).await);
                    }
                    results
                }
            }
        };
        for (job, result) in batch.drain(..).zip(results) {
            // A caller that gave up (its request was cancelled) no longer listens.
            let _ = job.reply.send(result);
        }
    }
}

async fn commit_batch(pool: &AnyPool, batch: &[Job]) -> Result<Vec<Result<Output>>> {
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
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
                 failed_count BIGINT, first_failed_at BIGINT, locked_until BIGINT); \
                 INSERT INTO mfa_devices VALUES ('a', 'u', 5, 2, 1, NULL), ('b', 'u', NULL, 0, NULL, NULL)",
            )
            .execute(&pool)
            .await
            .unwrap();
        }
        pool
    }

    fn accept(
        w: &Arc<GroupWriter>,
        serial: &'static str,
        step: i64,
    ) -> tokio::task::JoinHandle<Result<bool>> {
        let w = Arc::clone(w);
        tokio::spawn(async move {
            w.run(false, move |c| Box::pin(accept_step(c, serial, step, 0)))
                .await
        })
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
        let w = Arc::new(GroupWriter::start(pool.clone()));
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

    #[tokio::test]
    async fn a_failing_job_is_rolled_back_alone() {
        let pool = memory_pool(true).await;
        let w = Arc::new(GroupWriter::start(pool.clone()));
        // The middle job writes, then is refused: its write must vanish, the others' must stay.
        let refused = |w: &Arc<GroupWriter>| {
            let w = Arc::clone(w);
            tokio::spawn(async move {
                w.run(true, |c| {
                    Box::pin(async move {
                        accept_step(&mut *c, "b", 9, 0).await?;
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
        let w = Arc::new(GroupWriter::start(pool.clone()));
        // The middle job fails with a database error after writing: the batch ends, is rolled back,
        // and each job runs again alone, so the others still get their own (successful) answers.
        let broken = {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.run(true, |c| {
                    Box::pin(async move {
                        accept_step(&mut *c, "b", 9, 0).await?;
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
        let w = Arc::new(GroupWriter::start(memory_pool(false).await));
        let got = accept_all(Arc::clone(&w), &[("a", 1), ("b", 2), ("a", 3)]).await;
        assert_eq!(got.len(), 3);
        for r in got {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("no such table"), "{e}");
        }
    }
}
