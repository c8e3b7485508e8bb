//! Operations for multi-node deployments: meta values, the token key ring's life cycle, master key
//! rotation.

use crate::{Result, Store, StoreError, access_key_context, token_key_context};
use sqlx::Row;
use stsd_core::crypto::SealingKey;

/// A token key as `stsd admin keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKeyInfo {
    /// Key id (inside every token it sealed).
    pub key_id: i64,
    /// Creation time.
    pub created_at: i64,
    /// When it becomes (or became) the signing key.
    pub valid_from: i64,
    /// When it was retired (no longer opens tokens).
    pub retired_at: Option<i64>,
}

impl Store {
    /// Sets a meta value (insert or replace).
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_meta(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO stsd_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every token key, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn token_keys(&self) -> Result<Vec<TokenKeyInfo>> {
        let rows = sqlx::query(
            "SELECT key_id, created_at, valid_from, retired_at FROM token_keys ORDER BY key_id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenKeyInfo {
                    key_id: r.try_get("key_id")?,
                    created_at: r.try_get("created_at")?,
                    valid_from: r.try_get("valid_from")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Retires keys that can no longer have sealed a live token: every key whose successor became the
    /// signing key more than `max_session` seconds ago. Returns the retired ids.
    ///
    /// # Errors
    /// Database errors.
    pub async fn retire_token_keys(&self, now: i64, max_session: i64) -> Result<Vec<i64>> {
        let keys = self.token_keys().await?;
        let mut retired = Vec::new();
        // keys are newest first; a key is superseded at the valid_from of the next newer key.
        for pair in keys.windows(2) {
            let (newer, older) = (&pair[0], &pair[1]);
            if older.retired_at.is_none() && newer.valid_from <= now - max_session {
                sqlx::query("UPDATE token_keys SET retired_at = $1 WHERE key_id = $2 AND retired_at IS NULL")
                    .bind(now)
                    .bind(older.key_id)
                    .execute(&self.pool)
                    .await?;
                retired.push(older.key_id);
            }
        }
        Ok(retired)
    }

    /// Re-encrypts every stored secret under `new_master` in one transaction and returns a store that
    /// uses it. On any failure nothing is changed.
    ///
    /// # Errors
    /// Database or decryption errors.
    pub async fn rotate_master_key(self, new_master: SealingKey) -> Result<Store> {
        let mut tx = self.pool.begin().await?;
        let keys = sqlx::query("SELECT access_key_id, secret_enc FROM access_keys")
            .fetch_all(&mut *tx)
            .await?;
        for r in &keys {
            let id: String = r.try_get("access_key_id")?;
            let blob: Vec<u8> = r.try_get("secret_enc")?;
            let plain = self.master.decrypt(&access_key_context(&id), &blob)?;
            sqlx::query("UPDATE access_keys SET secret_enc = $1 WHERE access_key_id = $2")
                .bind(new_master.encrypt(&access_key_context(&id), &plain))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        let tks = sqlx::query("SELECT key_id, key_enc FROM token_keys")
            .fetch_all(&mut *tx)
            .await?;
        for r in &tks {
            let id: i64 = r.try_get("key_id")?;
            let blob: Vec<u8> = r.try_get("key_enc")?;
            let plain = self.master.decrypt(&token_key_context(id), &blob)?;
            sqlx::query("UPDATE token_keys SET key_enc = $1 WHERE key_id = $2")
                .bind(new_master.encrypt(&token_key_context(id), &plain))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let devs = sqlx::query("SELECT serial_number, seed_enc FROM mfa_devices")
            .fetch_all(&mut *tx)
            .await?;
        for r in &devs {
            let serial: String = r.try_get("serial_number")?;
            let blob: Vec<u8> = r.try_get("seed_enc")?;
            let ctx = format!("mfa_seed:{serial}").into_bytes();
            let plain = self.master.decrypt(&ctx, &blob)?;
            sqlx::query("UPDATE mfa_devices SET seed_enc = $1 WHERE serial_number = $2")
                .bind(new_master.encrypt(&ctx, &plain))
                .bind(&serial)
                .execute(&mut *tx)
                .await?;
        }
        let check = new_master.encrypt(
            crate::MASTER_CHECK_NAME.as_bytes(),
            crate::MASTER_CHECK_PLAIN,
        );
        sqlx::query("UPDATE stsd_meta SET value = $1 WHERE name = $2")
            .bind(crate::encode_hex(&check))
            .bind(crate::MASTER_CHECK_NAME)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Store {
            pool: self.pool,
            dialect: self.dialect,
            master: new_master,
            writer: self.writer,
            readers: self.readers,
        })
    }

    /// The time before which sessions of `principal` (`root` or a user id) are revoked, or `None` when the
    /// principal no longer exists (a deleted user: all its sessions are revoked).
    ///
    /// # Errors
    /// Database errors.
    pub async fn sessions_not_before(&self, principal: &str) -> Result<Option<i64>> {
        if principal == crate::iam::ROOT_OWNER {
            let v = self.meta("root_sessions_not_before").await?;
            return Ok(Some(v.and_then(|s| s.parse().ok()).unwrap_or(0)));
        }
        if principal.starts_with(crate::roles::ROLE_ID_PREFIX) {
            return Ok(sqlx::query_scalar(
                "SELECT sessions_not_before FROM iam_roles WHERE role_id = $1",
            )
            .bind(principal)
            .fetch_optional(&self.pool)
            .await?);
        }
        Ok(
            sqlx::query_scalar("SELECT sessions_not_before FROM users WHERE user_id = $1")
                .bind(principal)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Revokes every session of `principal` issued before `t`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user; database errors.
    pub async fn revoke_sessions(&self, principal: &str, t: i64) -> Result<()> {
        if principal == crate::iam::ROOT_OWNER {
            return self
                .set_meta("root_sessions_not_before", &t.to_string())
                .await;
        }
        if principal.starts_with(crate::roles::ROLE_ID_PREFIX) {
            let r = sqlx::query("UPDATE iam_roles SET sessions_not_before = $1 WHERE role_id = $2")
                .bind(t)
                .bind(principal)
                .execute(&self.pool)
                .await?;
            return if r.rows_affected() == 1 {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            };
        }
        if self.set_sessions_not_before(principal, t).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }
}
