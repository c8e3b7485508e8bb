//! The session cache: one JSON file per profile in a 0700 directory, files 0600, written atomically (temporary
//! file in the same directory, fsync, rename), an OS file lock per profile around every refresh, and the last
//! MFA code used per device so that a code is never sent twice.
//!
//! Directory: `STSD_CREDS_CACHE_DIR`, else `$XDG_CACHE_HOME/stsd-creds`, else `~/.cache/stsd-creds`.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::config::Env;
use crate::secret::{Secret, SessionCredentials, format_timestamp, parse_timestamp};

/// What a cached session was obtained for; a session is reused only for exactly the same binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Profile name.
    pub profile: String,
    /// Source access key id.
    pub source_access_key_id: String,
    /// MFA device, if any.
    pub mfa_serial: Option<String>,
    /// Role, if any.
    pub role_arn: Option<String>,
    /// STS endpoint.
    pub endpoint: String,
}

/// The cache file's content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionFile {
    version: u32,
    binding: Binding,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Secret,
    expiration: String,
}

/// The last MFA code sent for a device.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct LastCode {
    /// Device serial.
    pub serial: String,
    /// The code.
    pub code: String,
    /// When it was sent, unix seconds.
    pub used_at: i64,
}

/// A failed refresh, kept so that invocations which waited for it fail with it instead of asking again.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Failure {
    /// When it failed, unix microseconds.
    pub at_micros: i64,
    /// The error, as shown.
    pub message: String,
}

/// How long a sent code stays "used" (TOTP codes are valid for a few 30 s steps at most; a six-digit code
/// coming back by chance within this time is a one-in-fifty-thousand event, and waiting one step fixes it).
pub const CODE_MEMORY_SECS: i64 = 600;

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Default cache directory from the environment (see the module docs).
pub fn default_dir(env: &dyn Env) -> Result<PathBuf> {
    if let Some(d) = env.var("STSD_CREDS_CACHE_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(x) = env.var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(x).join("stsd-creds"));
    }
    let home = env.var("HOME").context(
        "cannot find a cache directory: set STSD_CREDS_CACHE_DIR, XDG_CACHE_HOME or HOME",
    )?;
    Ok(PathBuf::from(home).join(".cache").join("stsd-creds"))
}

/// A file-name-safe form of `name`: kept when it is plain, else sanitised plus a short hash.
fn file_stem(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if plain {
        return name.to_owned();
    }
    let clean: String = name
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{clean}-{}", hash.get(..16).unwrap_or(&hash))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Writes `data` to `path` atomically with mode 0600.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| -> std::io::Result<()> {
        let mut f = private_file(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// An exclusive lock on a profile (released when dropped, or by the OS when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Cache {
    /// Opens (creating with mode 0700) the cache directory.
    pub fn open(dir: PathBuf) -> Result<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            if !dir.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let meta = std::fs::metadata(&dir).with_context(|| format!("{}", dir.display()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
            }
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a profile's session file.
    pub fn session_path(&self, profile: &str) -> PathBuf {
        self.dir
            .join(format!("session-{}.json", file_stem(profile)))
    }

    fn lock_path(&self, profile: &str) -> PathBuf {
        self.dir
            .join(format!("session-{}.lock", file_stem(profile)))
    }

    fn code_path(&self, serial: &str) -> PathBuf {
        self.dir.join(format!("mfa-{}.json", file_stem(serial)))
    }

    /// Takes the profile's exclusive lock, waiting for another process holding it.
    pub fn lock(&self, profile: &str) -> Result<Lock> {
        self.lock_file(self.lock_path(profile))
    }

    /// Takes an MFA device's exclusive lock (taken after a profile's, never before).
    pub fn lock_device(&self, serial: &str) -> Result<Lock> {
        self.lock_file(self.dir.join(format!("mfa-{}.lock", file_stem(serial))))
    }

    fn lock_file(&self, path: PathBuf) -> Result<Lock> {
        #[cfg(unix)]
        let file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
        };
        #[cfg(not(unix))]
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let file = file.with_context(|| format!("cannot open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Lock { _file: file })
    }

    /// The cached session of `binding.profile`, if one exists for exactly this binding. A damaged file counts
    /// as no session.
    pub fn load(&self, binding: &Binding) -> Result<Option<SessionCredentials>> {
        let Some(data) = read_optional(&self.session_path(&binding.profile))? else {
            return Ok(None);
        };
        let Ok(file) = serde_json::from_slice::<SessionFile>(&data) else {
            return Ok(None);
        };
        if file.version != 1 || &file.binding != binding {
            return Ok(None);
        }
        let Some(expiration) = parse_timestamp(&file.expiration) else {
            return Ok(None);
        };
        Ok(Some(SessionCredentials {
            access_key_id: file.access_key_id,
            secret_access_key: file.secret_access_key.clone(),
            session_token: file.session_token.clone(),
            expiration,
        }))
    }

    /// Stores a session for `binding.profile`.
    pub fn store(&self, binding: &Binding, creds: &SessionCredentials) -> Result<()> {
        let file = SessionFile {
            version: 1,
            binding: binding.clone(),
            access_key_id: creds.access_key_id.clone(),
            secret_access_key: creds.secret_access_key.clone(),
            session_token: creds.session_token.clone(),
            expiration: format_timestamp(creds.expiration),
        };
        let data = serde_json::to_vec_pretty(&file).context("serialising the session")?;
        write_atomic(&self.session_path(&binding.profile), &data)
    }

    /// Drops a profile's session; `true` if there was one.
    pub fn remove(&self, profile: &str) -> Result<bool> {
        let path = self.session_path(profile);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    fn failure_path(&self, profile: &str) -> PathBuf {
        self.dir
            .join(format!("session-{}.failed", file_stem(profile)))
    }

    /// Notes that getting a session for `profile` failed at `now` (call with the profile's lock held).
    pub fn record_failure(&self, profile: &str, message: &str, now: OffsetDateTime) -> Result<()> {
        let f = Failure {
            at_micros: unix_micros(now),
            message: message.to_owned(),
        };
        let data = serde_json::to_vec(&f).context("serialising the failure")?;
        write_atomic(&self.failure_path(profile), &data)
    }

    /// Forgets a failure (after a success).
    pub fn clear_failure(&self, profile: &str) {
        let _ = std::fs::remove_file(self.failure_path(profile));
    }

    /// A failure noted for `profile` at or after `since`.
    pub fn failure_since(&self, profile: &str, since: OffsetDateTime) -> Result<Option<Failure>> {
        let Some(data) = read_optional(&self.failure_path(profile))? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Failure>(&data)
            .ok()
            .filter(|f| f.at_micros >= unix_micros(since)))
    }

    /// The last code sent for `serial`.
    pub fn last_code(&self, serial: &str) -> Result<Option<LastCode>> {
        let Some(data) = read_optional(&self.code_path(serial))? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<LastCode>(&data)
            .ok()
            .filter(|c| c.serial == serial))
    }

    /// Whether `code` was sent for `serial` less than [`CODE_MEMORY_SECS`] before `now`.
    pub fn code_was_used(&self, serial: &str, code: &str, now: OffsetDateTime) -> Result<bool> {
        Ok(self.last_code(serial)?.is_some_and(|last| {
            last.code == code && now.unix_timestamp() - last.used_at < CODE_MEMORY_SECS
        }))
    }

    /// Records `code` as sent for `serial` (before it is sent, so a crash cannot lead to a resend).
    pub fn record_code(&self, serial: &str, code: &str, now: OffsetDateTime) -> Result<()> {
        let record = LastCode {
            serial: serial.to_owned(),
            code: code.to_owned(),
            used_at: now.unix_timestamp(),
        };
        let data = serde_json::to_vec(&record).context("serialising the code record")?;
        write_atomic(&self.code_path(serial), &data)
    }
}

/// Unix time in microseconds (the failure check compares times milliseconds apart).
fn unix_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "stsd-creds-test-{name}-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn binding() -> Binding {
        Binding {
            profile: "dev/x y".into(),
            source_access_key_id: "AKIA1".into(),
            mfa_serial: Some("arn:aws:iam::1:mfa/a".into()),
            role_arn: None,
            endpoint: "http://h".into(),
        }
    }

    fn creds(exp: OffsetDateTime) -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: Secret::new("sec"),
            session_token: Secret::new("tok"),
            expiration: exp,
        }
    }

    #[test]
    fn store_load_binding_and_modes() {
        let dir = tempdir("store");
        let cache = Cache::open(dir.join("c")).expect("open");
        let b = binding();
        assert!(cache.load(&b).expect("load").is_none());
        let exp = parse_timestamp("2030-01-01T00:00:00Z").expect("ts");
        cache.store(&b, &creds(exp)).expect("store");
        let got = cache.load(&b).expect("load").expect("some");
        assert_eq!(got, creds(exp));
        // another source key or endpoint: not reused
        let other = Binding {
            endpoint: "http://other".into(),
            ..b.clone()
        };
        assert!(cache.load(&other).expect("load").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&cache.session_path(&b.profile)), 0o600);
            assert_eq!(mode(cache.dir()), 0o700);
        }
        assert!(cache.session_path("dev/x y").file_name().is_some());
        assert_eq!(
            cache
                .session_path("plain")
                .file_name()
                .and_then(|n| n.to_str()),
            Some("session-plain.json")
        );
        // damaged file: no session
        std::fs::write(cache.session_path(&b.profile), b"{").expect("write");
        assert!(cache.load(&b).expect("load").is_none());
        assert!(cache.remove(&b.profile).expect("remove"));
        assert!(!cache.remove(&b.profile).expect("remove"));
        let _lock = cache.lock(&b.profile).expect("lock");
        let _device = cache
            .lock_device("arn:aws:iam::1:mfa/a")
            .expect("device lock");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn codes_are_remembered_for_a_while() {
        let dir = tempdir("codes");
        let cache = Cache::open(dir.clone()).expect("open");
        let now = OffsetDateTime::now_utc();
        let serial = "arn:aws:iam::1:mfa/a";
        assert!(!cache.code_was_used(serial, "123456", now).expect("ok"));
        cache.record_code(serial, "123456", now).expect("record");
        assert!(cache.code_was_used(serial, "123456", now).expect("ok"));
        assert!(!cache.code_was_used(serial, "654321", now).expect("ok"));
        assert!(!cache.code_was_used("other", "123456", now).expect("ok"));
        assert!(cache.failure_since("p", now).expect("ok").is_none());
        cache.record_failure("p", "boom", now).expect("record");
        assert_eq!(
            cache
                .failure_since("p", now)
                .expect("ok")
                .map(|f| f.message)
                .as_deref(),
            Some("boom")
        );
        let after = now + time::Duration::milliseconds(5);
        assert!(cache.failure_since("p", after).expect("ok").is_none());
        cache.clear_failure("p");
        assert!(cache.failure_since("p", now).expect("ok").is_none());
        let later = now + time::Duration::seconds(CODE_MEMORY_SECS);
        assert!(!cache.code_was_used(serial, "123456", later).expect("ok"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn default_dir_order() {
        let env = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            default_dir(&env(&[
                ("STSD_CREDS_CACHE_DIR", "/a"),
                ("XDG_CACHE_HOME", "/b")
            ]))
            .expect("ok"),
            PathBuf::from("/a")
        );
        assert_eq!(
            default_dir(&env(&[("XDG_CACHE_HOME", "/b"), ("HOME", "/h")])).expect("ok"),
            PathBuf::from("/b/stsd-creds")
        );
        assert_eq!(
            default_dir(&env(&[("HOME", "/h")])).expect("ok"),
            PathBuf::from("/h/.cache/stsd-creds")
        );
        assert!(default_dir(&env(&[])).is_err());
    }
}
