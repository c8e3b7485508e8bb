//! MFA step acceptance, and its group commit on SQLite.
//!
//! Every accepted MFA code is a durable write: the device's last used step moves forward with one
//! conditional UPDATE, so of concurrent requests with the same code exactly one wins. SQLite commits one
//! transaction at a time and each commit waits for an fsync (`synchronous=FULL`), so concurrent MFA
//! requests used to queue behind one fsync each. On SQLite the acceptances therefore go through one
//! writer task that takes every request waiting when it is free and runs their UPDATEs, in arrival order,
//! in one transaction: one fsync for the batch. Each UPDATE still sees the ones before it (a code
//! presented twice in one batch wins once), and each caller hears only after the commit, so an answer
//! never precedes durability. If the batch fails as a whole, its requests are run again one by one, so
//! each caller gets its own result or its own error and nothing is half-written.
//!
//! PostgreSQL commits concurrent transactions together by itself, and several nodes share it, so there
//! the UPDATE runs directly.

use crate::Result;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// Requests one batch takes at most.
const MAX_BATCH: usize = 256;
/// Requests waiting for the writer at most (senders wait beyond that).
const QUEUE: usize = 1024;

/// The conditional UPDATE that accepts `step` for a device (see `Store::mfa_accept_step`).
pub(crate) async fn accept_step<'e, E>(e: E, serial: &str, step: i64, now: i64) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(
        "UPDATE mfa_devices SET last_step = $1, failed_count = 0, first_failed_at = NULL \
         WHERE serial_number = $2 AND owner IS NOT NULL AND (last_step IS NULL OR last_step < $3) \
         AND (locked_until IS NULL OR locked_until <= $4)",
    )
    .bind(step)
    .bind(serial)
    .bind(step)
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

struct StepRequest {
    serial: String,
    step: i64,
    now: i64,
    reply: oneshot::Sender<Result<bool>>,
}

/// The handle of the writer task; the task ends when the handle is dropped.
pub(crate) struct StepBatcher {
    tx: mpsc::Sender<StepRequest>,
}

impl StepBatcher {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(pool: AnyPool) -> StepBatcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, rx));
        StepBatcher { tx }
    }

    /// Accepts `step` for the device `serial` as part of the next batch.
    pub(crate) async fn accept(&self, serial: &str, step: i64, now: i64) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let request = StepRequest {
            serial: serial.to_owned(),
            step,
            now,
            reply,
        };
        self.tx
            .send(request)
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        // The writer drops the reply only when it stops, i.e. when the store is going away.
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn writer(pool: AnyPool, mut rx: mpsc::Receiver<StepRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match commit_batch(&pool, &batch).await {
            Ok(accepted) => {
                for (request, ok) in batch.drain(..).zip(accepted) {
                    // A caller that gave up (its request was cancelled) no longer listens.
                    let _ = request.reply.send(Ok(ok));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, requests = batch.len(), "MFA step batch failed; running its requests one by one");
                for request in batch.drain(..) {
                    let result =
                        accept_step(&pool, &request.serial, request.step, request.now).await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}

async fn commit_batch(pool: &AnyPool, batch: &[StepRequest]) -> Result<Vec<bool>> {
    if let [only] = batch {
        // Alone: an implicit transaction, as without the batcher.
        return Ok(vec![
            accept_step(pool, &only.serial, only.step, only.now).await?,
        ]);
    }
    let mut tx = pool.begin().await?;
    let mut accepted = Vec::with_capacity(batch.len());
    for r in batch {
        accepted.push(accept_step(&mut *tx, &r.serial, r.step, r.now).await?);
    }
    tx.commit().await?;
    Ok(accepted)
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

    async fn accept_all(b: Arc<StepBatcher>, asks: &[(&'static str, i64)]) -> Vec<Result<bool>> {
        let tasks: Vec<_> = asks
            .iter()
            .map(|&(serial, step)| {
                let b = Arc::clone(&b);
                tokio::spawn(async move { b.accept(serial, step, 0).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_batch_applies_each_update_after_the_ones_before_it() {
        let pool = memory_pool(true).await;
        let b = Arc::new(StepBatcher::start(pool.clone()));
        // On a current-thread runtime these are usually queued before the writer runs (one batch); the
        // answers must be those of running them in order either way.
        let got = accept_all(
            Arc::clone(&b),
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
    async fn a_failed_batch_answers_every_caller_with_its_own_error() {
        let b = Arc::new(StepBatcher::start(memory_pool(false).await));
        let got = accept_all(Arc::clone(&b), &[("a", 1), ("b", 2), ("a", 3)]).await;
        assert_eq!(got.len(), 3);
        for r in got {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("no such table"), "{e}");
        }
    }
}
