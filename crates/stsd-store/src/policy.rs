//! IAM policies: customer managed policies and their versions, inline policies of users and groups,
//! groups and memberships, attachments.
//!
//! Every limit that must hold under concurrency is a conditional counter update on the owning row
//! (`users`, `iam_groups`, `managed_policies`) inside the same transaction as the insert, as for access
//! keys: concurrent writers serialise on that row on both backends. Documents are stored as submitted
//! (IAM returns them as given); the caller validates them before storing.

use crate::{Result, Store, StoreError, is_unique_violation};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// Versions a managed policy may have at once (IAM's limit).
pub const MAX_POLICY_VERSIONS: i64 = 5;
/// Groups a user may belong to (IAM's limit).
pub const MAX_GROUPS_PER_USER: i64 = 10;

/// Who a policy is attached to or embedded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// An IAM user (`users.user_id`).
    User,
    /// An IAM group (`iam_groups.group_id`).
    Group,
    /// An IAM role (`iam_roles.role_id`).
    Role,
}

impl EntityKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Role => "role",
        }
    }
    fn table(self) -> &'static str {
        match self {
            EntityKind::User => "users",
            EntityKind::Group => "iam_groups",
            EntityKind::Role => "iam_roles",
        }
    }
    fn id_col(self) -> &'static str {
        match self {
            EntityKind::User => "user_id",
            EntityKind::Group => "group_id",
            EntityKind::Role => "role_id",
        }
    }
}

/// A customer managed policy (without its documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// `ANPA...`
    pub policy_id: String,
    /// Name (unique case-insensitively).
    pub name: String,
    /// Path.
    pub path: String,
    /// `arn:aws:iam::ACCT:policy{path}{name}`.
    pub arn: String,
    /// Description (immutable).
    pub description: Option<String>,
    /// The default version id (`v1`, ...).
    pub default_version: String,
    /// Entities it is attached to.
    pub attachment_count: i64,
    /// Creation time.
    pub created_at: i64,
    /// Last change of its versions.
    pub updated_at: i64,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`, ... (never reused).
    pub version_id: String,
    /// The document as submitted.
    pub document: String,
    /// Whether it is the policy's default version.
    pub is_default: bool,
    /// Creation time.
    pub created_at: i64,
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `AGPA...`
    pub group_id: String,
    /// Name (unique case-insensitively).
    pub name: String,
    /// Path.
    pub path: String,
    /// Creation time.
    pub created_at: i64,
}

/// Where a policy that applies to a user comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An inline policy of the user itself.
    UserInline {
        /// Policy name.
        name: String,
    },
    /// An inline policy of a role.
    RoleInline {
        /// Policy name.
        name: String,
    },
    /// An inline policy of a group the user belongs to.
    GroupInline {
        /// Group name.
        group: String,
        /// Policy name.
        name: String,
    },
    /// A managed policy attached to the user, or to one of its groups (`via_group`).
    Managed {
        /// Policy ARN.
        arn: String,
        /// The group it is attached through, if any.
        via_group: Option<String>,
    },
}

/// A policy document that applies to a principal. `document` is `None` for attached policies that are
/// not customer managed (stsd's built-in `arn:aws:iam::aws:policy/...` policies, which the server knows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicable {
    /// Where it comes from.
    pub source: Source,
    /// The document (default version for managed policies).
    pub document: Option<String>,
}

fn policy_from_row(row: &AnyRow) -> Result<ManagedPolicy> {
    Ok(ManagedPolicy {
        policy_id: row.try_get("policy_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        description: row.try_get("description")?,
        default_version: row.try_get("default_version")?,
        attachment_count: row.try_get("attachment_count")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn group_from_row(row: &AnyRow) -> Result<Group> {
    Ok(Group {
        group_id: row.try_get("group_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        created_at: row.try_get("created_at")?,
    })
}

const POLICY_COLS: &str = "policy_id, name, path, arn, description, default_version, attachment_count, created_at, updated_at";
const GROUP_COLS: &str = "group_id, name, path, created_at";

impl Store {
    // ---- inline policies ----

    /// Creates or replaces the inline policy `name` of an entity. `size` is the document's size as IAM
    /// counts it (no whitespace); the sum over the entity's inline policies must stay within `max_total`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (no such entity), [`StoreError::LimitExceeded`], database errors.
    pub async fn put_inline_policy(
        &self,
        kind: EntityKind,
        entity_id: &str,
        name: &str,
        document: &str,
        size: i64,
        max_total: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Touch the owner's row first: it takes the row's write lock, so concurrent puts for one entity
        // serialise and the aggregate size limit holds.
        let (table, id_col) = (kind.table(), kind.id_col());
        let locked = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET inline_policy_count = inline_policy_count WHERE {id_col} = $1"
        )))
        .bind(entity_id)
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        let others: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM inline_policies WHERE entity_kind = $1 AND entity_id = $2 AND name <> $3",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if others + size > max_total {
            return Err(StoreError::LimitExceeded);
        }
        sqlx::query(
            "INSERT INTO inline_policies (entity_kind, entity_id, name, document, size) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (entity_kind, entity_id, name) DO UPDATE SET document = $4, size = $5",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .bind(name)
        .bind(document)
        .bind(size)
        .execute(&mut *tx)
        .await?;
        self.recount_inline(&mut tx, kind, entity_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recount_inline(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        kind: EntityKind,
        entity_id: &str,
    ) -> Result<()> {
        let (table, id_col) = (kind.table(), kind.id_col());
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET inline_policy_count = \
             (SELECT COUNT(*) FROM inline_policies WHERE entity_kind = $1 AND entity_id = $2) WHERE {id_col} = $2"
        )))
        .bind(kind.as_str())
        .bind(entity_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The document of an entity's inline policy.
    ///
    /// # Errors
    /// Database errors.
    pub async fn inline_policy(
        &self,
        kind: EntityKind,
        entity_id: &str,
        name: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT document FROM inline_policies WHERE entity_kind = $1 AND entity_id = $2 AND name = $3",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Names of an entity's inline policies, by name, after `after`, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_inline_policies(
        &self,
        kind: EntityKind,
        entity_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM inline_policies WHERE entity_kind = $1 AND entity_id = $2 AND name > $3 \
             ORDER BY name LIMIT $4",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes an entity's inline policy; false when there is none of that name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_inline_policy(
        &self,
        kind: EntityKind,
        entity_id: &str,
        name: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "DELETE FROM inline_policies WHERE entity_kind = $1 AND entity_id = $2 AND name = $3",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        self.recount_inline(&mut tx, kind, entity_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    // ---- managed policies ----

    /// Creates a customer managed policy with its first version `v1` (the default).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] (name taken, case-insensitively), database errors.
    pub async fn create_policy(&self, p: &ManagedPolicy, document: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO managed_policies (policy_id, name, name_key, path, arn, description, default_version, \
             next_version, version_count, attachment_count, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'v1', 2, 1, 0, $7, $7)",
        )
        .bind(&p.policy_id)
        .bind(&p.name)
        .bind(p.name.to_lowercase())
        .bind(&p.path)
        .bind(&p.arn)
        .bind(p.description.as_deref())
        .bind(p.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { e.into() })?;
        sqlx::query(
            "INSERT INTO policy_versions (policy_id, version_id, document, created_at) VALUES ($1, 'v1', $2, $3)",
        )
        .bind(&p.policy_id)
        .bind(document)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A customer managed policy by ARN.
    ///
    /// # Errors
    /// Database errors.
    pub async fn policy_by_arn(&self, arn: &str) -> Result<Option<ManagedPolicy>> {
        let _ = POLICY_COLS;
        let row = sqlx::query(
            "SELECT policy_id, name, path, arn, description, default_version, attachment_count, created_at, updated_at \
             FROM managed_policies WHERE arn = $1",
        )
        .bind(arn)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// Customer managed policies whose path starts with `path_prefix` (only attached ones when
    /// `only_attached`), by name, after `after` (a lower-cased name), at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_policies(
        &self,
        path_prefix: &str,
        only_attached: bool,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ManagedPolicy>> {
        let rows = sqlx::query(
            "SELECT policy_id, name, path, arn, description, default_version, attachment_count, created_at, updated_at \
             FROM managed_policies WHERE SUBSTR(path, 1, LENGTH($1)) = $1 AND name_key > $2 \
             AND ($3 = 0 OR attachment_count > 0) ORDER BY name_key LIMIT $4",
        )
        .bind(path_prefix)
        .bind(after.unwrap_or("").to_lowercase())
        .bind(i64::from(only_attached))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// One version of a policy.
    ///
    /// # Errors
    /// Database errors.
    pub async fn policy_version(
        &self,
        policy_id: &str,
        version_id: &str,
    ) -> Result<Option<PolicyVersion>> {
        let row = sqlx::query(
            "SELECT v.version_id, v.document, v.created_at, p.default_version FROM policy_versions v \
             JOIN managed_policies p ON p.policy_id = v.policy_id WHERE v.policy_id = $1 AND v.version_id = $2",
        )
        .bind(policy_id)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Every version of a policy, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn policy_versions(&self, policy_id: &str) -> Result<Vec<PolicyVersion>> {
        let rows = sqlx::query(
            "SELECT v.version_id, v.document, v.created_at, p.default_version FROM policy_versions v \
             JOIN managed_policies p ON p.policy_id = v.policy_id WHERE v.policy_id = $1",
        )
        .bind(policy_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(version_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|v| std::cmp::Reverse(version_number(&v.version_id)));
        Ok(out)
    }

    /// Adds a version (at most [`MAX_POLICY_VERSIONS`]); returns its id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::LimitExceeded`], database errors.
    pub async fn create_policy_version(
        &self,
        policy_id: &str,
        document: &str,
        set_default: bool,
        now: i64,
    ) -> Result<String> {
        let mut tx = self.pool.begin().await?;
        let bumped = sqlx::query(
            "UPDATE managed_policies SET next_version = next_version + 1, version_count = version_count + 1, \
             updated_at = $1 WHERE policy_id = $2 AND version_count < $3",
        )
        .bind(now)
        .bind(policy_id)
        .bind(MAX_POLICY_VERSIONS)
        .execute(&mut *tx)
        .await?;
        if bumped.rows_affected() != 1 {
            let why = crate::refusal(
                &mut tx,
                "managed_policies",
                "policy_id",
                policy_id,
                StoreError::LimitExceeded,
            );
            return Err(why.await?);
        }
        let next: i64 =
            sqlx::query_scalar("SELECT next_version FROM managed_policies WHERE policy_id = $1")
                .bind(policy_id)
                .fetch_one(&mut *tx)
                .await?;
        let version_id = format!("v{}", next - 1);
        sqlx::query(
            "INSERT INTO policy_versions (policy_id, version_id, document, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(policy_id)
        .bind(&version_id)
        .bind(document)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if set_default {
            sqlx::query("UPDATE managed_policies SET default_version = $1 WHERE policy_id = $2")
                .bind(&version_id)
                .bind(policy_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(version_id)
    }

    /// Makes a version the default.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (no such policy or version), database errors.
    pub async fn set_default_policy_version(
        &self,
        policy_id: &str,
        version_id: &str,
        now: i64,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE managed_policies SET default_version = $1, updated_at = $2 WHERE policy_id = $3 \
             AND EXISTS (SELECT 1 FROM policy_versions WHERE policy_id = $3 AND version_id = $1)",
        )
        .bind(version_id)
        .bind(now)
        .bind(policy_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Deletes a non-default version.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] (`"default"`), database errors.
    pub async fn delete_policy_version(&self, policy_id: &str, version_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // One conditional update decides (and locks the policy's row, so a concurrent
        // SetDefaultPolicyVersion cannot make the version default underneath).
        let r = sqlx::query(
            "UPDATE managed_policies SET version_count = version_count - 1 WHERE policy_id = $1 \
             AND default_version <> $2 \
             AND EXISTS (SELECT 1 FROM policy_versions WHERE policy_id = $1 AND version_id = $2)",
        )
        .bind(policy_id)
        .bind(version_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            let default: Option<String> = sqlx::query_scalar(
                "SELECT default_version FROM managed_policies WHERE policy_id = $1",
            )
            .bind(policy_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match default {
                Some(d) if d == version_id => StoreError::Conflict("default"),
                _ => StoreError::NotFound,
            });
        }
        sqlx::query("DELETE FROM policy_versions WHERE policy_id = $1 AND version_id = $2")
            .bind(policy_id)
            .bind(version_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a managed policy that is attached nowhere and has only its default version.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] (`"attached"`, `"versions"`), database errors.
    pub async fn delete_policy(&self, policy_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT attachment_count, version_count FROM managed_policies WHERE policy_id = $1",
        )
        .bind(policy_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound);
        };
        let (attached, versions): (i64, i64) = (
            row.try_get("attachment_count")?,
            row.try_get("version_count")?,
        );
        if attached > 0 {
            return Err(StoreError::Conflict("attached"));
        }
        if versions > 1 {
            return Err(StoreError::Conflict("versions"));
        }
        sqlx::query("DELETE FROM policy_versions WHERE policy_id = $1")
            .bind(policy_id)
            .execute(&mut *tx)
            .await?;
        // The counters are checked again by the DELETE itself: an attachment committed since the read
        // above makes it delete nothing, and the whole transaction is rolled back.
        let r = sqlx::query(
            "DELETE FROM managed_policies WHERE policy_id = $1 AND attachment_count = 0 AND version_count = 1",
        )
        .bind(policy_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Conflict("attached"));
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- attachments ----

    /// Attaches a managed policy to an entity (at most `max` per entity). `policy_id` is the customer
    /// managed policy's id, `None` for built-in policies. Returns false when it was already attached.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (no such entity or policy), [`StoreError::LimitExceeded`], database
    /// errors.
    pub async fn attach_policy(
        &self,
        kind: EntityKind,
        entity_id: &str,
        arn: &str,
        policy_id: Option<&str>,
        max: i64,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let attached = attach_on(
            &mut tx,
            &Attachment {
                kind,
                entity_id,
                arn,
                policy_id,
                max,
                now,
            },
        )
        .await?;
        if attached {
            tx.commit().await?;
        }
        Ok(attached)
    }

    /// Detaches a managed policy; false when it was not attached.
    ///
    /// # Errors
    /// Database errors.
    pub async fn detach_policy(
        &self,
        kind: EntityKind,
        entity_id: &str,
        arn: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "DELETE FROM policy_attachments WHERE entity_kind = $1 AND entity_id = $2 AND policy_arn = $3",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .bind(arn)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        let (table, id_col) = (kind.table(), kind.id_col());
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET attached_policy_count = attached_policy_count - 1 WHERE {id_col} = $1"
        )))
        .bind(entity_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE managed_policies SET attachment_count = attachment_count - 1 WHERE arn = $1",
        )
        .bind(arn)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// ARNs of the managed policies attached to an entity, sorted.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attached_policies(
        &self,
        kind: EntityKind,
        entity_id: &str,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT policy_arn FROM policy_attachments WHERE entity_kind = $1 AND entity_id = $2 ORDER BY policy_arn",
        )
        .bind(kind.as_str())
        .bind(entity_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The entities a managed policy is attached to: `(kind, id)`, sorted.
    ///
    /// # Errors
    /// Database errors.
    pub async fn policy_entities(&self, arn: &str) -> Result<Vec<(EntityKind, String)>> {
        let rows = sqlx::query(
            "SELECT entity_kind, entity_id FROM policy_attachments WHERE policy_arn = $1 ORDER BY entity_kind, entity_id",
        )
        .bind(arn)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("entity_kind")?;
            let kind = match kind.as_str() {
                "group" => EntityKind::Group,
                "role" => EntityKind::Role,
                _ => EntityKind::User,
            };
            out.push((kind, row.try_get("entity_id")?));
        }
        Ok(out)
    }

    /// How many entities a (built-in or customer) managed policy is attached to.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attachment_count(&self, arn: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM policy_attachments WHERE policy_arn = $1")
                .bind(arn)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    // ---- groups ----

    /// Creates a group (name unique case-insensitively).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], database errors.
    pub async fn create_group(&self, g: &Group) -> Result<()> {
        sqlx::query(
            "INSERT INTO iam_groups (group_id, name, name_key, path, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&g.group_id)
        .bind(&g.name)
        .bind(g.name.to_lowercase())
        .bind(&g.path)
        .bind(g.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { e.into() })?;
        Ok(())
    }

    /// A group by name (case-insensitive).
    ///
    /// # Errors
    /// Database errors.
    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        let _ = GROUP_COLS;
        let row = sqlx::query(
            "SELECT group_id, name, path, created_at FROM iam_groups WHERE name_key = $1",
        )
        .bind(name.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    /// A group by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn group_by_id(&self, group_id: &str) -> Result<Option<Group>> {
        let row = sqlx::query(
            "SELECT group_id, name, path, created_at FROM iam_groups WHERE group_id = $1",
        )
        .bind(group_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    /// Groups whose path starts with `path_prefix`, by name, after `after`, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_groups(
        &self,
        path_prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT group_id, name, path, created_at FROM iam_groups \
             WHERE SUBSTR(path, 1, LENGTH($1)) = $1 AND name_key > $2 ORDER BY name_key LIMIT $3",
        )
        .bind(path_prefix)
        .bind(after.unwrap_or("").to_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Deletes a group without members and policies.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] (`"members"`, `"policies"`, `"attached"`),
    /// database errors.
    pub async fn delete_group(&self, group_id: &str) -> Result<()> {
        let r = sqlx::query(
            "DELETE FROM iam_groups WHERE group_id = $1 AND member_count = 0 AND inline_policy_count = 0 \
             AND attached_policy_count = 0",
        )
        .bind(group_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        let row = sqlx::query(
            "SELECT member_count, inline_policy_count FROM iam_groups WHERE group_id = $1",
        )
        .bind(group_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(StoreError::NotFound),
            Some(row) => {
                let members: i64 = row.try_get("member_count")?;
                let inline: i64 = row.try_get("inline_policy_count")?;
                Err(StoreError::Conflict(if members > 0 {
                    "members"
                } else if inline > 0 {
                    "policies"
                } else {
                    "attached"
                }))
            }
        }
    }

    /// Adds a user to a group (a user belongs to at most [`MAX_GROUPS_PER_USER`] groups); false when
    /// it already was a member.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (user or group gone), [`StoreError::LimitExceeded`], database errors.
    pub async fn add_user_to_group(&self, group_id: &str, user_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let bumped = sqlx::query(
            "UPDATE users SET group_count = group_count + 1 WHERE user_id = $1 AND group_count < $2 \
             AND NOT EXISTS (SELECT 1 FROM group_members WHERE group_id = $3 AND user_id = $1)",
        )
        .bind(user_id)
        .bind(MAX_GROUPS_PER_USER)
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
        if bumped.rows_affected() != 1 {
            let row = sqlx::query(
                "SELECT group_count, (SELECT COUNT(*) FROM group_members WHERE group_id = $2 AND user_id = $1) AS member \
                 FROM users WHERE user_id = $1",
            )
            .bind(user_id)
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await?;
            return match row {
                None => Err(StoreError::NotFound),
                Some(row) => {
                    let member: i64 = row.try_get("member")?;
                    if member > 0 {
                        Ok(false)
                    } else {
                        Err(StoreError::LimitExceeded)
                    }
                }
            };
        }
        let g = sqlx::query(
            "UPDATE iam_groups SET member_count = member_count + 1 WHERE group_id = $1",
        )
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
        if g.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3)")
            .bind(group_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a user from a group; false when it was not a member.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE iam_groups SET member_count = member_count - 1 WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET group_count = group_count - 1 WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The groups a user belongs to, by name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn groups_for_user(&self, user_id: &str) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT g.group_id, g.name, g.path, g.created_at FROM iam_groups g \
             JOIN group_members m ON m.group_id = g.group_id WHERE m.user_id = $1 ORDER BY g.name_key",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// The user ids of a group's members, ordered by user name, after `after` (a user name), at most
    /// `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn group_members(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<crate::User>> {
        let rows = sqlx::query(
            "SELECT u.user_id, u.name, u.path, u.created_at, u.sessions_not_before FROM users u \
             JOIN group_members m ON m.user_id = u.user_id WHERE m.group_id = $1 AND u.name_key > $2 \
             ORDER BY u.name_key LIMIT $3",
        )
        .bind(group_id)
        .bind(after.unwrap_or("").to_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::iam::user_from_row).collect()
    }

    // ---- evaluation ----

    /// Every policy that applies to a user: its inline and attached policies, and those of its groups.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_policies(&self, user_id: &str) -> Result<Vec<Applicable>> {
        let mut conn = self.pool.acquire().await?;
        let mut out = own_policies(
            &mut conn,
            EntityKind::User,
            user_id,
            |name| Source::UserInline { name },
            None,
        )
        .await?;
        let rows = sqlx::query(
            "SELECT g.name AS group_name, i.name, i.document FROM group_members m \
             JOIN iam_groups g ON g.group_id = m.group_id \
             JOIN inline_policies i ON i.entity_kind = 'group' AND i.entity_id = m.group_id \
             WHERE m.user_id = $1 ORDER BY g.name_key, i.name",
        )
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            out.push(Applicable {
                source: Source::GroupInline {
                    group: r.try_get("group_name")?,
                    name: r.try_get("name")?,
                },
                document: Some(r.try_get("document")?),
            });
        }
        let rows = sqlx::query(
            "SELECT g.name AS group_name, a.policy_arn, v.document FROM group_members m \
             JOIN iam_groups g ON g.group_id = m.group_id \
             JOIN policy_attachments a ON a.entity_kind = 'group' AND a.entity_id = m.group_id \
             LEFT JOIN managed_policies p ON p.arn = a.policy_arn \
             LEFT JOIN policy_versions v ON v.policy_id = p.policy_id AND v.version_id = p.default_version \
             WHERE m.user_id = $1 ORDER BY g.name_key, a.policy_arn",
        )
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            out.push(Applicable {
                source: Source::Managed {
                    arn: r.try_get("policy_arn")?,
                    via_group: Some(r.try_get("group_name")?),
                },
                document: r.try_get("document")?,
            });
        }
        Ok(out)
    }

    /// The inline and attached policies of a group (for the simulator).
    ///
    /// # Errors
    /// Database errors.
    pub async fn group_policies(&self, group: &Group) -> Result<Vec<Applicable>> {
        let mut conn = self.pool.acquire().await?;
        own_policies(
            &mut conn,
            EntityKind::Group,
            &group.group_id,
            |name| Source::GroupInline {
                group: group.name.clone(),
                name,
            },
            Some(&group.name),
        )
        .await
    }
}

/// An entity's own inline policies (by name, each described by `inline`), then its attached managed
/// policies (by ARN, with their default version's document; `via_group` names the group they come
/// through, if any).
pub(crate) async fn own_policies(
    conn: &mut sqlx::AnyConnection,
    kind: EntityKind,
    entity_id: &str,
    inline: impl Fn(String) -> Source,
    via_group: Option<&str>,
) -> Result<Vec<Applicable>> {
    let mut out = Vec::new();
    let rows = sqlx::query(
        "SELECT name, document FROM inline_policies WHERE entity_kind = $1 AND entity_id = $2 ORDER BY name",
    )
    .bind(kind.as_str())
    .bind(entity_id)
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        out.push(Applicable {
            source: inline(r.try_get("name")?),
            document: Some(r.try_get("document")?),
        });
    }
    let rows = sqlx::query(
        "SELECT a.policy_arn, v.document FROM policy_attachments a \
         LEFT JOIN managed_policies p ON p.arn = a.policy_arn \
         LEFT JOIN policy_versions v ON v.policy_id = p.policy_id AND v.version_id = p.default_version \
         WHERE a.entity_kind = $1 AND a.entity_id = $2 ORDER BY a.policy_arn",
    )
    .bind(kind.as_str())
    .bind(entity_id)
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        out.push(Applicable {
            source: Source::Managed {
                arn: r.try_get("policy_arn")?,
                via_group: via_group.map(str::to_owned),
            },
            document: r.try_get("document")?,
        });
    }
    Ok(out)
}

fn version_number(v: &str) -> i64 {
    v.trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn version_from_row(row: &AnyRow) -> Result<PolicyVersion> {
    let version_id: String = row.try_get("version_id")?;
    let default: String = row.try_get("default_version")?;
    Ok(PolicyVersion {
        is_default: version_id == default,
        version_id,
        document: row.try_get("document")?,
        created_at: row.try_get("created_at")?,
    })
}

/// One managed-policy attachment to write (see [`Store::attach_policy`]).
pub(crate) struct Attachment<'a> {
    pub(crate) kind: EntityKind,
    pub(crate) entity_id: &'a str,
    pub(crate) arn: &'a str,
    pub(crate) policy_id: Option<&'a str>,
    pub(crate) max: i64,
    pub(crate) now: i64,
}

/// Writes an attachment on `c` (inside the caller's transaction): false when it was already there,
/// errors as [`Store::attach_policy`]. A refusal may leave the attachment row written: the caller
/// rolls back.
pub(crate) async fn attach_on(c: &mut sqlx::AnyConnection, a: &Attachment<'_>) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO policy_attachments (entity_kind, entity_id, policy_arn, attached_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (entity_kind, entity_id, policy_arn) DO NOTHING",
    )
    .bind(a.kind.as_str())
    .bind(a.entity_id)
    .bind(a.arn)
    .bind(a.now)
    .execute(&mut *c)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let (table, id_col) = (a.kind.table(), a.kind.id_col());
    let bumped = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET attached_policy_count = attached_policy_count + 1 \
         WHERE {id_col} = $1 AND attached_policy_count < $2"
    )))
    .bind(a.entity_id)
    .bind(a.max)
    .execute(&mut *c)
    .await?;
    if bumped.rows_affected() != 1 {
        let why = crate::refusal(c, table, id_col, a.entity_id, StoreError::LimitExceeded);
        return Err(why.await?);
    }
    if let Some(pid) = a.policy_id {
        let r = sqlx::query(
            "UPDATE managed_policies SET attachment_count = attachment_count + 1 WHERE policy_id = $1 AND arn = $2",
        )
        .bind(pid)
        .bind(a.arn)
        .execute(&mut *c)
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(true)
}
