//! The IAM actions and who may call them.
//!
//! Every action is authorized by the policy engine ([`crate::authz`]) against the resource ARN AWS uses
//! for it, before the target's existence is revealed. The account root may do everything. Session
//! credentials obtained without MFA are refused with `InvalidClientTokenId`, as AWS does. On top of the
//! policies, stsd is stricter than AWS in one place (`Settings::strict_credential_changes`): once a user
//! has an enabled MFA device, changing its devices and creating or reactivating its access keys needs
//! an MFA session, or another principal allowed by policy (an administrator), or the root.

mod passwords;
mod policies;
pub mod roles;
mod simulate;

use crate::auth::{Caller, user_arn};
use crate::authz::context::{self, Transport, Who};
use crate::authz::{self, Check};
use crate::errors;
use crate::state::AppState;
use std::sync::Arc;
use stsd_core::ids;
use stsd_core::timefmt::iso8601;
use stsd_core::totp;
use stsd_policy::Context;
use stsd_proto::ApiError;
use stsd_proto::iam::{
    AccessKeyView, Assignment, IamAction, IamOutput, MfaDeviceView, Page, UserView,
};
use stsd_store::iam::{DeviceKind, MAX_DEVICES_PER_USER, ROOT_OWNER};
use stsd_store::{AccessKey, KeyStatus, Owner, StoreError, User};

/// Steps searched around "now" for the two consecutive codes of EnableMFADevice (±5 minutes).
pub const ENABLE_WINDOW_STEPS: i64 = 10;
/// Times CreateAccessKey draws a new key id again when the one drawn is taken.
const KEY_ID_DRAWS: u32 = 5;
/// Unassigned virtual devices one IAM user may have created and not yet enabled or deleted.
pub const MAX_UNASSIGNED_PER_USER: i64 = 4;
/// Steps searched for ResyncMFADevice (±1 day): resync exists for devices whose clock drifted.
pub const RESYNC_WINDOW_STEPS: i64 = 2880;

/// The principal performing an IAM action, with the request context its policies are evaluated in.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who.
    pub who: Who,
    /// The request context (global condition keys).
    pub ctx: Context,
    /// Whether the caller authenticated with an MFA session (or is a local administrator).
    pub mfa: bool,
    /// The long-term key the request was signed with, whose cached owner row (read with the key, at
    /// most [`crate::state::KEY_CACHE_TTL`] ago) stands for the caller's own user in [`Iam::target`].
    pub key: Option<Arc<AccessKey>>,
}

impl Actor {
    /// The account root acting locally (`stsd admin` on the data directory).
    pub fn root(account: &str) -> Actor {
        let who = Who::root(account);
        Actor {
            ctx: context::build(
                None,
                &who,
                account,
                stsd_core::timefmt::now_unix(),
                None,
                None,
                "us-east-1",
            ),
            who,
            mfa: true,
            key: None,
        }
    }

    fn user_id(&self) -> Option<&str> {
        self.who.user.as_ref().map(|(id, _, _)| id.as_str())
    }

    fn user_name(&self) -> Option<&str> {
        self.who.user.as_ref().map(|(_, n, _)| n.as_str())
    }

    /// The user row of the key the request was signed with, when its owner is a user.
    fn key_user(&self) -> Option<&User> {
        match &self.key.as_deref()?.owner {
            Owner::User(u) => Some(u),
            Owner::Root => None,
        }
    }
}

/// Whom an action targets.
enum Target {
    Root,
    User(User),
}

impl Target {
    fn owner(&self) -> &str {
        match self {
            Target::Root => ROOT_OWNER,
            Target::User(u) => &u.user_id,
        }
    }
    fn user_id(&self) -> Option<&str> {
        match self {
            Target::Root => None,
            Target::User(u) => Some(&u.user_id),
        }
    }
    fn user_name(&self) -> Option<String> {
        match self {
            Target::Root => None,
            Target::User(u) => Some(u.name.clone()),
        }
    }
}

/// The actor for an API caller, or `InvalidClientTokenId` for sessions without MFA.
///
/// # Errors
/// `InvalidClientTokenId` for session credentials obtained without MFA.
pub fn actor(
    state: &AppState,
    caller: &Caller,
    transport: &Transport<'_>,
) -> Result<Actor, ApiError> {
    // GetSessionToken credentials without MFA may not call IAM (AWS); role sessions may.
    if let Caller::Session(c) = caller
        && c.mfa.is_none()
        && !caller.is_role_session()
    {
        return Err(ApiError::invalid_session_token());
    }
    let who = Who::of(caller, &state.account);
    let client = context::client(transport, &state.authz.settings.trusted_proxies);
    let user_agent = transport
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    Ok(Actor {
        ctx: context::build(
            Some(caller),
            &who,
            &state.account,
            state.clock.now(),
            Some(client),
            user_agent,
            "us-east-1",
        ),
        who,
        mfa: caller.is_session(),
        key: match caller {
            Caller::LongTerm(k) => Some(Arc::clone(k)),
            Caller::Session(_) => None,
        },
    })
}

fn store_err(e: &StoreError) -> ApiError {
    errors::from_store(e)
}

fn no_such_user(name: &str) -> ApiError {
    ApiError::no_such_entity(format!("The user with name {name} cannot be found."))
}

fn no_such_key(id: &str) -> ApiError {
    ApiError::no_such_entity(format!("The Access Key with id {id} cannot be found."))
}

fn no_such_device(serial: &str) -> ApiError {
    ApiError::no_such_entity(format!(
        "MFA Device with serial number {serial} does not exist."
    ))
}

fn seed_bytes(seed: &stsd_core::secret::Secret) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiError> {
    data_encoding::BASE32_NOPAD
        .decode(seed.expose().trim_end_matches('=').as_bytes())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| {
            tracing::error!("stored MFA seed is not base32");
            ApiError::internal()
        })
}

/// Executes IAM actions for one actor.
pub struct Iam<'a> {
    state: &'a AppState,
    actor: Actor,
}

/// `iam:<Action>`.
fn iam_action(action: &IamAction) -> String {
    format!("iam:{}", action.name())
}

impl<'a> Iam<'a> {
    /// An executor acting as `actor`.
    pub fn new(state: &'a AppState, actor: Actor) -> Self {
        Iam { state, actor }
    }

    /// Authorizes `action` on `resource` (shown in a denial as `shown`).
    async fn check(&self, action: &IamAction, resource: &str, shown: &str) -> Result<(), ApiError> {
        let name = iam_action(action);
        authz::authorize(
            self.state,
            &self.actor.who,
            &self.actor.ctx,
            Check {
                action: &name,
                resource,
                shown: Some(shown),
            },
        )
        .await
    }

    /// stsd's per-user "MFA required" flag (`stsd admin mfa require USER on|off`: access keys of the
    /// user then get only MFA sessions from `GetSessionToken`). IAM has no such setting; changing it is
    /// authorized as `iam:UpdateUser` on the user, reading it as `iam:GetUser`. `None` reads the flag,
    /// `Some(on)` sets it; answers the flag's value.
    ///
    /// # Errors
    /// `AccessDenied`, `NoSuchEntity`, store errors.
    pub async fn user_mfa_required(
        &self,
        user_name: &str,
        set: Option<bool>,
    ) -> Result<bool, ApiError> {
        let user = self.user_named(user_name).await?;
        let path = user.as_ref().map_or("/", |u| u.path.as_str());
        let resource = user_arn(&self.state.account, path, user_name);
        let action = if set.is_some() {
            "iam:UpdateUser"
        } else {
            "iam:GetUser"
        };
        authz::authorize(
            self.state,
            &self.actor.who,
            &self.actor.ctx,
            Check {
                action,
                resource: &resource,
                shown: Some(&format!("user {user_name}")),
            },
        )
        .await?;
        let Some(u) = user else {
            return Err(no_such_user(user_name));
        };
        let store = &self.state.store;
        match set {
            Some(on) => {
                if !store
                    .set_user_mfa_required(&u.user_id, on)
                    .await
                    .map_err(|e| store_err(&e))?
                {
                    return Err(no_such_user(user_name));
                }
                Ok(on)
            }
            None => store
                .user_mfa_required(&u.user_id)
                .await
                .map_err(|e| store_err(&e))?
                .ok_or_else(|| no_such_user(user_name)),
        }
    }

    fn account_arn(&self, kind_path_name: &str) -> String {
        format!("arn:aws:iam::{}:{kind_path_name}", self.state.account)
    }

    fn view(&self, u: &User) -> UserView {
        UserView {
            path: u.path.clone(),
            user_name: u.name.clone(),
            user_id: u.user_id.clone(),
            arn: user_arn(&self.state.account, &u.path, &u.name),
            create_date: iso8601(u.created_at),
        }
    }

    fn root_view(&self) -> UserView {
        UserView {
            path: "/".into(),
            user_name: "root".into(),
            user_id: self.state.account.clone(),
            arn: crate::auth::root_arn(&self.state.account),
            create_date: iso8601(0),
        }
    }

    async fn user_named(&self, name: &str) -> Result<Option<User>, ApiError> {
        self.state
            .store
            .user_by_name(name)
            .await
            .map_err(|e| store_err(&e))
    }

    /// Resolves and authorizes the user an action targets: the named user, or the actor itself when
    /// no name is given. Authorization comes before existence: a caller that may not act on a name
    /// learns nothing about whether it exists. The resource is the user's ARN (with its path), shown
    /// as `user <name>` as IAM does.
    async fn target(&self, action: &IamAction, name: Option<&str>) -> Result<Target, ApiError> {
        let name = match (name, self.actor.user_name()) {
            // A role session is no user: it must name one (never falls back to the root).
            (None, None) if self.actor.who.role.is_some() => {
                return Err(ApiError::validation(
                    "Must specify userName when calling with non-User credentials",
                ));
            }
            (None, None) => return Ok(Target::Root),
            (None, Some(own)) => own.to_owned(),
            (Some(n), _) => n.to_owned(),
        };
        // The caller's own user, when it signed with a long-term key, is the row read with that key:
        // it authenticated this request, so it is as current as the authentication (a user cannot be
        // deleted while it has keys, and deleting a key through this node forgets it at once).
        let user = match self
            .actor
            .key_user()
            .filter(|u| u.name.eq_ignore_ascii_case(&name))
        {
            Some(own) => Some(own.clone()),
            None => self.user_named(&name).await?,
        };
        let path = user.as_ref().map_or("/", |u| u.path.as_str());
        let resource = user_arn(&self.state.account, path, &name);
        self.check(action, &resource, &format!("user {name}"))
            .await?;
        match user {
            Some(u) => Ok(Target::User(u)),
            None if self
                .actor
                .user_name()
                .is_some_and(|own| own.eq_ignore_ascii_case(&name)) =>
            {
                // The caller's own user was deleted while its key or session was still cached.
                Err(ApiError::invalid_session_token())
            }
            None => Err(no_such_user(&name)),
        }
    }

    /// stsd's stricter rule: a user acting on itself without an MFA session may not change its
    /// credentials once it has an enabled MFA device.
    async fn guard_credentials(&self, action: &IamAction, target: &Target) -> Result<(), ApiError> {
        if !self.state.authz.settings.strict_credential_changes || self.actor.mfa {
            return Ok(());
        }
        let (Some(own), Target::User(u)) = (self.actor.user_id(), target) else {
            return Ok(());
        };
        if own != u.user_id {
            return Ok(());
        }
        let devices = self
            .state
            .store
            .list_mfa_devices(&u.user_id, None, 1)
            .await
            .map_err(|e| store_err(&e))?;
        if devices.is_empty() {
            return Ok(());
        }
        Err(ApiError::access_denied(format!(
            "User: {} is not authorized to perform: {} on resource: user {} because the user has an \
             enabled MFA device and the request was not made with MFA session credentials",
            self.actor.who.arn,
            iam_action(action),
            u.name
        )))
    }

    /// The actor's own user record (`None` for the root).
    async fn own_user(&self) -> Result<Option<User>, ApiError> {
        match self.actor.user_id() {
            None => Ok(None),
            Some(id) => self
                .state
                .store
                .user_by_id(id)
                .await
                .map_err(|e| store_err(&e)),
        }
    }

    fn key_view(&self, k: &stsd_store::KeyMeta, user_name: Option<String>) -> AccessKeyView {
        AccessKeyView {
            user_name,
            access_key_id: k.access_key_id.clone(),
            status: k.status.as_str().to_owned(),
            create_date: iso8601(k.created_at),
        }
    }

    async fn owner_view(&self, owner: &str) -> Result<Option<UserView>, ApiError> {
        if owner == ROOT_OWNER {
            return Ok(Some(self.root_view()));
        }
        let u = self
            .state
            .store
            .user_by_id(owner)
            .await
            .map_err(|e| store_err(&e))?;
        Ok(u.map(|u| self.view(&u)))
    }

    /// Runs one action.
    ///
    /// # Errors
    /// The action's AWS error.
    pub async fn execute(&self, action: &IamAction) -> Result<IamOutput, ApiError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        match action {
            IamAction::CreateUser { user_name, path } => {
                let arn = user_arn(&self.state.account, path, user_name);
                self.check(action, &arn, &arn).await?;
                let user = User {
                    user_id: ids::new_user_id(self.state.account_id),
                    name: user_name.clone(),
                    path: path.clone(),
                    created_at: now,
                    sessions_not_before: 0,
                };
                // The user and its default policies are written together: a default policy
                // that is gone refuses the call and leaves no user without it.
                let defaults = self.default_user_policies().await?;
                store
                    .create_user_with_policies(&user, &defaults, policies::ATTACHED_LIMIT)
                    .await
                    .map_err(|e| match e {
                        StoreError::AlreadyExists => ApiError::entity_already_exists(format!(
                            "User with name {user_name} already exists."
                        )),
                        StoreError::NotFound => ApiError::no_such_entity(
                            "A default user policy does not exist or is not attachable.",
                        ),
                        e => store_err(&e),
                    })?;
                if !defaults.is_empty() {
                    self.state.authz.invalidate();
                }
                tracing::info!(user = %user.name, "user created");
                Ok(IamOutput::User {
                    action: "CreateUser",
                    user: self.view(&user),
                })
            }
            IamAction::GetUser { user_name } => {
                let user = match self.target(action, user_name.as_deref()).await? {
                    Target::Root => self.root_view(),
                    Target::User(u) => self.view(&u),
                };
                Ok(IamOutput::User {
                    action: "GetUser",
                    user,
                })
            }
            IamAction::ListUsers { path_prefix, page } => {
                let resource = self.account_arn(&format!("user{path_prefix}"));
                self.check(action, &resource, &resource).await?;
                let (users, next_marker) = paged(
                    store
                        .list_users(path_prefix, page.marker.as_deref(), page.max_items + 1)
                        .await
                        .map_err(|e| store_err(&e))?,
                    page,
                    |u| u.name.to_lowercase(),
                );
                Ok(IamOutput::Users {
                    users: users.iter().map(|u| self.view(u)).collect(),
                    next_marker,
                })
            }
            IamAction::DeleteUser { user_name } => {
                let Target::User(u) = self.target(action, Some(user_name)).await? else {
                    return Err(no_such_user(user_name));
                };
                store.delete_user(&u.user_id).await.map_err(|e| match e {
                    StoreError::NotFound => no_such_user(user_name),
                    StoreError::Conflict("login_profile") => ApiError::delete_conflict(
                        "Cannot delete entity, must delete login profile first.",
                    ),
                    StoreError::Conflict("keys") => ApiError::delete_conflict(
                        "Cannot delete entity, must delete access keys first.",
                    ),
                    StoreError::Conflict("devices") => ApiError::delete_conflict(
                        "Cannot delete entity, must delete MFA device first.",
                    ),
                    StoreError::Conflict("policies") => ApiError::delete_conflict(
                        "Cannot delete entity, must delete policies first.",
                    ),
                    StoreError::Conflict("attached") => ApiError::delete_conflict(
                        "Cannot delete entity, must detach all policies first.",
                    ),
                    StoreError::Conflict(_) => ApiError::delete_conflict(
                        "Cannot delete entity, must remove user from all groups first.",
                    ),
                    e => store_err(&e),
                })?;
                self.state.forget_not_before(&u.user_id);
                self.state.authz.invalidate();
                tracing::info!(user = %u.name, "user deleted");
                Ok(IamOutput::Empty {
                    action: "DeleteUser",
                })
            }
            IamAction::CreateAccessKey { user_name } => {
                let target = self.target(action, user_name.as_deref()).await?;
                self.guard_credentials(action, &target).await?;
                let secret = ids::new_secret_access_key();
                let limit =
                    || ApiError::limit_exceeded("Cannot exceed quota for AccessKeysPerUser: 2");
                if let Target::Root = &target
                    && store.root_keys().await.map_err(|e| store_err(&e))?.len() >= 2
                {
                    // The count and the insert are one atomic step in the store; this read only
                    // answers the common case without a write.
                    return Err(limit());
                }
                let mut draws = 0;
                let id = loop {
                    let id = ids::new_long_term_key_id(self.state.account_id);
                    let inserted = match &target {
                        Target::Root => store.insert_root_key(&id, &secret, now).await,
                        Target::User(u) => {
                            store.insert_user_key(&u.user_id, &id, &secret, now).await
                        }
                    };
                    match inserted {
                        Ok(()) => break id,
                        // Key ids carry 39 random bits, as AWS's: a new id can be a taken one (among
                        // a million keys, one draw in about 550,000). Nothing was written; draw again.
                        Err(StoreError::AlreadyExists) if draws < KEY_ID_DRAWS => draws += 1,
                        Err(StoreError::LimitExceeded) => return Err(limit()),
                        Err(e @ StoreError::NotFound) => {
                            return Err(match &target {
                                Target::User(u) => no_such_user(&u.name),
                                Target::Root => store_err(&e),
                            });
                        }
                        Err(e) => return Err(store_err(&e)),
                    }
                };
                tracing::info!(access_key_id = %id, user = ?target.user_name(), "access key created");
                Ok(IamOutput::NewAccessKey {
                    key: AccessKeyView {
                        user_name: target.user_name(),
                        access_key_id: id,
                        status: "Active".into(),
                        create_date: iso8601(now),
                    },
                    secret_access_key: secret.expose().to_owned(),
                })
            }
            IamAction::ListAccessKeys { user_name, page } => {
                let target = self.target(action, user_name.as_deref()).await?;
                let (keys, next_marker) = paged(
                    store
                        .list_keys(target.user_id(), page.marker.as_deref(), page.max_items + 1)
                        .await
                        .map_err(|e| store_err(&e))?,
                    page,
                    |k| k.access_key_id.clone(),
                );
                let name = target.user_name();
                Ok(IamOutput::AccessKeys {
                    keys: keys
                        .iter()
                        .map(|k| self.key_view(k, name.clone()))
                        .collect(),
                    next_marker,
                })
            }
            IamAction::UpdateAccessKey {
                user_name,
                access_key_id,
                active,
            } => {
                let target = self.target(action, user_name.as_deref()).await?;
                if *active {
                    self.guard_credentials(action, &target).await?;
                }
                let status = if *active {
                    KeyStatus::Active
                } else {
                    KeyStatus::Inactive
                };
                let found = store
                    .set_key_status(access_key_id, target.user_id(), status)
                    .await
                    .map_err(|e| store_err(&e))?;
                self.state.forget_key(access_key_id);
                if !found {
                    return Err(no_such_key(access_key_id));
                }
                Ok(IamOutput::Empty {
                    action: "UpdateAccessKey",
                })
            }
            IamAction::DeleteAccessKey {
                user_name,
                access_key_id,
            } => {
                let target = self.target(action, user_name.as_deref()).await?;
                let found = store
                    .delete_key(access_key_id, target.user_id())
                    .await
                    .map_err(|e| store_err(&e))?;
                self.state.forget_key(access_key_id);
                if !found {
                    return Err(no_such_key(access_key_id));
                }
                tracing::info!(access_key_id = %access_key_id, "access key deleted");
                Ok(IamOutput::Empty {
                    action: "DeleteAccessKey",
                })
            }
            IamAction::GetAccessKeyLastUsed { access_key_id } => {
                let meta = store
                    .key_meta(access_key_id)
                    .await
                    .map_err(|e| store_err(&e))?;
                let Some(meta) = meta else {
                    return Err(no_such_key(access_key_id));
                };
                let owner = match &meta.user_id {
                    None => None,
                    Some(uid) => store.user_by_id(uid).await.map_err(|e| store_err(&e))?,
                };
                // The resource is the key's owner (the root for root keys).
                let (resource, shown) = match &owner {
                    Some(u) => (
                        user_arn(&self.state.account, &u.path, &u.name),
                        format!("user {}", u.name),
                    ),
                    None => {
                        let root = crate::auth::root_arn(&self.state.account);
                        (root.clone(), root)
                    }
                };
                self.check(action, &resource, &shown).await?;
                let last = self
                    .state
                    .pending_last_used(access_key_id)
                    .or(meta.last_used);
                Ok(IamOutput::AccessKeyLastUsed {
                    user_name: owner.map(|u| u.name),
                    last_used_date: last.as_ref().map(|(t, _, _)| iso8601(*t)),
                    region: last
                        .as_ref()
                        .map_or_else(|| "N/A".into(), |(_, r, _)| r.clone()),
                    service: last
                        .as_ref()
                        .map_or_else(|| "N/A".into(), |(_, _, s)| s.clone()),
                })
            }
            IamAction::CreateVirtualMfaDevice { name, path } => {
                let serial = format!("arn:aws:iam::{}:mfa{path}{name}", self.state.account);
                self.check(action, &serial, &serial).await?;
                if let Some(me) = self.own_user().await? {
                    let own_id = me.user_id.clone();
                    self.guard_credentials(action, &Target::User(me)).await?;
                    // Users may not hoard device names: a bounded number of unassigned devices each.
                    let pending = store
                        .count_unassigned_devices(&own_id)
                        .await
                        .map_err(|e| store_err(&e))?;
                    if pending >= MAX_UNASSIGNED_PER_USER {
                        return Err(ApiError::limit_exceeded(format!(
                            "Cannot exceed quota for unassigned VirtualMFADevicesPerUser: {MAX_UNASSIGNED_PER_USER}"
                        )));
                    }
                }
                let mut raw = zeroize::Zeroizing::new([0u8; 40]);
                stsd_core::random_fill(raw.as_mut());
                let seed = stsd_core::secret::Secret::new(
                    data_encoding::BASE32_NOPAD.encode(raw.as_ref()),
                );
                let (created_by, label_account) = match &self.actor.who.user {
                    None if self.actor.who.role.is_some() => (
                        self.actor
                            .who
                            .role
                            .as_ref()
                            .map_or_else(String::new, |r| r.role_id.clone()),
                        self.state.account.clone(),
                    ),
                    None => (ROOT_OWNER.to_owned(), self.state.account.clone()),
                    Some((user_id, name, _)) => (user_id.clone(), name.clone()),
                };
                let uri = format!(
                    "otpauth://totp/{}@{}?secret={}",
                    uri_escape(name),
                    uri_escape(&label_account),
                    seed.expose()
                );
                let png = crate::qr::png(&uri).map_err(|e| {
                    tracing::error!(error = %e, "QR code generation failed");
                    ApiError::internal()
                })?;
                store
                    .create_mfa_device(
                        &serial,
                        DeviceKind::Virtual,
                        name,
                        path,
                        &seed,
                        Some(&created_by),
                        now,
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::AlreadyExists => ApiError::entity_already_exists(
                            "MFADevice entity at the same path and name already exists.",
                        ),
                        e => store_err(&e),
                    })?;
                tracing::info!(serial = %serial, "virtual MFA device created");
                Ok(IamOutput::NewVirtualMfaDevice {
                    serial_number: serial,
                    base32_seed: seed.expose().to_owned(),
                    qr_code_png: png,
                })
            }
            IamAction::EnableMfaDevice {
                user_name,
                serial_number,
                code1,
                code2,
            } => {
                let target = self.target(action, Some(user_name)).await?;
                self.guard_credentials(action, &target).await?;
                self.enable_device(&target, serial_number, code1, code2, now)
                    .await?;
                Ok(IamOutput::Empty {
                    action: "EnableMFADevice",
                })
            }
            IamAction::ResyncMfaDevice {
                user_name,
                serial_number,
                code1,
                code2,
            } => {
                let target = self.target(action, Some(user_name)).await?;
                let device = store
                    .mfa_device(serial_number)
                    .await
                    .map_err(|e| store_err(&e))?;
                let Some(device) = device.filter(|d| d.owner.as_deref() == Some(target.owner()))
                else {
                    return Err(no_such_device(serial_number));
                };
                // Resync searches a day of codes: a locked device refuses it, and failures count
                // towards the lock-out like GetSessionToken's.
                if device.locked_until.is_some_and(|t| t > now) {
                    return Err(ApiError::invalid_authentication_code());
                }
                let secret = seed_bytes(&device.seed)?;
                let now_step = totp::step_at(now);
                let Some(step) =
                    totp::verify_consecutive(&secret, code1, code2, now_step, RESYNC_WINDOW_STEPS)
                        .filter(|s| device.last_step.is_none_or(|l| *s > l + 1))
                else {
                    if let Err(e) =
                        crate::sts::record_failures(self.state, serial_number, now, 1).await
                    {
                        tracing::warn!(serial = %serial_number, error = %e, "recording a failed resync failed");
                        return Err(store_err(&e));
                    }
                    return Err(ApiError::invalid_authentication_code());
                };
                if !store
                    .resync_mfa_device(serial_number, step, step - now_step)
                    .await
                    .map_err(|e| store_err(&e))?
                {
                    return Err(ApiError::invalid_authentication_code());
                }
                tracing::info!(serial = %serial_number, drift_steps = step - now_step, "MFA device resynchronised");
                Ok(IamOutput::Empty {
                    action: "ResyncMFADevice",
                })
            }
            IamAction::DeactivateMfaDevice {
                user_name,
                serial_number,
            } => {
                let target = self.target(action, user_name.as_deref()).await?;
                self.guard_credentials(action, &target).await?;
                store
                    .deactivate_mfa_device(serial_number, target.owner())
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => no_such_device(serial_number),
                        e => store_err(&e),
                    })?;
                tracing::info!(serial = %serial_number, "MFA device deactivated");
                Ok(IamOutput::Empty {
                    action: "DeactivateMFADevice",
                })
            }
            IamAction::DeleteVirtualMfaDevice { serial_number } => {
                self.check(action, serial_number, serial_number).await?;
                if let Some(me) = self.own_user().await? {
                    self.guard_credentials(action, &Target::User(me)).await?;
                }
                store
                    .delete_virtual_mfa_device(serial_number)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => no_such_device(serial_number),
                        StoreError::Conflict(_) => ApiError::delete_conflict(
                            "MFA device is still in use: deactivate it before deleting it.",
                        ),
                        e => store_err(&e),
                    })?;
                Ok(IamOutput::Empty {
                    action: "DeleteVirtualMFADevice",
                })
            }
            IamAction::ListMfaDevices { user_name, page } => {
                let target = self.target(action, user_name.as_deref()).await?;
                let (devices, next_marker) = paged(
                    store
                        .list_mfa_devices(
                            target.owner(),
                            page.marker.as_deref(),
                            page.max_items + 1,
                        )
                        .await
                        .map_err(|e| store_err(&e))?,
                    page,
                    |d| d.serial_number.clone(),
                );
                Ok(IamOutput::MfaDevices {
                    user_name: target
                        .user_name()
                        .unwrap_or_else(|| self.state.account.clone()),
                    devices: devices
                        .iter()
                        .map(|d| MfaDeviceView {
                            serial_number: d.serial_number.clone(),
                            user: None,
                            enable_date: d.enabled_at.map(iso8601),
                        })
                        .collect(),
                    next_marker,
                })
            }
            IamAction::ListVirtualMfaDevices { assignment, page } => {
                self.check(action, "*", "*").await?;
                let filter = match assignment {
                    Assignment::Any => None,
                    Assignment::Assigned => Some(true),
                    Assignment::Unassigned => Some(false),
                };
                let (devices, next_marker) = paged(
                    store
                        .list_virtual_mfa_devices(
                            filter,
                            page.marker.as_deref(),
                            page.max_items + 1,
                        )
                        .await
                        .map_err(|e| store_err(&e))?,
                    page,
                    |d| d.serial_number.clone(),
                );
                let mut views = Vec::with_capacity(devices.len());
                for d in &devices {
                    let user = match &d.owner {
                        Some(o) => self.owner_view(o).await?,
                        None => None,
                    };
                    views.push(MfaDeviceView {
                        serial_number: d.serial_number.clone(),
                        user,
                        enable_date: d.enabled_at.map(iso8601),
                    });
                }
                Ok(IamOutput::VirtualMfaDevices {
                    devices: views,
                    next_marker,
                })
            }
            IamAction::GetMfaDevice {
                serial_number,
                user_name,
            } => {
                let target = self.target(action, user_name.as_deref()).await?;
                let d = store
                    .mfa_device(serial_number)
                    .await
                    .map_err(|e| store_err(&e))?;
                let Some(d) = d.filter(|d| d.owner.as_deref() == Some(target.owner())) else {
                    return Err(no_such_device(serial_number));
                };
                Ok(IamOutput::MfaDevice {
                    user_name: target.user_name(),
                    serial_number: d.serial_number,
                    enable_date: d.enabled_at.map(iso8601),
                })
            }
            other => self.execute_policies(other).await,
        }
    }

    /// Enables a device for the account root (`stsd admin mfa enroll --root`; IAM's EnableMFADevice
    /// always names a user).
    ///
    /// # Errors
    /// As EnableMFADevice.
    pub async fn enable_root_device(
        &self,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), ApiError> {
        let now = self.state.clock.now();
        self.enable_device(&Target::Root, serial, code1, code2, now)
            .await
    }

    async fn enable_device(
        &self,
        target: &Target,
        serial: &str,
        code1: &str,
        code2: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let store = &self.state.store;
        let device = store.mfa_device(serial).await.map_err(|e| store_err(&e))?;
        let Some(device) = device else {
            return Err(no_such_device(serial));
        };
        if device.owner.is_some() {
            return Err(ApiError::entity_already_exists(
                "MFA Device is already in use.",
            ));
        }
        let secret = seed_bytes(&device.seed)?;
        let now_step = totp::step_at(now);
        let step = totp::verify_consecutive(&secret, code1, code2, now_step, ENABLE_WINDOW_STEPS)
            .ok_or_else(ApiError::invalid_authentication_code)?;
        store
            .enable_mfa_device(serial, target.owner(), now, step, step - now_step)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => no_such_device(serial),
                StoreError::AlreadyExists => {
                    ApiError::entity_already_exists("MFA Device is already in use.")
                }
                StoreError::LimitExceeded => ApiError::limit_exceeded(format!(
                    "Cannot exceed quota for MFADevicesPerUser: {MAX_DEVICES_PER_USER}"
                )),
                e => store_err(&e),
            })?;
        tracing::info!(serial = %serial, user = ?target.user_name(), "MFA device enabled");
        Ok(())
    }
}

/// Splits a `limit + 1` fetch into a page and the marker of the next one.
fn paged<T>(
    mut items: Vec<T>,
    page: &Page,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let max = usize::try_from(page.max_items).unwrap_or(100);
    if items.len() > max {
        items.truncate(max);
        let marker = items.last().map(key);
        (items, marker)
    } else {
        (items, None)
    }
}

/// Percent-escapes a URI label component (everything but unreserved characters).
fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
