//! Console passwords: login profiles (`Create/Get/Update/DeleteLoginProfile`), `ChangePassword` and the
//! account password policy (`Get/Update/DeleteAccountPasswordPolicy`).
//!
//! Login-profile actions are authorized against the target user's ARN (shown as `user NAME`) before
//! its existence is revealed, like every user action; the account policy actions against `*`.
//! `ChangePassword` is the caller's own: an IAM user only (`InvalidUserType` otherwise), authorized on
//! its own ARN, and also allowed, when no policy denies it explicitly, by the account policy's
//! `AllowUsersToChangePassword` (which grants `iam:GetAccountPasswordPolicy` too), as in IAM.
//! Passwords are hashed ([`crate::password`]) before they reach the store.

use super::{Iam, Target, store_err};
use crate::auth::user_arn;
use crate::authz::{self, Check};
use crate::password;
use stsd_core::timefmt::iso8601;
use stsd_policy::{Decision, Layer};
use stsd_proto::ApiError;
use stsd_proto::iam::{IamAction, IamOutput, LoginProfileView, PasswordPolicyView};
use stsd_store::StoreError;
use stsd_store::iam::ROOT_OWNER;
use stsd_store::passwords::{LoginProfile, MAX_HISTORY, PasswordPolicy, ProfileChange};

fn no_such_profile(name: &str) -> ApiError {
    ApiError::no_such_entity(format!("Login Profile for User {name} cannot be found."))
}

fn busy(name: &str) -> ApiError {
    ApiError::entity_temporarily_unmodifiable(format!(
        "Login Profile for User {name} cannot be modified while another change to it is in progress."
    ))
}

fn to_view(p: &PasswordPolicy) -> PasswordPolicyView {
    PasswordPolicyView {
        minimum_password_length: p.minimum_password_length,
        require_symbols: p.require_symbols,
        require_numbers: p.require_numbers,
        require_uppercase_characters: p.require_uppercase,
        require_lowercase_characters: p.require_lowercase,
        allow_users_to_change_password: p.allow_users_to_change_password,
        max_password_age: p.max_password_age,
        password_reuse_prevention: p.password_reuse_prevention,
        hard_expiry: p.hard_expiry,
    }
}

fn from_view(p: &PasswordPolicyView) -> PasswordPolicy {
    PasswordPolicy {
        minimum_password_length: p.minimum_password_length,
        require_symbols: p.require_symbols,
        require_numbers: p.require_numbers,
        require_uppercase: p.require_uppercase_characters,
        require_lowercase: p.require_lowercase_characters,
        allow_users_to_change_password: p.allow_users_to_change_password,
        max_password_age: p.max_password_age,
        password_reuse_prevention: p.password_reuse_prevention,
        hard_expiry: p.hard_expiry,
    }
}

/// The name a login profile is shown under (`root` for the account root's).
fn shown_name(target: &Target) -> String {
    target.user_name().unwrap_or_else(|| "root".to_owned())
}

impl Iam<'_> {
    async fn account_password_policy(&self) -> Result<Option<PasswordPolicyView>, ApiError> {
        Ok(self
            .state
            .store
            .password_policy()
            .await
            .map_err(|e| store_err(&e))?
            .as_ref()
            .map(to_view))
    }

    /// A new password must meet the account policy and, with `PasswordReusePrevention`, differ from
    /// the current and the earlier passwords it covers. Returns its hash and how much history to keep.
    async fn new_password_hash(
        &self,
        new: &str,
        current: Option<&LoginProfile>,
    ) -> Result<(String, usize), ApiError> {
        let policy = self.account_password_policy().await?;
        password::check_rules(new, policy.as_ref())?;
        let reuse = policy.map_or(0, |p| p.password_reuse_prevention);
        let keep = usize::try_from(reuse).unwrap_or(0).min(MAX_HISTORY);
        if let Some(profile) = current.filter(|_| keep > 0) {
            let mut recent = vec![profile.password_hash.clone()];
            recent.extend(profile.history.iter().take(keep - 1).cloned());
            if password::matches_any(new, recent).await? {
                return Err(ApiError::password_policy_violation(
                    password::reuse_message(reuse),
                ));
            }
        }
        Ok((password::hash(new).await?, keep))
    }

    async fn profile_of(&self, target: &Target) -> Result<Option<LoginProfile>, ApiError> {
        self.state
            .store
            .login_profile(target.owner())
            .await
            .map_err(|e| store_err(&e))
    }

    /// The user a login-profile action names; the caller itself when it names none (the root must
    /// name a user: its own password is set with `stsd admin root password`).
    async fn profile_target(
        &self,
        action: &IamAction,
        user_name: Option<&str>,
    ) -> Result<Target, ApiError> {
        match self.target(action, user_name).await? {
            Target::Root => Err(ApiError::validation(
                "Must specify userName when calling with non-User credentials",
            )),
            t => Ok(t),
        }
    }

    /// Whether the caller, an IAM user, may perform `action` on `resource` either by its policies or by
    /// the account policy's `AllowUsersToChangePassword` (which yields to an explicit deny and to
    /// session policies).
    async fn self_service_check(
        &self,
        action: &str,
        resource: &str,
        shown: &str,
    ) -> Result<(), ApiError> {
        let check = Check {
            action,
            resource,
            shown: Some(shown),
        };
        let who = &self.actor.who;
        let Some(d) = authz::decision_for(self.state, who, &self.actor.ctx, check).await? else {
            return Ok(());
        };
        let granted_by_account = matches!(d.decision, Decision::ImplicitDeny)
            && d.layer == Layer::Identity
            && who.user.is_some()
            && self
                .account_password_policy()
                .await?
                .is_some_and(|p| p.allow_users_to_change_password);
        if d.decision.is_allowed() || granted_by_account {
            return Ok(());
        }
        Err(ApiError::access_denied(stsd_policy::access_denied_message(
            &who.arn,
            action,
            check.shown,
            &d,
        )))
    }

    /// Sets the account root's console password (`stsd admin root password`): creates its login profile
    /// or replaces its password. The account password policy does not apply to the root (as in IAM).
    ///
    /// # Errors
    /// Store errors.
    pub async fn set_root_password(&self, new: &str) -> Result<(), ApiError> {
        if self.actor.who.user.is_some() || self.actor.who.role.is_some() {
            return Err(ApiError::access_denied(
                "Only the account root may set the root's password.",
            ));
        }
        if new.is_empty() || new.chars().count() > 128 {
            return Err(ApiError::validation(
                "The root password must be 1 to 128 characters long.",
            ));
        }
        let now = self.state.clock.now();
        let hash = password::hash(new).await?;
        let store = &self.state.store;
        match store
            .create_login_profile(ROOT_OWNER, &hash, false, now)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::AlreadyExists) => store
                .update_login_profile(
                    ROOT_OWNER,
                    ProfileChange {
                        new_hash: Some(&hash),
                        expected_hash: None,
                        reset_required: Some(false),
                        keep_history: 0,
                        now,
                    },
                )
                .await
                .map_err(|e| match e {
                    StoreError::NotFound | StoreError::Conflict(_) => busy("root"),
                    e => store_err(&e),
                }),
            Err(e) => Err(store_err(&e)),
        }?;
        tracing::info!("root console password set");
        Ok(())
    }

    /// Runs a password action.
    ///
    /// # Errors
    /// The action's AWS error.
    pub(super) async fn execute_passwords(
        &self,
        action: &IamAction,
    ) -> Result<IamOutput, ApiError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        match action {
            IamAction::CreateLoginProfile {
                user_name,
                password,
                password_reset_required,
            } => {
                let target = self.profile_target(action, user_name.as_deref()).await?;
                self.guard_credentials(action, &target).await?;
                let name = shown_name(&target);
                let exists = || {
                    ApiError::entity_already_exists(format!(
                        "Login Profile for user {name} already exists."
                    ))
                };
                if self.profile_of(&target).await?.is_some() {
                    return Err(exists());
                }
                let (hash, _) = self.new_password_hash(password, None).await?;
                store
                    .create_login_profile(target.owner(), &hash, *password_reset_required, now)
                    .await
                    .map_err(|e| match e {
                        StoreError::AlreadyExists => exists(),
                        StoreError::NotFound => ApiError::no_such_entity(format!(
                            "The user with name {name} cannot be found."
                        )),
                        e => store_err(&e),
                    })?;
                tracing::info!(user = %name, "login profile created");
                Ok(IamOutput::LoginProfile {
                    action: "CreateLoginProfile",
                    profile: LoginProfileView {
                        user_name: name,
                        create_date: iso8601(now),
                        password_reset_required: *password_reset_required,
                    },
                })
            }
            IamAction::GetLoginProfile { user_name } => {
                let target = self.profile_target(action, user_name.as_deref()).await?;
                let name = shown_name(&target);
                let profile = self
                    .profile_of(&target)
                    .await?
                    .ok_or_else(|| no_such_profile(&name))?;
                Ok(IamOutput::LoginProfile {
                    action: "GetLoginProfile",
                    profile: LoginProfileView {
                        user_name: name,
                        create_date: iso8601(profile.created_at),
                        password_reset_required: profile.password_reset_required,
                    },
                })
            }
            IamAction::UpdateLoginProfile {
                user_name,
                password,
                password_reset_required,
            } => {
                let target = self.profile_target(action, Some(user_name)).await?;
                self.guard_credentials(action, &target).await?;
                let name = shown_name(&target);
                let profile = self
                    .profile_of(&target)
                    .await?
                    .ok_or_else(|| no_such_profile(&name))?;
                let new = match password {
                    Some(p) => Some(self.new_password_hash(p, Some(&profile)).await?),
                    None => None,
                };
                store
                    .update_login_profile(
                        target.owner(),
                        ProfileChange {
                            new_hash: new.as_ref().map(|(h, _)| h.as_str()),
                            expected_hash: Some(&profile.password_hash),
                            reset_required: *password_reset_required,
                            keep_history: new.as_ref().map_or(0, |(_, k)| *k),
                            now,
                        },
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => no_such_profile(&name),
                        StoreError::Conflict(_) => busy(&name),
                        e => store_err(&e),
                    })?;
                tracing::info!(user = %name, password_changed = new.is_some(), "login profile updated");
                Ok(IamOutput::Empty {
                    action: "UpdateLoginProfile",
                })
            }
            IamAction::DeleteLoginProfile { user_name } => {
                let target = self.profile_target(action, user_name.as_deref()).await?;
                let name = shown_name(&target);
                if !store
                    .delete_login_profile(target.owner())
                    .await
                    .map_err(|e| store_err(&e))?
                {
                    return Err(no_such_profile(&name));
                }
                tracing::info!(user = %name, "login profile deleted");
                Ok(IamOutput::Empty {
                    action: "DeleteLoginProfile",
                })
            }
            IamAction::ChangePassword {
                old_password,
                new_password,
            } => {
                let Some((user_id, name, path)) = self.actor.who.user.clone() else {
                    return Err(ApiError::invalid_user_type(
                        "Only IAM users can change their own password with ChangePassword.",
                    ));
                };
                let arn = user_arn(&self.state.account, &path, &name);
                self.self_service_check("iam:ChangePassword", &arn, &format!("user {name}"))
                    .await?;
                let profile = store
                    .login_profile(&user_id)
                    .await
                    .map_err(|e| store_err(&e))?;
                let Some(profile) = profile else {
                    password::verify_nothing(old_password).await?;
                    return Err(no_such_profile(&name));
                };
                if !password::verify(old_password, &profile.password_hash).await? {
                    tracing::info!(user = %name, "ChangePassword with a wrong old password");
                    // [I]: IAM does not document this case.
                    return Err(ApiError::access_denied("The old password is incorrect."));
                }
                let (hash, keep) = self.new_password_hash(new_password, Some(&profile)).await?;
                store
                    .update_login_profile(
                        &user_id,
                        ProfileChange {
                            new_hash: Some(&hash),
                            expected_hash: Some(&profile.password_hash),
                            reset_required: Some(false),
                            keep_history: keep,
                            now,
                        },
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => no_such_profile(&name),
                        StoreError::Conflict(_) => busy(&name),
                        e => store_err(&e),
                    })?;
                tracing::info!(user = %name, "password changed");
                Ok(IamOutput::Empty {
                    action: "ChangePassword",
                })
            }
            IamAction::GetAccountPasswordPolicy => {
                self.self_service_check("iam:GetAccountPasswordPolicy", "*", "*")
                    .await?;
                let policy = self.account_password_policy().await?.ok_or_else(|| {
                    ApiError::no_such_entity(format!(
                        "The Password Policy with domain name {} cannot be found.",
                        self.state.account
                    ))
                })?;
                Ok(IamOutput::PasswordPolicy { policy })
            }
            IamAction::UpdateAccountPasswordPolicy { policy } => {
                self.check(action, "*", "*").await?;
                store
                    .put_password_policy(&from_view(policy))
                    .await
                    .map_err(|e| store_err(&e))?;
                tracing::info!("account password policy updated");
                Ok(IamOutput::Empty {
                    action: "UpdateAccountPasswordPolicy",
                })
            }
            IamAction::DeleteAccountPasswordPolicy => {
                self.check(action, "*", "*").await?;
                if !store
                    .delete_password_policy()
                    .await
                    .map_err(|e| store_err(&e))?
                {
                    return Err(ApiError::no_such_entity(format!(
                        "The Password Policy with domain name {} cannot be found.",
                        self.state.account
                    )));
                }
                tracing::info!("account password policy deleted");
                Ok(IamOutput::Empty {
                    action: "DeleteAccountPasswordPolicy",
                })
            }
            other => {
                tracing::error!(action = other.name(), "IAM action without an executor");
                Err(ApiError::internal())
            }
        }
    }
}
