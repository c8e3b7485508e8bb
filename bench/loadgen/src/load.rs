//! The workloads and their timed, bounded request loops.
//!
//! Replayable workloads (a–c) sign one request per connection when the run starts and send it again and
//! again over a keep-alive connection (a signed request stays valid for the 15-minute skew window).
//! The MFA workload (d) signs every request afresh with a TOTP code for a step that device has not used:
//! a device accepts one code per 30-second step, only later than its last accepted one, within ±1 step
//! of now. So D devices allow D new requests per 30 s, and at most 3·D at once (steps now−1, now and
//! now+1, after the devices were idle for two steps). A run therefore sends every code available when it
//! starts (as fast as its connections go, ended early by the duration; it first waits for the next step
//! when no code is left or the run would not fit in the current step) and reports how many that was: its
//! requests/s is the rate of draining that burst, not a sustainable rate.
//! The IAM write workloads (h, i) are operations, not single requests: each is a short sequence of IAM
//! writes signed as root for a new user of its own, counted once (its latency runs from the first
//! request to the last answer; a non-2xx answer at any step makes the operation a failure).

use crate::client::Conn;
use crate::creds::{CredsFile, MfaUser};
use crate::request::{Creds, Signed, form_body, sign};
use crate::setup::{BENCH_USER, Target, seed_bytes};
use crate::{IAM_VERSION, STS_VERSION, now_unix};
use anyhow::{Context, bail};
use std::time::{Duration, Instant};
use stsd_core::totp;

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// (a) GetSessionToken with an IAM user's long-term key, no MFA.
    Gst,
    /// (b) GetCallerIdentity with session credentials (token header).
    GciSession,
    /// (c) GetCallerIdentity with an IAM user's long-term key.
    GciLongterm,
    /// (d) GetSessionToken with MFA, a fresh code per request, across many devices.
    GstMfa,
    /// (e) AssumeRole with an IAM user's long-term key, no MFA (a role trusting the user by ARN).
    AssumeRole,
    /// (f) The authorizer: a signed GET checked by `/_stsd/authorize` (nginx `auth_request` shape),
    /// session credentials, allowed by an identity policy.
    Authz,
    /// (g) The same signed GET sent to a reverse proxy as a client sends it (`GET /orders/42`), session
    /// credentials: nginx `auth_request` → stsd → upstream, or nginx alone in front of the same upstream.
    AuthzProxy,
    /// (j) An IAM read with policy evaluation: GetUser of `bench-user` with its own long-term key, allowed
    /// by its identity policy (`iam:GetUser` on `user/${aws:username}`).
    IamRead,
    /// (h) IAM writes: CreateUser + CreateAccessKey for a new user, signed as root (one operation).
    IamUser,
    /// (i) IAM writes: CreateUser + CreateVirtualMFADevice + EnableMFADevice (two TOTP codes) for a new
    /// user, signed as root (one operation).
    IamMfa,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 10] = [
        Workload::Gst,
        Workload::GciSession,
        Workload::GciLongterm,
        Workload::GstMfa,
        Workload::AssumeRole,
        Workload::Authz,
        Workload::AuthzProxy,
        Workload::IamRead,
        Workload::IamUser,
        Workload::IamMfa,
    ];

    /// The IAM write workloads (operations of several signed requests, never replayed).
    pub fn is_iam_write(self) -> bool {
        matches!(self, Workload::IamUser | Workload::IamMfa)
    }

    /// The short name used on the command line and in result files.
    pub fn key(self) -> &'static str {
        match self {
            Workload::Gst => "gst",
            Workload::GciSession => "gci-session",
            Workload::GciLongterm => "gci-longterm",
            Workload::GstMfa => "gst-mfa",
            Workload::AssumeRole => "assume-role",
            Workload::Authz => "authz",
            Workload::AuthzProxy => "authz-proxy",
            Workload::IamRead => "iam-read",
            Workload::IamUser => "iam-user",
            Workload::IamMfa => "iam-mfa",
        }
    }

    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Gst => "(a) GetSessionToken, IAM user, no MFA",
            Workload::GciSession => "(b) GetCallerIdentity, session credentials",
            Workload::GciLongterm => "(c) GetCallerIdentity, long-term key",
            Workload::GstMfa => "(d) GetSessionToken with MFA",
            Workload::AssumeRole => "(e) AssumeRole, IAM user, no MFA",
            Workload::Authz => "(f) authorizer check (/_stsd/authorize), session credentials",
            Workload::AuthzProxy => {
                "(g) signed GET through nginx to an upstream, session credentials"
            }
            Workload::IamRead => "(j) IAM read: GetUser, IAM user, allowed by an identity policy",
            Workload::IamUser => "(h) IAM writes: CreateUser + CreateAccessKey (operations)",
            Workload::IamMfa => {
                "(i) IAM writes: CreateUser + CreateVirtualMFADevice + EnableMFADevice (operations)"
            }
        }
    }

    /// Parses [`Workload::key`].
    pub fn from_key(s: &str) -> Option<Workload> {
        Self::ALL.into_iter().find(|w| w.key() == s)
    }

    fn action(self) -> &'static str {
        match self {
            Workload::Gst | Workload::GstMfa => "GetSessionToken",
            Workload::GciSession
            | Workload::GciLongterm
            | Workload::Authz
            | Workload::AuthzProxy => "GetCallerIdentity",
            Workload::AssumeRole => "AssumeRole",
            Workload::IamRead => "GetUser",
            Workload::IamUser | Workload::IamMfa => "CreateUser",
        }
    }

    fn creds(self, file: &CredsFile) -> anyhow::Result<Creds> {
        let c = match self {
            Workload::Gst | Workload::GciLongterm | Workload::AssumeRole | Workload::IamRead => {
                file.user.clone()
            }
            Workload::GciSession | Workload::Authz | Workload::AuthzProxy => file.session.clone(),
            Workload::GstMfa => None,
            Workload::IamUser | Workload::IamMfa => file.root.clone(),
        };
        c.with_context(|| format!("the credentials file has none for {}", self.key()))
    }
}

/// The measured outcome of one run.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Answers received inside the measuring window (any status).
    pub requests: u64,
    /// Of those, answers that were not 2xx.
    pub non2xx: u64,
    /// Requests that got no answer (connection errors), inside the window.
    pub transport_errors: u64,
    /// Seconds from the start of the window to the last answer.
    pub window_secs: f64,
    /// Latency of each answered request in the window, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The first failure seen (status and body, or transport error), for diagnosis.
    pub first_failure: Option<String>,
    /// MFA: the number of codes that were available to send.
    pub offered: Option<u64>,
    /// Connections the server had closed and that were reopened before a request.
    pub reopened: u64,
}

impl Outcome {
    /// Answers per second.
    pub fn rps(&self) -> f64 {
        if self.window_secs > 0.0 {
            self.requests as f64 / self.window_secs
        } else {
            0.0
        }
    }

    /// The `q`-quantile (0..=1) of the latencies, microseconds (nearest rank).
    pub fn quantile_us(&self, q: f64) -> u32 {
        quantile(&self.latencies_us, q)
    }

    fn merge(&mut self, o: ConnStats, window_start: Instant) {
        self.requests += o.requests;
        self.non2xx += o.non2xx;
        self.transport_errors += o.transport_errors;
        self.reopened += o.reopened;
        self.latencies_us.extend(o.latencies_us);
        if self.first_failure.is_none() {
            self.first_failure = o.first_failure;
        }
        if let Some(end) = o.last_answer {
            let w = end.saturating_duration_since(window_start).as_secs_f64();
            self.window_secs = self.window_secs.max(w);
        }
    }
}

/// Nearest-rank quantile of sorted values.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Default)]
struct ConnStats {
    requests: u64,
    non2xx: u64,
    transport_errors: u64,
    latencies_us: Vec<u32>,
    first_failure: Option<String>,
    last_answer: Option<Instant>,
    reopened: u64,
}

impl ConnStats {
    fn answered(&mut self, status: u16, body: &[u8], t0: Instant, t1: Instant) {
        self.requests += 1;
        self.latencies_us
            .push(u32::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u32::MAX));
        self.last_answer = Some(t1);
        if !(200..300).contains(&status) {
            self.non2xx += 1;
            if self.first_failure.is_none() {
                let text = String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
                self.first_failure = Some(format!("HTTP {status}: {}", text.trim()));
            }
        }
    }

    fn failed(&mut self, e: &anyhow::Error, t1: Instant) {
        self.transport_errors += 1;
        self.last_answer = Some(t1);
        if self.first_failure.is_none() {
            self.first_failure = Some(format!("transport: {e:#}"));
        }
    }
}

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to send.
    pub target: Target,
    /// Parallel keep-alive connections.
    pub connections: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Unmeasured load before the measured duration (replayable workloads).
    pub warmup: Duration,
    /// Upper bound of requests per connection (the loops stop at the duration or this, whichever first).
    pub max_requests_per_conn: u64,
}

/// Transport errors after which a connection gives up for the rest of the run.
const MAX_CONN_ERRORS: u64 = 100;

async fn connect_all(plan: &Plan) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        conns.push(
            Conn::connect(plan.target.addr)
                .await
                .with_context(|| format!("connecting to {}", plan.target.addr))?,
        );
    }
    Ok(conns)
}

/// Runs a replayable workload (a–c): one signed request per connection, replayed until the deadline.
///
/// # Errors
/// Missing credentials; a connection that cannot be opened at the start.
pub async fn run_replay(
    plan: &Plan,
    workload: Workload,
    file: &CredsFile,
) -> anyhow::Result<Outcome> {
    if workload == Workload::GstMfa || workload.is_iam_write() {
        bail!("{} is not replayable", workload.key());
    }
    let conns = connect_all(plan).await?;
    let now = now_unix();
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let deadline = measure_from + plan.duration;
    let mut tasks = Vec::with_capacity(conns.len());
    for conn in conns {
        let signed = sign_replayable(workload, file, &plan.target.host, now)?;
        let cap = plan.max_requests_per_conn;
        let window = Window {
            measure_from,
            deadline,
            cap,
        };
        tasks.push(tokio::spawn(replay_loop(conn, signed, window)));
    }
    let mut out = Outcome::default();
    for t in tasks {
        out.merge(t.await?, measure_from);
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// The signed request of a replayable workload (a–c, e–g) for `host`, signed at `now`: what each
/// connection of [`run_replay`] sends again and again, and what `stsd-loadgen wrk-script` hands to wrk.
///
/// # Errors
/// `gst-mfa` (a fresh code per request: not replayable); missing credentials or role.
pub fn sign_replayable(
    workload: Workload,
    file: &CredsFile,
    host: &str,
    now: i64,
) -> anyhow::Result<Signed> {
    if workload == Workload::GstMfa {
        bail!("gst-mfa is not replayable: each request needs a fresh TOTP code");
    }
    if workload.is_iam_write() {
        bail!(
            "{} is not replayable: each operation creates a new user",
            workload.key()
        );
    }
    let creds = workload.creds(file)?;
    match workload {
        Workload::Authz => crate::request::sign_authz(&creds, now),
        Workload::AuthzProxy => crate::request::sign_authz_proxied(&creds, now),
        Workload::AssumeRole => {
            let role = file
                .role
                .as_deref()
                .context("the credentials file has no role for assume-role")?;
            let body = form_body(&[
                ("Action", workload.action()),
                ("Version", STS_VERSION),
                ("RoleArn", role),
                ("RoleSessionName", "bench"),
            ]);
            sign(host, &creds, "sts", body, now)
        }
        Workload::IamRead => {
            let body = form_body(&[
                ("Action", workload.action()),
                ("Version", IAM_VERSION),
                ("UserName", BENCH_USER),
            ]);
            sign(host, &creds, "iam", body, now)
        }
        _ => {
            let body = form_body(&[("Action", workload.action()), ("Version", STS_VERSION)]);
            sign(host, &creds, "sts", body, now)
        }
    }
}

async fn replay_loop(conn: Conn, signed: Signed, window: Window) -> ConnStats {
    let signed = &signed;
    timed_loop(conn, window, |mut conn, _| async move {
        let result = conn.send(signed.wire()).await;
        (conn, result)
    })
    .await
}

/// When a connection's loop measures and when it stops.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Answers to requests sent before this are not counted (warm-up).
    measure_from: Instant,
    /// No request is sent after this.
    deadline: Instant,
    /// Requests (or operations) at most.
    cap: u64,
}

/// Sends request (or operation) `n = 0, 1, …` with `one` until the window closes, timing each one and
/// counting answers and transport errors; after a transport error the connection is reopened.
async fn timed_loop<F, Fut>(mut conn: Conn, window: Window, mut one: F) -> ConnStats
where
    F: FnMut(Conn, u64) -> Fut,
    Fut: std::future::Future<Output = (Conn, anyhow::Result<(u16, bytes::Bytes)>)>,
{
    let mut stats = ConnStats::default();
    let (mut n, mut errors) = (0u64, 0u64);
    loop {
        let t0 = Instant::now();
        if t0 >= window.deadline || n >= window.cap || errors >= MAX_CONN_ERRORS {
            break;
        }
        let (back, result) = one(conn, n).await;
        conn = back;
        n += 1;
        let t1 = Instant::now();
        let measured = t0 >= window.measure_from;
        match result {
            Ok((status, body)) => {
                if measured {
                    stats.answered(status, &body, t0, t1);
                }
            }
            Err(e) => {
                errors += 1;
                if measured {
                    stats.failed(&e, t1);
                }
                // The connection is unusable after a transport error: open a new one.
                if conn.reconnect().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    stats.reopened = conn.reopened;
    stats
}

/// One MFA request to send: which device, which TOTP step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaJob {
    /// Index into the MFA users.
    pub device: usize,
    /// TOTP step whose code is sent.
    pub step: i64,
}

/// Plans the codes available at `now` (steps now−1 ..= now+1 later than each device's last used step),
/// gives each device's codes to one connection (device `i` to connection `i % connections`, so that a
/// device's codes are sent one after another in increasing order), interleaves the devices of a
/// connection step by step, and marks the planned steps as used.
pub fn plan_mfa(users: &mut [MfaUser], now: i64, connections: usize) -> Vec<Vec<MfaJob>> {
    let connections = connections.max(1);
    let now_step = totp::step_at(now);
    let mut per_conn: Vec<Vec<Vec<MfaJob>>> = vec![Vec::new(); connections];
    for (i, u) in users.iter_mut().enumerate() {
        let first = (u.last_step + 1).max(now_step - 1);
        let jobs: Vec<MfaJob> = (first..=now_step + 1)
            .map(|step| MfaJob { device: i, step })
            .collect();
        if let Some(last) = jobs.last() {
            u.last_step = last.step;
        }
        per_conn[i % connections].push(jobs);
    }
    per_conn
        .into_iter()
        .map(|devices| {
            let rounds = devices.iter().map(Vec::len).max().unwrap_or(0);
            (0..rounds)
                .flat_map(|r| devices.iter().filter_map(move |d| d.get(r).copied()))
                .collect()
        })
        .collect()
}

/// Codes available at `now` without using them.
pub fn mfa_available(users: &[MfaUser], now: i64) -> u64 {
    let now_step = totp::step_at(now);
    users
        .iter()
        .map(|u| {
            let first = (u.last_step + 1).max(now_step - 1);
            u64::try_from(now_step + 1 - first + 1).unwrap_or(0)
        })
        .sum()
}

/// Waits, if needed, so that a run of `duration` fits inside the current TOTP step (the oldest
/// accepted step must not slide out of the window mid-run) and finds codes to send. Bounded: at most
/// two step boundaries.
pub async fn mfa_wait_for_codes(users: &[MfaUser], duration: Duration) -> i64 {
    let step = totp::STEP_SECONDS;
    for _ in 0..3 {
        let now = now_unix();
        let left = step - now.rem_euclid(step);
        let fits = i64::try_from(duration.as_secs()).unwrap_or(step) + 2 <= left;
        if fits && mfa_available(users, now) > 0 {
            return now;
        }
        let wait =
            Duration::from_secs(u64::try_from(left).unwrap_or(1)) + Duration::from_millis(300);
        eprintln!(
            "  (waiting {:.1} s for the next TOTP step)",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
    now_unix()
}

/// Runs the MFA workload: every available code once, signed per request, until done or the deadline.
///
/// # Errors
/// A bad seed; a connection that cannot be opened at the start.
pub async fn run_mfa(plan: &Plan, users: &mut [MfaUser]) -> anyhow::Result<Outcome> {
    if users.is_empty() {
        bail!("the credentials file has no MFA devices (setup --mfa-devices N)");
    }
    let duration = plan.duration.min(Duration::from_secs(25));
    let now = mfa_wait_for_codes(users, duration).await;
    let jobs = plan_mfa(users, now, plan.connections);
    let offered: usize = jobs.iter().map(Vec::len).sum();
    let secrets: Vec<Vec<u8>> = users
        .iter()
        .map(|u| seed_bytes(&u.seed))
        .collect::<anyhow::Result<_>>()?;
    let conns = connect_all(plan).await?;
    // The first random bytes of the process initialise the CSPRNG (about 30 ms here). Signing happens
    // inside the timed burst, and on this single-threaded runtime that first use held back every
    // connection's first request: it is made here, before the clock starts.
    let _ = crate::request::invocation_id();
    let start = Instant::now();
    let deadline = start + duration;
    let shared = std::sync::Arc::new((users.to_vec(), secrets));
    let mut tasks = Vec::new();
    for (conn, jobs) in conns.into_iter().zip(jobs) {
        let shared = std::sync::Arc::clone(&shared);
        let target = plan.target.clone();
        tasks.push(tokio::spawn(async move {
            let (users, secrets) = &*shared;
            mfa_loop(conn, &target, users, secrets, &jobs, deadline).await
        }));
    }
    let mut out = Outcome {
        offered: Some(offered as u64),
        ..Outcome::default()
    };
    for t in tasks {
        out.merge(t.await??, start);
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

async fn mfa_loop(
    mut conn: Conn,
    target: &Target,
    users: &[MfaUser],
    secrets: &[Vec<u8>],
    jobs: &[MfaJob],
    deadline: Instant,
) -> anyhow::Result<ConnStats> {
    let mut stats = ConnStats::default();
    for job in jobs {
        let t0 = Instant::now();
        if t0 >= deadline || stats.transport_errors >= MAX_CONN_ERRORS {
            break;
        }
        let (Some(user), Some(secret)) = (users.get(job.device), secrets.get(job.device)) else {
            bail!("planned device {} does not exist", job.device);
        };
        let code = totp::code(secret, job.step);
        let body = form_body(&[
            ("Action", "GetSessionToken"),
            ("Version", STS_VERSION),
            ("SerialNumber", &user.serial),
            ("TokenCode", &code),
        ]);
        let signed = sign(&target.host, &user.creds, "sts", body, now_unix())?;
        match conn.send(signed.wire()).await {
            Ok((status, body)) => stats.answered(status, &body, t0, Instant::now()),
            Err(e) => {
                stats.failed(&e, Instant::now());
                let _ = conn.reconnect().await;
            }
        }
    }
    stats.reopened = conn.reopened;
    Ok(stats)
}

/// Runs an IAM write workload (h, i): every connection performs operations one after another, each for
/// a new user (`w<random>-<connection>-<n>`), until the deadline.
///
/// # Errors
/// Not an IAM write workload; no root credentials in the file; a connection that cannot be opened.
pub async fn run_iam(plan: &Plan, workload: Workload, file: &CredsFile) -> anyhow::Result<Outcome> {
    if !workload.is_iam_write() {
        bail!("{} is not an IAM write workload", workload.key());
    }
    let root = workload.creds(file)?;
    let conns = connect_all(plan).await?;
    let mut tag = [0u8; 4];
    stsd_core::random_fill(&mut tag);
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let deadline = measure_from + plan.duration;
    let mut tasks = Vec::with_capacity(conns.len());
    for (c, conn) in conns.into_iter().enumerate() {
        let (target, root) = (plan.target.clone(), root.clone());
        let prefix = format!("w{tag}-{c}");
        let cap = plan.max_requests_per_conn;
        let window = Window {
            measure_from,
            deadline,
            cap,
        };
        tasks.push(tokio::spawn(async move {
            let (target, root, prefix) = (&target, &root, &prefix);
            timed_loop(conn, window, |mut conn, n| async move {
                let name = format!("{prefix}-{n}");
                let result = iam_op(&mut conn, target, root, workload, &name).await;
                (conn, result)
            })
            .await
        }));
    }
    let mut out = Outcome::default();
    for t in tasks {
        out.merge(t.await?, measure_from);
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// Sends one IAM request signed as `root`: `params` starts with the action.
async fn iam_send(
    conn: &mut Conn,
    target: &Target,
    root: &Creds,
    params: &[(&str, &str)],
) -> anyhow::Result<(u16, bytes::Bytes)> {
    let Some((action, rest)) = params.split_first() else {
        bail!("no action");
    };
    let mut pairs = vec![*action, ("Version", crate::IAM_VERSION)];
    pairs.extend_from_slice(rest);
    let signed = sign(&target.host, root, "iam", form_body(&pairs), now_unix())?;
    conn.send(signed.wire()).await
}

/// One operation of an IAM write workload: the last answer, or the first one that was not 2xx.
async fn iam_op(
    conn: &mut Conn,
    target: &Target,
    root: &Creds,
    workload: Workload,
    name: &str,
) -> anyhow::Result<(u16, bytes::Bytes)> {
    let ok = |status: u16| (200..300).contains(&status);
    let created = iam_send(
        conn,
        target,
        root,
        &[("Action", "CreateUser"), ("UserName", name)],
    )
    .await?;
    if !ok(created.0) {
        return Ok(created);
    }
    if workload == Workload::IamUser {
        return iam_send(
            conn,
            target,
            root,
            &[("Action", "CreateAccessKey"), ("UserName", name)],
        )
        .await;
    }
    let device = iam_send(
        conn,
        target,
        root,
        &[
            ("Action", "CreateVirtualMFADevice"),
            ("VirtualMFADeviceName", name),
        ],
    )
    .await?;
    if !ok(device.0) {
        return Ok(device);
    }
    let (serial, seed) = crate::setup::virtual_device(&String::from_utf8_lossy(&device.1))?;
    let (c1, c2) = crate::setup::enrolment_codes(&seed_bytes(&seed)?, totp::step_at(now_unix()));
    iam_send(
        conn,
        target,
        root,
        &[
            ("Action", "EnableMFADevice"),
            ("UserName", name),
            ("SerialNumber", &serial),
            ("AuthenticationCode1", &c1),
            ("AuthenticationCode2", &c2),
        ],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(last_step: i64) -> MfaUser {
        MfaUser {
            creds: Creds {
                access_key_id: "AKIA".into(),
                secret_access_key: "s".into(),
                session_token: None,
            },
            serial: "arn".into(),
            seed: "ABCD".into(),
            last_step,
        }
    }

    #[test]
    fn iam_read_is_get_user_of_the_bench_user_signed_for_iam() {
        let file = CredsFile {
            user: Some(user(0).creds),
            ..CredsFile::default()
        };
        let signed =
            sign_replayable(Workload::IamRead, &file, "127.0.0.1:1", 1_700_000_000).expect("signs");
        let wire = String::from_utf8_lossy(signed.wire()).into_owned();
        assert!(
            wire.ends_with("Action=GetUser&Version=2010-05-08&UserName=bench-user"),
            "{wire}"
        );
        assert!(wire.contains("/us-east-1/iam/aws4_request"), "{wire}");
        assert_eq!(Workload::from_key("iam-read"), Some(Workload::IamRead));
    }

    #[test]
    fn quantiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.99), 7);
    }

    #[test]
    fn mfa_plan_uses_each_step_once_in_order() {
        let now = 30 * 1000 + 5; // step 1000
        let mut users = vec![user(990), user(999), user(1000), user(1001)];
        assert_eq!(mfa_available(&users, now), 3 + 2 + 1);
        let jobs = plan_mfa(&mut users, now, 2);
        assert_eq!(jobs.len(), 2);
        // Connection 0 has devices 0 and 2, interleaved by round; connection 1 has device 1 (3 has none).
        let steps = |c: usize| -> Vec<(usize, i64)> {
            jobs[c].iter().map(|j| (j.device, j.step)).collect()
        };
        assert_eq!(steps(0), vec![(0, 999), (2, 1001), (0, 1000), (0, 1001)]);
        assert_eq!(steps(1), vec![(1, 1000), (1, 1001)]);
        assert!(users.iter().all(|u| u.last_step == 1001));
        assert_eq!(mfa_available(&users, now), 0);
        assert!(plan_mfa(&mut users, now, 2).iter().all(Vec::is_empty));
        // One step later each device has one more code.
        assert_eq!(mfa_available(&users, now + 30), 4);
    }
}
