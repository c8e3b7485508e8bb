//! The AWS shared configuration files (`~/.aws/config`, `~/.aws/credentials`) read the way botocore reads
//! them, and what a profile resolves to: source key, MFA device, role, duration, STS endpoint, region.
//!
//! File format (botocore's `raw_config_parse`): `[section]` headers, `key = value` (or `key: value`) lines,
//! whole-line comments starting with `#` or `;`, keys lower-cased, and indented lines continuing the previous
//! value; a value that starts on the next line is a nested section (`sts =` / `  endpoint_url = …`).
//! In the config file profiles are `[default]` and `[profile NAME]`, the `services` sections
//! `[services NAME]`; in the credentials file every section is a profile.
//!
//! Endpoint order (first match wins, all skipped when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` or the profile's
//! `ignore_configured_endpoint_urls` is true): `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the profile's
//! `services` section (`sts` → `endpoint_url`), the profile's `endpoint_url`; otherwise AWS's regional
//! endpoint `https://sts.REGION.amazonaws.com`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::secret::{Secret, SourceKey};

/// Section name → key → value. Nested values keep their raw text (`"\nendpoint_url = …"`).
pub type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// Parses an INI file the way botocore does (see the module docs).
pub fn parse_ini(text: &str) -> Sections {
    let mut sections: Sections = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut last_key: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.len() != trimmed.len();
        if indented {
            // continuation of the previous value
            if let (Some(section), Some(key)) = (&current, &last_key)
                && let Some(value) = sections.get_mut(section).and_then(|s| s.get_mut(key))
            {
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.strip_suffix(']').unwrap_or(rest).trim();
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            last_key = None;
            continue;
        }
        let Some(section) = &current else { continue };
        let split = trimmed.find(['=', ':']);
        let (key, value) = match split {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (trimmed, ""),
        };
        let key = key.trim().to_ascii_lowercase();
        if let Some(s) = sections.get_mut(section) {
            s.insert(key.clone(), value.trim().to_owned());
        }
        last_key = Some(key);
    }
    sections
}

/// Parses a nested value (`"\nsts_key = v\nother = w"`) into its keys.
pub fn parse_nested(value: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in value.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(i) = line.find(['=', ':']) {
            out.insert(
                line[..i].trim().to_ascii_lowercase(),
                line[i + 1..].trim().to_owned(),
            );
        }
    }
    out
}

/// Reads environment variables; a function so tests can inject their own.
pub trait Env {
    /// The variable's value, `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// Both shared files, parsed.
#[derive(Debug, Clone, Default)]
pub struct AwsFiles {
    /// `~/.aws/config` (or `AWS_CONFIG_FILE`).
    pub config: Sections,
    /// `~/.aws/credentials` (or `AWS_SHARED_CREDENTIALS_FILE`).
    pub credentials: Sections,
    /// Path of the config file, for messages.
    pub config_path: PathBuf,
    /// Path of the credentials file, for messages.
    pub credentials_path: PathBuf,
}

/// `$HOME`, required for the default file locations.
pub fn home_dir(env: &dyn Env) -> Option<PathBuf> {
    env.var("HOME").map(PathBuf::from)
}

fn read_optional(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl AwsFiles {
    /// Loads the files named by `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/…`. A missing
    /// file is an empty one.
    pub fn load(env: &dyn Env) -> Result<Self> {
        let home = home_dir(env);
        let default = |name: &str| home.as_ref().map(|h| h.join(".aws").join(name));
        let config_path = env
            .var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| default("config"))
            .context("HOME is not set and AWS_CONFIG_FILE is not given")?;
        let credentials_path = env
            .var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| default("credentials"))
            .context("HOME is not set and AWS_SHARED_CREDENTIALS_FILE is not given")?;
        Ok(Self {
            config: parse_ini(&read_optional(&config_path)?),
            credentials: parse_ini(&read_optional(&credentials_path)?),
            config_path,
            credentials_path,
        })
    }

    /// The keys of profile `name`: its config-file section, overlaid with its credentials-file section
    /// (credentials win, as in botocore). `None` when neither file has it.
    pub fn profile(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let mut found = false;
        let mut map = BTreeMap::new();
        let config_name = format!("profile {name}");
        let mut config_sections = vec![config_name.as_str()];
        if name == "default" {
            config_sections.insert(0, "default");
        }
        for section in config_sections {
            if let Some(s) = self.config.get(section) {
                found = true;
                map.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        if let Some(s) = self.credentials.get(name) {
            found = true;
            map.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        found.then_some(map)
    }

    /// A `[services NAME]` section of the config file.
    pub fn services(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config.get(&format!("services {name}"))
    }
}

/// Everything a profile resolves to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile name.
    pub profile: String,
    /// The key that signs the STS call.
    pub source: SourceKey,
    /// `mfa_serial` (ARN of a virtual device or a hardware serial).
    pub mfa_serial: Option<String>,
    /// `mfa_process`: a shell command printing the current code.
    pub mfa_process: Option<String>,
    /// `role_arn`: AssumeRole instead of GetSessionToken.
    pub role_arn: Option<String>,
    /// `role_session_name` (default: `stsd-creds-<unix time>`).
    pub role_session_name: Option<String>,
    /// `external_id`.
    pub external_id: Option<String>,
    /// `duration_seconds`; `None` lets the server choose.
    pub duration_seconds: Option<u32>,
    /// STS endpoint URL.
    pub endpoint: String,
    /// Where the endpoint came from, for messages.
    pub endpoint_origin: String,
    /// Signing region.
    pub region: String,
    /// PEM file of the CAs trusted for HTTPS (`AWS_CA_BUNDLE`, else the profile's `ca_bundle`).
    pub ca_bundle: Option<PathBuf>,
    /// Variables that point a child process at the same endpoints and region (`exec`, `export`).
    pub child_env: Vec<(String, String)>,
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Environment variable name of a service's endpoint: `AWS_ENDPOINT_URL_` + id upper-cased, spaces and
/// dashes → `_` (`sts` → `AWS_ENDPOINT_URL_STS`).
pub fn endpoint_env_name(service: &str) -> String {
    let id: String = service
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!("AWS_ENDPOINT_URL_{id}")
}

/// The configured endpoint of `service` for a profile (see the module docs for the order), with its origin.
/// `None`: nothing configured (use AWS's default endpoint).
pub fn configured_endpoint(
    service: &str,
    profile: &BTreeMap<String, String>,
    files: &AwsFiles,
    env: &dyn Env,
) -> Option<(String, String)> {
    if truthy(env.var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_ref())
        || truthy(profile.get("ignore_configured_endpoint_urls"))
    {
        return None;
    }
    let var = endpoint_env_name(service);
    if let Some(v) = env.var(&var) {
        return Some((v, var));
    }
    if let Some(v) = env.var("AWS_ENDPOINT_URL") {
        return Some((v, "AWS_ENDPOINT_URL".into()));
    }
    if let Some(services) = profile.get("services")
        && let Some(section) = files.services(services.trim())
        && let Some(nested) = section.get(service)
        && let Some(url) = parse_nested(nested).get("endpoint_url")
    {
        return Some((
            url.clone(),
            format!("[services {}] {service} endpoint_url", services.trim()),
        ));
    }
    profile
        .get("endpoint_url")
        .filter(|v| !v.is_empty())
        .map(|v| (v.clone(), "profile endpoint_url".into()))
}

/// AWS's own STS endpoint for a region.
pub fn default_sts_endpoint(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://sts.{region}.amazonaws.com.cn")
    } else {
        format!("https://sts.{region}.amazonaws.com")
    }
}

fn source_key_from(map: &BTreeMap<String, String>, origin: String) -> Option<SourceKey> {
    let id = map.get("aws_access_key_id").filter(|v| !v.is_empty())?;
    let secret = map.get("aws_secret_access_key").filter(|v| !v.is_empty())?;
    Some(SourceKey {
        access_key_id: id.clone(),
        secret_access_key: Secret::new(secret.clone()),
        session_token: map
            .get("aws_session_token")
            .filter(|v| !v.is_empty())
            .map(|t| Secret::new(t.clone())),
        origin,
    })
}

fn source_key_from_env(env: &dyn Env) -> Option<SourceKey> {
    Some(SourceKey {
        access_key_id: env.var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: Secret::new(env.var("AWS_SECRET_ACCESS_KEY")?),
        session_token: env.var("AWS_SESSION_TOKEN").map(Secret::new),
        origin: "environment (AWS_ACCESS_KEY_ID)".into(),
    })
}

/// Resolves profile `name` (see [`Settings`]).
///
/// # Errors
/// Unknown profile, unknown `source_profile`, no long-term key anywhere, a bad `duration_seconds`.
pub fn resolve(name: &str, files: &AwsFiles, env: &dyn Env) -> Result<Settings> {
    let profile = match files.profile(name) {
        Some(p) => p,
        // The default profile may be empty: the key can come from the environment.
        None if name == "default" => BTreeMap::new(),
        None => bail!(
            "profile {name:?} is in neither {} nor {}",
            files.config_path.display(),
            files.credentials_path.display()
        ),
    };
    let source_name = profile.get("source_profile").filter(|s| !s.is_empty());
    let source_profile = match source_name {
        Some(s) => Some(files.profile(s).with_context(|| {
            format!("profile {name:?}: its source_profile {s:?} does not exist")
        })?),
        None => None,
    };
    let from_env = profile
        .get("credential_source")
        .is_some_and(|v| v.eq_ignore_ascii_case("Environment"));
    let source = if from_env {
        source_key_from_env(env)
    } else if let (Some(sname), Some(sp)) = (source_name, &source_profile) {
        source_key_from(sp, format!("profile {sname:?} (source_profile)"))
    } else {
        source_key_from(&profile, format!("profile {name:?}")).or_else(|| source_key_from_env(env))
    };
    let Some(source) = source else {
        bail!(
            "profile {name:?} has no long-term key: put aws_access_key_id and aws_secret_access_key in \
             [{}] of {}, name a source_profile that has them, or set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY",
            source_name.map_or(name, String::as_str),
            files.credentials_path.display()
        );
    };
    let get = |key: &str| -> Option<String> {
        profile
            .get(key)
            .or_else(|| source_profile.as_ref().and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let own = |key: &str| -> Option<String> { profile.get(key).filter(|v| !v.is_empty()).cloned() };
    let duration_seconds = match get("duration_seconds") {
        Some(d) => Some(d.trim().parse::<u32>().with_context(|| {
            format!("profile {name:?}: duration_seconds {d:?} is not a number")
        })?),
        None => None,
    };
    let region = env
        .var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .or_else(|| get("region"))
        .unwrap_or_else(|| "us-east-1".into());
    let (endpoint, endpoint_origin) = configured_endpoint("sts", &profile, files, env)
        .unwrap_or_else(|| (default_sts_endpoint(&region), "AWS default".into()));

    let mut child_env = Vec::new();
    let ignore = truthy(env.var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_ref())
        || truthy(profile.get("ignore_configured_endpoint_urls"));
    if !ignore {
        if let Some(url) = own("endpoint_url") {
            child_env.push(("AWS_ENDPOINT_URL".to_owned(), url));
        }
        if let Some(services) = own("services")
            && let Some(section) = files.services(services.trim())
        {
            for (service, nested) in section {
                if let Some(url) = parse_nested(nested).get("endpoint_url") {
                    child_env.push((endpoint_env_name(service), url.clone()));
                }
            }
        }
        if endpoint_origin != "AWS default"
            && !child_env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL_STS")
        {
            child_env.push(("AWS_ENDPOINT_URL_STS".to_owned(), endpoint.clone()));
        }
    }
    child_env.push(("AWS_REGION".to_owned(), region.clone()));
    child_env.push(("AWS_DEFAULT_REGION".to_owned(), region.clone()));

    Ok(Settings {
        profile: name.to_owned(),
        source,
        mfa_serial: get("mfa_serial"),
        mfa_process: get("mfa_process"),
        role_arn: own("role_arn"),
        role_session_name: own("role_session_name"),
        external_id: own("external_id"),
        duration_seconds,
        endpoint,
        endpoint_origin,
        region,
        ca_bundle: env
            .var("AWS_CA_BUNDLE")
            .or_else(|| get("ca_bundle"))
            .map(PathBuf::from),
        child_env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# comment
[default]
region = eu-west-1

[profile base]
mfa_serial = arn:aws:iam::123456789012:mfa/alice
endpoint_url = http://127.0.0.1:8754
duration_seconds = 3600
region=us-east-1

[profile  viaservices]
source_profile = base
services = local
; another comment
[services local]
sts =
  endpoint_url = http://sts.local:1
iam =
  endpoint_url = http://iam.local:2

[profile role]
source_profile = base
role_arn = arn:aws:iam::123456789012:role/admin
";
    const CREDENTIALS: &str = "\
[base]
aws_access_key_id = AKIAEXAMPLE
aws_secret_access_key = c2VjcmV0
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = ZGVmYXVsdA==
";

    fn files() -> AwsFiles {
        AwsFiles {
            config: parse_ini(CONFIG),
            credentials: parse_ini(CREDENTIALS),
            config_path: "config".into(),
            credentials_path: "credentials".into(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ini_sections_keys_and_nesting() {
        let s = parse_ini(CONFIG);
        assert_eq!(s["default"]["region"], "eu-west-1");
        assert_eq!(s["profile base"]["region"], "us-east-1");
        assert_eq!(s["profile viaservices"]["services"], "local");
        let nested = parse_nested(&s["services local"]["sts"]);
        assert_eq!(nested["endpoint_url"], "http://sts.local:1");
        // keys are lower-cased, comments skipped, ':' is a delimiter too
        let s = parse_ini("[x]\nRegion: us-west-2\n#a = b\nURL = http://h:1/p\n");
        assert_eq!(s["x"]["region"], "us-west-2");
        assert_eq!(s["x"]["url"], "http://h:1/p");
        assert!(!s["x"].contains_key("#a"));
    }

    #[test]
    fn profile_merges_config_and_credentials() {
        let f = files();
        let base = f.profile("base").expect("base");
        assert_eq!(base["aws_access_key_id"], "AKIAEXAMPLE");
        assert_eq!(base["mfa_serial"], "arn:aws:iam::123456789012:mfa/alice");
        assert!(f.profile("nope").is_none());
        assert_eq!(
            f.profile("default").expect("default")["region"],
            "eu-west-1"
        );
    }

    #[test]
    fn resolves_source_mfa_duration_endpoint() {
        let s = resolve("base", &files(), &env(&[])).expect("resolves");
        assert_eq!(s.source.access_key_id, "AKIAEXAMPLE");
        assert_eq!(
            s.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/alice")
        );
        assert_eq!(s.duration_seconds, Some(3600));
        assert_eq!(s.endpoint, "http://127.0.0.1:8754");
        assert_eq!(s.region, "us-east-1");
        assert!(
            s.child_env
                .contains(&("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:8754".into()))
        );
        assert!(s.child_env.contains(&(
            "AWS_ENDPOINT_URL_STS".into(),
            "http://127.0.0.1:8754".into()
        )));
        assert!(
            s.child_env
                .contains(&("AWS_REGION".into(), "us-east-1".into()))
        );
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn endpoint_resolution_order() {
        let f = files();
        // services section beats the (inherited-by-nothing) default; the source profile's endpoint_url is
        // not the profile's
        let s = resolve("viaservices", &f, &env(&[])).expect("resolves");
        assert_eq!(s.endpoint, "http://sts.local:1");
        assert!(
            s.child_env
                .contains(&("AWS_ENDPOINT_URL_IAM".into(), "http://iam.local:2".into()))
        );
        assert_eq!(s.source.access_key_id, "AKIAEXAMPLE");
        assert_eq!(
            s.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/alice")
        );
        // AWS_ENDPOINT_URL beats the services section and the profile
        let s = resolve(
            "viaservices",
            &f,
            &env(&[("AWS_ENDPOINT_URL", "http://all:3")]),
        )
        .expect("ok");
        assert_eq!(s.endpoint, "http://all:3");
        // AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL
        let e = env(&[
            ("AWS_ENDPOINT_URL", "http://all:3"),
            ("AWS_ENDPOINT_URL_STS", "http://sts:4"),
        ]);
        assert_eq!(
            resolve("base", &f, &e).expect("ok").endpoint,
            "http://sts:4"
        );
        // ignore flag: AWS's regional endpoint
        let e = env(&[
            ("AWS_ENDPOINT_URL_STS", "http://sts:4"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        let s = resolve("base", &f, &e).expect("ok");
        assert_eq!(s.endpoint, "https://sts.us-east-1.amazonaws.com");
        assert!(
            !s.child_env
                .iter()
                .any(|(k, _)| k.starts_with("AWS_ENDPOINT_URL"))
        );
        // default profile: region from the profile, AWS endpoint
        let s = resolve("default", &f, &env(&[])).expect("ok");
        assert_eq!(s.endpoint, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(
            default_sts_endpoint("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        // AWS_REGION beats the profile
        let s = resolve("default", &f, &env(&[("AWS_REGION", "ap-south-1")])).expect("ok");
        assert_eq!(s.region, "ap-south-1");
    }

    #[test]
    fn role_and_environment_key() {
        let f = files();
        let s = resolve("role", &f, &env(&[])).expect("ok");
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/admin")
        );
        assert_eq!(s.source.access_key_id, "AKIAEXAMPLE");
        // a profile without a key of its own falls back to the environment
        let mut f2 = files();
        f2.config.insert("profile bare".into(), BTreeMap::new());
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ]);
        assert_eq!(
            resolve("bare", &f2, &e).expect("ok").source.access_key_id,
            "AKIAENV"
        );
        let err = resolve("bare", &f2, &env(&[])).expect_err("no key");
        assert!(err.to_string().contains("no long-term key"), "{err}");
        let err = resolve("missing", &f2, &env(&[])).expect_err("unknown");
        assert!(err.to_string().contains("\"missing\""), "{err}");
        assert_eq!(endpoint_env_name("sts"), "AWS_ENDPOINT_URL_STS");
        assert_eq!(
            endpoint_env_name("secrets manager"),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER"
        );
    }
}
