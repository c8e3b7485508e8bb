//! Role actions: `CreateRole`, `GetRole`, `ListRoles`, `UpdateRole`, `UpdateAssumeRolePolicy`,
//! `DeleteRole`, role inline policies and attachments. Every action is authorized against the role's
//! ARN (`arn:aws:iam::ACCT:role/PATH/NAME`, shown as the ARN in a denial) before the role's existence
//! is revealed; `ListRoles` against `*`.

use super::{Iam, paged, store_err};
use stsd_core::ids;
use stsd_core::timefmt::iso8601;
use stsd_policy::{ParseOptions, Policy, PolicyKind, policy_size};
use stsd_proto::ApiError;
use stsd_proto::iam::{IamAction, IamOutput, RoleView};
use stsd_store::StoreError;
use stsd_store::roles::Role;

/// Aggregate size of a role's inline policies (IAM's quota).
pub const ROLE_INLINE_LIMIT: i64 = 10_240;
/// Size of a trust policy (IAM's default `ACLSizePerRole`).
pub const TRUST_POLICY_LIMIT: usize = 2048;
/// Default `MaxSessionDuration`.
pub const DEFAULT_MAX_SESSION_DURATION: i64 = 3600;

/// The ARN of a role: the path is included.
pub fn role_arn(account: &str, path: &str, name: &str) -> String {
    ["arn:aws:iam::", account, ":role", path, name].concat()
}

/// Parses and validates a trust policy as IAM does (`MalformedPolicyDocument`, `LimitExceeded`).
///
/// # Errors
/// The IAM error.
pub fn validate_trust(document: &str) -> Result<Policy, ApiError> {
    let p = Policy::parse_with(
        document,
        PolicyKind::Trust,
        ParseOptions {
            allow_legacy_version: true,
        },
    )
    .map_err(|e| ApiError::new(400, "MalformedPolicyDocument", e.message))?;
    if policy_size(document) > TRUST_POLICY_LIMIT {
        return Err(ApiError::limit_exceeded(format!(
            "Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_LIMIT}"
        )));
    }
    Ok(p)
}

pub(super) fn no_such_role(name: &str) -> ApiError {
    ApiError::no_such_entity(format!("The role with name {name} cannot be found."))
}

impl Iam<'_> {
    /// IAM refuses a trust policy naming a user or role of this account that does not exist
    /// (`Invalid principal in policy`); principals of other accounts cannot be checked here.
    async fn check_principals(&self, policy: &Policy) -> Result<(), ApiError> {
        let prefix = format!("arn:aws:iam::{}:", self.state.account);
        for arn in policy.aws_principals() {
            let Some(resource) = arn.strip_prefix(&prefix) else {
                continue;
            };
            let (kind, full) = match resource.split_once('/') {
                Some((k @ ("user" | "role"), _)) => (k, &resource[k.len()..]),
                _ => continue,
            };
            let cut = full.rfind('/').unwrap_or(0);
            let (path, name) = (&full[..=cut], &full[cut + 1..]);
            let exists = if kind == "user" {
                self.state
                    .store
                    .user_by_name(name)
                    .await
                    .map_err(|e| store_err(&e))?
                    .is_some_and(|u| u.path == path && u.name == name)
            } else {
                self.state
                    .store
                    .role_by_name(name)
                    .await
                    .map_err(|e| store_err(&e))?
                    .is_some_and(|r| r.path == path && r.name == name)
            };
            if !exists {
                return Err(ApiError::new(
                    400,
                    "MalformedPolicyDocument",
                    stsd_policy::invalid_principal_message(&arn),
                ));
            }
        }
        Ok(())
    }

    fn role_view(&self, r: &Role) -> RoleView {
        RoleView {
            path: r.path.clone(),
            role_name: r.name.clone(),
            role_id: r.role_id.clone(),
            arn: role_arn(&self.state.account, &r.path, &r.name),
            create_date: iso8601(r.created_at),
            assume_role_policy_document: r.trust_policy.clone(),
            description: r.description.clone(),
            max_session_duration: r.max_session_duration,
        }
    }

    /// Authorizes an action on a role and loads it (authorization before existence).
    pub(super) async fn role_target(
        &self,
        action: &IamAction,
        name: &str,
    ) -> Result<Role, ApiError> {
        let role = self
            .state
            .store
            .role_by_name(name)
            .await
            .map_err(|e| store_err(&e))?;
        let path = role.as_ref().map_or("/", |r| r.path.as_str());
        let arn = role_arn(&self.state.account, path, name);
        self.check(action, &arn, &arn).await?;
        role.ok_or_else(|| no_such_role(name))
    }

    /// Runs a role action.
    ///
    /// # Errors
    /// The action's AWS error.
    pub(super) async fn execute_roles(&self, action: &IamAction) -> Result<IamOutput, ApiError> {
        let store = &self.state.store;
        let name = action.name();
        let empty = Ok(IamOutput::Empty { action: name });
        match action {
            IamAction::CreateRole {
                path,
                role_name,
                assume_role_policy_document,
                description,
                max_session_duration,
            } => {
                let arn = role_arn(&self.state.account, path, role_name);
                self.check(action, &arn, &arn).await?;
                let trust = validate_trust(assume_role_policy_document)?;
                self.check_principals(&trust).await?;
                let r = Role {
                    role_id: ids::new_unique_id(
                        stsd_store::roles::ROLE_ID_PREFIX,
                        self.state.account_id,
                    ),
                    name: role_name.clone(),
                    path: path.clone(),
                    trust_policy: assume_role_policy_document.clone(),
                    description: description.clone(),
                    max_session_duration: max_session_duration
                        .unwrap_or(DEFAULT_MAX_SESSION_DURATION),
                    created_at: self.state.clock.now(),
                    sessions_not_before: 0,
                };
                store.create_role(&r).await.map_err(|e| match e {
                    StoreError::AlreadyExists => ApiError::entity_already_exists(format!(
                        "Role with name {role_name} already exists."
                    )),
                    e => store_err(&e),
                })?;
                tracing::info!(role = %arn, "role created");
                Ok(IamOutput::Role {
                    action: name,
                    role: self.role_view(&r),
                })
            }
            IamAction::GetRole { role_name } => {
                let r = self.role_target(action, role_name).await?;
                Ok(IamOutput::Role {
                    action: name,
                    role: self.role_view(&r),
                })
            }
            IamAction::ListRoles { path_prefix, page } => {
                self.check(action, "*", "*").await?;
                let roles = store
                    .list_roles(path_prefix, page.marker.as_deref(), page.max_items + 1)
                    .await
                    .map_err(|e| store_err(&e))?;
                let views: Vec<RoleView> = roles.iter().map(|r| self.role_view(r)).collect();
                let (roles, next_marker) = paged(views, page, |r| r.role_name.clone());
                Ok(IamOutput::Roles { roles, next_marker })
            }
            IamAction::UpdateRole {
                role_name,
                description,
                max_session_duration,
            } => {
                let r = self.role_target(action, role_name).await?;
                store
                    .update_role(&r.role_id, description.as_deref(), *max_session_duration)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => no_such_role(role_name),
                        e => store_err(&e),
                    })?;
                // AssumeRole's cached role (its MaxSessionDuration).
                self.state.authz.invalidate();
                empty
            }
            IamAction::UpdateAssumeRolePolicy {
                role_name,
                policy_document,
            } => {
                let r = self.role_target(action, role_name).await?;
                let trust = validate_trust(policy_document)?;
                self.check_principals(&trust).await?;
                store
                    .update_trust_policy(&r.role_id, policy_document)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => no_such_role(role_name),
                        e => store_err(&e),
                    })?;
                // AssumeRole's cached role and trust policy.
                self.state.authz.invalidate();
                empty
            }
            IamAction::DeleteRole { role_name } => {
                let r = self.role_target(action, role_name).await?;
                store.delete_role(&r.role_id).await.map_err(|e| match e {
                    StoreError::NotFound => no_such_role(role_name),
                    StoreError::Conflict("policies") => ApiError::delete_conflict(
                        "Cannot delete entity, must delete policies first.",
                    ),
                    StoreError::Conflict(_) => ApiError::delete_conflict(
                        "Cannot delete entity, must detach all policies first.",
                    ),
                    e => store_err(&e),
                })?;
                self.state.forget_not_before(&r.role_id);
                self.state.authz.invalidate();
                tracing::info!(role = %r.name, "role deleted");
                empty
            }
            other => self.execute_passwords(other).await,
        }
    }
}
