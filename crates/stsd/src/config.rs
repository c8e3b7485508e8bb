//! The configuration file (`--config` / `STSD_CONFIG`): TOML, strict (an unknown key is an error that
//! names it). Precedence: flags > environment > file > defaults. The defaults live in one place, the
//! `stsd serve` flag definitions in `cli.rs`; `stsd.example.toml` lists every setting with its default and
//! is checked by a test. Secrets never come from the file body: the database URL (it may hold a
//! password) is read from `database_url_file`, keys from their files.

use crate::cli::ServeArgs;
use anyhow::Context;
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    regions: Option<Vec<String>>,
    account_id: Option<String>,
    master_key_file: Option<PathBuf>,
    database_url_file: Option<PathBuf>,
    audit_log: Option<String>,
    log_format: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    workers: Option<u16>,
    mfa: Option<MfaSection>,
    rate_limit: Option<RateSection>,
    tls: Option<TlsSection>,
    policies: Option<PoliciesSection>,
    console: Option<ConsoleSection>,
    authz: Option<AuthzSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleSection {
    enabled: Option<bool>,
    idle_timeout: Option<i64>,
    session_lifetime: Option<i64>,
    mfa_issuer: Option<String>,
    secure_cookies: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoliciesSection {
    default_user_policies: Option<Vec<String>>,
    strict_credential_changes: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthzSection {
    trusted_proxies: Option<Vec<String>>,
    listen: Option<SocketAddr>,
    api: Option<Vec<crate::authorizer::config::ApiTable>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaSection {
    window_steps: Option<i64>,
    max_failures: Option<i64>,
    failure_window: Option<i64>,
    lockout: Option<i64>,
    require: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateSection {
    per_ip: Option<f64>,
    per_key: Option<f64>,
    burst: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Parses a configuration file's text.
///
/// # Errors
/// TOML syntax errors and unknown keys (the message names the key and its line).
pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// True when the setting was not given by a flag or the environment (so the file may set it).
fn from_default(m: &ArgMatches, id: &str) -> bool {
    !matches!(
        m.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Fills every setting of `args` that flags and environment left at its default from `file`.
///
/// # Errors
/// An unreadable `database_url_file`.
pub fn apply(
    args: &mut ServeArgs,
    m: &ArgMatches,
    file: FileConfig,
    base: &Path,
) -> anyhow::Result<()> {
    // Relative paths in the file are relative to the file's directory.
    let rel = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    macro_rules! set {
        ($id:literal, $target:expr, $value:expr) => {
            if let Some(v) = $value {
                if from_default(m, $id) {
                    $target = v;
                }
            }
        };
    }
    set!("listen", args.listen, file.listen);
    set!("data_dir", args.store.data_dir, file.data_dir.map(rel));
    set!("regions", args.regions, file.regions);
    set!("account_id", args.account_id, file.account_id.map(Some));
    set!(
        "master_key_file",
        args.store.master_key_file,
        file.master_key_file.map(|p| Some(rel(p)))
    );
    if let Some(p) = file.database_url_file
        && from_default(m, "database_url")
    {
        let p = rel(p);
        let url = std::fs::read_to_string(&p)
            .with_context(|| format!("reading database_url_file {}", p.display()))?;
        args.store.database_url = Some(url.trim().to_owned());
    }
    set!("audit_log", args.audit_log, file.audit_log.map(Some));
    set!("log_format", args.log_format, file.log_format);
    set!(
        "max_connections",
        args.max_connections,
        file.max_connections
    );
    set!(
        "max_connections_per_ip",
        args.max_connections_per_ip,
        file.max_connections_per_ip
    );
    if let Some(w) = file.workers {
        anyhow::ensure!(
            (1..=crate::cli::MAX_WORKERS).contains(&w),
            "workers must be between 1 and {} (got {w})",
            crate::cli::MAX_WORKERS
        );
    }
    set!("workers", args.workers, file.workers.map(Some));
    let mfa = file.mfa.unwrap_or_default();
    set!("mfa_window_steps", args.mfa_window_steps, mfa.window_steps);
    set!("mfa_max_failures", args.mfa_max_failures, mfa.max_failures);
    set!(
        "mfa_failure_window",
        args.mfa_failure_window,
        mfa.failure_window
    );
    set!("mfa_lockout", args.mfa_lockout, mfa.lockout);
    set!("require_mfa", args.require_mfa, mfa.require);
    let rate = file.rate_limit.unwrap_or_default();
    set!("rate_limit_per_ip", args.rate_limit_per_ip, rate.per_ip);
    set!("rate_limit_per_key", args.rate_limit_per_key, rate.per_key);
    set!(
        "rate_limit_burst",
        args.rate_limit_burst,
        rate.burst.map(Some)
    );
    let tls = file.tls.unwrap_or_default();
    set!("tls_cert", args.tls_cert, tls.cert.map(|p| Some(rel(p))));
    set!("tls_key", args.tls_key, tls.key.map(|p| Some(rel(p))));
    let policies = file.policies.unwrap_or_default();
    set!(
        "default_user_policies",
        args.default_user_policies,
        policies.default_user_policies
    );
    set!(
        "allow_credential_changes_without_mfa",
        args.allow_credential_changes_without_mfa,
        policies.strict_credential_changes.map(|s| !s)
    );
    let console = file.console.unwrap_or_default();
    set!("console", args.console, console.enabled);
    set!(
        "console_idle_timeout",
        args.console_idle_timeout,
        console.idle_timeout
    );
    set!(
        "console_session_lifetime",
        args.console_session_lifetime,
        console.session_lifetime
    );
    crate::cli::console_timeouts_valid(args.console_idle_timeout, args.console_session_lifetime)?;
    set!("mfa_issuer", args.mfa_issuer, console.mfa_issuer);
    set!(
        "console_secure_cookies",
        args.console_secure_cookies,
        console.secure_cookies
    );
    let authz = file.authz.unwrap_or_default();
    set!(
        "trusted_proxies",
        args.trusted_proxies,
        authz.trusted_proxies
    );
    set!("authz_listen", args.authz_listen, authz.listen.map(Some));
    if let Some(apis) = authz.api {
        args.authz_apis = apis;
    }
    if args.log_format != "human" && args.log_format != "json" {
        anyhow::bail!(
            "log_format must be \"human\" or \"json\", not {:?}",
            args.log_format
        );
    }
    Ok(())
}

/// Reads and applies the configuration file named by `--config`/`STSD_CONFIG`, if any.
///
/// # Errors
/// Unreadable or invalid file.
pub fn load_into(args: &mut ServeArgs, m: &ArgMatches) -> anyhow::Result<()> {
    let Some(path) = args.config.clone() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let file = parse(&text).with_context(|| format!("config file {}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    apply(args, m, file, &base)
}

/// The harness of the cargo-fuzz target `config` (`fuzz/fuzz_targets/config.rs`), replayed on stable by
/// this module's tests: a file's text through [`parse`] and [`apply`] onto the default `stsd serve`
/// settings. Must never panic. (`database_url_file` is ignored: fuzz input must not read files.)
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    use clap::{CommandFactory, FromArgMatches};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut file) = parse(text) else {
        return;
    };
    file.database_url_file = None;
    let Ok(m) = crate::cli::Cli::command().try_get_matches_from(["stsd", "serve"]) else {
        return;
    };
    let Ok(cli) = crate::cli::Cli::from_arg_matches(&m) else {
        return;
    };
    let (crate::cli::Command::Serve(mut args), Some(sub)) =
        (cli.command, m.subcommand_matches("serve"))
    else {
        return;
    };
    let _ = apply(&mut args, sub, file, Path::new(""));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, FromArgMatches};

    fn serve(argv: &[&str]) -> (ServeArgs, ArgMatches) {
        let m = Cli::command().try_get_matches_from(argv).unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let sub = m.subcommand_matches("serve").unwrap().clone();
        (args, sub)
    }

    #[test]
    fn example_file_is_valid_and_matches_the_defaults() {
        let text = include_str!("../../../stsd.example.toml");
        let file = parse(text).unwrap();
        let (defaults, _) = serve(&["stsd", "serve"]);
        let (mut args, m) = serve(&["stsd", "serve"]);
        apply(&mut args, &m, file, Path::new("")).unwrap();
        assert_eq!(
            format!("{args:?}"),
            format!("{defaults:?}"),
            "stsd.example.toml disagrees with the flag defaults"
        );
        // Every setting appears in the example (commented or not).
        for key in [
            "listen",
            "data_dir",
            "regions",
            "account_id",
            "master_key_file",
            "database_url_file",
            "audit_log",
            "log_format",
            "max_connections",
            "max_connections_per_ip",
            "workers",
            "window_steps",
            "max_failures",
            "failure_window",
            "lockout",
            "require",
            "per_ip",
            "per_key",
            "burst",
            "cert",
            "key",
            "trusted_proxies",
            "enabled",
            "idle_timeout",
            "session_lifetime",
            "id",
            "stage",
            "hosts",
            "path_prefix",
            "service",
            "unsigned_payload",
            "action_prefix",
        ] {
            assert!(
                text.contains(&format!("{key} =")),
                "stsd.example.toml does not mention {key}"
            );
        }
    }

    #[test]
    fn fuzz_corpus_replays_without_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            n += 1;
            fuzz_one(&data);
            for cut in (0..data.len()).step_by(3) {
                fuzz_one(&data[..cut]);
            }
        }
        assert!(n >= 3, "seed corpus missing");
    }

    #[test]
    fn authorizer_apis_and_listener_come_from_the_authz_section() {
        let file = parse(
            "[authz]\nlisten = \"127.0.0.1:9\"\n[[authz.api]]\nid = \"a\"\nstage = \"s\"\nhosts = [\"h\"]\n",
        )
        .unwrap();
        let (mut args, m) = serve(&["stsd", "serve"]);
        apply(&mut args, &m, file, Path::new("")).unwrap();
        assert_eq!(args.authz_apis.len(), 1);
        assert_eq!(args.authz_listen, Some("127.0.0.1:9".parse().unwrap()));
        let e = parse("[[authz.api]]\nid = \"a\"\nstages = \"s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stages"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let e = parse("listen = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_adress"), "{e}");
        let e = parse("[mfa]\nwindow = 3\n").unwrap_err().to_string();
        assert!(e.contains("window"), "{e}");
        assert!(
            parse("database_url = \"postgres://u:p@h/d\"\n").is_err(),
            "secrets must not come from the file body"
        );
    }

    #[test]
    fn precedence_flags_over_file_over_defaults() {
        let file = || {
            parse("listen = \"127.0.0.1:9999\"\nmax_connections = 7\n[mfa]\nlockout = 60\n")
                .unwrap()
        };
        let (mut args, m) = serve(&["stsd", "serve", "--max-connections", "3"]);
        apply(&mut args, &m, file(), Path::new("")).unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(args.max_connections, 3, "the flag must win over the file");
        assert_eq!(args.mfa_lockout, 60);
        assert_eq!(
            args.mfa_max_failures, 10,
            "untouched settings keep their defaults"
        );
        assert_eq!(args.workers, None, "default: one worker per core");
    }

    #[test]
    fn console_timeouts_from_file_and_flags_and_validated() {
        let (mut args, m) = serve(&["stsd", "serve", "--console-idle-timeout", "3"]);
        let file = parse("[console]\nidle_timeout = 60\nsession_lifetime = 600\n").unwrap();
        apply(&mut args, &m, file, Path::new("")).unwrap();
        assert_eq!(
            args.console_idle_timeout, 3,
            "the flag must win over the file"
        );
        assert_eq!(args.console_session_lifetime, 600);
        for (text, want) in [
            ("[console]\nidle_timeout = 0\n", "must be more than 0"),
            ("[console]\nsession_lifetime = -5\n", "must be more than 0"),
            (
                "[console]\nidle_timeout = 100\nsession_lifetime = 50\n",
                "must not exceed",
            ),
        ] {
            let (mut args, m) = serve(&["stsd", "serve"]);
            let e = apply(&mut args, &m, parse(text).unwrap(), Path::new(""))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn workers_from_file_and_flag() {
        let (mut args, m) = serve(&["stsd", "serve"]);
        apply(
            &mut args,
            &m,
            parse("workers = 3\n").unwrap(),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(args.workers, Some(3));
        let (mut args, m) = serve(&["stsd", "serve", "--workers", "1"]);
        apply(
            &mut args,
            &m,
            parse("workers = 3\n").unwrap(),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(args.workers, Some(1), "the flag must win over the file");
        let (mut args, m) = serve(&["stsd", "serve"]);
        let e = apply(
            &mut args,
            &m,
            parse("workers = 0\n").unwrap(),
            Path::new(""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("workers"), "{e}");
    }
}
