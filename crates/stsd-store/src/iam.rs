//! Users, access keys and MFA devices.

use crate::inline::Cols;
use crate::migrations::Dialect;
use crate::{KeyStatus, Result, Store, StoreError, User, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;
use stsd_core::secret::Secret;

/// The owner value stored for devices of the account root.
pub const ROOT_OWNER: &str = "root";
/// At most this many MFA devices can be enabled for one user.
pub const MAX_DEVICES_PER_USER: i64 = 8;

/// An access key without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    /// Key id.
    pub access_key_id: String,
    /// Owning user (`None`: root).
    pub user_id: Option<String>,
    /// Status.
    pub status: KeyStatus,
    /// Creation time.
    pub created_at: i64,
    /// Last use (time, region, service), if any was recorded.
    pub last_used: Option<(i64, String, String)>,
}

/// Kind of MFA device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Created with CreateVirtualMFADevice.
    Virtual,
    /// A hardware TOTP token imported by an operator.
    Hardware,
}

impl DeviceKind {
    fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Virtual => "virtual",
            DeviceKind::Hardware => "hardware",
        }
    }
}

/// An MFA device with its decrypted seed (base32 text).
#[derive(Debug, Clone)]
pub struct MfaDevice {
    /// Serial number (ARN for virtual devices).
    pub serial_number: String,
    /// Virtual or hardware.
    pub kind: DeviceKind,
    /// Device name.
    pub name: String,
    /// Path.
    pub path: String,
    /// Base32 seed (redacted in `Debug`).
    pub seed: Secret,
    /// Creation time.
    pub created_at: i64,
    /// Who created it (`root` or a user id).
    pub created_by: Option<String>,
    /// Who it is enabled for (`root` or a user id); `None` while unassigned.
    pub owner: Option<String>,
    /// When it was enabled.
    pub enabled_at: Option<i64>,
    /// Last accepted TOTP step (replay protection).
    pub last_step: Option<i64>,
    /// Device clock offset in steps, learned at enable/resync time.
    pub drift_steps: i64,
    /// Failed codes in the current window.
    pub failed_count: i64,
    /// Codes are refused until this time.
    pub locked_until: Option<i64>,
    /// The seed as stored (encrypted): which seed this is, for [`crate::Store::mfa_accept_step`].
    pub sealed_seed: SealedSeed,
}

/// A device's seed as stored, encrypted under the store's master key (see [`MfaDevice::sealed_seed`]).
/// It names one seed: a device deleted and created again under the same serial number has another.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSeed(pub(crate) Vec<u8>);

impl std::fmt::Debug for SealedSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSeed(..)")
    }
}

fn seed_context(serial: &str) -> Vec<u8> {
    format!("mfa_seed:{serial}").into_bytes()
}

pub(crate) fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        created_at: row.try_get("created_at")?,
        sessions_not_before: row.try_get("sessions_not_before")?,
    })
}

/// A user from the columns `user_id, name, path, created_at, sessions_not_before`, by position.
fn user_from_cols(row: &dyn Cols) -> Result<User> {
    Ok(User {
        user_id: row.text(0)?,
        name: row.text(1)?,
        path: row.text(2)?,
        created_at: row.int(3)?,
        sessions_not_before: row.int(4)?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<KeyMeta> {
    let status: String = row.try_get("status")?;
    let at: Option<i64> = row.try_get("last_used_at")?;
    let region: Option<String> = row.try_get("last_used_region")?;
    let service: Option<String> = row.try_get("last_used_service")?;
    Ok(KeyMeta {
        access_key_id: row.try_get("access_key_id")?,
        user_id: row.try_get("user_id")?,
        status: KeyStatus::parse(&status),
        created_at: row.try_get("created_at")?,
        last_used: at.map(|t| (t, region.unwrap_or_default(), service.unwrap_or_default())),
    })
}

const USER_COLS: &str = "user_id, name, path, created_at, sessions_not_before";
const KEY_COLS: &str =
    "access_key_id, user_id, status, created_at, last_used_at, last_used_region, last_used_service";
/// Keys per statement of [`Store::record_last_used`].
const LAST_USED_CHUNK: usize = 500;

/// `[[key id, time, region, service], …]` as JSON, the rows of [`Store::record_last_used`]'s statement.
fn last_used_rows(entries: &[&(String, i64, String, String)]) -> String {
    use std::fmt::Write as _;
    let mut rows = String::with_capacity(entries.len() * 64 + 2);
    rows.push('[');
    for (i, (id, at, region, service)) in entries.iter().map(|e| &**e).enumerate() {
        if i > 0 {
            rows.push(',');
        }
        rows.push('[');
        crate::group::json_string(&mut rows, id);
        let _ = write!(rows, ",{at},");
        crate::group::json_string(&mut rows, region);
        rows.push(',');
        crate::group::json_string(&mut rows, service);
        rows.push(']');
    }
    rows.push(']');
    rows
}

const DEVICE_COLS: &str = "serial_number, kind, name, path, seed_enc, created_at, created_by, owner, enabled_at, last_step, drift_steps, failed_count, locked_until";

impl Store {
    // ---- users ----

    /// A user by name (case-insensitive, as IAM).
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        // On the calling thread on a SQLite file (`inline`): IAM calls naming a user read it first.
        const SQL: &str = "SELECT user_id, name, path, created_at, sessions_not_before FROM users WHERE name_key = $1";
        self.read_row(SQL, &[&name.to_lowercase()], user_from_cols)
            .await
    }

    /// A user by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_id(&self, user_id: &str) -> Result<Option<User>> {
        const SQL: &str = "SELECT user_id, name, path, created_at, sessions_not_before FROM users WHERE user_id = $1";
        self.read_row(SQL, &[user_id], user_from_cols).await
    }

    /// Users whose path starts with `path_prefix`, by name, after `after` (a name key), at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_users(
        &self,
        path_prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>> {
        let _ = USER_COLS;
        let rows = sqlx::query(
            "SELECT user_id, name, path, created_at, sessions_not_before FROM users \
             WHERE SUBSTR(path, 1, LENGTH($1)) = $1 AND name_key > $2 ORDER BY name_key LIMIT $3",
        )
        .bind(path_prefix)
        .bind(after.unwrap_or("").to_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Deletes a user that has no login profile, no access keys, no enabled MFA devices, no policies and
    /// no groups.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] (`"login_profile"`, `"keys"`, `"devices"`, `"policies"`,
    /// `"attached"` or `"groups"`), database errors.
    pub async fn delete_user(&self, user_id: &str) -> Result<()> {
        let r = sqlx::query(
            "DELETE FROM users WHERE user_id = $1 AND key_count = 0 AND device_count = 0 \
             AND inline_policy_count = 0 AND attached_policy_count = 0 AND group_count = 0 \
             AND NOT EXISTS (SELECT 1 FROM login_profiles WHERE owner = $1)",
        )
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        let row = sqlx::query(
            "SELECT key_count, device_count, inline_policy_count, attached_policy_count FROM users WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(StoreError::NotFound),
            Some(row) => {
                let count = |c: &str| -> Result<i64> { Ok(row.try_get(c)?) };
                let profile = self.login_profile(user_id).await?.is_some();
                Err(StoreError::Conflict(if profile {
                    "login_profile"
                } else if count("key_count")? > 0 {
                    "keys"
                } else if count("device_count")? > 0 {
                    "devices"
                } else if count("inline_policy_count")? > 0 {
                    "policies"
                } else if count("attached_policy_count")? > 0 {
                    "attached"
                } else {
                    "groups"
                }))
            }
        }
    }

    /// Sets the per-user "MFA required" flag; returns whether the user exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_user_mfa_required(&self, user_id: &str, required: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET mfa_required = $1 WHERE user_id = $2")
            .bind(i64::from(required))
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The per-user "MFA required" flag; `None` when the user does not exist.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_mfa_required(&self, user_id: &str) -> Result<Option<bool>> {
        let row = sqlx::query("SELECT mfa_required FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get::<i64, _>("mfa_required")? != 0))
            .transpose()
    }

    /// Sets a principal's "sessions not before" time (revocation of earlier sessions).
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_sessions_not_before(&self, user_id: &str, t: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET sessions_not_before = $1 WHERE user_id = $2")
            .bind(t)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- access keys ----

    /// Keys of a user (`Some(user_id)`) or of the root (`None`), by id, after `after`, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_keys(
        &self,
        user_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<KeyMeta>> {
        let _ = KEY_COLS;
        let rows = match user_id {
            Some(u) => sqlx::query(
                "SELECT access_key_id, user_id, status, created_at, last_used_at, last_used_region, last_used_service \
                 FROM access_keys WHERE user_id = $1 AND access_key_id > $2 ORDER BY access_key_id LIMIT $3",
            )
            .bind(u)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query(
                "SELECT access_key_id, user_id, status, created_at, last_used_at, last_used_region, last_used_service \
                 FROM access_keys WHERE user_id IS NULL AND access_key_id > $1 ORDER BY access_key_id LIMIT $2",
            )
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter().map(key_from_row).collect()
    }

    /// One key's metadata.
    ///
    /// # Errors
    /// Database errors.
    pub async fn key_meta(&self, access_key_id: &str) -> Result<Option<KeyMeta>> {
        let row = sqlx::query(
            "SELECT access_key_id, user_id, status, created_at, last_used_at, last_used_region, last_used_service \
             FROM access_keys WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Activates or deactivates a key of `user_id` (`None`: root); returns whether it matched.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_key_status(
        &self,
        access_key_id: &str,
        user_id: Option<&str>,
        status: KeyStatus,
    ) -> Result<bool> {
        let r = match user_id {
            Some(u) => {
                sqlx::query(
                    "UPDATE access_keys SET status = $1 WHERE access_key_id = $2 AND user_id = $3",
                )
                .bind(status.as_str())
                .bind(access_key_id)
                .bind(u)
                .execute(&self.pool)
                .await?
            }
            None => sqlx::query(
                "UPDATE access_keys SET status = $1 WHERE access_key_id = $2 AND user_id IS NULL",
            )
            .bind(status.as_str())
            .bind(access_key_id)
            .execute(&self.pool)
            .await?,
        };
        Ok(r.rows_affected() == 1)
    }

    /// Deletes a key of `user_id` (`None`: root); returns whether it matched.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_key(&self, access_key_id: &str, user_id: Option<&str>) -> Result<bool> {
        let Some(u) = user_id else {
            return self.delete_root_key(access_key_id).await;
        };
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1 AND user_id = $2")
            .bind(access_key_id)
            .bind(u)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET key_count = key_count - 1 WHERE user_id = $1")
            .bind(u)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records last-use information for many keys at once (batched by the server): one statement per
    /// [`LAST_USED_CHUNK`] keys, each keeping a key's later time. On SQLite this goes through the
    /// writer (see `group`) like the other frequent writes: a transaction of its own on another pooled
    /// connection held SQLite's write lock for one round trip per key, and every commit of the writer
    /// (MFA acceptances among them) waited behind it in SQLite's busy handler, which sleeps.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_last_used(&self, entries: &[(String, i64, String, String)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // The server's entries come from a map: one per key. A key listed twice would be updated from
        // either row, so only its latest time is kept here.
        let mut latest: std::collections::HashMap<&str, &(String, i64, String, String)> =
            std::collections::HashMap::with_capacity(entries.len());
        for e in entries {
            let slot = latest.entry(e.0.as_str()).or_insert(e);
            if e.1 > slot.1 {
                *slot = e;
            }
        }
        let dialect = self.dialect;
        let chunks: Vec<String> = latest
            .into_values()
            .collect::<Vec<_>>()
            .chunks(LAST_USED_CHUNK)
            .map(last_used_rows)
            .collect();
        self.write(false, chunks, move |c, chunks| {
            Box::pin(async move {
                let statement = match dialect {
                    Dialect::Sqlite => {
                        "UPDATE access_keys SET last_used_at = a.value ->> 1, \
                         last_used_region = a.value ->> 2, last_used_service = a.value ->> 3 \
                         FROM json_each($1) AS a \
                         WHERE access_keys.access_key_id = a.value ->> 0 \
                         AND (last_used_at IS NULL OR last_used_at < a.value ->> 1)"
                    }
                    Dialect::Postgres => {
                        "UPDATE access_keys SET last_used_at = (a.value ->> 1)::bigint, \
                         last_used_region = a.value ->> 2, last_used_service = a.value ->> 3 \
                         FROM json_array_elements($1::json) AS a \
                         WHERE access_keys.access_key_id = a.value ->> 0 \
                         AND (last_used_at IS NULL OR last_used_at < (a.value ->> 1)::bigint)"
                    }
                };
                for rows in chunks {
                    sqlx::query(statement)
                        .bind(rows.as_str())
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    // ---- MFA devices ----

    /// A device from a row holding [`DEVICE_COLS`] in that order, from column `first` on (by index, so a
    /// joined row whose other columns share names, as in [`Store::access_key_and_mfa_device`], reads
    /// the same way).
    pub(crate) fn device_from_row_at(&self, row: &dyn Cols, first: usize) -> Result<MfaDevice> {
        let col = |i: usize| first + i;
        let serial = row.text(col(0))?;
        let blob = row.blob(col(4))?;
        let seed = self.master.decrypt(&seed_context(&serial), &blob)?;
        let seed = String::from_utf8(seed.to_vec())
            .map_err(|_| StoreError::Crypto(stsd_core::crypto::CryptoError::Decrypt))?;
        let kind = row.text(col(1))?;
        Ok(MfaDevice {
            serial_number: serial,
            kind: if kind == "hardware" {
                DeviceKind::Hardware
            } else {
                DeviceKind::Virtual
            },
            name: row.text(col(2))?,
            path: row.text(col(3))?,
            seed: Secret::new(seed),
            created_at: row.int(col(5))?,
            created_by: row.opt_text(col(6))?,
            owner: row.opt_text(col(7))?,
            enabled_at: row.opt_int(col(8))?,
            last_step: row.opt_int(col(9))?,
            drift_steps: row.int(col(10))?,
            failed_count: row.int(col(11))?,
            locked_until: row.opt_int(col(12))?,
            sealed_seed: SealedSeed(blob),
        })
    }

    fn device_from_row(&self, row: &AnyRow) -> Result<MfaDevice> {
        self.device_from_row_at(row, 0)
    }

    /// Stores a new device with its (base32) seed.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the serial is taken; database errors.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_mfa_device(
        &self,
        serial: &str,
        kind: DeviceKind,
        name: &str,
        path: &str,
        seed_base32: &Secret,
        created_by: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let blob = self
            .master
            .encrypt(&seed_context(serial), seed_base32.expose().as_bytes());
        let args = (
            serial.to_owned(),
            name.to_owned(),
            path.to_owned(),
            blob,
            created_by.map(str::to_owned),
        );
        self.write(false, args, move |c, (serial, name, path, blob, created_by)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO mfa_devices (serial_number, kind, name, path, seed_enc, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(serial)
                .bind(kind.as_str())
                .bind(name)
                .bind(path)
                .bind(blob)
                .bind(now)
                .bind(created_by)
                .execute(c)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { e.into() })?;
                Ok(())
            })
        })
        .await
    }

    /// How many unassigned virtual devices `creator` (a user id) created.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_unassigned_devices(&self, creator: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM mfa_devices WHERE created_by = $1 AND owner IS NULL AND kind = 'virtual'",
        )
        .bind(creator)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A device by serial number.
    ///
    /// On a SQLite file the read runs on the calling thread (see `inline`): it is the device read of a
    /// sign-in with MFA whose key is cached.
    ///
    /// # Errors
    /// Database or decryption errors.
    pub async fn mfa_device(&self, serial: &str) -> Result<Option<MfaDevice>> {
        let _ = DEVICE_COLS;
        const SQL: &str = "SELECT serial_number, kind, name, path, seed_enc, created_at, created_by, owner, enabled_at, last_step, drift_steps, failed_count, locked_until \
             FROM mfa_devices WHERE serial_number = $1";
        self.read_row(SQL, &[serial], |r| self.device_from_row_at(r, 0))
            .await
    }

    /// Enables an unassigned device for `owner` (`root` or a user id), remembering the step of the second
    /// enrolment code (so neither code can be replayed) and the device's clock drift.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::AlreadyExists`] (already assigned),
    /// [`StoreError::LimitExceeded`] (8 devices per user), database errors.
    pub async fn enable_mfa_device(
        &self,
        serial: &str,
        owner: &str,
        now: i64,
        step: i64,
        drift: i64,
    ) -> Result<()> {
        let args = (serial.to_owned(), owner.to_owned());
        // No savepoint: the job is refused only when its first statement changed nothing or after it
        // undid that change itself (two round trips fewer in a group-commit batch).
        self.write(false, args, move |c, (serial, owner)| {
            Box::pin(async move {
                if owner != ROOT_OWNER {
                    let bumped = sqlx::query(
                        "UPDATE users SET device_count = device_count + 1 WHERE user_id = $1 AND device_count < $2",
                    )
                    .bind(owner)
                    .bind(MAX_DEVICES_PER_USER)
                    .execute(&mut *c)
                    .await?;
                    if bumped.rows_affected() != 1 {
                        return Err(StoreError::LimitExceeded);
                    }
                }
                let r = sqlx::query(
                    "UPDATE mfa_devices SET owner = $1, enabled_at = $2, last_step = $3, drift_steps = $4, failed_count = 0, \
                     first_failed_at = NULL, locked_until = NULL WHERE serial_number = $5 AND owner IS NULL",
                )
                .bind(owner)
                .bind(now)
                .bind(step)
                .bind(drift)
                .bind(serial)
                .execute(&mut *c)
                .await?;
                if r.rows_affected() != 1 {
                    if owner != ROOT_OWNER {
                        sqlx::query(
                            "UPDATE users SET device_count = device_count - 1 WHERE user_id = $1",
                        )
                        .bind(owner)
                        .execute(&mut *c)
                        .await?;
                    }
                    let why = crate::refusal(
                        c,
                        "mfa_devices",
                        "serial_number",
                        serial,
                        StoreError::AlreadyExists,
                    );
                    return Err(why.await?);
                }
                Ok(())
            })
        })
        .await
    }

    /// Re-anchors a device's drift after ResyncMFADevice.
    ///
    /// # Errors
    /// Database errors.
    pub async fn resync_mfa_device(&self, serial: &str, step: i64, drift: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE mfa_devices SET last_step = $1, drift_steps = $2, failed_count = 0, first_failed_at = NULL \
             WHERE serial_number = $3 AND owner IS NOT NULL AND (last_step IS NULL OR last_step < $4)",
        )
        .bind(step)
        .bind(drift)
        .bind(serial)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes a device's assignment to `owner`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the device is not enabled for `owner`; database errors.
    pub async fn deactivate_mfa_device(&self, serial: &str, owner: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE mfa_devices SET owner = NULL, enabled_at = NULL, failed_count = 0, first_failed_at = NULL, \
             locked_until = NULL WHERE serial_number = $1 AND owner = $2",
        )
        .bind(serial)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        if owner != ROOT_OWNER {
            sqlx::query("UPDATE users SET device_count = device_count - 1 WHERE user_id = $1")
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an unassigned virtual device.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] while assigned, database errors.
    pub async fn delete_virtual_mfa_device(&self, serial: &str) -> Result<()> {
        let r = sqlx::query(
            "DELETE FROM mfa_devices WHERE serial_number = $1 AND kind = 'virtual' AND owner IS NULL",
        )
        .bind(serial)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        match self.mfa_device(serial).await? {
            Some(d) if d.kind == DeviceKind::Virtual => Err(StoreError::Conflict("assigned")),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Devices enabled for `owner`, by serial, after `after`, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_mfa_devices(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MfaDevice>> {
        let rows = sqlx::query(
            "SELECT serial_number, kind, name, path, seed_enc, created_at, created_by, owner, enabled_at, last_step, drift_steps, failed_count, locked_until \
             FROM mfa_devices WHERE owner = $1 AND serial_number > $2 ORDER BY serial_number LIMIT $3",
        )
        .bind(owner)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.device_from_row(r)).collect()
    }

    /// Virtual devices filtered by assignment (`Some(true)`: assigned, `Some(false)`: unassigned).
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_virtual_mfa_devices(
        &self,
        assigned: Option<bool>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MfaDevice>> {
        let rows = sqlx::query(
            "SELECT serial_number, kind, name, path, seed_enc, created_at, created_by, owner, enabled_at, last_step, drift_steps, failed_count, locked_until \
             FROM mfa_devices WHERE kind = 'virtual' AND serial_number > $1 \
             AND ($2 = 0 OR ($2 = 1 AND owner IS NOT NULL) OR ($2 = 2 AND owner IS NULL)) \
             ORDER BY serial_number LIMIT $3",
        )
        .bind(after.unwrap_or(""))
        .bind(match assigned {
            None => 0i64,
            Some(true) => 1,
            Some(false) => 2,
        })
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.device_from_row(r)).collect()
    }

    /// Accepts TOTP step `step` for `device` unless that step or a later one was accepted before or the
    /// device is locked: one conditional UPDATE, so of concurrent requests with the same code (on any node
    /// sharing the database) exactly one wins. Resets the failure count. The device must still be as
    /// `device` shows it where the code's check depends on it (the same owner, seed and clock drift), so
    /// a copy read earlier (a cached one) never lets a code through that the stored device refuses: a
    /// device deactivated, resynchronised or deleted and created again in the meantime refuses it. On
    /// SQLite concurrent acceptances share one commit (group commit); the answer comes after that commit.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mfa_accept_step(&self, device: &MfaDevice, step: i64, now: i64) -> Result<bool> {
        let Some(owner) = device.owner.clone() else {
            return Ok(false);
        };
        let ask = crate::group::StepAccept {
            serial: device.serial_number.clone(),
            owner,
            drift_steps: device.drift_steps,
            sealed_seed: device.sealed_seed.0.clone(),
            step,
            now,
        };
        self.writer.accept_step(ask).await
    }

    /// Counts a failed code. Failures older than `window` seconds start a new count; reaching
    /// `max_failures` locks the device until `now + lockout` and resets the count. Returns true when this
    /// failure locked the device.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mfa_record_failure(
        &self,
        serial: &str,
        now: i64,
        max_failures: i64,
        window: i64,
        lockout: i64,
    ) -> Result<bool> {
        self.record_failure(
            Lockable::MfaDevice,
            serial,
            now,
            max_failures,
            window,
            lockout,
        )
        .await
    }

    /// Counts a failure towards a lock-out (see [`Self::mfa_record_failure`] and
    /// `login_record_failure`): failures within `window` seconds count together, the `max_failures`-th
    /// locks the row until `now + lockout` and starts a new count. Returns whether this one locked it.
    pub(crate) async fn record_failure(
        &self,
        what: Lockable,
        key: &str,
        now: i64,
        max_failures: i64,
        window: i64,
        lockout: i64,
    ) -> Result<bool> {
        let (table, column) = match what {
            Lockable::MfaDevice => ("mfa_devices", "serial_number"),
            Lockable::LoginProfile => ("login_profiles", "owner"),
        };
        let mut tx = self.pool.begin().await?;
        // SET expressions read the row as it was before the update, on both backends.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET \
             failed_count = CASE WHEN first_failed_at IS NULL OR first_failed_at <= $1 THEN 1 ELSE failed_count + 1 END, \
             first_failed_at = CASE WHEN first_failed_at IS NULL OR first_failed_at <= $1 THEN $2 ELSE first_failed_at END \
             WHERE {column} = $3"
        )))
        .bind(now - window)
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let locked = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET locked_until = $1, failed_count = 0, first_failed_at = NULL \
             WHERE {column} = $2 AND failed_count >= $3"
        )))
        .bind(now + lockout)
        .bind(key)
        .bind(max_failures)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(locked.rows_affected() == 1)
    }
}

/// What counts failures towards a lock-out (its table and key column are fixed here, never from input).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lockable {
    /// An MFA device, by serial number.
    MfaDevice,
    /// A login profile, by owner.
    LoginProfile,
}
