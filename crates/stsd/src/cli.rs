//! Command line: `stsd serve` (and later `stsd admin ...`).

use crate::setup::{self, RootFromEnv, RootKeyOutcome, StoreConfig};
use crate::state::{AppState, Clock, MfaPolicy};

/// How often every node reloads the token key ring (new keys are created this long, twice over, before
/// they start sealing tokens).
pub const KEY_RING_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// How often recorded access-key uses are written to the store.
pub const LAST_USED_FLUSH: std::time::Duration = std::time::Duration::from_secs(15);
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use stsd_core::secret::Secret;

/// stsd: a self-hostable AWS-compatible Security Token Service.
#[derive(Debug, Parser)]
#[command(name = "stsd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage users, access keys, MFA devices and the root key in a data directory.
    Admin(crate::admin::AdminArgs),
    /// Apply pending database migrations and exit.
    Migrate(StoreArgs),
}

/// Where the data lives (shared by `serve` and the admin commands).
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Data directory (SQLite database, generated master key, root credentials file).
    #[arg(long, env = "STSD_DATA_DIR", default_value = "./stsd-data")]
    pub data_dir: PathBuf,
    /// Master key file (base64 of 32 bytes). Default: DATA_DIR/master.key, generated at first start.
    /// Required with --database-url: every node needs the same master key.
    #[arg(long, env = "STSD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Use PostgreSQL (`postgres://user:pass@host/db`) instead of the embedded SQLite database.
    #[arg(long, env = "STSD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// The store configuration.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            data_dir: self.data_dir.clone(),
            master_key_file: self.master_key_file.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

/// The largest `--workers` value (flag, environment or configuration file).
pub const MAX_WORKERS: u16 = 1024;

/// `stsd serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see stsd.example.toml). Flags and environment override it.
    #[arg(long, env = "STSD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "STSD_LISTEN", default_value = "127.0.0.1:8754")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Accept only credential scopes for these regions (repeat, or comma-separate in STSD_REGION).
    /// Default: any region.
    #[arg(long = "region", env = "STSD_REGION", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Account id (12 digits) for a new data directory. Default: generated at first start and kept.
    #[arg(long, env = "STSD_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// TOTP steps (30 s) accepted on either side of the current one in GetSessionToken.
    #[arg(long, env = "STSD_MFA_WINDOW_STEPS", default_value_t = 1)]
    pub mfa_window_steps: i64,
    /// Failed MFA codes for one device (within --mfa-failure-window) that lock it.
    #[arg(long, env = "STSD_MFA_MAX_FAILURES", default_value_t = 10)]
    pub mfa_max_failures: i64,
    /// Seconds within which failed MFA codes count together.
    #[arg(long, env = "STSD_MFA_FAILURE_WINDOW", default_value_t = 900)]
    pub mfa_failure_window: i64,
    /// Seconds a locked MFA device refuses every code.
    #[arg(long, env = "STSD_MFA_LOCKOUT", default_value_t = 900)]
    pub mfa_lockout: i64,
    /// Require MFA for every GetSessionToken in the account (beyond AWS's behaviour).
    #[arg(long, env = "STSD_REQUIRE_MFA")]
    pub require_mfa: bool,
    /// Append one JSON line per STS/IAM call (CloudTrail-shaped) to this file, or `-` for stdout.
    #[arg(long, env = "STSD_AUDIT_LOG")]
    pub audit_log: Option<String>,
    /// Log format: `human` or `json`.
    #[arg(long, env = "STSD_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// Requests per second allowed from one source IP (0: no limit); answered with `Throttling`.
    #[arg(long, env = "STSD_RATE_LIMIT_PER_IP", default_value_t = 0.0)]
    pub rate_limit_per_ip: f64,
    /// Requests per second allowed for one access key (0: no limit).
    #[arg(long, env = "STSD_RATE_LIMIT_PER_KEY", default_value_t = 0.0)]
    pub rate_limit_per_key: f64,
    /// Burst size of both rate limits (default: one second's worth, at least 1).
    #[arg(long, env = "STSD_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<f64>,
    /// PEM certificate chain: serve HTTPS (with --tls-key). Reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "STSD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "STSD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Maximum concurrent client connections (more wait in the accept queue).
    #[arg(long, env = "STSD_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Maximum concurrent connections from one client address (more are closed at once; 0: no limit).
    #[arg(long, env = "STSD_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Threads that serve requests (default: one per CPU core).
    #[arg(long, env = "STSD_WORKERS", value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_WORKERS)))]
    pub workers: Option<u16>,
    /// Managed policy ARN attached to every new IAM user (repeatable; default: none, as in AWS).
    #[arg(
        long = "default-user-policy",
        env = "STSD_DEFAULT_USER_POLICIES",
        value_delimiter = ','
    )]
    pub default_user_policies: Vec<String>,
    /// Let users without an MFA session change their own MFA devices and create or reactivate their
    /// own access keys even when they have an enabled MFA device (AWS's behaviour; stsd is stricter
    /// by default).
    #[arg(long, env = "STSD_ALLOW_CREDENTIAL_CHANGES_WITHOUT_MFA")]
    pub allow_credential_changes_without_mfa: bool,
    /// Networks whose X-Forwarded-For / X-Forwarded-Proto are believed (repeatable, CIDR).
    #[arg(
        long = "trusted-proxy",
        env = "STSD_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Serve the web console under `/console/` on the main listener (on by default; `--console=false`
    /// turns it off). Only principals with a console password can sign in.
    #[arg(
        long,
        env = "STSD_CONSOLE",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub console: bool,
    /// Console sessions end after this many seconds without a request.
    #[arg(long, env = "STSD_CONSOLE_IDLE_TIMEOUT", default_value_t = crate::console::session::DEFAULT_IDLE_SECS)]
    pub console_idle_timeout: i64,
    /// Console sessions end this many seconds after sign-in, whatever the activity.
    #[arg(long, env = "STSD_CONSOLE_SESSION_LIFETIME", default_value_t = crate::console::session::DEFAULT_ABSOLUTE_SECS)]
    pub console_session_lifetime: i64,
    /// The issuer the console's MFA QR codes name (authenticator apps show it).
    #[arg(long, env = "STSD_MFA_ISSUER", default_value = crate::console::session::DEFAULT_MFA_ISSUER)]
    pub mfa_issuer: String,
    /// Console cookies get `Secure` and the `__Host-` prefix even without TLS on this listener (a
    /// TLS-terminating proxy in front that is not a `--trusted-proxy` sending `X-Forwarded-Proto`).
    #[arg(long, env = "STSD_CONSOLE_SECURE_COOKIES")]
    pub console_secure_cookies: bool,
    /// Also serve the authorizer (`/_stsd/authorize`) on this address (same server, its own listener).
    #[arg(long, env = "STSD_AUTHZ_LISTEN")]
    pub authz_listen: Option<SocketAddr>,
    /// The `[[authz.api]]` tables of the configuration file.
    #[arg(skip)]
    pub authz_apis: Vec<crate::authorizer::config::ApiTable>,
    /// Shift the server's clock by this many seconds (testing time-dependent behaviour only).
    #[arg(
        long,
        env = "STSD_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        hide = true,
        allow_hyphen_values = true
    )]
    pub clock_offset_seconds: i64,
}

/// Authorization settings, checked against the store: every default policy must exist.
async fn authz_settings(
    state: &AppState,
    args: &ServeArgs,
) -> anyhow::Result<crate::authz::Settings> {
    for arn in &args.default_user_policies {
        let exists = crate::authz::builtin::by_arn(arn).is_some()
            || state.store.policy_by_arn(arn).await?.is_some();
        anyhow::ensure!(
            exists,
            "default_user_policies: policy {arn} does not exist (create it first, or use a built-in such as {})",
            stsd_store::migrations::SELF_SERVICE_ARN
        );
    }
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .map(|c| crate::authz::context::Cidr::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
    let apis =
        crate::authorizer::config::validate(args.authz_apis.clone()).map_err(anyhow::Error::msg)?;
    Ok(crate::authz::Settings {
        default_user_policies: args.default_user_policies.clone(),
        strict_credential_changes: !args.allow_credential_changes_without_mfa,
        trusted_proxies,
        apis,
    })
}

fn root_from_env() -> anyhow::Result<Option<RootFromEnv>> {
    let id = std::env::var("STSD_ROOT_ACCESS_KEY_ID")
        .ok()
        .filter(|s| !s.is_empty());
    let secret = std::env::var("STSD_ROOT_SECRET_ACCESS_KEY")
        .ok()
        .filter(|s| !s.is_empty());
    match (id, secret) {
        (Some(access_key_id), Some(secret)) => Ok(Some(RootFromEnv {
            access_key_id,
            secret_access_key: Secret::new(secret),
        })),
        (None, None) => Ok(None),
        _ => bail!("set both STSD_ROOT_ACCESS_KEY_ID and STSD_ROOT_SECRET_ACCESS_KEY, or neither"),
    }
}

/// Installs the SIGTERM/SIGINT handlers now (so a signal that arrives as soon as the server announces
/// itself is a graceful shutdown, not the default kill) and returns the future that waits for them.
///
/// # Errors
/// When the handlers cannot be installed.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutdown signal received");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received");
        })
    }
}

/// File descriptors kept free of client connections (database, audit log, TLS files, listener).
pub const RESERVED_FDS: u64 = 64;

/// Raises the soft open-file limit to the hard limit; returns the soft limit now in force (`None`:
/// unknown or unlimited).
fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut lim = getrlimit(Resource::Nofile);
        if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
            && cur < max
        {
            let raised = rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::debug!(from = cur, to = max, "raised the open-file limit");
                    lim.current = Some(max);
                }
                Err(e) => {
                    tracing::warn!(error = %e, limit = cur, "could not raise the open-file limit")
                }
            }
        }
        lim.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap that fits under an open-file limit of `soft` (keeping [`RESERVED_FDS`] free), and
/// whether `requested` had to be lowered.
pub fn connection_cap(requested: usize, soft: Option<u64>) -> (usize, bool) {
    let Some(soft) = soft else {
        return (requested.max(1), false);
    };
    let fits = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if requested > fits {
        (fits, true)
    } else {
        (requested.max(1), false)
    }
}

/// Runs `stsd migrate`.
///
/// # Errors
/// Unreachable database, wrong master key, failed migration.
pub async fn migrate(args: StoreArgs) -> anyhow::Result<()> {
    // Opening the store applies pending migrations (under a lock on PostgreSQL).
    let store = setup::open_store(&args.store_config()).await?;
    println!("database schema is up to date");
    store.close().await;
    Ok(())
}

/// The console's session timeouts (`--console-idle-timeout`, `--console-session-lifetime`, seconds):
/// both positive, and the idle timeout no longer than the lifetime.
///
/// # Errors
/// A setting out of range, named in the message.
pub fn console_timeouts_valid(idle: i64, lifetime: i64) -> anyhow::Result<()> {
    anyhow::ensure!(
        idle > 0,
        "console idle timeout (--console-idle-timeout, [console] idle_timeout) must be more than 0 seconds, got {idle}"
    );
    anyhow::ensure!(
        lifetime > 0,
        "console session lifetime (--console-session-lifetime, [console] session_lifetime) must be more than 0 seconds, got {lifetime}"
    );
    anyhow::ensure!(
        idle <= lifetime,
        "console idle timeout ({idle} s) must not exceed the console session lifetime ({lifetime} s)"
    );
    Ok(())
}

/// Runs `stsd serve`.
///
/// # Errors
/// Start-up failures (bad configuration, unreadable data, port in use).
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    console_timeouts_valid(args.console_idle_timeout, args.console_session_lifetime)?;
    let account_req = match &args.account_id {
        None => None,
        Some(s) => Some(
            stsd_core::ids::parse_account(s)
                .with_context(|| format!("--account-id must be 12 digits, got {s:?}"))?,
        ),
    };
    let root_env = root_from_env()?;
    let clock = Clock {
        offset: args.clock_offset_seconds,
    };
    let store = setup::open_store(&args.store.store_config()).await?;
    let account = store.init_account(account_req).await?;
    let now = clock.now();
    let ring = store.load_key_ring(now).await?;
    match setup::ensure_root_key(&store, &args.store.data_dir, account, root_env, now).await? {
        RootKeyOutcome::Existing(id) => {
            tracing::info!(access_key_id = %id, "using the stored root key")
        }
        RootKeyOutcome::FromEnv(id) => {
            tracing::info!(access_key_id = %id, "stored the root key from the environment");
        }
        RootKeyOutcome::Generated(id, secret) => {
            println!(
                "Generated root credentials for account {} (shown once; also in {}):\n  aws_access_key_id = {id}\n  aws_secret_access_key = {}",
                stsd_core::ids::format_account(account),
                args.store
                    .data_dir
                    .join(setup::ROOT_CREDENTIALS_FILE)
                    .display(),
                secret.expose()
            );
        }
    }
    let regions = (!args.regions.is_empty()).then(|| args.regions.clone());
    let mut state = AppState::new(store, ring, account, regions, clock);
    state.mfa = MfaPolicy {
        window_steps: args.mfa_window_steps.clamp(0, 10),
        max_failures: args.mfa_max_failures.max(1),
        failure_window: args.mfa_failure_window.max(1),
        lockout: args.mfa_lockout.max(0),
        required_for_all: args.require_mfa,
    };
    let rate = |per_second: f64| crate::limits::Rate {
        per_second,
        burst: args.rate_limit_burst.unwrap_or(per_second).max(1.0),
    };
    state.authz = crate::authz::Authz::new(authz_settings(&state, &args).await?);
    if args.console {
        use crate::console::session::Sessions;
        state.console = Some(
            Sessions::new(args.console_idle_timeout, args.console_session_lifetime).with_settings(
                crate::console::session::Settings {
                    mfa_issuer: args.mfa_issuer.clone(),
                    secure_cookies: args.console_secure_cookies,
                },
            ),
        );
    }
    state.ip_limit = crate::limits::Limiter::new(rate(args.rate_limit_per_ip));
    state.key_limit = crate::limits::Limiter::new(rate(args.rate_limit_per_key));
    let mut audit_writer = None;
    if let Some(sink) = &args.audit_log {
        let (log, writer) = crate::audit::start(
            crate::audit::Sink::parse(sink),
            state.metrics.audit_dropped_counter(),
        )
        .await?;
        state.audit = Some(log);
        audit_writer = Some(writer);
    }
    let state = Arc::new(state);
    let flusher = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LAST_USED_FLUSH);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = state.flush_last_used().await {
                    tracing::warn!(error = %e, "recording access key last use failed; will retry");
                }
            }
        })
    };
    let refresher = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_RING_REFRESH);
            tick.tick().await;
            loop {
                tick.tick().await;
                match state.store.load_key_ring(state.clock.now()).await {
                    Ok(ring) => state.set_key_ring(ring),
                    Err(e) => {
                        tracing::warn!(error = %e, "reloading the token key ring failed; keeping the current one")
                    }
                }
            }
        })
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(crate::tls::Tls::load(crate::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })?)),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let tls_reloader = tls.as_ref().map(crate::tls::Tls::spawn_reloader);
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // The authorizer's own listener: the same server code (and TLS) on another address.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let authz_listener = match args.authz_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("listening on {a} (authz_listen)"))?;
            println!("stsd authorizer listening on {}", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    println!(
        "stsd listening on {addr} (account {}){}",
        state.account,
        if tls.is_some() { " with TLS" } else { "" }
    );
    tracing::info!(%addr, account = %state.account, "ready");
    let soft = raise_open_file_limit();
    let (max, lowered) = connection_cap(args.max_connections, soft);
    if lowered {
        tracing::warn!(
            requested = args.max_connections,
            using = max,
            open_file_limit = soft.unwrap_or_default(),
            "max_connections is above what the open-file limit allows: lowered (raise the hard limit, e.g. LimitNOFILE= in systemd, to allow more)"
        );
    }
    let limits = crate::http::ConnectionLimits {
        max,
        per_ip: args.max_connections_per_ip,
    };
    let authz_server = authz_listener.map(|l| {
        let mut stop = stop_rx.clone();
        tokio::spawn(crate::http::serve(
            l,
            Arc::clone(&state),
            limits,
            tls.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    });
    crate::http::serve(listener, Arc::clone(&state), limits, tls.clone(), shutdown).await;
    if let Some(s) = authz_server {
        let _ = s.await;
    }
    if let Some(w) = audit_writer {
        w.finish().await;
    }
    flusher.abort();
    refresher.abort();
    if let Some(t) = tls_reloader {
        t.abort();
    }
    if let Err(e) = state.flush_last_used().await {
        tracing::warn!(error = %e, "recording access key last use at shutdown failed");
    }
    state.store.close().await;
    tracing::info!("database closed; bye");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_fits_under_the_open_file_limit() {
        assert_eq!(connection_cap(4096, Some(1024)), (960, true));
        assert_eq!(connection_cap(4096, Some(1_048_576)), (4096, false));
        assert_eq!(connection_cap(4096, None), (4096, false));
        assert_eq!(connection_cap(100, Some(10)), (1, true));
        assert_eq!(connection_cap(0, Some(1024)), (1, false));
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
        let soft = raise_open_file_limit();
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(soft, lim.current);
        assert_eq!(lim.current, lim.maximum);
    }
}
