//! `stsd admin policy ...` and `stsd admin group ...`: the IAM policy and group actions, with documents
//! read from files, and the simulator.

use super::{Backend, Out, page};
use anyhow::Context as _;
use clap::Subcommand;
use stsd_proto::iam::{ContextEntry, ContextKeyType, IamAction, PolicyScope};

/// `stsd admin policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Create a customer managed policy from a JSON document file.
    Create {
        name: String,
        #[arg(long)]
        document: std::path::PathBuf,
        #[arg(long, default_value = "/")]
        path: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Show a managed policy and its default document.
    Get { arn: String },
    /// List managed policies (`--scope AWS` for stsd's built-in policies).
    List {
        #[arg(long, default_value = "All", value_parser = ["All", "AWS", "Local"])]
        scope: String,
    },
    /// Delete a managed policy (detach it and delete its other versions first).
    Delete { arn: String },
    /// Add a version to a managed policy (the default with --set-default).
    NewVersion {
        arn: String,
        #[arg(long)]
        document: std::path::PathBuf,
        #[arg(long)]
        set_default: bool,
    },
    /// Attach a managed policy to a user or a group.
    Attach {
        arn: String,
        #[arg(long, required_unless_present = "group")]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        group: Option<String>,
    },
    /// Detach a managed policy from a user or a group.
    Detach {
        arn: String,
        #[arg(long, required_unless_present = "group")]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        group: Option<String>,
    },
    /// Put (create or replace) an inline policy of a user or a group.
    Put {
        policy_name: String,
        #[arg(long)]
        document: std::path::PathBuf,
        #[arg(long, required_unless_present = "group")]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        group: Option<String>,
    },
    /// Delete an inline policy of a user or a group.
    DeleteInline {
        policy_name: String,
        #[arg(long, required_unless_present = "group")]
        user: Option<String>,
        #[arg(long, conflicts_with = "user")]
        group: Option<String>,
    },
    /// Show the policies of a user (inline and attached).
    Show {
        #[arg(long)]
        user: String,
    },
    /// "Can user U do action A (with MFA)?": the simulator on a user's policies.
    Simulate {
        #[arg(long)]
        user: String,
        /// Action names, e.g. iam:CreateAccessKey (repeatable).
        #[arg(long = "action", required = true)]
        actions: Vec<String>,
        /// Resource ARNs (repeatable; default `*`).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// Model an MFA session (`true`), a session without MFA (`false`), or a long-term key (absent).
        #[arg(long)]
        mfa: Option<bool>,
    },
}

/// `stsd admin group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a group.
    Create {
        name: String,
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// Show a group and its members.
    Get { name: String },
    /// List groups.
    List,
    /// Delete a group (remove its members and policies first).
    Delete { name: String },
    /// Add a user to a group.
    AddUser { group: String, user: String },
    /// Remove a user from a group.
    RemoveUser { group: String, user: String },
}

fn read_doc(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub(super) async fn policy(
    backend: &Backend<'_>,
    out: &Out,
    cmd: &PolicyCmd,
) -> anyhow::Result<()> {
    let actions = match cmd {
        PolicyCmd::Create {
            name,
            document,
            path,
            description,
        } => vec![IamAction::CreatePolicy {
            policy_name: name.clone(),
            path: path.clone(),
            policy_document: read_doc(document)?,
            description: description.clone(),
            tags: Vec::new(),
        }],
        PolicyCmd::Get { arn } => {
            let p = backend
                .execute(&IamAction::GetPolicy {
                    policy_arn: arn.clone(),
                })
                .await?;
            out.print(&p);
            let version = match &p {
                stsd_proto::iam::IamOutput::Policy { policy, .. } => {
                    policy.default_version_id.clone()
                }
                _ => "v1".to_owned(),
            };
            vec![IamAction::GetPolicyVersion {
                policy_arn: arn.clone(),
                version_id: version,
            }]
        }
        PolicyCmd::List { scope } => vec![IamAction::ListPolicies {
            scope: match scope.as_str() {
                "AWS" => PolicyScope::Aws,
                "Local" => PolicyScope::Local,
                _ => PolicyScope::All,
            },
            only_attached: false,
            path_prefix: "/".into(),
            usage_filter: None,
            page: page(),
        }],
        PolicyCmd::Delete { arn } => vec![IamAction::DeletePolicy {
            policy_arn: arn.clone(),
        }],
        PolicyCmd::NewVersion {
            arn,
            document,
            set_default,
        } => vec![IamAction::CreatePolicyVersion {
            policy_arn: arn.clone(),
            policy_document: read_doc(document)?,
            set_as_default: *set_default,
        }],
        PolicyCmd::Attach { arn, user, group } => vec![match (user, group) {
            (Some(u), _) => IamAction::AttachUserPolicy {
                user_name: u.clone(),
                policy_arn: arn.clone(),
            },
            (None, g) => IamAction::AttachGroupPolicy {
                group_name: g.clone().unwrap_or_default(),
                policy_arn: arn.clone(),
            },
        }],
        PolicyCmd::Detach { arn, user, group } => vec![match (user, group) {
            (Some(u), _) => IamAction::DetachUserPolicy {
                user_name: u.clone(),
                policy_arn: arn.clone(),
            },
            (None, g) => IamAction::DetachGroupPolicy {
                group_name: g.clone().unwrap_or_default(),
                policy_arn: arn.clone(),
            },
        }],
        PolicyCmd::Put {
            policy_name,
            document,
            user,
            group,
        } => {
            let policy_document = read_doc(document)?;
            vec![match (user, group) {
                (Some(u), _) => IamAction::PutUserPolicy {
                    user_name: u.clone(),
                    policy_name: policy_name.clone(),
                    policy_document,
                },
                (None, g) => IamAction::PutGroupPolicy {
                    group_name: g.clone().unwrap_or_default(),
                    policy_name: policy_name.clone(),
                    policy_document,
                },
            }]
        }
        PolicyCmd::DeleteInline {
            policy_name,
            user,
            group,
        } => vec![match (user, group) {
            (Some(u), _) => IamAction::DeleteUserPolicy {
                user_name: u.clone(),
                policy_name: policy_name.clone(),
            },
            (None, g) => IamAction::DeleteGroupPolicy {
                group_name: g.clone().unwrap_or_default(),
                policy_name: policy_name.clone(),
            },
        }],
        PolicyCmd::Show { user } => vec![
            IamAction::ListUserPolicies {
                user_name: user.clone(),
                page: page(),
            },
            IamAction::ListAttachedUserPolicies {
                user_name: user.clone(),
                path_prefix: None,
                page: page(),
            },
            IamAction::ListGroupsForUser {
                user_name: user.clone(),
                page: page(),
            },
        ],
        PolicyCmd::Simulate {
            user,
            actions,
            resources,
            mfa,
        } => {
            let u = backend
                .execute(&IamAction::GetUser {
                    user_name: Some(user.clone()),
                })
                .await?;
            let arn = match u {
                stsd_proto::iam::IamOutput::User { user, .. } => user.arn,
                _ => anyhow::bail!("unexpected answer to GetUser"),
            };
            let mut context_entries = vec![ContextEntry {
                key: "aws:username".into(),
                values: vec![user.clone()],
                kind: ContextKeyType::String,
            }];
            if let Some(m) = mfa {
                context_entries.push(ContextEntry {
                    key: "aws:MultiFactorAuthPresent".into(),
                    values: vec![m.to_string()],
                    kind: ContextKeyType::Boolean,
                });
            }
            vec![IamAction::SimulatePrincipalPolicy {
                policy_source_arn: arn,
                policy_input_list: Vec::new(),
                action_names: actions.clone(),
                resource_arns: resources.clone(),
                context_entries,
                caller_arn: None,
                page: page(),
            }]
        }
    };
    for a in actions {
        let o = backend.execute(&a).await?;
        out.print(&o);
    }
    Ok(())
}

pub(super) async fn group(backend: &Backend<'_>, out: &Out, cmd: &GroupCmd) -> anyhow::Result<()> {
    let action = match cmd {
        GroupCmd::Create { name, path } => IamAction::CreateGroup {
            group_name: name.clone(),
            path: path.clone(),
        },
        GroupCmd::Get { name } => IamAction::GetGroup {
            group_name: name.clone(),
            page: page(),
        },
        GroupCmd::List => IamAction::ListGroups {
            path_prefix: "/".into(),
            page: page(),
        },
        GroupCmd::Delete { name } => IamAction::DeleteGroup {
            group_name: name.clone(),
        },
        GroupCmd::AddUser { group, user } => IamAction::AddUserToGroup {
            group_name: group.clone(),
            user_name: user.clone(),
        },
        GroupCmd::RemoveUser { group, user } => IamAction::RemoveUserFromGroup {
            group_name: group.clone(),
            user_name: user.clone(),
        },
    };
    let o = backend.execute(&action).await?;
    out.print(&o);
    Ok(())
}

/// `stsd admin role ...`
#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Create a role; the trust policy (who may assume it) is read from a JSON file.
    Create {
        name: String,
        #[arg(long)]
        trust_policy: std::path::PathBuf,
        #[arg(long, default_value = "/")]
        path: String,
        #[arg(long)]
        description: Option<String>,
        /// Longest session in seconds (3600..43200).
        #[arg(long)]
        max_session_duration: Option<i64>,
    },
    /// Show a role (with its trust policy).
    Get { name: String },
    /// List roles.
    List {
        #[arg(long, default_value = "/")]
        path_prefix: String,
    },
    /// Change the description or the longest session.
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        max_session_duration: Option<i64>,
    },
    /// Replace the trust policy.
    Trust {
        name: String,
        #[arg(long)]
        trust_policy: std::path::PathBuf,
    },
    /// Delete a role (delete its inline policies and detach its managed policies first).
    Delete { name: String },
    /// Put (create or replace) an inline policy of the role.
    Put {
        name: String,
        policy_name: String,
        #[arg(long)]
        document: std::path::PathBuf,
    },
    /// Delete an inline policy of the role.
    DeleteInline { name: String, policy_name: String },
    /// Attach a managed policy.
    Attach { name: String, arn: String },
    /// Detach a managed policy.
    Detach { name: String, arn: String },
    /// Show the role's inline and attached policies.
    Show { name: String },
}

pub(super) async fn role(backend: &Backend<'_>, out: &Out, cmd: &RoleCmd) -> anyhow::Result<()> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let actions = match cmd {
        RoleCmd::Create {
            name,
            trust_policy,
            path,
            description,
            max_session_duration,
        } => vec![IamAction::CreateRole {
            path: path.clone(),
            role_name: name.clone(),
            assume_role_policy_document: read(trust_policy)?,
            description: description.clone(),
            max_session_duration: *max_session_duration,
        }],
        RoleCmd::Get { name } => vec![IamAction::GetRole {
            role_name: name.clone(),
        }],
        RoleCmd::List { path_prefix } => vec![IamAction::ListRoles {
            path_prefix: path_prefix.clone(),
            page: page(),
        }],
        RoleCmd::Update {
            name,
            description,
            max_session_duration,
        } => vec![IamAction::UpdateRole {
            role_name: name.clone(),
            description: description.clone(),
            max_session_duration: *max_session_duration,
        }],
        RoleCmd::Trust { name, trust_policy } => vec![IamAction::UpdateAssumeRolePolicy {
            role_name: name.clone(),
            policy_document: read(trust_policy)?,
        }],
        RoleCmd::Delete { name } => vec![IamAction::DeleteRole {
            role_name: name.clone(),
        }],
        RoleCmd::Put {
            name,
            policy_name,
            document,
        } => vec![IamAction::PutRolePolicy {
            role_name: name.clone(),
            policy_name: policy_name.clone(),
            policy_document: read(document)?,
        }],
        RoleCmd::DeleteInline { name, policy_name } => vec![IamAction::DeleteRolePolicy {
            role_name: name.clone(),
            policy_name: policy_name.clone(),
        }],
        RoleCmd::Attach { name, arn } => vec![IamAction::AttachRolePolicy {
            role_name: name.clone(),
            policy_arn: arn.clone(),
        }],
        RoleCmd::Detach { name, arn } => vec![IamAction::DetachRolePolicy {
            role_name: name.clone(),
            policy_arn: arn.clone(),
        }],
        RoleCmd::Show { name } => vec![
            IamAction::ListRolePolicies {
                role_name: name.clone(),
                page: page(),
            },
            IamAction::ListAttachedRolePolicies {
                role_name: name.clone(),
                path_prefix: None,
                page: page(),
            },
        ],
    };
    for a in actions {
        let o = backend.execute(&a).await?;
        out.print(&o);
    }
    Ok(())
}
