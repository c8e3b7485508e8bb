//! The commands: `process`, `exec`, `export`, `serve`, `login`, `logout`.
//!
//! Stdout carries only the requested output (the `credential_process` JSON, the export); messages go to
//! stderr or the terminal, and a failure prints nothing on stdout and exits non-zero.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cache::{Cache, default_dir};
use crate::config::{AwsFiles, ProcessEnv, resolve};
use crate::secret::SessionCredentials;
use crate::session::{Options, Provider};

/// MFA-backed session credentials for every AWS tool, against stsd or AWS.
#[derive(Debug, Parser)]
#[command(name = "stsd-creds", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print `credential_process` JSON (for `credential_process = stsd-creds process --profile P`).
    Process(Common),
    /// Run a command with the session in its environment; its exit status is passed through.
    Exec(ExecArgs),
    /// Print the session as shell variables, JSON or a credentials-file section.
    Export(ExportArgs),
    /// Serve the session on a local container-credentials endpoint, refreshed before it expires.
    Serve(ServeArgs),
    /// Obtain the profile's session now (reusing a cached one unless `--force`).
    Login(LoginArgs),
    /// Drop the profile's cached session.
    Logout(LogoutArgs),
}

/// Options every credential-producing command takes.
#[derive(Debug, Args)]
struct Common {
    /// The profile (in ~/.aws/config and ~/.aws/credentials).
    #[arg(long, env = "AWS_PROFILE", default_value = "default")]
    profile: String,
    /// The MFA code (six digits); used once.
    #[arg(long, value_name = "CODE")]
    mfa_code: Option<String>,
    /// A shell command printing the current MFA code (beats the profile's `mfa_process`).
    #[arg(long, value_name = "CMD")]
    mfa_command: Option<String>,
    /// Session duration (seconds, or with s/m/h), beating the profile's `duration_seconds`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<u64>,
    /// Get a new session when less than this is left (seconds, or with s/m/h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    refresh_margin: u64,
}

#[derive(Debug, Args)]
struct ExecArgs {
    #[command(flatten)]
    common: Common,
    /// Give the command a local credentials endpoint (refreshed) instead of static keys.
    #[arg(long)]
    server: bool,
    /// The command and its arguments (after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// `export NAME='value'` lines.
    Env,
    /// The `credential_process` JSON.
    Json,
    /// A `[profile]` section for the shared credentials file.
    Ini,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    common: Common,
    /// Output format.
    #[arg(long, value_enum, default_value = "env")]
    format: Format,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write the two variables to this file (mode 0600) instead of stderr.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LoginArgs {
    #[command(flatten)]
    common: Common,
    /// Get a new session even if the cached one is still fresh.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct LogoutArgs {
    /// The profile.
    #[arg(long, env = "AWS_PROFILE", default_value = "default")]
    profile: String,
}

/// Parses `900`, `900s`, `15m`, `1h`.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a duration (seconds, or a number with s, m or h)"))
}

fn provider(common: &Common) -> Result<Provider> {
    let env = ProcessEnv;
    let files = AwsFiles::load(&env)?;
    let settings = resolve(&common.profile, &files, &env)?;
    let cache = Cache::open(default_dir(&env)?)?;
    let duration = match common.duration {
        Some(d) => Some(u32::try_from(d).context("--duration is too large")?),
        None => None,
    };
    Provider::new(
        settings,
        cache,
        Options {
            refresh_margin: common.refresh_margin,
            duration,
            mfa_code: common.mfa_code.clone(),
            mfa_command: common.mfa_command.clone(),
        },
    )
}

/// The `credential_process` JSON.
pub fn process_json(c: &SessionCredentials) -> String {
    let v = serde_json::json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "SessionToken": c.session_token.expose(),
        "Expiration": c.expiration_string(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// Variables a child process must not inherit (they would beat or confuse the ones we set).
const CLEARED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

fn credential_vars(c: &SessionCredentials) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            c.secret_access_key.expose().to_owned(),
        ),
        (
            "AWS_SESSION_TOKEN".into(),
            c.session_token.expose().to_owned(),
        ),
        ("AWS_CREDENTIAL_EXPIRATION".into(), c.expiration_string()),
    ]
}

fn cmd_process(common: &Common) -> Result<i32> {
    let p = provider(common)?;
    let creds = p.get(false)?;
    println!("{}", process_json(&creds));
    Ok(0)
}

fn cmd_export(args: &ExportArgs) -> Result<i32> {
    let p = provider(&args.common)?;
    let creds = p.get(false)?;
    let out = match args.format {
        Format::Json => process_json(&creds) + "\n",
        Format::Env => {
            let mut vars = credential_vars(&creds);
            vars.extend(p.settings().child_env.iter().cloned());
            vars.iter()
                .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
                .collect()
        }
        Format::Ini => format!(
            "# profile {} session, expires {}\n[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n\
             aws_session_token = {}\n",
            p.settings().profile,
            creds.expiration_string(),
            p.settings().profile,
            creds.access_key_id,
            creds.secret_access_key.expose(),
            creds.session_token.expose(),
        ),
    };
    print!("{out}");
    Ok(0)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    status.code().unwrap_or(1)
}

fn cmd_exec(args: &ExecArgs) -> Result<i32> {
    let Some((program, rest)) = args.command.split_first() else {
        bail!("exec needs a command after --");
    };
    let p = Arc::new(provider(&args.common)?);
    let creds = p.get(false)?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    for name in CLEARED {
        cmd.env_remove(name);
    }
    for (k, v) in &p.settings().child_env {
        cmd.env(k, v);
    }
    cmd.env("STSD_CREDS_PROFILE", &p.settings().profile);
    if args.server {
        let endpoint =
            crate::serve::start(Arc::clone(&p), SocketAddr::from(([127, 0, 0, 1], 0)), creds)?;
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &endpoint.uri);
        cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN", endpoint.token.expose());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {program:?}"))?;
        #[cfg(unix)]
        forward_signals(&child)?;
        let status = child
            .wait()
            .with_context(|| format!("waiting for {program:?}"))?;
        return Ok(exit_code(status));
    }
    for (k, v) in credential_vars(&creds) {
        cmd.env(k, v);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // Only returns on failure.
        let err = cmd.exec();
        Err(err).with_context(|| format!("cannot run {program:?}"))
    }
    #[cfg(not(unix))]
    {
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {program:?}"))?;
        Ok(exit_code(status))
    }
}

/// While the child runs (and this process serves its credentials): SIGTERM and SIGHUP, usually sent to this
/// process alone, are passed on to the child; SIGINT and SIGQUIT, which a terminal sends to the whole
/// foreground group, only no longer end this process, so the child decides and its status is passed through.
#[cfg(unix)]
fn forward_signals(child: &std::process::Child) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGQUIT, SIGTERM])
        .context("cannot install signal handlers")?;
    let pid = rustix::process::Pid::from_child(child);
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if (sig == SIGTERM || sig == SIGHUP)
                && let Some(s) = rustix::process::Signal::from_named_raw(sig)
            {
                let _ = rustix::process::kill_process(pid, s);
            }
        }
    });
    Ok(())
}

fn cmd_serve(args: &ServeArgs) -> Result<i32> {
    crate::serve::check_loopback(args.listen)?;
    let p = Arc::new(provider(&args.common)?);
    let creds = p.get(false)?;
    let endpoint = crate::serve::start(Arc::clone(&p), args.listen, creds)?;
    let vars = format!(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI={}\nAWS_CONTAINER_AUTHORIZATION_TOKEN={}\n",
        endpoint.uri,
        endpoint.token.expose()
    );
    match &args.env_file {
        Some(path) => {
            write_private(path, vars.as_bytes())?;
            eprintln!(
                "stsd-creds: serving profile {} on {} (variables in {})",
                p.settings().profile,
                endpoint.uri,
                path.display()
            );
        }
        None => eprint!("{vars}"),
    }
    loop {
        std::thread::park();
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn cmd_login(args: &LoginArgs) -> Result<i32> {
    let p = provider(&args.common)?;
    let creds = p.get(args.force)?;
    eprintln!(
        "stsd-creds: profile {}: session {} valid until {}",
        p.settings().profile,
        creds.access_key_id,
        creds.expiration_string()
    );
    Ok(0)
}

fn cmd_logout(args: &LogoutArgs) -> Result<i32> {
    let cache = Cache::open(default_dir(&ProcessEnv)?)?;
    let _lock = cache.lock(&args.profile)?;
    if cache.remove(&args.profile)? {
        eprintln!(
            "stsd-creds: profile {}: cached session dropped",
            args.profile
        );
    } else {
        eprintln!("stsd-creds: profile {}: no cached session", args.profile);
    }
    Ok(0)
}

/// Runs the command line; returns the exit status.
pub fn main() -> i32 {
    // ureq's rustls takes the process-wide provider: aws-lc-rs, as in the rest of the workspace.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Process(c) => cmd_process(c),
        Cmd::Exec(a) => cmd_exec(a),
        Cmd::Export(a) => cmd_export(a),
        Cmd::Serve(a) => cmd_serve(a),
        Cmd::Login(a) => cmd_login(a),
        Cmd::Logout(a) => cmd_logout(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stsd-creds: {e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("900"), Ok(900));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn quoting_and_json() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        let c = SessionCredentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: crate::secret::Secret::new("s"),
            session_token: crate::secret::Secret::new("t"),
            expiration: crate::secret::parse_timestamp("2030-01-01T00:00:00Z").expect("ts"),
        };
        let v: serde_json::Value = serde_json::from_str(&process_json(&c)).expect("json");
        assert_eq!(v["Version"], 1);
        assert_eq!(v["SessionToken"], "t");
        assert_eq!(v.as_object().map(serde_json::Map::len), Some(5));
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "stsd-creds",
            "exec",
            "--profile",
            "p",
            "--server",
            "--",
            "aws",
            "--version",
        ])
        .expect("parses");
        match cli.command {
            Cmd::Exec(a) => {
                assert!(a.server);
                assert_eq!(a.command, ["aws", "--version"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
