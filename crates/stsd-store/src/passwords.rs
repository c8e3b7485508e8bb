//! Console passwords (migration 5): one login profile per principal (an IAM user's id, or
//! [`crate::iam::ROOT_OWNER`]) holding an Argon2id hash in PHC string form and the hashes of earlier
//! passwords (for the account policy's `PasswordReusePrevention`), and the account password policy.
//! The store never sees a password: hashing and verification happen in the server.

use crate::iam::ROOT_OWNER;
use crate::{Result, Store, StoreError, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The most earlier password hashes kept per profile (IAM's `PasswordReusePrevention` maximum).
pub const MAX_HISTORY: usize = 24;

/// A principal's console password.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginProfile {
    /// User id, or [`ROOT_OWNER`].
    pub owner: String,
    /// The current password's hash (PHC string).
    pub password_hash: String,
    /// Hashes of earlier passwords, newest first (at most [`MAX_HISTORY`]).
    pub history: Vec<String>,
    /// The principal must choose a new password at its next sign-in.
    pub password_reset_required: bool,
    /// When the first password was set (IAM's `CreateDate`).
    pub created_at: i64,
    /// When the current password was set (expiry under `MaxPasswordAge`).
    pub password_changed_at: i64,
    /// Console sign-ins with this password are refused until then (too many wrong passwords).
    pub locked_until: Option<i64>,
}

impl std::fmt::Debug for LoginProfile {
    // Hashes are not secrets, but nothing derived from a password is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginProfile")
            .field("owner", &self.owner)
            .field("password_reset_required", &self.password_reset_required)
            .field("created_at", &self.created_at)
            .field("password_changed_at", &self.password_changed_at)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// The account password policy, every field explicit (IAM has no partial updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// 6..=128.
    pub minimum_password_length: i64,
    /// At least one of IAM's symbols.
    pub require_symbols: bool,
    /// At least one digit.
    pub require_numbers: bool,
    /// At least one of A-Z.
    pub require_uppercase: bool,
    /// At least one of a-z.
    pub require_lowercase: bool,
    /// Every IAM user may change its own password.
    pub allow_users_to_change_password: bool,
    /// Days; 0 = passwords never expire.
    pub max_password_age: i64,
    /// Earlier passwords that may not be reused; 0 = off.
    pub password_reuse_prevention: i64,
    /// Expired passwords can only be reset by an administrator.
    pub hard_expiry: bool,
}

fn profile_from_row(row: &AnyRow) -> Result<LoginProfile> {
    let history: String = row.try_get("password_history")?;
    Ok(LoginProfile {
        owner: row.try_get("owner")?,
        password_hash: row.try_get("password_hash")?,
        history: history
            .split('\n')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        password_reset_required: row.try_get::<i64, _>("password_reset_required")? != 0,
        created_at: row.try_get("created_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
        locked_until: row.try_get("locked_until")?,
    })
}

/// What [`Store::update_login_profile`] changes.
#[derive(Debug, Clone, Copy)]
pub struct ProfileChange<'a> {
    /// A new password hash; the current one moves into the history (kept to `keep_history`).
    pub new_hash: Option<&'a str>,
    /// The change applies only while the current hash is this one (ChangePassword after verifying the
    /// old password): a concurrent change makes it fail with [`StoreError::Conflict`].
    pub expected_hash: Option<&'a str>,
    /// New `PasswordResetRequired`; `None` keeps it.
    pub reset_required: Option<bool>,
    /// Earlier hashes to keep (0..=[`MAX_HISTORY`]).
    pub keep_history: usize,
    /// Now.
    pub now: i64,
}

impl Store {
    /// A principal's login profile.
    ///
    /// # Errors
    /// Database errors.
    pub async fn login_profile(&self, owner: &str) -> Result<Option<LoginProfile>> {
        let row = sqlx::query(
            "SELECT owner, password_hash, password_history, password_reset_required, created_at, \
             password_changed_at, locked_until FROM login_profiles WHERE owner = $1",
        )
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_from_row).transpose()
    }

    /// Creates a login profile for an existing user (or the root).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], [`StoreError::NotFound`] (no such user), database errors.
    pub async fn create_login_profile(
        &self,
        owner: &str,
        password_hash: &str,
        reset_required: bool,
        now: i64,
    ) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO login_profiles (owner, password_hash, password_history, password_reset_required, \
             created_at, password_changed_at) SELECT $1, $2, '', $3, $4, $4 \
             WHERE $1 = $5 OR EXISTS (SELECT 1 FROM users WHERE user_id = $1)",
        )
        .bind(owner)
        .bind(password_hash)
        .bind(i64::from(reset_required))
        .bind(now)
        .bind(ROOT_OWNER)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists
            } else {
                e.into()
            }
        })?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Changes a login profile: its password (the old hash joins the history) and/or its reset flag.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] (`"changed"`: the password changed since
    /// `expected_hash` was read), database errors.
    pub async fn update_login_profile(&self, owner: &str, c: ProfileChange<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT owner, password_hash, password_history, password_reset_required, created_at, \
             password_changed_at, locked_until FROM login_profiles WHERE owner = $1",
        )
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = row.as_ref().map(profile_from_row).transpose()? else {
            return Err(StoreError::NotFound);
        };
        if c.expected_hash.is_some_and(|h| h != current.password_hash) {
            return Err(StoreError::Conflict("changed"));
        }
        let (hash, history, changed_at) = match c.new_hash {
            None => (
                current.password_hash.clone(),
                current.history.join("\n"),
                current.password_changed_at,
            ),
            Some(h) => {
                let mut history = current.history.clone();
                history.insert(0, current.password_hash.clone());
                history.truncate(c.keep_history.min(MAX_HISTORY));
                (h.to_owned(), history.join("\n"), c.now)
            }
        };
        let reset = c.reset_required.unwrap_or(current.password_reset_required);
        // The WHERE clause repeats the read's hash: a concurrent change on another connection (or node)
        // makes this update miss instead of overwriting it.
        let r = sqlx::query(
            "UPDATE login_profiles SET password_hash = $1, password_history = $2, \
             password_reset_required = $3, password_changed_at = $4 WHERE owner = $5 AND password_hash = $6",
        )
        .bind(&hash)
        .bind(&history)
        .bind(i64::from(reset))
        .bind(changed_at)
        .bind(owner)
        .bind(&current.password_hash)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Conflict("changed"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts a wrong password at console sign-in: failures within `window` seconds count together;
    /// the `max_failures`-th locks the profile for `lockout` seconds (and starts a new count). Returns
    /// whether this failure locked it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn login_record_failure(
        &self,
        owner: &str,
        now: i64,
        max_failures: i64,
        window: i64,
        lockout: i64,
    ) -> Result<bool> {
        self.record_failure(
            crate::iam::Lockable::LoginProfile,
            owner,
            now,
            max_failures,
            window,
            lockout,
        )
        .await
    }

    /// Forgets counted failures after a successful sign-in.
    ///
    /// # Errors
    /// Database errors.
    pub async fn login_reset_failures(&self, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE login_profiles SET failed_count = 0, first_failed_at = NULL \
             WHERE owner = $1 AND failed_count <> 0",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a login profile; whether there was one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_login_profile(&self, owner: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM login_profiles WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The account password policy, when one was set.
    ///
    /// # Errors
    /// Database errors.
    pub async fn password_policy(&self) -> Result<Option<PasswordPolicy>> {
        let row = sqlx::query(
            "SELECT minimum_password_length, require_symbols, require_numbers, require_uppercase, \
             require_lowercase, allow_users_to_change_password, max_password_age, \
             password_reuse_prevention, hard_expiry FROM account_password_policy WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let flag = |c: &str| -> Result<bool> { Ok(row.try_get::<i64, _>(c)? != 0) };
        Ok(Some(PasswordPolicy {
            minimum_password_length: row.try_get("minimum_password_length")?,
            require_symbols: flag("require_symbols")?,
            require_numbers: flag("require_numbers")?,
            require_uppercase: flag("require_uppercase")?,
            require_lowercase: flag("require_lowercase")?,
            allow_users_to_change_password: flag("allow_users_to_change_password")?,
            max_password_age: row.try_get("max_password_age")?,
            password_reuse_prevention: row.try_get("password_reuse_prevention")?,
            hard_expiry: flag("hard_expiry")?,
        }))
    }

    /// Sets the account password policy (every field replaced).
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_password_policy(&self, p: &PasswordPolicy) -> Result<()> {
        sqlx::query(
            "INSERT INTO account_password_policy (id, minimum_password_length, require_symbols, \
             require_numbers, require_uppercase, require_lowercase, allow_users_to_change_password, \
             max_password_age, password_reuse_prevention, hard_expiry) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET minimum_password_length = excluded.minimum_password_length, \
             require_symbols = excluded.require_symbols, require_numbers = excluded.require_numbers, \
             require_uppercase = excluded.require_uppercase, require_lowercase = excluded.require_lowercase, \
             allow_users_to_change_password = excluded.allow_users_to_change_password, \
             max_password_age = excluded.max_password_age, \
             password_reuse_prevention = excluded.password_reuse_prevention, hard_expiry = excluded.hard_expiry",
        )
        .bind(p.minimum_password_length)
        .bind(i64::from(p.require_symbols))
        .bind(i64::from(p.require_numbers))
        .bind(i64::from(p.require_uppercase))
        .bind(i64::from(p.require_lowercase))
        .bind(i64::from(p.allow_users_to_change_password))
        .bind(p.max_password_age)
        .bind(p.password_reuse_prevention)
        .bind(i64::from(p.hard_expiry))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the account password policy; whether there was one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_password_policy(&self) -> Result<bool> {
        let r = sqlx::query("DELETE FROM account_password_policy WHERE id = 1")
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
