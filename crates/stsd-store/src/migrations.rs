//! Schema migrations, one list for both backends. `{BLOB}` is replaced by each dialect's binary type; every
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
];

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
    }
}
