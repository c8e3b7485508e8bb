//! `stsd-bulkload`: fills a stopped server's data directory with IAM users, each with one access key,
//! through the public `stsd-store` API (`Store::import_users_with_keys`), for the scale run of stsd's
//! benchmark.
//!
//! Users go in batches (`--batch`, default 100,000), each batch one transaction of multi-row INSERTs,
//! so the rate is bound by SQLite's inserts and index updates rather than by one WAL commit (fsync,
//! `synchronous=FULL`) per user. The load is bounded by a user count and a time limit, whichever comes
//! first (checked between batches); the loader reports how many users it stored and at what rate.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stsd_core::crypto::{SealingKey, parse_key_file};
use stsd_core::ids;
use stsd_store::{ImportedUser, OpenOptions, Store, StoreError, User};

/// Bulk loader of IAM users for the scale benchmark (run it only while the server is stopped).
#[derive(Debug, Parser)]
#[command(name = "stsd-bulkload", version, about)]
struct Cli {
    /// The server's data directory (holds stsd.db and master.key).
    #[arg(long)]
    data_dir: PathBuf,
    /// Users to create (each with one access key).
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// Stop starting new users after this many seconds.
    #[arg(long, default_value_t = 180.0)]
    max_seconds: f64,
    /// Concurrent loaders sharing the store's connection pool (on SQLite their transactions take
    /// turns; a second loader prepares and seals its batch while the first one writes).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Users per transaction.
    #[arg(long, default_value_t = 100_000)]
    batch: u64,
    /// User name prefix (names are PREFIX0, PREFIX1, ...).
    #[arg(long, default_value = "bulk-")]
    prefix: String,
    /// Write `key<TAB>value` lines with the outcome here.
    #[arg(long)]
    summary: Option<PathBuf>,
}

async fn open(data_dir: &std::path::Path) -> anyhow::Result<Store> {
    let key_path = data_dir.join("master.key");
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?,
    );
    let bytes = parse_key_file(&text).with_context(|| format!("in {}", key_path.display()))?;
    let master = SealingKey::from_bytes(&bytes)?;
    let db = data_dir.join("stsd.db");
    if !db.exists() {
        anyhow::bail!(
            "{} does not exist: start the server once on this data dir first",
            db.display()
        );
    }
    // A 256 MiB page cache per connection keeps the tables' index pages in memory while they grow.
    let opts = OpenOptions {
        sqlite_cache_kib: Some(256 * 1024),
        ..OpenOptions::default()
    };
    Ok(Store::open_sqlite(&db, master, &opts).await?)
}

async fn load(cli: Cli) -> anyhow::Result<()> {
    let store = Arc::new(open(&cli.data_dir).await?);
    let account = store.init_account(None).await?;
    let started = Instant::now();
    let limit = Duration::from_secs_f64(cli.max_seconds.clamp(1.0, 86_400.0));
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let mut tasks = Vec::new();
    let batch = cli.batch.clamp(1, 1_000_000);
    for _ in 0..cli.concurrency.clamp(1, 64) {
        let (store, next, done, prefix) = (
            Arc::clone(&store),
            Arc::clone(&next),
            Arc::clone(&done),
            cli.prefix.clone(),
        );
        let total = cli.users;
        tasks.push(tokio::spawn(async move {
            loop {
                if started.elapsed() >= limit {
                    break;
                }
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let range = first..total.min(first + batch);
                // Ids have AWS's shape: a key id carries 39 random bits, so among a million keys a
                // collision is likely. The batch then fails as a whole; it is retried with new ids.
                let mut attempt = 0;
                let users = loop {
                    let users: Vec<ImportedUser> = range
                        .clone()
                        .map(|i| ImportedUser {
                            user: User {
                                user_id: ids::new_user_id(account),
                                name: format!("{prefix}{i}"),
                                path: "/".to_owned(),
                                created_at: now,
                                sessions_not_before: 0,
                            },
                            access_key_id: ids::new_long_term_key_id(account),
                            secret: ids::new_secret_access_key(),
                            key_created_at: now,
                        })
                        .collect();
                    match store.import_users_with_keys(&users).await {
                        Ok(()) => break users,
                        Err(StoreError::AlreadyExists) if attempt < 3 => attempt += 1,
                        Err(e) => {
                            return Err(anyhow::Error::from(e).context(format!(
                                "importing users {prefix}{}.. ({} users)",
                                range.start,
                                range.end - range.start
                            )));
                        }
                    }
                };
                done.fetch_add(users.len() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let progress = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = done.load(Ordering::Relaxed);
                let s = started.elapsed().as_secs_f64();
                eprintln!(
                    "  bulkload: {n} users in {s:.0} s ({:.0} users/s)",
                    n as f64 / s
                );
            }
        })
    };
    let mut failure = None;
    for t in tasks {
        if let Err(e) = t.await.map_err(anyhow::Error::from).and_then(|r| r) {
            failure.get_or_insert(e);
        }
    }
    progress.abort();
    let n = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    store.close().await;
    let rate = n as f64 / secs.max(1e-9);
    let complete = n >= cli.users;
    eprintln!(
        "bulkload: stored {n} of {} users (each with an access key) in {secs:.1} s: {rate:.0} users/s{}",
        cli.users,
        if complete {
            ""
        } else {
            " (stopped at the time limit)"
        }
    );
    if let Some(p) = &cli.summary {
        let projected = cli.users as f64 / rate.max(1e-9);
        std::fs::write(
            p,
            format!(
                "users requested\t{}\nusers stored\t{n}\nload seconds\t{secs:.1}\nusers per second\t{rate:.0}\nprojected seconds for the requested count\t{projected:.0}\nconcurrency\t{}\n",
                cli.users, cli.concurrency
            ),
        )?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    stsd_loadgen::run_main("stsd-bulkload", load(Cli::parse()))
}
