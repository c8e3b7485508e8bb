//! Schema migrations, one list for both backends. `{BLOB}` is replaced by each dialect's binary type and `{SELF_SERVICE_ARN}` by [`SELF_SERVICE_ARN`]; every
//! other construct is portable SQL (no SQLite-only or PostgreSQL-only features).

/// `(version, description, SQL)`; applied in order, each in its own transaction, recorded in
/// `stsd_migrations`. Never edit a released migration: add a new one.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "accounts, users, access keys, token key ring",
        r#"
CREATE TABLE stsd_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    key_count BIGINT NOT NULL DEFAULT 0,
    device_count BIGINT NOT NULL DEFAULT 0,
    sessions_not_before BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX users_path ON users (path);
CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (user_id),
    secret_enc {BLOB} NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    last_used_region TEXT,
    last_used_service TEXT
);
CREATE INDEX access_keys_user ON access_keys (user_id);
CREATE TABLE token_keys (
    key_id BIGINT PRIMARY KEY,
    key_enc {BLOB} NOT NULL,
    created_at BIGINT NOT NULL,
    valid_from BIGINT NOT NULL,
    retired_at BIGINT
);
"#,
    ),
    (
        2,
        "MFA devices (seed, assignment, replay and lock-out state), MFA-required flag",
        r#"
CREATE TABLE mfa_devices (
    serial_number TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    seed_enc {BLOB} NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    owner TEXT,
    enabled_at BIGINT,
    last_step BIGINT,
    drift_steps BIGINT NOT NULL DEFAULT 0,
    failed_count BIGINT NOT NULL DEFAULT 0,
    first_failed_at BIGINT,
    locked_until BIGINT
);
CREATE INDEX mfa_devices_owner ON mfa_devices (owner);
ALTER TABLE users ADD COLUMN mfa_required BIGINT NOT NULL DEFAULT 0;
"#,
    ),
    (
        3,
        "IAM policies: managed policies and versions, inline policies, groups, attachments",
        r#"
CREATE TABLE iam_groups (
    group_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    member_count BIGINT NOT NULL DEFAULT 0,
    inline_policy_count BIGINT NOT NULL DEFAULT 0,
    attached_policy_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX iam_groups_path ON iam_groups (path);
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES iam_groups (group_id),
    user_id TEXT NOT NULL REFERENCES users (user_id),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
CREATE TABLE managed_policies (
    policy_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    description TEXT,
    default_version TEXT NOT NULL,
    next_version BIGINT NOT NULL,
    version_count BIGINT NOT NULL,
    attachment_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX managed_policies_path ON managed_policies (path);
CREATE TABLE policy_versions (
    policy_id TEXT NOT NULL REFERENCES managed_policies (policy_id),
    version_id TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version_id)
);
CREATE TABLE inline_policies (
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (entity_kind, entity_id, name)
);
CREATE TABLE policy_attachments (
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    attached_at BIGINT NOT NULL,
    PRIMARY KEY (entity_kind, entity_id, policy_arn)
);
CREATE INDEX policy_attachments_arn ON policy_attachments (policy_arn);
ALTER TABLE users ADD COLUMN inline_policy_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN attached_policy_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN group_count BIGINT NOT NULL DEFAULT 0;
INSERT INTO policy_attachments (entity_kind, entity_id, policy_arn, attached_at)
    SELECT 'user', user_id, '{SELF_SERVICE_ARN}', created_at FROM users;
UPDATE users SET attached_policy_count = 1;
"#,
    ),
    (
        4,
        "IAM roles (trust policy, session limit, per-role revocation)",
        r#"
CREATE TABLE iam_roles (
    role_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    trust_policy TEXT NOT NULL,
    description TEXT,
    max_session_duration BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    inline_policy_count BIGINT NOT NULL DEFAULT 0,
    attached_policy_count BIGINT NOT NULL DEFAULT 0,
    sessions_not_before BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX iam_roles_path ON iam_roles (path);
"#,
    ),
    (
        5,
        "console passwords: login profiles (Argon2id hashes, history) and the account password policy",
        r#"
CREATE TABLE login_profiles (
    owner TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    password_history TEXT NOT NULL DEFAULT '',
    password_reset_required BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    failed_count BIGINT NOT NULL DEFAULT 0,
    first_failed_at BIGINT,
    locked_until BIGINT
);
CREATE TABLE account_password_policy (
    id BIGINT PRIMARY KEY,
    minimum_password_length BIGINT NOT NULL,
    require_symbols BIGINT NOT NULL,
    require_numbers BIGINT NOT NULL,
    require_uppercase BIGINT NOT NULL,
    require_lowercase BIGINT NOT NULL,
    allow_users_to_change_password BIGINT NOT NULL,
    max_password_age BIGINT NOT NULL,
    password_reuse_prevention BIGINT NOT NULL,
    hard_expiry BIGINT NOT NULL
);
"#,
    ),
];

/// The built-in managed policy that keeps the self-service rights users had before policies existed
/// (manage their own access keys and MFA devices). Migration 3 attaches it to every existing user.
pub const SELF_SERVICE_ARN: &str = "arn:aws:iam::aws:policy/StsdSelfManageCredentials";

/// Which SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default.
    Sqlite,
    /// Multi-node deployments.
    Postgres,
}

impl Dialect {
    /// Fills the dialect placeholders of a migration.
    pub fn render(self, sql: &str) -> String {
        let blob = match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
        };
        sql.replace("{BLOB}", blob)
            .replace("{SELF_SERVICE_ARN}", SELF_SERVICE_ARN)
    }
}
