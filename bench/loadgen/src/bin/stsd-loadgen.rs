//! `stsd-loadgen`: fixtures, load runs and the report of stsd's load benchmark (driven by `bench/run.sh`).

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stsd_loadgen::creds::CredsFile;
use stsd_loadgen::load::{self, Plan, Workload};
use stsd_loadgen::procfs;
use stsd_loadgen::report::{self, HEADER, RunLine};
use stsd_loadgen::request::Creds;
use stsd_loadgen::setup::{self, Target};

/// Load generator for stsd (and for moto_server and stsd-ceiling, with the same requests).
#[derive(Debug, Parser)]
#[command(name = "stsd-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the fixtures through the IAM API, signed as root, and write the credentials file.
    Setup(SetupArgs),
    /// Drive one workload at one or more connection counts, several runs each; append result lines.
    Run(RunArgs),
    /// Print the markdown report of result lines (and write it to a file).
    Report(ReportArgs),
    /// Print a free loopback TCP port.
    FreePort,
    /// Wait until GET /healthz answers 200; print the milliseconds since --since-ns (unix ns).
    WaitReady(WaitArgs),
    /// Write a Lua script for wrk that sends a replayable workload's signed request (not gst-mfa).
    WrkScript(WrkScriptArgs),
    /// Turn the output of `wrk --latency -s SCRIPT` into a result line (appended to --out).
    WrkResult(WrkResultArgs),
}

#[derive(Debug, Args)]
struct WrkScriptArgs {
    /// Server address (loopback); also the signed `Host` of the STS workloads.
    #[arg(long)]
    endpoint: SocketAddr,
    /// Credentials file from `setup`.
    #[arg(long)]
    creds: PathBuf,
    /// Workload (replayable ones only: gst-mfa needs a fresh TOTP code per request).
    #[arg(long, value_enum)]
    workload: Workload,
    /// Where to write the script.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct WrkResultArgs {
    /// wrk's output (stdout).
    #[arg(long)]
    input: PathBuf,
    /// Name of the target in the results (bench/run.sh uses `stsd@wrk`, `ceiling@wrk`, ...).
    #[arg(long)]
    target: String,
    /// Workload.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Connections wrk used.
    #[arg(long)]
    conns: usize,
    /// Run (turn) number.
    #[arg(long)]
    run: usize,
    /// Server process id: its peak RSS (VmHWM) is read (reset it before wrk starts).
    #[arg(long)]
    pid: Option<u32>,
    /// 1-minute load average when the run started.
    #[arg(long, default_value_t = 0.0)]
    loadavg: f64,
    /// Result file to append to.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SetupArgs {
    /// Server address (loopback).
    #[arg(long)]
    endpoint: SocketAddr,
    /// Root access key id.
    #[arg(long, env = "STSD_ROOT_ACCESS_KEY_ID")]
    root_key_id: String,
    /// Root secret access key.
    #[arg(long, env = "STSD_ROOT_SECRET_ACCESS_KEY", hide_env_values = true)]
    root_secret: String,
    /// Users with enabled virtual MFA devices to create (workload gst-mfa).
    #[arg(long, default_value_t = 0)]
    mfa_devices: usize,
    /// Parallel connections for the setup calls.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Where to write the credentials file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Server address (loopback).
    #[arg(long)]
    endpoint: SocketAddr,
    /// Name of the target in the results (stsd, moto, ceiling, ...).
    #[arg(long)]
    target: String,
    /// Credentials file from `setup`.
    #[arg(long)]
    creds: PathBuf,
    /// Workload.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    conns: Vec<usize>,
    /// Runs per connection count.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds of load before each measured run (replayable workloads).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Upper bound of requests per connection and run.
    #[arg(long, default_value_t = 5_000_000)]
    max_requests_per_conn: u64,
    /// Server process id: its peak RSS (VmHWM) is reset before and read after each run.
    #[arg(long)]
    pid: Option<u32>,
    /// Result file to append to.
    #[arg(long)]
    out: PathBuf,
    /// Pause between runs, seconds.
    #[arg(long, default_value_t = 0.5)]
    pause: f64,
    /// Number of the first run in the result lines. `bench/run.sh` runs the targets in turns (stsd, the
    /// ceiling, moto, then stsd again ...) with one run per invocation, and numbers the turns with this, so
    /// the report can pair the runs that saw the same machine state.
    #[arg(long, default_value_t = 1)]
    first_run: usize,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Result files.
    #[arg(long, required = true)]
    results: Vec<PathBuf>,
    /// `key<TAB>value` lines to show.
    #[arg(long)]
    meta: Option<PathBuf>,
    /// Title.
    #[arg(long, default_value = "stsd load benchmark")]
    title: String,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct WaitArgs {
    /// Server address.
    #[arg(long)]
    endpoint: SocketAddr,
    /// Unix time in nanoseconds when the server was started.
    #[arg(long)]
    since_ns: u128,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Path to probe.
    #[arg(long, default_value = "/healthz")]
    path: String,
    /// Any HTTP answer counts (for servers without a health path).
    #[arg(long)]
    any_status: bool,
    /// Give up as soon as this process has exited.
    #[arg(long)]
    pid: Option<u32>,
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn target(endpoint: SocketAddr) -> Target {
    Target {
        addr: endpoint,
        host: endpoint.to_string(),
    }
}

async fn setup_cmd(a: SetupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = Creds {
        access_key_id: a.root_key_id,
        secret_access_key: a.root_secret,
        session_token: None,
    };
    let file = setup::fixtures(&target(a.endpoint), &root, a.mfa_devices, a.parallel).await?;
    file.write(&a.out)?;
    eprintln!(
        "setup: user, session credentials and {} MFA devices in {:.1} s",
        file.mfa.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
    let mut creds = CredsFile::read(&a.creds)?;
    if !(a.duration > 0.0 && a.duration <= 600.0 && (0.0..=60.0).contains(&a.warmup)) {
        bail!("--duration must be in (0, 600] and --warmup in [0, 60]");
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.out)
        .with_context(|| format!("opening {}", a.out.display()))?;
    if out.metadata()?.len() == 0 {
        writeln!(out, "{HEADER}")?;
    }
    let runs = a.runs.clamp(1, 20);
    for &conns in &a.conns {
        let plan = Plan {
            target: target(a.endpoint),
            connections: conns.clamp(1, 1024),
            duration: Duration::from_secs_f64(a.duration),
            warmup: Duration::from_secs_f64(a.warmup),
            max_requests_per_conn: a.max_requests_per_conn,
        };
        for run in a.first_run..a.first_run + runs {
            let la = loadavg();
            let reset = a.pid.is_some_and(procfs::reset_peak);
            let outcome = if a.workload == Workload::GstMfa {
                load::run_mfa(&plan, &mut creds.mfa).await?
            } else if a.workload.is_iam_write() {
                load::run_iam(&plan, a.workload, &creds).await?
            } else {
                load::run_replay(&plan, a.workload, &creds).await?
            };
            let hwm = a.pid.and_then(procfs::vm_hwm_kib);
            let line = RunLine::from_outcome(&a.target, a.workload, conns, run, &outcome, hwm, la);
            writeln!(out, "{}", line.to_line())?;
            eprintln!(
                "  {:<8} {:<13} conns={conns:<3} run {run}: {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  non-2xx {}  errors {}  peak RSS {}{}",
                a.target,
                a.workload.key(),
                line.rps,
                f64::from(line.p50_us) / 1000.0,
                f64::from(line.p99_us) / 1000.0,
                line.non2xx,
                line.transport_errors,
                hwm.map_or_else(
                    || "?".to_owned(),
                    |k| format!("{:.1} MiB", k as f64 / 1024.0)
                ),
                if reset || a.pid.is_none() {
                    ""
                } else {
                    " (since start)"
                },
            );
            if let Some(o) = outcome.offered {
                eprintln!(
                    "           MFA codes offered {o}, answered {}",
                    outcome.requests
                );
            }
            if outcome.reopened > 0 {
                eprintln!(
                    "           the server closed idle connections {} times (reopened, not errors)",
                    outcome.reopened
                );
            }
            if let Some(f) = &outcome.first_failure {
                eprintln!("           first failure: {f}");
            }
            tokio::time::sleep(Duration::from_secs_f64(a.pause.clamp(0.0, 30.0))).await;
        }
    }
    Ok(())
}

fn wrk_script_cmd(a: WrkScriptArgs) -> anyhow::Result<()> {
    use stsd_loadgen::wrk;
    let creds = CredsFile::read(&a.creds)?;
    let signed = load::sign_replayable(
        a.workload,
        &creds,
        &target(a.endpoint).host,
        stsd_loadgen::now_unix(),
    )?;
    let req = wrk::WrkRequest::from_wire(signed.wire())?;
    let comment = format!(
        "stsd-loadgen wrk-script: workload {} ({}), signed for {} at unix time {}.\nThe signature is valid for 15 minutes. Generated file: holds a benchmark server's credentials.",
        a.workload.key(),
        a.workload.label(),
        a.endpoint,
        stsd_loadgen::now_unix()
    );
    let text = wrk::script(&req, &comment);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(&a.out)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}

fn wrk_result_cmd(a: WrkResultArgs) -> anyhow::Result<()> {
    use stsd_loadgen::wrk;
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let r = wrk::parse_output(&text).with_context(|| format!("in {}", a.input.display()))?;
    let hwm = a.pid.and_then(procfs::vm_hwm_kib);
    let line = RunLine {
        target: a.target.clone(),
        workload: a.workload.key().to_owned(),
        conns: a.conns,
        run: a.run,
        requests: r.requests,
        window_s: r.duration_s,
        rps: r.rps,
        p50_us: r.p50_us,
        p99_us: r.p99_us,
        non2xx: r.status_errors,
        transport_errors: r.transport_errors(),
        hwm_kib: hwm.unwrap_or(0),
        offered: 0,
        loadavg: a.loadavg,
    };
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.out)
        .with_context(|| format!("opening {}", a.out.display()))?;
    if out.metadata()?.len() == 0 {
        writeln!(out, "{HEADER}")?;
    }
    writeln!(out, "{}", line.to_line())?;
    let [connect, read, write, timeout] = r.socket_errors;
    eprintln!(
        "  {:<12} {:<13} conns={:<3} run {}: {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  non-2xx {}  socket errors {} (connect {connect}, read {read}, write {write}, timeout {timeout})  peak RSS {}",
        a.target,
        a.workload.key(),
        a.conns,
        a.run,
        line.rps,
        f64::from(line.p50_us) / 1000.0,
        f64::from(line.p99_us) / 1000.0,
        line.non2xx,
        line.transport_errors,
        hwm.map_or_else(
            || "?".to_owned(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0)
        ),
    );
    Ok(())
}

fn report_cmd(a: ReportArgs) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for path in &a.results {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, l) in text.lines().enumerate() {
            if l.starts_with('#') || l.trim().is_empty() {
                continue;
            }
            lines.push(RunLine::parse(l).with_context(|| format!("{}:{}", path.display(), n + 1))?);
        }
    }
    let meta = match &a.meta {
        Some(p) => report::parse_meta(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => Vec::new(),
    };
    let md = report::markdown(&a.title, &lines, &meta);
    print!("{md}");
    if let Some(p) = &a.out {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

async fn wait_ready(a: WaitArgs) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout.clamp(0.1, 600.0));
    loop {
        if Instant::now() >= deadline {
            bail!(
                "{} did not answer /healthz within {} s",
                a.endpoint,
                a.timeout
            );
        }
        if let Some(pid) = a.pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            bail!("process {pid} exited before {} answered", a.endpoint);
        }
        if let Ok(mut s) = tokio::net::TcpStream::connect(a.endpoint).await {
            let req = format!(
                "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                a.endpoint
            );
            if s.write_all(req.as_bytes()).await.is_ok() {
                let mut buf = Vec::new();
                let read = s.read_to_end(&mut buf).await.is_ok();
                let ok = if a.any_status {
                    buf.starts_with(b"HTTP/")
                } else {
                    buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")
                };
                if read && ok {
                    let now_ns = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    let ms = now_ns.saturating_sub(a.since_ns) as f64 / 1e6;
                    println!("{ms:.1}");
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One worker thread: the client should take as little of the machine's two cores as it can.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stsd-loadgen: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Setup(a) => setup_cmd(a).await,
            Command::Run(a) => run_cmd(a).await,
            Command::Report(a) => report_cmd(a),
            Command::FreePort => {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                println!("{}", l.local_addr()?.port());
                Ok(())
            }
            Command::WaitReady(a) => wait_ready(a).await,
            Command::WrkScript(a) => wrk_script_cmd(a),
            Command::WrkResult(a) => wrk_result_cmd(a),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stsd-loadgen: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
