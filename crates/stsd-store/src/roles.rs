//! IAM roles: the role record (trust policy, session limit, revocation time) and the policies that
//! apply to its sessions. Inline policies and attachments of roles use the shared tables of
//! [`crate::policy`] with [`EntityKind::Role`].

use crate::policy::{Applicable, Source};
use crate::{Result, Store, StoreError, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Unique ids of roles start with this (`AROA...`).
pub const ROLE_ID_PREFIX: &str = "AROA";

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// `AROA...`
    pub role_id: String,
    /// Name (unique case-insensitively).
    pub name: String,
    /// Path.
    pub path: String,
    /// The trust policy (`AssumeRolePolicyDocument`) as submitted.
    pub trust_policy: String,
    /// Description.
    pub description: Option<String>,
    /// Longest session, in seconds (3600..=43200).
    pub max_session_duration: i64,
    /// Creation time.
    pub created_at: i64,
    /// Sessions issued before this time are revoked.
    pub sessions_not_before: i64,
}

const ROLE_COLS: &str = "role_id, name, path, trust_policy, description, max_session_duration, created_at, sessions_not_before";

fn role_from_row(row: &AnyRow) -> Result<Role> {
    Ok(Role {
        role_id: row.try_get("role_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        trust_policy: row.try_get("trust_policy")?,
        description: row.try_get("description")?,
        max_session_duration: row.try_get("max_session_duration")?,
        created_at: row.try_get("created_at")?,
        sessions_not_before: row.try_get("sessions_not_before")?,
    })
}

impl Store {
    /// Creates a role (name unique case-insensitively).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], database errors.
    pub async fn create_role(&self, r: &Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO iam_roles (role_id, name, name_key, path, trust_policy, description, \
             max_session_duration, created_at, sessions_not_before) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.role_id)
        .bind(&r.name)
        .bind(r.name.to_lowercase())
        .bind(&r.path)
        .bind(&r.trust_policy)
        .bind(r.description.as_deref())
        .bind(r.max_session_duration)
        .bind(r.created_at)
        .bind(r.sessions_not_before)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    /// A role by name (case-insensitive).
    ///
    /// # Errors
    /// Database errors.
    pub async fn role_by_name(&self, name: &str) -> Result<Option<Role>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROLE_COLS} FROM iam_roles WHERE name_key = $1"
        )))
        .bind(name.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(role_from_row).transpose()
    }

    /// A role by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn role_by_id(&self, role_id: &str) -> Result<Option<Role>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROLE_COLS} FROM iam_roles WHERE role_id = $1"
        )))
        .bind(role_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(role_from_row).transpose()
    }

    /// Roles whose path starts with `path_prefix`, by name, after `after`, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_roles(
        &self,
        path_prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Role>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROLE_COLS} FROM iam_roles \
             WHERE SUBSTR(path, 1, LENGTH($1)) = $1 AND name_key > $2 ORDER BY name_key LIMIT $3"
        )))
        .bind(path_prefix)
        .bind(after.unwrap_or("").to_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(role_from_row).collect()
    }

    /// Changes a role's description and/or maximum session duration (`None` keeps the value).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], database errors.
    pub async fn update_role(
        &self,
        role_id: &str,
        description: Option<&str>,
        max_session_duration: Option<i64>,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE iam_roles SET description = COALESCE($1, description), \
             max_session_duration = COALESCE($2, max_session_duration) WHERE role_id = $3",
        )
        .bind(description)
        .bind(max_session_duration)
        .bind(role_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Replaces a role's trust policy.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], database errors.
    pub async fn update_trust_policy(&self, role_id: &str, document: &str) -> Result<()> {
        let r = sqlx::query("UPDATE iam_roles SET trust_policy = $1 WHERE role_id = $2")
            .bind(document)
            .bind(role_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Deletes a role without inline or attached policies.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] (`"policies"`, `"attached"`), database errors.
    pub async fn delete_role(&self, role_id: &str) -> Result<()> {
        let r = sqlx::query(
            "DELETE FROM iam_roles WHERE role_id = $1 AND inline_policy_count = 0 AND attached_policy_count = 0",
        )
        .bind(role_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        let row = sqlx::query("SELECT inline_policy_count FROM iam_roles WHERE role_id = $1")
            .bind(role_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Err(StoreError::NotFound),
            Some(row) => {
                let inline: i64 = row.try_get("inline_policy_count")?;
                Err(StoreError::Conflict(if inline > 0 {
                    "policies"
                } else {
                    "attached"
                }))
            }
        }
    }

    /// Every policy of a role: its inline policies, then its attached managed policies.
    ///
    /// # Errors
    /// Database errors.
    pub async fn role_policies(&self, role_id: &str) -> Result<Vec<Applicable>> {
        let mut conn = self.pool.acquire().await?;
        crate::policy::own_policies(
            &mut conn,
            crate::policy::EntityKind::Role,
            role_id,
            |name| Source::RoleInline { name },
            None,
        )
        .await
    }

    /// The default-version documents of managed policies by ARN (session policies given as
    /// `PolicyArns`): `(arn, Some(document))` for customer policies, `(arn, None)` for unknown ARNs
    /// (built-ins are resolved by the caller).
    ///
    /// # Errors
    /// Database errors.
    pub async fn managed_documents(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::with_capacity(arns.len());
        for arn in arns {
            let doc: Option<String> = sqlx::query_scalar(
                "SELECT v.document FROM managed_policies p JOIN policy_versions v \
                 ON v.policy_id = p.policy_id AND v.version_id = p.default_version WHERE p.arn = $1",
            )
            .bind(arn)
            .fetch_optional(&self.pool)
            .await?;
            out.push((arn.clone(), doc));
        }
        Ok(out)
    }
}
