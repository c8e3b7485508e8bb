//! Policy, group and attachment actions: inline policies of users and groups, customer managed
//! policies and their versions, stsd's built-in managed policies (read-only), groups and memberships.

use super::{Iam, Target, no_such_user, paged, store_err};
use crate::authz::builtin;
use stsd_core::ids;
use stsd_core::timefmt::iso8601;
use stsd_policy::{Policy, PolicyKind, policy_size};
use stsd_proto::ApiError;
use stsd_proto::iam::{
    AttachedPolicyView, EntityFilter, EntityPolicyOp, EntityRef, GroupView, HolderKind, IamAction,
    IamOutput, Page, PolicyEntityView, PolicyHolder, PolicyScope, PolicyVersionView, PolicyView,
};
use stsd_store::StoreError;
use stsd_store::policy::{EntityKind, Group, ManagedPolicy};

/// Aggregate size of a user's inline policies (IAM's quota).
pub const USER_INLINE_LIMIT: i64 = 2048;
/// Aggregate size of a group's inline policies.
pub const GROUP_INLINE_LIMIT: i64 = 5120;
/// Size of a managed policy document.
pub const MANAGED_POLICY_LIMIT: usize = 6144;
/// Managed policies attached to one user or group.
pub const ATTACHED_LIMIT: i64 = 10;

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "MalformedPolicyDocument", message)
}

/// Parses and validates an identity policy document as IAM does.
pub(super) fn validate(document: &str) -> Result<Policy, ApiError> {
    Policy::parse(document, PolicyKind::Identity).map_err(|e| malformed(e.message))
}

fn size_of(document: &str) -> i64 {
    i64::try_from(policy_size(document)).unwrap_or(i64::MAX)
}

/// The user, group or role a per-entity policy action reads or changes.
struct Holder {
    kind: EntityKind,
    id: String,
    name: String,
}

/// How IAM's messages name an entity kind ("The user policy with name ...").
fn noun(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::User => "user",
        EntityKind::Group => "group",
        EntityKind::Role => "role",
    }
}

fn no_such_group(name: &str) -> ApiError {
    ApiError::no_such_entity(format!("The group with name {name} cannot be found."))
}

fn policy_not_found(arn: &str) -> ApiError {
    ApiError::no_such_entity(format!("Policy {arn} was not found."))
}

fn not_attachable(arn: &str) -> ApiError {
    ApiError::no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

/// The name and path of a policy ARN (`arn:aws:iam::ACCT:policy/PATH/NAME`).
fn split_policy_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if !(account == "aws" || account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let full = resource.strip_prefix("policy")?;
    if !full.starts_with('/') {
        return None;
    }
    let cut = full.rfind('/')?;
    let (path, name) = (&full[..=cut], &full[cut + 1..]);
    (!name.is_empty()).then_some((path, name))
}

fn check_arn(arn: &str) -> Result<(), ApiError> {
    match split_policy_arn(arn) {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid_input(format!("ARN {arn} is not valid."))),
    }
}

/// A managed policy: stsd's built-in or a customer managed one.
enum Managed {
    Builtin(&'static builtin::Builtin),
    Customer(ManagedPolicy),
}

impl<'a> Iam<'a> {
    fn builtin_view(&self, b: &builtin::Builtin, attachments: i64) -> PolicyView {
        PolicyView {
            policy_name: b.name.to_owned(),
            policy_id: b.policy_id.to_owned(),
            arn: b.arn.to_owned(),
            path: "/".to_owned(),
            default_version_id: "v1".to_owned(),
            attachment_count: attachments,
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: Some(b.description.to_owned()),
            create_date: iso8601(builtin::CREATED_AT),
            update_date: iso8601(builtin::CREATED_AT),
        }
    }

    fn customer_view(p: &ManagedPolicy) -> PolicyView {
        PolicyView {
            policy_name: p.name.clone(),
            policy_id: p.policy_id.clone(),
            arn: p.arn.clone(),
            path: p.path.clone(),
            default_version_id: p.default_version.clone(),
            attachment_count: p.attachment_count,
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: p.description.clone(),
            create_date: iso8601(p.created_at),
            update_date: iso8601(p.updated_at),
        }
    }

    fn group_view(&self, g: &Group) -> GroupView {
        GroupView {
            path: g.path.clone(),
            group_name: g.name.clone(),
            group_id: g.group_id.clone(),
            arn: self.account_arn(&format!("group{}{}", g.path, g.name)),
            create_date: iso8601(g.created_at),
        }
    }

    async fn managed(&self, arn: &str) -> Result<Option<Managed>, ApiError> {
        if let Some(b) = builtin::by_arn(arn) {
            return Ok(Some(Managed::Builtin(b)));
        }
        Ok(self
            .state
            .store
            .policy_by_arn(arn)
            .await
            .map_err(|e| store_err(&e))?
            .map(Managed::Customer))
    }

    /// Authorizes an action on a managed policy and loads it.
    async fn policy_target(&self, action: &IamAction, arn: &str) -> Result<Managed, ApiError> {
        check_arn(arn)?;
        self.check(action, arn, arn).await?;
        self.managed(arn)
            .await?
            .ok_or_else(|| policy_not_found(arn))
    }

    /// A customer managed policy an action changes (built-ins are read-only).
    async fn customer_target(
        &self,
        action: &IamAction,
        arn: &str,
    ) -> Result<ManagedPolicy, ApiError> {
        match self.policy_target(action, arn).await? {
            Managed::Customer(p) => Ok(p),
            Managed::Builtin(_) => Err(ApiError::invalid_input(format!(
                "Policy {arn} is a built-in policy and cannot be changed."
            ))),
        }
    }

    /// Authorizes an action on a group and loads it (authorization before existence).
    async fn group_target(&self, action: &IamAction, name: &str) -> Result<Group, ApiError> {
        let group = self
            .state
            .store
            .group_by_name(name)
            .await
            .map_err(|e| store_err(&e))?;
        let path = group.as_ref().map_or("/", |g| g.path.as_str());
        let arn = self.account_arn(&format!("group{path}{name}"));
        self.check(action, &arn, &arn).await?;
        group.ok_or_else(|| no_such_group(name))
    }

    /// A named user an action targets (user-scoped actions always name one here).
    async fn named_user(
        &self,
        action: &IamAction,
        name: &str,
    ) -> Result<stsd_store::User, ApiError> {
        match self.target(action, Some(name)).await? {
            Target::User(u) => Ok(u),
            Target::Root => Err(no_such_user(name)),
        }
    }

    /// Attaches a managed policy (built-in or customer) to an entity.
    pub(super) async fn attach(
        &self,
        kind: EntityKind,
        entity_id: &str,
        arn: &str,
        quota: &str,
    ) -> Result<(), ApiError> {
        check_arn(arn)?;
        let policy_id = match self.managed(arn).await? {
            Some(Managed::Builtin(_)) => None,
            Some(Managed::Customer(p)) => Some(p.policy_id),
            None => return Err(not_attachable(arn)),
        };
        self.state
            .store
            .attach_policy(
                kind,
                entity_id,
                arn,
                policy_id.as_deref(),
                ATTACHED_LIMIT,
                self.state.clock.now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::LimitExceeded => ApiError::limit_exceeded(format!(
                    "Cannot exceed quota for {quota}: {ATTACHED_LIMIT}"
                )),
                StoreError::NotFound => not_attachable(arn),
                e => store_err(&e),
            })?;
        self.state.authz.invalidate();
        Ok(())
    }

    /// The configured default user policies as the store attaches them: ARN and, for a customer
    /// managed policy, its id. A policy deleted since start-up is refused with IAM's "not attachable"
    /// error (and a warning: the configuration names it).
    pub(super) async fn default_user_policies(
        &self,
    ) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let mut out = Vec::new();
        for arn in &self.state.authz.settings.default_user_policies {
            let policy_id = match self.managed(arn).await? {
                Some(Managed::Builtin(_)) => None,
                Some(Managed::Customer(p)) => Some(p.policy_id),
                None => {
                    tracing::warn!(policy = %arn, "a default user policy no longer exists: CreateUser refused");
                    return Err(not_attachable(arn));
                }
            };
            out.push((arn.clone(), policy_id));
        }
        Ok(out)
    }

    pub(super) async fn attached_views(
        &self,
        kind: EntityKind,
        entity_id: &str,
        path_prefix: Option<&str>,
        page: &Page,
    ) -> Result<(Vec<AttachedPolicyView>, Option<String>), ApiError> {
        let arns = self
            .state
            .store
            .attached_policies(kind, entity_id)
            .await
            .map_err(|e| store_err(&e))?;
        let mut views: Vec<AttachedPolicyView> = arns
            .iter()
            .filter_map(|arn| {
                let (path, name) = split_policy_arn(arn)?;
                if path_prefix.is_some_and(|p| !path.starts_with(p)) {
                    return None;
                }
                Some(AttachedPolicyView {
                    policy_name: name.to_owned(),
                    policy_arn: arn.clone(),
                })
            })
            .collect();
        views.sort_by(|a, b| a.policy_name.cmp(&b.policy_name));
        if let Some(m) = &page.marker {
            views.retain(|v| v.policy_name.as_str() > m.as_str());
        }
        let max = usize::try_from(page.max_items).unwrap_or(100);
        views.truncate(max + 1);
        Ok(paged(views, page, |v| v.policy_name.clone()))
    }

    async fn put_inline(
        &self,
        kind: EntityKind,
        entity_id: &str,
        entity_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<(), ApiError> {
        validate(document)?;
        let limit = match kind {
            EntityKind::User => USER_INLINE_LIMIT,
            EntityKind::Group => GROUP_INLINE_LIMIT,
            EntityKind::Role => super::roles::ROLE_INLINE_LIMIT,
        };
        let noun = noun(kind);
        self.state
            .store
            .put_inline_policy(
                kind,
                entity_id,
                policy_name,
                document,
                size_of(document),
                limit,
            )
            .await
            .map_err(|e| match e {
                StoreError::LimitExceeded => ApiError::limit_exceeded(format!(
                    "Maximum policy size of {limit} bytes exceeded for {noun} {entity_name}"
                )),
                StoreError::NotFound => match kind {
                    EntityKind::User => no_such_user(entity_name),
                    EntityKind::Group => no_such_group(entity_name),
                    EntityKind::Role => super::roles::no_such_role(entity_name),
                },
                e => store_err(&e),
            })?;
        self.state.authz.invalidate();
        tracing::info!(entity = %entity_name, policy = %policy_name, "inline policy put");
        Ok(())
    }

    /// Resolves the user, group or role a per-entity policy action names (and checks that the caller
    /// may act on it).
    async fn holder(
        &self,
        action: &IamAction,
        holder: PolicyHolder<'_>,
    ) -> Result<Holder, ApiError> {
        Ok(match holder.kind {
            HolderKind::User => {
                let u = self.named_user(action, holder.name).await?;
                Holder {
                    kind: EntityKind::User,
                    id: u.user_id,
                    name: u.name,
                }
            }
            HolderKind::Group => {
                let g = self.group_target(action, holder.name).await?;
                Holder {
                    kind: EntityKind::Group,
                    id: g.group_id,
                    name: g.name,
                }
            }
            HolderKind::Role => {
                let r = self.role_target(action, holder.name).await?;
                Holder {
                    kind: EntityKind::Role,
                    id: r.role_id,
                    name: r.name,
                }
            }
        })
    }

    /// Runs one of the 21 per-entity policy actions: the same seven operations on the inline policies
    /// and attachments of a user, a group or a role.
    async fn execute_entity_policy(
        &self,
        action: &IamAction,
        holder: PolicyHolder<'_>,
        op: EntityPolicyOp<'_>,
    ) -> Result<IamOutput, ApiError> {
        let store = &self.state.store;
        let name = action.name();
        let h = self.holder(action, holder).await?;
        let no_such_policy = |policy_name: &str| {
            ApiError::no_such_entity(format!(
                "The {} policy with name {policy_name} cannot be found.",
                noun(h.kind)
            ))
        };
        match op {
            EntityPolicyOp::PutInline {
                policy_name,
                document,
            } => {
                self.put_inline(h.kind, &h.id, &h.name, policy_name, document)
                    .await?;
            }
            EntityPolicyOp::GetInline { policy_name } => {
                let document = store
                    .inline_policy(h.kind, &h.id, policy_name)
                    .await
                    .map_err(|e| store_err(&e))?
                    .ok_or_else(|| no_such_policy(policy_name))?;
                let entity = match h.kind {
                    EntityKind::User => EntityRef::User(h.name),
                    EntityKind::Group => EntityRef::Group(h.name),
                    EntityKind::Role => EntityRef::Role(h.name),
                };
                return Ok(IamOutput::PolicyDocument {
                    action: name,
                    entity,
                    policy_name: policy_name.to_owned(),
                    document,
                });
            }
            EntityPolicyOp::ListInline { page } => {
                return self.list_inline(h.kind, &h.id, page).await;
            }
            EntityPolicyOp::DeleteInline { policy_name } => {
                if !store
                    .delete_inline_policy(h.kind, &h.id, policy_name)
                    .await
                    .map_err(|e| store_err(&e))?
                {
                    return Err(no_such_policy(policy_name));
                }
                self.state.authz.invalidate();
            }
            EntityPolicyOp::Attach { policy_arn } => {
                let quota = match h.kind {
                    EntityKind::User => "PoliciesPerUser",
                    EntityKind::Group => "PoliciesPerGroup",
                    EntityKind::Role => "PoliciesPerRole",
                };
                self.attach(h.kind, &h.id, policy_arn, quota).await?;
            }
            EntityPolicyOp::Detach { policy_arn } => {
                self.detach(h.kind, &h.id, policy_arn).await?;
            }
            EntityPolicyOp::ListAttached { path_prefix, page } => {
                let (policies, next_marker) = self
                    .attached_views(h.kind, &h.id, path_prefix, page)
                    .await?;
                return Ok(IamOutput::AttachedPolicies {
                    action: name,
                    policies,
                    next_marker,
                });
            }
        }
        Ok(IamOutput::Empty { action: name })
    }

    /// Runs a policy, group or simulator action.
    ///
    /// # Errors
    /// The action's AWS error.
    pub(super) async fn execute_policies(&self, action: &IamAction) -> Result<IamOutput, ApiError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        let name = action.name();
        let empty = Ok(IamOutput::Empty { action: name });
        if let Some((holder, op)) = action.entity_policy_call() {
            return self.execute_entity_policy(action, holder, op).await;
        }
        match action {
            // ---- managed policies ----
            IamAction::CreatePolicy {
                policy_name,
                path,
                policy_document,
                description,
                ..
            } => {
                let arn = self.account_arn(&format!("policy{path}{policy_name}"));
                self.check(action, &arn, &format!("policy {policy_name}"))
                    .await?;
                validate(policy_document)?;
                if policy_size(policy_document) > MANAGED_POLICY_LIMIT {
                    return Err(ApiError::limit_exceeded(format!(
                        "Cannot exceed quota for PolicySize: {MANAGED_POLICY_LIMIT}"
                    )));
                }
                let p = ManagedPolicy {
                    policy_id: ids::new_unique_id("ANPA", self.state.account_id),
                    name: policy_name.clone(),
                    path: path.clone(),
                    arn,
                    description: description.clone(),
                    default_version: "v1".into(),
                    attachment_count: 0,
                    created_at: now,
                    updated_at: now,
                };
                store
                    .create_policy(&p, policy_document)
                    .await
                    .map_err(|e| match e {
                        StoreError::AlreadyExists => ApiError::entity_already_exists(format!(
                            "A policy called {policy_name} already exists. Duplicate names are not allowed."
                        )),
                        e => store_err(&e),
                    })?;
                tracing::info!(policy = %p.arn, "managed policy created");
                let mut view = Self::customer_view(&p);
                view.description = None; // CreatePolicy's answer omits it, as IAM's does
                Ok(IamOutput::Policy {
                    action: name,
                    policy: view,
                })
            }
            IamAction::GetPolicy { policy_arn } => {
                let view = match self.policy_target(action, policy_arn).await? {
                    Managed::Builtin(b) => {
                        let n = store
                            .attachment_count(b.arn)
                            .await
                            .map_err(|e| store_err(&e))?;
                        self.builtin_view(b, n)
                    }
                    Managed::Customer(p) => Self::customer_view(&p),
                };
                Ok(IamOutput::Policy {
                    action: name,
                    policy: view,
                })
            }
            IamAction::GetPolicyVersion {
                policy_arn,
                version_id,
            } => {
                let missing = || {
                    ApiError::no_such_entity(format!(
                        "Policy {policy_arn} version {version_id} does not exist or is not attachable."
                    ))
                };
                let version = match self.policy_target(action, policy_arn).await? {
                    Managed::Builtin(b) if version_id == "v1" => PolicyVersionView {
                        document: Some(b.document.to_owned()),
                        version_id: "v1".into(),
                        is_default_version: true,
                        create_date: iso8601(builtin::CREATED_AT),
                    },
                    Managed::Builtin(_) => return Err(missing()),
                    Managed::Customer(p) => {
                        let v = store
                            .policy_version(&p.policy_id, version_id)
                            .await
                            .map_err(|e| store_err(&e))?
                            .ok_or_else(missing)?;
                        PolicyVersionView {
                            document: Some(v.document),
                            version_id: v.version_id,
                            is_default_version: v.is_default,
                            create_date: iso8601(v.created_at),
                        }
                    }
                };
                Ok(IamOutput::PolicyVersion {
                    action: name,
                    version,
                })
            }
            IamAction::ListPolicyVersions { policy_arn, page } => {
                let versions = match self.policy_target(action, policy_arn).await? {
                    Managed::Builtin(_) => vec![PolicyVersionView {
                        document: None,
                        version_id: "v1".into(),
                        is_default_version: true,
                        create_date: iso8601(builtin::CREATED_AT),
                    }],
                    Managed::Customer(p) => store
                        .policy_versions(&p.policy_id)
                        .await
                        .map_err(|e| store_err(&e))?
                        .into_iter()
                        .map(|v| PolicyVersionView {
                            document: None,
                            version_id: v.version_id,
                            is_default_version: v.is_default,
                            create_date: iso8601(v.created_at),
                        })
                        .collect(),
                };
                let mut versions = versions;
                if let Some(m) = &page.marker
                    && let Some(i) = versions.iter().position(|v| &v.version_id == m)
                {
                    versions.drain(..=i);
                }
                let (versions, next_marker) = paged(versions, page, |v| v.version_id.clone());
                Ok(IamOutput::PolicyVersions {
                    versions,
                    next_marker,
                })
            }
            IamAction::CreatePolicyVersion {
                policy_arn,
                policy_document,
                set_as_default,
            } => {
                let p = self.customer_target(action, policy_arn).await?;
                validate(policy_document)?;
                if policy_size(policy_document) > MANAGED_POLICY_LIMIT {
                    return Err(ApiError::limit_exceeded(format!(
                        "Cannot exceed quota for PolicySize: {MANAGED_POLICY_LIMIT}"
                    )));
                }
                let version_id = store
                    .create_policy_version(&p.policy_id, policy_document, *set_as_default, now)
                    .await
                    .map_err(|e| match e {
                        StoreError::LimitExceeded => ApiError::limit_exceeded(
                            "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.",
                        ),
                        StoreError::NotFound => policy_not_found(policy_arn),
                        e => store_err(&e),
                    })?;
                self.state.authz.invalidate();
                Ok(IamOutput::PolicyVersion {
                    action: name,
                    version: PolicyVersionView {
                        document: None,
                        version_id,
                        is_default_version: *set_as_default,
                        create_date: iso8601(now),
                    },
                })
            }
            IamAction::SetDefaultPolicyVersion {
                policy_arn,
                version_id,
            } => {
                let p = self.customer_target(action, policy_arn).await?;
                store
                    .set_default_policy_version(&p.policy_id, version_id, now)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => ApiError::no_such_entity(format!(
                            "Policy {policy_arn} version {version_id} does not exist or is not attachable."
                        )),
                        e => store_err(&e),
                    })?;
                self.state.authz.invalidate();
                empty
            }
            IamAction::DeletePolicyVersion {
                policy_arn,
                version_id,
            } => {
                let p = self.customer_target(action, policy_arn).await?;
                store
                    .delete_policy_version(&p.policy_id, version_id)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(_) => ApiError::delete_conflict(
                            "Cannot delete the default version of a policy.",
                        ),
                        StoreError::NotFound => ApiError::no_such_entity(format!(
                            "Policy {policy_arn} version {version_id} does not exist or is not attachable."
                        )),
                        e => store_err(&e),
                    })?;
                empty
            }
            IamAction::DeletePolicy { policy_arn } => {
                let p = self.customer_target(action, policy_arn).await?;
                store
                    .delete_policy(&p.policy_id)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict("versions") => ApiError::delete_conflict(
                            "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
                        ),
                        StoreError::Conflict(_) => {
                            ApiError::delete_conflict("Cannot delete a policy attached to entities.")
                        }
                        StoreError::NotFound => policy_not_found(policy_arn),
                        e => store_err(&e),
                    })?;
                tracing::info!(policy = %policy_arn, "managed policy deleted");
                empty
            }
            IamAction::ListPolicies {
                scope,
                only_attached,
                path_prefix,
                page,
                ..
            } => {
                self.check(action, "*", "*").await?;
                let mut views = Vec::new();
                if matches!(scope, PolicyScope::All | PolicyScope::Aws) && path_prefix == "/" {
                    for b in builtin::BUILTINS {
                        let n = store
                            .attachment_count(b.arn)
                            .await
                            .map_err(|e| store_err(&e))?;
                        if !*only_attached || n > 0 {
                            views.push(self.builtin_view(b, n));
                        }
                    }
                }
                if matches!(scope, PolicyScope::All | PolicyScope::Local) {
                    let local = store
                        .list_policies(
                            path_prefix,
                            *only_attached,
                            page.marker.as_deref(),
                            page.max_items + 1,
                        )
                        .await
                        .map_err(|e| store_err(&e))?;
                    views.extend(local.iter().map(Self::customer_view));
                }
                views.sort_by_key(|v| v.policy_name.to_lowercase());
                if let Some(m) = &page.marker {
                    let m = m.to_lowercase();
                    views.retain(|v| v.policy_name.to_lowercase() > m);
                }
                let (policies, next_marker) = paged(views, page, |v| v.policy_name.to_lowercase());
                Ok(IamOutput::Policies {
                    policies,
                    next_marker,
                })
            }
            IamAction::ListEntitiesForPolicy {
                policy_arn,
                entity_filter,
                path_prefix,
                page,
            } => {
                self.policy_target(action, policy_arn).await?;
                let entities = store
                    .policy_entities(policy_arn)
                    .await
                    .map_err(|e| store_err(&e))?;
                let wants = |k: EntityFilter| entity_filter.is_none_or(|f| f == k);
                let prefix_ok = |p: &str| path_prefix.as_deref().is_none_or(|x| p.starts_with(x));
                let (mut users, mut groups, mut roles) = (Vec::new(), Vec::new(), Vec::new());
                for (kind, id) in entities {
                    match kind {
                        EntityKind::User if wants(EntityFilter::User) => {
                            if let Some(u) =
                                store.user_by_id(&id).await.map_err(|e| store_err(&e))?
                                && prefix_ok(&u.path)
                            {
                                users.push(PolicyEntityView {
                                    name: u.name,
                                    id: u.user_id,
                                });
                            }
                        }
                        EntityKind::Group if wants(EntityFilter::Group) => {
                            if let Some(g) =
                                store.group_by_id(&id).await.map_err(|e| store_err(&e))?
                                && prefix_ok(&g.path)
                            {
                                groups.push(PolicyEntityView {
                                    name: g.name,
                                    id: g.group_id,
                                });
                            }
                        }
                        EntityKind::Role if wants(EntityFilter::Role) => {
                            if let Some(r) =
                                store.role_by_id(&id).await.map_err(|e| store_err(&e))?
                                && prefix_ok(&r.path)
                            {
                                roles.push(PolicyEntityView {
                                    name: r.name,
                                    id: r.role_id,
                                });
                            }
                        }
                        _ => {}
                    }
                }
                roles.sort_by_key(|v| v.name.to_lowercase());
                users.sort_by_key(|v| v.name.to_lowercase());
                groups.sort_by_key(|v| v.name.to_lowercase());
                let _ = page;
                Ok(IamOutput::EntitiesForPolicy {
                    groups,
                    users,
                    roles,
                    next_marker: None,
                })
            }

            // ---- groups ----
            IamAction::CreateGroup { group_name, path } => {
                let arn = self.account_arn(&format!("group{path}{group_name}"));
                self.check(action, &arn, &arn).await?;
                let g = Group {
                    group_id: ids::new_unique_id("AGPA", self.state.account_id),
                    name: group_name.clone(),
                    path: path.clone(),
                    created_at: now,
                };
                store.create_group(&g).await.map_err(|e| match e {
                    StoreError::AlreadyExists => ApiError::entity_already_exists(format!(
                        "Group with name {group_name} already exists."
                    )),
                    e => store_err(&e),
                })?;
                tracing::info!(group = %g.name, "group created");
                Ok(IamOutput::Group {
                    action: name,
                    group: self.group_view(&g),
                })
            }
            IamAction::GetGroup { group_name, page } => {
                let g = self.group_target(action, group_name).await?;
                let members = store
                    .group_members(&g.group_id, page.marker.as_deref(), page.max_items + 1)
                    .await
                    .map_err(|e| store_err(&e))?;
                let (members, next_marker) = paged(members, page, |u| u.name.to_lowercase());
                Ok(IamOutput::GroupDetail {
                    group: self.group_view(&g),
                    users: members.iter().map(|u| self.view(u)).collect(),
                    next_marker,
                })
            }
            IamAction::ListGroups { path_prefix, page } => {
                let resource = self.account_arn(&format!("group{path_prefix}"));
                self.check(action, &resource, &resource).await?;
                let groups = store
                    .list_groups(path_prefix, page.marker.as_deref(), page.max_items + 1)
                    .await
                    .map_err(|e| store_err(&e))?;
                let (groups, next_marker) = paged(groups, page, |g| g.name.to_lowercase());
                Ok(IamOutput::Groups {
                    action: name,
                    groups: groups.iter().map(|g| self.group_view(g)).collect(),
                    next_marker,
                })
            }
            IamAction::DeleteGroup { group_name } => {
                let g = self.group_target(action, group_name).await?;
                store.delete_group(&g.group_id).await.map_err(|e| match e {
                    StoreError::NotFound => no_such_group(group_name),
                    StoreError::Conflict("members") => ApiError::delete_conflict(
                        "Cannot delete entity, must remove users from group first.",
                    ),
                    StoreError::Conflict("policies") => ApiError::delete_conflict(
                        "Cannot delete entity, must delete policies first.",
                    ),
                    StoreError::Conflict(_) => ApiError::delete_conflict(
                        "Cannot delete entity, must detach all policies first.",
                    ),
                    e => store_err(&e),
                })?;
                tracing::info!(group = %g.name, "group deleted");
                empty
            }
            IamAction::AddUserToGroup {
                group_name,
                user_name,
            } => {
                let g = self.group_target(action, group_name).await?;
                let u = self
                    .user_named(user_name)
                    .await?
                    .ok_or_else(|| no_such_user(user_name))?;
                store
                    .add_user_to_group(&g.group_id, &u.user_id, now)
                    .await
                    .map_err(|e| match e {
                        StoreError::LimitExceeded => {
                            ApiError::limit_exceeded("Cannot exceed quota for GroupsPerUser: 10")
                        }
                        StoreError::NotFound => no_such_user(user_name),
                        e => store_err(&e),
                    })?;
                self.state.authz.invalidate();
                empty
            }
            IamAction::RemoveUserFromGroup {
                group_name,
                user_name,
            } => {
                let g = self.group_target(action, group_name).await?;
                let u = self
                    .user_named(user_name)
                    .await?
                    .ok_or_else(|| no_such_user(user_name))?;
                if !store
                    .remove_user_from_group(&g.group_id, &u.user_id)
                    .await
                    .map_err(|e| store_err(&e))?
                {
                    return Err(no_such_user(user_name));
                }
                self.state.authz.invalidate();
                empty
            }
            IamAction::ListGroupsForUser { user_name, page } => {
                let u = self.named_user(action, user_name).await?;
                let mut groups = store
                    .groups_for_user(&u.user_id)
                    .await
                    .map_err(|e| store_err(&e))?;
                if let Some(m) = &page.marker {
                    let m = m.to_lowercase();
                    groups.retain(|g| g.name.to_lowercase() > m);
                }
                let (groups, next_marker) = paged(groups, page, |g| g.name.to_lowercase());
                Ok(IamOutput::Groups {
                    action: name,
                    groups: groups.iter().map(|g| self.group_view(g)).collect(),
                    next_marker,
                })
            }
            other => self.execute_simulation(other).await,
        }
    }

    pub(super) async fn list_inline(
        &self,
        kind: EntityKind,
        entity_id: &str,
        page: &Page,
    ) -> Result<IamOutput, ApiError> {
        let names = self
            .state
            .store
            .list_inline_policies(kind, entity_id, page.marker.as_deref(), page.max_items + 1)
            .await
            .map_err(|e| store_err(&e))?;
        let (names, next_marker) = paged(names, page, Clone::clone);
        Ok(IamOutput::PolicyNames { names, next_marker })
    }

    pub(super) async fn detach(
        &self,
        kind: EntityKind,
        entity_id: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        check_arn(arn)?;
        if !self
            .state
            .store
            .detach_policy(kind, entity_id, arn)
            .await
            .map_err(|e| store_err(&e))?
        {
            return Err(policy_not_found(arn));
        }
        self.state.authz.invalidate();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arns() {
        assert_eq!(
            split_policy_arn("arn:aws:iam::123456789012:policy/a/b/Name"),
            Some(("/a/b/", "Name"))
        );
        assert_eq!(
            split_policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            Some(("/", "ReadOnlyAccess"))
        );
        assert_eq!(split_policy_arn("arn:aws:iam::123:policy/x"), None);
        assert_eq!(split_policy_arn("arn:aws:iam::123456789012:user/x"), None);
        assert_eq!(split_policy_arn("arn:aws:iam::123456789012:policy/"), None);
        assert_eq!(split_policy_arn("nope"), None);
    }
}
