//! Start-up: the data directory, the master key, the store, the account and the root credentials.

use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use stsd_core::crypto::{SealingKey, format_key_file, parse_key_file};
use stsd_core::ids;
use stsd_core::secret::Secret;
use stsd_store::{OpenOptions, Store};

/// Name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "stsd.db";
/// Name of the generated master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Name of the root credentials file written when the root key is generated.
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials";

/// Where the store lives and how it is unlocked.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Master key file (default: `DATA_DIR/master.key`, generated at first start).
    pub master_key_file: Option<PathBuf>,
    /// A database URL (PostgreSQL) instead of the embedded SQLite.
    pub database_url: Option<String>,
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("creating {}", path.display()))
}

/// Writes a 0600 file, replacing an existing one atomically (write to a temporary name, then rename).
///
/// # Errors
/// I/O errors.
pub fn replace_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_file(&tmp)?;
    }
    write_private(&tmp, contents)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn create_dir_private(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        warn_if_readable_by_others(dir);
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Warns when the data directory (or a file in it) is open to other local users: it holds the database
/// with every encrypted secret and, by default, the master key that decrypts them.
#[cfg(unix)]
fn warn_if_readable_by_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    };
    if let Some(m) = mode(dir).filter(|m| m & 0o077 != 0) {
        tracing::warn!(
            "the data directory {} is open to other users (mode {m:o}); restrict it: chmod 700 {}",
            dir.display(),
            dir.display()
        );
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_file()
            && let Some(m) = mode(&p).filter(|m| m & 0o077 != 0)
        {
            tracing::warn!(
                "{} is readable by other users (mode {m:o}); restrict it: chmod 600 {}",
                p.display(),
                p.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_dir: &Path) {}

fn load_master_key(cfg: &StoreConfig) -> anyhow::Result<SealingKey> {
    if cfg.database_url.is_some() && cfg.master_key_file.is_none() {
        bail!(
            "with --database-url, pass --master-key-file (or STSD_MASTER_KEY_FILE): every node must use the same master key"
        );
    }
    let db_exists = cfg.database_url.is_some() || cfg.data_dir.join(DB_FILE).exists();
    let path = match &cfg.master_key_file {
        Some(p) => {
            if !p.exists() {
                bail!("master key file {} does not exist", p.display());
            }
            p.clone()
        }
        None => {
            let p = cfg.data_dir.join(MASTER_KEY_FILE);
            if !p.exists() {
                if db_exists {
                    bail!(
                        "the database exists but its master key file {} is missing; restore it or pass --master-key-file",
                        p.display()
                    );
                }
                let bytes = SealingKey::generate_bytes();
                write_private(&p, format_key_file(bytes.as_ref()).as_bytes())?;
                tracing::info!(path = %p.display(), "generated a new master key");
            }
            p
        }
    };
    let raw = zeroize::Zeroizing::new(
        std::fs::read(&path)
            .with_context(|| format!("reading master key file {}", path.display()))?,
    );
    let bytes =
        master_key_bytes(&raw).with_context(|| format!("master key file {}", path.display()))?;
    Ok(SealingKey::from_bytes(&bytes)?)
}

/// How to make a valid master key file, for start-up errors.
const MASTER_KEY_HELP: &str = "it must contain the base64 text of exactly 32 random bytes (one line); make one with `head -c 32 /dev/urandom | base64 > master.key && chmod 600 master.key`";

/// The key bytes of a master key file's contents, with an error that says what the file must hold
/// (a file of raw bytes, the usual mistake, is not UTF-8 and fails here rather than in a UTF-8 read).
fn master_key_bytes(raw: &[u8]) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    let Ok(text) = std::str::from_utf8(raw) else {
        bail!("the file holds raw bytes, not text: {MASTER_KEY_HELP}");
    };
    parse_key_file(text).map_err(|e| anyhow::anyhow!("{e}: {MASTER_KEY_HELP}"))
}

/// Opens the store described by `cfg` (creating the data directory and master key on first start).
///
/// # Errors
/// Unreadable or wrong master key, unreachable database, failed migrations.
pub async fn open_store(cfg: &StoreConfig) -> anyhow::Result<Store> {
    create_dir_private(&cfg.data_dir)?;
    let master = load_master_key(cfg)?;
    let opts = OpenOptions::default();
    let store = match &cfg.database_url {
        Some(url) => Store::open_url(url, master, &opts).await,
        None => Store::open_sqlite(&cfg.data_dir.join(DB_FILE), master, &opts).await,
    }
    .context("opening the store")?;
    Ok(store)
}

/// Root credentials given through the environment at first start.
pub struct RootFromEnv {
    /// `STSD_ROOT_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `STSD_ROOT_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
}

/// What happened to the root key at start.
pub enum RootKeyOutcome {
    /// A root key existed already.
    Existing(String),
    /// The key from the environment was stored.
    FromEnv(String),
    /// A key was generated; the secret is shown once.
    Generated(String, Secret),
}

fn valid_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Makes sure the account root has an access key; see [`RootKeyOutcome`].
///
/// # Errors
/// Environment values that are malformed or differ from the stored root key.
pub async fn ensure_root_key(
    store: &Store,
    data_dir: &Path,
    account: u64,
    env: Option<RootFromEnv>,
    now: i64,
) -> anyhow::Result<RootKeyOutcome> {
    // A first start races with other nodes on a shared database: whoever stores the first root key
    // wins, the others compare against it.
    for _ in 0..3 {
        if let Some(outcome) = try_root_key(store, data_dir, account, env.as_ref(), now).await? {
            return Ok(outcome);
        }
    }
    bail!("could not store or read the root key (concurrent first starts?); start again")
}

/// Stores a root key when the root has none: as the first root key (racing nodes: one wins), or, when
/// a root key existed once and was deleted, as a replacement. False when another node stored one first.
async fn store_root_key(
    store: &Store,
    id: &str,
    secret: &Secret,
    now: i64,
) -> anyhow::Result<bool> {
    if store.insert_first_root_key(id, secret, now).await? {
        return Ok(true);
    }
    if !store.root_keys().await?.is_empty() {
        return Ok(false);
    }
    match store.insert_root_key(id, secret, now).await {
        Ok(()) => Ok(true),
        Err(stsd_store::StoreError::AlreadyExists) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn try_root_key(
    store: &Store,
    data_dir: &Path,
    account: u64,
    env: Option<&RootFromEnv>,
    now: i64,
) -> anyhow::Result<Option<RootKeyOutcome>> {
    let existing = store.root_keys().await?;
    if let Some(first) = existing.first() {
        if let Some(env) = env {
            let matches = existing.iter().any(|k| {
                k.access_key_id == env.access_key_id
                    && k.secret.ct_eq(env.secret_access_key.expose())
            });
            if !matches {
                bail!(
                    "STSD_ROOT_ACCESS_KEY_ID/STSD_ROOT_SECRET_ACCESS_KEY differ from the root key stored in this data directory (root key {}); unset them to use the stored key, or rotate it with `stsd admin root rotate`",
                    first.access_key_id
                );
            }
        }
        return Ok(Some(RootKeyOutcome::Existing(first.access_key_id.clone())));
    }
    if let Some(env) = env {
        if !valid_key_id(&env.access_key_id) {
            bail!("STSD_ROOT_ACCESS_KEY_ID must be 16 to 128 letters and digits");
        }
        if env.secret_access_key.expose().len() < 16 {
            bail!("STSD_ROOT_SECRET_ACCESS_KEY must be at least 16 characters");
        }
        if !store_root_key(store, &env.access_key_id, &env.secret_access_key, now).await? {
            return Ok(None);
        }
        return Ok(Some(RootKeyOutcome::FromEnv(env.access_key_id.clone())));
    }
    let id = ids::new_long_term_key_id(account);
    let secret = ids::new_secret_access_key();
    let file = data_dir.join(ROOT_CREDENTIALS_FILE);
    let text = zeroize::Zeroizing::new(format!(
        "[stsd-root]\naws_access_key_id = {id}\naws_secret_access_key = {}\n",
        secret.expose()
    ));
    if !store_root_key(store, &id, &secret, now).await? {
        return Ok(None);
    }
    replace_private(&file, text.as_bytes())?;
    Ok(Some(RootKeyOutcome::Generated(id, secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_file_errors_say_what_the_file_must_hold() {
        let raw = SealingKey::generate_bytes();
        // Raw bytes (here made certainly invalid UTF-8) instead of base64.
        let mut bytes = raw.to_vec();
        bytes[0] = 0xff;
        for bad in [
            bytes.as_slice(),
            b"not base64!".as_slice(),
            b"Zm9v\n".as_slice(),
        ] {
            let e = format!("{:#}", master_key_bytes(bad).unwrap_err());
            assert!(e.contains("base64"), "{e}");
            assert!(e.contains("32"), "{e}");
            assert!(e.contains("head -c 32 /dev/urandom | base64"), "{e}");
            assert!(!e.contains("UTF-8"), "{e}");
        }
        let good = format_key_file(raw.as_ref());
        assert_eq!(
            master_key_bytes(good.as_bytes()).unwrap().as_slice(),
            raw.as_ref()
        );
    }
}
