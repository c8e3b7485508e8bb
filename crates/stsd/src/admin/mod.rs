//! `stsd admin`: operator commands against a data directory (the server may be running: SQLite allows
//! it, and the server's key cache trusts entries for at most a few seconds).
//!
//! The user, key and device commands run the same IAM code as the HTTP API, in-process, as the account
//! root, so they follow exactly the same rules and produce the same errors.

mod policy;
use crate::iam::{Actor, Iam};
use crate::setup::{self, ROOT_CREDENTIALS_FILE};
use crate::state::{AppState, Clock};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use stsd_core::ids;
use stsd_core::secret::Secret;
use stsd_proto::iam::{Assignment, IamAction, IamOutput, Page};
use stsd_store::iam::DeviceKind;

/// `stsd admin` options.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub store: crate::cli::StoreArgs,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Talking to a running server through the IAM API instead of the data directory.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Run user, key and MFA commands on a server through its IAM API (http:// or https://).
    #[arg(long, env = "STSD_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Access key id for --endpoint-url (the account root's, or a user's for its own credentials).
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// Secret access key for --endpoint-url (from the environment only).
    #[arg(skip = std::env::var("AWS_SECRET_ACCESS_KEY").ok())]
    pub secret_access_key: Option<String>,
    /// Session token for --endpoint-url (from the environment only).
    #[arg(skip = std::env::var("AWS_SESSION_TOKEN").ok())]
    pub session_token: Option<String>,
    /// Region to sign for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// PEM file of CA certificates to trust for https (default: the system's).
    #[arg(long, env = "STSD_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// Admin command groups.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// IAM users.
    #[command(subcommand)]
    User(UserCmd),
    /// Access keys of users or of the root.
    #[command(subcommand)]
    Key(KeyCmd),
    /// MFA devices.
    #[command(subcommand)]
    Mfa(MfaCmd),
    /// The account root's credentials.
    #[command(subcommand)]
    Root(RootCmd),
    /// The token key ring (keys that seal session tokens).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The master key that encrypts stored secrets.
    #[command(subcommand)]
    MasterKey(MasterKeyCmd),
    /// Session revocation.
    #[command(subcommand)]
    Sessions(SessionsCmd),
    /// IAM policies: managed, inline, attachments, and the simulator.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// IAM groups.
    #[command(subcommand)]
    Group(policy::GroupCmd),
    /// IAM roles: trust policies, permissions, sessions (AssumeRole).
    #[command(subcommand)]
    Role(policy::RoleCmd),
}

/// `stsd admin keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List token keys.
    List,
    /// Add a token key that starts sealing tokens after every node has loaded it (--delay seconds), and
    /// retire keys that can no longer have sealed a live session.
    Rotate {
        /// Seconds until the new key seals tokens (at least twice the nodes' 10 s refresh).
        #[arg(long, default_value_t = 30)]
        delay: i64,
    },
}

/// `stsd admin master-key ...`
#[derive(Debug, Subcommand)]
pub enum MasterKeyCmd {
    /// Re-encrypt every stored secret under a new master key (written to --new-key-file, which must not
    /// exist yet). Stop every node first, then restart them with the new key file.
    Rotate {
        #[arg(long)]
        new_key_file: std::path::PathBuf,
    },
}

/// `stsd admin sessions ...`
#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// Invalidate every session issued so far to a user (or the root), on every node within seconds.
    Revoke {
        #[arg(long, required_unless_present_any = ["root", "role"])]
        user: Option<String>,
        #[arg(long, conflicts_with_all = ["user", "role"])]
        root: bool,
        /// Every session of a role (AssumeRole credentials).
        #[arg(long, conflicts_with = "user")]
        role: Option<String>,
    },
}

/// `stsd admin user ...`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Create {
        name: String,
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// Show a user.
    Get { name: String },
    /// List users.
    List {
        #[arg(long, default_value = "/")]
        path_prefix: String,
    },
    /// Delete a user (its login profile, keys and MFA devices must be removed first).
    Delete { name: String },
    /// Set a user's console password (creates its login profile, or replaces the password). The
    /// password is read from standard input (first line) or, on a terminal, prompted for twice without
    /// echo; it is never taken from the command line.
    Password {
        name: String,
        /// The user must choose a new password at its next sign-in.
        #[arg(long)]
        reset_required: bool,
        /// Remove the user's login profile instead (no password is read).
        #[arg(long, conflicts_with = "reset_required")]
        delete: bool,
    },
}

/// `stsd admin key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create an access key (the secret is shown once). Without --user: a root key.
    Create {
        #[arg(long)]
        user: Option<String>,
    },
    /// List access keys.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Deactivate a key (it is refused until activated again).
    Deactivate {
        access_key_id: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Activate a key.
    Activate {
        access_key_id: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a key.
    Delete {
        access_key_id: String,
        #[arg(long)]
        user: Option<String>,
    },
}

/// `stsd admin mfa ...`
#[derive(Debug, Subcommand)]
pub enum MfaCmd {
    /// Create a virtual device for USER (or --root), show its QR code, ask for two codes, enable it.
    Enroll {
        /// The user (omit with --root).
        user: Option<String>,
        /// Enrol a device for the account root.
        #[arg(long, conflicts_with = "user")]
        root: bool,
        /// Device name (default: the user name, or "root").
        #[arg(long)]
        name: Option<String>,
        /// First code (otherwise asked for).
        #[arg(long, requires = "code2")]
        code1: Option<String>,
        /// Second, consecutive code (otherwise asked for).
        #[arg(long, requires = "code1")]
        code2: Option<String>,
        /// The issuer the QR code names (authenticator apps show it), as `stsd serve --mfa-issuer`.
        #[arg(long, env = "STSD_MFA_ISSUER", default_value = crate::console::session::DEFAULT_MFA_ISSUER)]
        mfa_issuer: String,
    },
    /// Import a hardware TOTP token by serial and base32 seed; enable it with `mfa enable`.
    ImportHardware {
        /// Serial number, e.g. GAHT12345678.
        #[arg(long)]
        serial: String,
        /// File holding the base32 seed (or set STSD_MFA_SEED).
        #[arg(long)]
        seed_file: Option<std::path::PathBuf>,
    },
    /// Enable a device (virtual or hardware) for a user or the root with two consecutive codes.
    Enable {
        serial: String,
        #[arg(long, required_unless_present = "root")]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        root: bool,
        #[arg(long)]
        code1: String,
        #[arg(long)]
        code2: String,
    },
    /// List the devices of a user (or the root), or every virtual device with --all.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        all: bool,
    },
    /// Deactivate a device.
    Deactivate {
        serial: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete an unassigned virtual device.
    Delete { serial: String },
    /// Require (or stop requiring) MFA for a user's GetSessionToken.
    Require {
        user: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// `stsd admin root ...`
#[derive(Debug, Subcommand)]
pub enum RootCmd {
    /// Show the root credentials.
    Show,
    /// Create a new root key, delete the old ones, rewrite DATA_DIR/root-credentials.
    Rotate,
    /// Set the root's console password, read like `stsd admin user password`'s. The account password
    /// policy does not apply to the root.
    Password,
}

/// Like `println!`, but a closed stdout (`stsd admin ... | head`) ends output quietly instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

struct Out {
    json: bool,
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A flat JSON object from (key, value) pairs; `None` values are written as null.
fn json_obj(pairs: &[(&str, Option<String>)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}: {}",
                json_str(k),
                v.as_deref().map_or("null".into(), json_str)
            )
        })
        .collect();
    format!("{{{}}}", body.join(", "))
}

impl Out {
    fn print(&self, out: &IamOutput) {
        match out {
            IamOutput::User { user, .. } => {
                if self.json {
                    outln!(
                        "{}",
                        json_obj(&[
                            ("UserName", Some(user.user_name.clone())),
                            ("UserId", Some(user.user_id.clone())),
                            ("Arn", Some(user.arn.clone())),
                            ("Path", Some(user.path.clone())),
                            ("CreateDate", Some(user.create_date.clone())),
                        ])
                    );
                } else {
                    outln!(
                        "{}\t{}\t{}\t{}",
                        user.user_name,
                        user.user_id,
                        user.arn,
                        user.create_date
                    );
                }
            }
            IamOutput::Users { users, .. } => {
                if self.json {
                    let items: Vec<String> = users
                        .iter()
                        .map(|u| {
                            json_obj(&[
                                ("UserName", Some(u.user_name.clone())),
                                ("UserId", Some(u.user_id.clone())),
                                ("Arn", Some(u.arn.clone())),
                                ("Path", Some(u.path.clone())),
                                ("CreateDate", Some(u.create_date.clone())),
                            ])
                        })
                        .collect();
                    outln!("[{}]", items.join(", "));
                } else {
                    for u in users {
                        outln!(
                            "{}\t{}\t{}\t{}",
                            u.user_name,
                            u.user_id,
                            u.arn,
                            u.create_date
                        );
                    }
                }
            }
            IamOutput::NewAccessKey {
                key,
                secret_access_key,
            } => {
                if self.json {
                    outln!(
                        "{}",
                        json_obj(&[
                            ("UserName", key.user_name.clone()),
                            ("AccessKeyId", Some(key.access_key_id.clone())),
                            ("SecretAccessKey", Some(secret_access_key.clone())),
                            ("Status", Some(key.status.clone())),
                        ])
                    );
                } else {
                    outln!("access key id:     {}", key.access_key_id);
                    outln!("secret access key: {secret_access_key}");
                    outln!("(the secret is shown only now; store it safely)");
                }
            }
            IamOutput::AccessKeys { keys, .. } => {
                if self.json {
                    let items: Vec<String> = keys
                        .iter()
                        .map(|k| {
                            json_obj(&[
                                ("UserName", k.user_name.clone()),
                                ("AccessKeyId", Some(k.access_key_id.clone())),
                                ("Status", Some(k.status.clone())),
                                ("CreateDate", Some(k.create_date.clone())),
                            ])
                        })
                        .collect();
                    outln!("[{}]", items.join(", "));
                } else {
                    for k in keys {
                        outln!("{}\t{}\t{}", k.access_key_id, k.status, k.create_date);
                    }
                }
            }
            IamOutput::MfaDevices { devices, .. }
            | IamOutput::VirtualMfaDevices { devices, .. } => {
                if self.json {
                    let items: Vec<String> = devices
                        .iter()
                        .map(|d| {
                            json_obj(&[
                                ("SerialNumber", Some(d.serial_number.clone())),
                                ("UserArn", d.user.as_ref().map(|u| u.arn.clone())),
                                ("EnableDate", d.enable_date.clone()),
                            ])
                        })
                        .collect();
                    outln!("[{}]", items.join(", "));
                } else {
                    for d in devices {
                        outln!(
                            "{}\t{}\t{}",
                            d.serial_number,
                            d.user.as_ref().map_or("-", |u| u.arn.as_str()),
                            d.enable_date.as_deref().unwrap_or("-")
                        );
                    }
                }
            }
            IamOutput::Empty { action } => {
                if self.json {
                    outln!(
                        "{}",
                        json_obj(&[("Result", Some(format!("{action}: done")))])
                    );
                } else {
                    outln!("ok");
                }
            }
            IamOutput::PolicyVersion { version, .. } => match &version.document {
                Some(d) => outln!("{d}"),
                None => outln!(
                    "{}{}",
                    version.version_id,
                    if version.is_default_version {
                        " (default)"
                    } else {
                        ""
                    }
                ),
            },
            IamOutput::PolicyDocument { document, .. } => outln!("{document}"),
            IamOutput::Policy { policy, .. } => {
                outln!(
                    "{}\t{}\tattachments={}",
                    policy.arn,
                    policy.default_version_id,
                    policy.attachment_count
                )
            }
            IamOutput::Policies { policies, .. } => {
                for p in policies {
                    outln!(
                        "{}\t{}\tattachments={}",
                        p.arn,
                        p.default_version_id,
                        p.attachment_count
                    );
                }
            }
            IamOutput::PolicyNames { names, .. } => {
                for n in names {
                    outln!("inline\t{n}");
                }
            }
            IamOutput::AttachedPolicies { policies, .. } => {
                for p in policies {
                    outln!("attached\t{}", p.policy_arn);
                }
            }
            IamOutput::Group { group, .. } => outln!("{}\t{}", group.arn, group.group_id),
            IamOutput::Role { role, .. } => {
                outln!(
                    "{}\t{}\tmax-session={}",
                    role.arn,
                    role.role_id,
                    role.max_session_duration
                );
                outln!("{}", role.assume_role_policy_document);
            }
            IamOutput::Roles { roles, .. } => {
                for r in roles {
                    outln!("role\t{}\t{}", r.role_name, r.arn);
                }
            }
            IamOutput::GroupDetail { group, users, .. } => {
                outln!("{}\t{}", group.arn, group.group_id);
                for u in users {
                    outln!("member\t{}", u.user_name);
                }
            }
            IamOutput::Groups { groups, .. } => {
                for g in groups {
                    outln!("group\t{}", g.group_name);
                }
            }
            IamOutput::Simulation { results, .. } => {
                for r in results {
                    let by: Vec<String> = r
                        .matched
                        .iter()
                        .map(|m| format!("{} ({})", m.source_policy_id, m.source_policy_type))
                        .collect();
                    outln!(
                        "{}\t{}\t{}\t{}",
                        r.action_name,
                        r.resource_name,
                        r.decision.as_str(),
                        by.join(", ")
                    );
                }
            }
            IamOutput::LoginProfile { profile, .. } => {
                let reset = if profile.password_reset_required {
                    "true"
                } else {
                    "false"
                };
                if self.json {
                    outln!(
                        "{}",
                        json_obj(&[
                            ("UserName", Some(profile.user_name.clone())),
                            ("CreateDate", Some(profile.create_date.clone())),
                            ("PasswordResetRequired", Some(reset.to_owned())),
                        ])
                    );
                } else {
                    outln!(
                        "{}\t{}\tPasswordResetRequired={reset}",
                        profile.user_name,
                        profile.create_date
                    );
                }
            }
            other => outln!("{other:?}"),
        }
    }
}

/// Reads a new password: the first line of standard input, or on a terminal two prompts without echo.
fn read_new_password() -> anyhow::Result<zeroize::Zeroizing<String>> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = read_hidden("New password: ")?;
        let again = read_hidden("Repeat the new password: ")?;
        if *first != *again {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        read_line_secret()?
    };
    if password.is_empty() {
        bail!("no password given (expected it on standard input); nothing was changed");
    }
    Ok(password)
}

/// One line of standard input without its line ending (other white space is part of a password).
fn read_line_secret() -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Ok(line)
}

#[cfg(unix)]
fn read_hidden(label: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    eprint!("{label}");
    let line = std::io::stderr()
        .flush()
        .map_err(anyhow::Error::from)
        .and_then(|()| read_line_secret());
    tcsetattr(&stdin, OptionalActions::Now, &saved)?;
    line
}

#[cfg(not(unix))]
fn read_hidden(label: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    read_line_secret()
}

/// `stsd admin user password`: UpdateLoginProfile when the user has one, else CreateLoginProfile
/// (or DeleteLoginProfile), through the IAM executor like every user command.
async fn user_password(
    backend: &Backend<'_>,
    out: &Out,
    name: &str,
    reset_required: bool,
    delete: bool,
) -> anyhow::Result<()> {
    let user_name = Some(name.to_owned());
    if delete {
        let o = backend
            .execute(&IamAction::DeleteLoginProfile { user_name })
            .await?;
        out.print(&o);
        return Ok(());
    }
    let existing = backend
        .execute(&IamAction::GetLoginProfile {
            user_name: user_name.clone(),
        })
        .await;
    let password = read_new_password()?;
    let o = match existing {
        Ok(_) => {
            backend
                .execute(&IamAction::UpdateLoginProfile {
                    user_name: name.to_owned(),
                    password: Some(password.to_string()),
                    password_reset_required: Some(reset_required),
                })
                .await?;
            backend
                .execute(&IamAction::GetLoginProfile { user_name })
                .await?
        }
        Err(e) if e.to_string().contains("Login Profile for User") => {
            backend
                .execute(&IamAction::CreateLoginProfile {
                    user_name,
                    password: password.to_string(),
                    password_reset_required: reset_required,
                })
                .await?
        }
        Err(e) => return Err(e),
    };
    out.print(&o);
    Ok(())
}

fn prompt(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        bail!("no input: expected {}", label.trim_end_matches([':', ' ']));
    }
    Ok(line.trim().to_owned())
}

async fn open_state(args: &AdminArgs) -> anyhow::Result<AppState> {
    let cfg = args.store.store_config();
    if cfg.database_url.is_none() && !cfg.data_dir.join(setup::DB_FILE).exists() {
        bail!(
            "no stsd database in {} (start `stsd serve --data-dir {}` once, or pass --data-dir)",
            cfg.data_dir.display(),
            cfg.data_dir.display()
        );
    }
    let store = setup::open_store(&cfg).await?;
    let account = store.init_account(None).await?;
    let clock = Clock::default();
    let ring = store.load_key_ring(clock.now()).await?;
    Ok(AppState::new(store, ring, account, None, clock))
}

fn page() -> Page {
    Page {
        marker: None,
        max_items: 1000,
    }
}

/// Runs `stsd admin ...`.
///
/// # Errors
/// Any failure, with a message for the operator (IAM errors keep their AWS code and message).
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    if let Some(endpoint) = &args.remote.endpoint_url {
        let remote = crate::remote::Remote::new(endpoint, &args.remote)?;
        return run_with(&args, Backend::Remote(remote)).await;
    }
    let state = open_state(&args).await?;
    if let AdminCommand::MasterKey(MasterKeyCmd::Rotate { new_key_file }) = &args.command {
        return rotate_master_key(state, new_key_file).await;
    }
    let result = run_with(
        &args,
        Backend::Local(&state, Iam::new(&state, Actor::root(&state.account))),
    )
    .await;
    state.store.close().await;
    result
}

/// Where IAM actions run: in-process on the data directory, or on a server through the IAM API.
enum Backend<'a> {
    Local(&'a AppState, Iam<'a>),
    Remote(crate::remote::Remote),
}

impl Backend<'_> {
    async fn execute(&self, action: &IamAction) -> anyhow::Result<IamOutput> {
        match self {
            Backend::Local(_, iam) => {
                // Validate exactly as the HTTP API does: through the action's wire parameters.
                let params = stsd_proto::Params::from_pairs(action.to_params());
                let api = |e: stsd_proto::ApiError| anyhow::anyhow!("{}: {}", e.code, e.message);
                let action = IamAction::parse(action.name(), &params).map_err(api)?;
                iam.execute(&action).await.map_err(api)
            }
            Backend::Remote(r) => r.execute(action).await,
        }
    }

    /// The local state, for commands that work on the data directory or database directly.
    fn local(&self, what: &str) -> anyhow::Result<&AppState> {
        match self {
            Backend::Local(state, _) => Ok(state),
            Backend::Remote(_) => bail!(
                "`stsd admin {what}` works on the data directory or database directly: drop --endpoint-url"
            ),
        }
    }
}

async fn run_with(args: &AdminArgs, backend: Backend<'_>) -> anyhow::Result<()> {
    let out = Out { json: args.json };
    let exec = |action: IamAction| {
        let backend = &backend;
        async move { backend.execute(&action).await }
    };
    match &args.command {
        AdminCommand::User(cmd) => {
            let action = match cmd {
                UserCmd::Create { name, path } => IamAction::CreateUser {
                    user_name: name.clone(),
                    path: path.clone(),
                },
                UserCmd::Get { name } => IamAction::GetUser {
                    user_name: Some(name.clone()),
                },
                UserCmd::List { path_prefix } => IamAction::ListUsers {
                    path_prefix: path_prefix.clone(),
                    page: page(),
                },
                UserCmd::Delete { name } => IamAction::DeleteUser {
                    user_name: name.clone(),
                },
                UserCmd::Password {
                    name,
                    reset_required,
                    delete,
                } => return user_password(&backend, &out, name, *reset_required, *delete).await,
            };
            exec(action).await.map(|o| out.print(&o))
        }
        AdminCommand::Key(cmd) => {
            let action = match cmd {
                KeyCmd::Create { user } => IamAction::CreateAccessKey {
                    user_name: user.clone(),
                },
                KeyCmd::List { user } => IamAction::ListAccessKeys {
                    user_name: user.clone(),
                    page: page(),
                },
                KeyCmd::Deactivate {
                    access_key_id,
                    user,
                } => IamAction::UpdateAccessKey {
                    user_name: user.clone(),
                    access_key_id: access_key_id.clone(),
                    active: false,
                },
                KeyCmd::Activate {
                    access_key_id,
                    user,
                } => IamAction::UpdateAccessKey {
                    user_name: user.clone(),
                    access_key_id: access_key_id.clone(),
                    active: true,
                },
                KeyCmd::Delete {
                    access_key_id,
                    user,
                } => IamAction::DeleteAccessKey {
                    user_name: user.clone(),
                    access_key_id: access_key_id.clone(),
                },
            };
            exec(action).await.map(|o| out.print(&o))
        }
        AdminCommand::Mfa(cmd) => mfa(&backend, &out, cmd).await,
        AdminCommand::Policy(cmd) => policy::policy(&backend, &out, cmd).await,
        AdminCommand::Group(cmd) => policy::group(&backend, &out, cmd).await,
        AdminCommand::Role(cmd) => policy::role(&backend, &out, cmd).await,
        AdminCommand::Root(cmd) => root(backend.local("root")?, args, &out, cmd).await,
        AdminCommand::Keys(cmd) => keys(backend.local("keys")?, &out, cmd).await,
        AdminCommand::MasterKey(_) => bail!(
            "`stsd admin master-key` works on the data directory or database directly: drop --endpoint-url"
        ),
        AdminCommand::Sessions(SessionsCmd::Revoke {
            user,
            root: _,
            role,
        }) => {
            let state = backend.local("sessions")?;
            let principal = match (user, role) {
                (_, Some(name)) => {
                    state
                        .store
                        .role_by_name(name)
                        .await?
                        .with_context(|| {
                            format!("NoSuchEntity: The role with name {name} cannot be found.")
                        })?
                        .role_id
                }
                (Some(name), None) => {
                    state
                        .store
                        .user_by_name(name)
                        .await?
                        .with_context(|| {
                            format!("NoSuchEntity: The user with name {name} cannot be found.")
                        })?
                        .user_id
                }
                (None, None) => stsd_store::iam::ROOT_OWNER.to_owned(),
            };
            // "Not before" the next second: every session issued up to now (same second included) is revoked.
            let t = state.clock.now() + 1;
            state.store.revoke_sessions(&principal, t).await?;
            out.print(&IamOutput::Empty {
                action: "RevokeSessions",
            });
            Ok(())
        }
    }
}

async fn mfa(backend: &Backend<'_>, out: &Out, cmd: &MfaCmd) -> anyhow::Result<()> {
    match cmd {
        MfaCmd::Enroll {
            user,
            root,
            name,
            code1,
            code2,
            mfa_issuer,
        } => {
            if user.is_none() && !*root {
                bail!("name a user, or pass --root");
            }
            if *root {
                backend.local("mfa enroll --root")?;
            }
            let device_name = name
                .clone()
                .or_else(|| user.clone())
                .unwrap_or_else(|| "root".into());
            let mut device_name = device_name;
            let created = match backend
                .execute(&IamAction::CreateVirtualMfaDevice {
                    name: device_name.clone(),
                    path: "/".into(),
                })
                .await
            {
                // The default name may be taken by a device someone else created (squatting): without
                // an explicit --name, enrol under a name nobody can have reserved.
                Err(e) if name.is_none() && e.to_string().starts_with("EntityAlreadyExists") => {
                    let mut b = [0u8; 4];
                    stsd_core::random_fill(&mut b);
                    device_name = format!(
                        "{device_name}-{}",
                        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                    );
                    eprintln!("device name taken; enrolling as {device_name}");
                    backend
                        .execute(&IamAction::CreateVirtualMfaDevice {
                            name: device_name.clone(),
                            path: "/".into(),
                        })
                        .await?
                }
                other => other?,
            };
            let IamOutput::NewVirtualMfaDevice {
                serial_number,
                base32_seed,
                ..
            } = created
            else {
                bail!("unexpected answer to CreateVirtualMFADevice");
            };
            let label = match user {
                Some(u) => u.clone(),
                None => backend.local("mfa enroll --root")?.account.clone(),
            };
            // The label keeps the device name (`DEVICE@USER`, `DEVICE@ACCOUNT` for the root) behind the
            // issuer, which authenticator apps show.
            let uri = crate::console::otpauth_uri(mfa_issuer, &device_name, &label, &base32_seed);
            if !out.json {
                eprintln!("{}", crate::qr::terminal(&uri)?);
                eprintln!(
                    "Scan the code above, or enter this URI in an authenticator app:\n  {uri}\n"
                );
            }
            let (c1, c2) = match (code1, code2) {
                (Some(a), Some(b)) => (a.clone(), b.clone()),
                _ => {
                    let a = prompt("First code from the app: ")?;
                    let b = prompt("Wait for the next code, then enter it: ")?;
                    (a, b)
                }
            };
            let enabled = match (user, backend) {
                (Some(u), _) => backend
                    .execute(&IamAction::EnableMfaDevice {
                        user_name: u.clone(),
                        serial_number: serial_number.clone(),
                        code1: c1,
                        code2: c2,
                    })
                    .await
                    .map(|_| ()),
                (None, Backend::Local(_, iam)) => iam
                    .enable_root_device(&serial_number, &c1, &c2)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message)),
                (None, Backend::Remote(_)) => {
                    Err(anyhow::anyhow!("root devices are enrolled locally"))
                }
            };
            if let Err(e) = enabled {
                // Leave nothing half-done: the unassigned device is removed again.
                let _ = backend
                    .execute(&IamAction::DeleteVirtualMfaDevice {
                        serial_number: serial_number.clone(),
                    })
                    .await;
                return Err(e);
            }
            if out.json {
                outln!(
                    "{}",
                    json_obj(&[
                        ("SerialNumber", Some(serial_number)),
                        ("Enabled", Some("true".into()))
                    ])
                );
            } else {
                outln!("MFA device {serial_number} enabled");
            }
            Ok(())
        }
        MfaCmd::ImportHardware { serial, seed_file } => {
            let state = backend.local("mfa import-hardware")?;
            let seed = match seed_file {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?,
                None => std::env::var("STSD_MFA_SEED")
                    .context("pass --seed-file or set STSD_MFA_SEED")?,
            };
            let seed = seed.trim().trim_end_matches('=').to_ascii_uppercase();
            let decoded = data_encoding::BASE32_NOPAD
                .decode(seed.as_bytes())
                .context("the seed must be base32 (A-Z, 2-7)")?;
            if decoded.len() < 10 {
                bail!(
                    "the seed is too short: at least 80 bits (16 base32 characters) are required"
                );
            }
            let valid = (9..=256).contains(&serial.len())
                && serial
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=/:,.@-".contains(c));
            if !valid {
                bail!("the serial must be 9 to 256 characters of [A-Za-z0-9_+=/:,.@-]");
            }
            state
                .store
                .create_mfa_device(
                    serial,
                    DeviceKind::Hardware,
                    serial,
                    "/",
                    &Secret::new(seed),
                    Some("root"),
                    state.clock.now(),
                )
                .await
                .map_err(|e| match e {
                    stsd_store::StoreError::AlreadyExists => {
                        anyhow::anyhow!("a device with serial {serial} exists already")
                    }
                    e => e.into(),
                })?;
            if out.json {
                outln!(
                    "{}",
                    json_obj(&[
                        ("SerialNumber", Some(serial.clone())),
                        ("Imported", Some("true".into()))
                    ])
                );
            } else {
                outln!(
                    "hardware token {serial} imported; enable it with `stsd admin mfa enable {serial} --user NAME --code1 .. --code2 ..`"
                );
            }
            Ok(())
        }
        MfaCmd::Enable {
            serial,
            user,
            root: _,
            code1,
            code2,
        } => {
            match user {
                Some(u) => {
                    backend
                        .execute(&IamAction::EnableMfaDevice {
                            user_name: u.clone(),
                            serial_number: serial.clone(),
                            code1: code1.clone(),
                            code2: code2.clone(),
                        })
                        .await?;
                }
                None => match backend {
                    Backend::Local(_, iam) => iam
                        .enable_root_device(serial, code1, code2)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?,
                    Backend::Remote(_) => {
                        backend.local("mfa enable --root")?;
                    }
                },
            }
            out.print(&IamOutput::Empty {
                action: "EnableMFADevice",
            });
            Ok(())
        }
        MfaCmd::List { user, all } => {
            let action = if *all {
                IamAction::ListVirtualMfaDevices {
                    assignment: Assignment::Any,
                    page: page(),
                }
            } else {
                IamAction::ListMfaDevices {
                    user_name: user.clone(),
                    page: page(),
                }
            };
            out.print(&backend.execute(&action).await?);
            Ok(())
        }
        MfaCmd::Deactivate { serial, user } => {
            let o = backend
                .execute(&IamAction::DeactivateMfaDevice {
                    user_name: user.clone(),
                    serial_number: serial.clone(),
                })
                .await?;
            out.print(&o);
            Ok(())
        }
        MfaCmd::Delete { serial } => {
            let o = backend
                .execute(&IamAction::DeleteVirtualMfaDevice {
                    serial_number: serial.clone(),
                })
                .await?;
            out.print(&o);
            Ok(())
        }
        MfaCmd::Require { user, state: on } => {
            let state = backend.local("mfa require")?;
            let u = state.store.user_by_name(user).await?.with_context(|| {
                format!("NoSuchEntity: The user with name {user} cannot be found.")
            })?;
            state
                .store
                .set_user_mfa_required(&u.user_id, on == "on")
                .await?;
            out.print(&IamOutput::Empty {
                action: "RequireMFA",
            });
            Ok(())
        }
    }
}

async fn rotate_master_key(state: AppState, new_key_file: &std::path::Path) -> anyhow::Result<()> {
    if new_key_file.exists() {
        bail!("{} exists already; name a new file", new_key_file.display());
    }
    let bytes = stsd_core::crypto::SealingKey::generate_bytes();
    let new_key = stsd_core::crypto::SealingKey::from_bytes(bytes.as_ref())?;
    let text = stsd_core::crypto::format_key_file(bytes.as_ref());
    // Write the new key file first: if re-encryption fails the database keeps the old key and
    // the unused file can be deleted; if it succeeds, the key is already safely on disk.
    setup::replace_private(new_key_file, text.as_bytes())?;
    let AppState { store, .. } = state;
    let store = store.rotate_master_key(new_key).await?;
    store.close().await;
    outln!(
        "every secret is now encrypted under {}; restart each node with --master-key-file {} (or replace its master.key)",
        new_key_file.display(),
        new_key_file.display()
    );
    Ok(())
}

async fn keys(state: &AppState, out: &Out, cmd: &KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::List => {
            for k in state.store.token_keys().await? {
                let status = match k.retired_at {
                    Some(_) => "retired",
                    None if k.valid_from > state.clock.now() => "pending",
                    None => "active",
                };
                if out.json {
                    outln!(
                        "{}",
                        json_obj(&[
                            ("KeyId", Some(k.key_id.to_string())),
                            ("Status", Some(status.into())),
                            ("ValidFrom", Some(stsd_core::timefmt::iso8601(k.valid_from))),
                        ])
                    );
                } else {
                    outln!(
                        "{}\t{}\tvalid from {}",
                        k.key_id,
                        status,
                        stsd_core::timefmt::iso8601(k.valid_from)
                    );
                }
            }
            Ok(())
        }
        KeysCmd::Rotate { delay } => {
            let now = state.clock.now();
            let id = state.store.create_token_key(now + (*delay).max(0)).await?;
            // The longest session is 36 h: older keys are kept until every token they sealed expired.
            let retired = state.store.retire_token_keys(now, 129_600).await?;
            outln!(
                "token key {id} added; it seals new tokens from {} on{}",
                stsd_core::timefmt::iso8601(now + (*delay).max(0)),
                if retired.is_empty() {
                    String::new()
                } else {
                    format!("; retired keys {retired:?}")
                }
            );
            Ok(())
        }
    }
}

async fn root(state: &AppState, args: &AdminArgs, out: &Out, cmd: &RootCmd) -> anyhow::Result<()> {
    match cmd {
        RootCmd::Show => {
            let keys = state.store.root_keys().await?;
            let Some(k) = keys.first() else {
                bail!("the root has no access key")
            };
            if out.json {
                outln!(
                    "{}",
                    json_obj(&[
                        ("Account", Some(state.account.clone())),
                        ("AccessKeyId", Some(k.access_key_id.clone())),
                        ("SecretAccessKey", Some(k.secret.expose().to_owned())),
                    ])
                );
            } else {
                outln!(
                    "[stsd-root]\naws_access_key_id = {}\naws_secret_access_key = {}",
                    k.access_key_id,
                    k.secret.expose()
                );
            }
            Ok(())
        }
        RootCmd::Password => {
            let password = read_new_password()?;
            Iam::new(state, Actor::root(&state.account))
                .set_root_password(&password)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            outln!("the root's console password was set");
            Ok(())
        }
        RootCmd::Rotate => {
            let id = ids::new_long_term_key_id(state.account_id);
            let secret = ids::new_secret_access_key();
            // One transaction: the root keeps at most two keys at every moment.
            state
                .store
                .rotate_root_key(&id, &secret, state.clock.now())
                .await?;
            let file = args.store.data_dir.join(ROOT_CREDENTIALS_FILE);
            let text = zeroize::Zeroizing::new(format!(
                "[stsd-root]\naws_access_key_id = {id}\naws_secret_access_key = {}\n",
                secret.expose()
            ));
            setup::replace_private(&file, text.as_bytes())?;
            if out.json {
                outln!(
                    "{}",
                    json_obj(&[
                        ("AccessKeyId", Some(id)),
                        ("SecretAccessKey", Some(secret.expose().to_owned()))
                    ])
                );
            } else {
                outln!(
                    "new root key {id} (old keys deleted; running servers refuse them within a few seconds)\naws_secret_access_key = {}\nwritten to {}",
                    secret.expose(),
                    file.display()
                );
            }
            Ok(())
        }
    }
}
