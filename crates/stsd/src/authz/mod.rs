//! Authorization: the one path that decides whether a principal may perform an action on a resource,
//! for the IAM API, the admin CLI's remote mode and (later) the authorizer and the console.
//!
//! A principal's effective policies (its inline and attached policies and those of its groups) are
//! loaded from the store, compiled once ([`stsd_policy::Policy`]) and cached per user for at most
//! [`POLICY_CACHE_TTL`]; every policy write through this node clears the cache, so a change is visible at
//! once here and within that bound on other nodes. The account root is allowed everything, as in AWS.
//! Roles as `AssumeRole` reads them (the row and its compiled trust policy) are cached the same way
//! ([`role_for_assume`]): every role write through this node clears them too.

pub mod builtin;
pub mod context;

use crate::cache::TtlCache;
use crate::state::AppState;
use context::{Cidr, Who};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stsd_policy::{Context, Decision, LayeredDecision, Policy, PolicyKind, PolicyRef, SourceKind};
use stsd_proto::ApiError;
use stsd_store::policy::{Applicable, Source};

/// How long a node trusts a cached policy set.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(5);
const POLICY_CACHE_CAPACITY: usize = 100_000;

/// Authorization settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Managed policy ARNs attached to every new user (`default_user_policies`; empty by default, as AWS).
    pub default_user_policies: Vec<String>,
    /// Once a user has an enabled MFA device, changing its devices and creating or reactivating its
    /// access keys needs an MFA session (or another principal allowed by policy), whatever the policies
    /// say. stsd is stricter than AWS here; `false` relaxes it.
    pub strict_credential_changes: bool,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The APIs the authorizer (`/_stsd/authorize`) protects (`[[authz.api]]`).
    pub apis: Vec<crate::authorizer::config::Api>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_user_policies: Vec::new(),
            strict_credential_changes: true,
            trusted_proxies: Vec::new(),
            apis: Vec::new(),
        }
    }
}

/// One compiled policy with where it came from.
#[derive(Debug)]
pub struct Entry {
    /// The compiled document.
    pub policy: Policy,
    /// Inline policy name or managed policy ARN.
    pub id: String,
    /// Its type, as the simulator reports it.
    pub kind: SourceKind,
}

/// A principal's compiled policies.
#[derive(Debug, Default)]
pub struct PolicySet {
    /// The policies.
    pub entries: Vec<Entry>,
}

impl PolicySet {
    /// References for the evaluator.
    pub fn refs(&self) -> Vec<PolicyRef<'_>> {
        self.entries
            .iter()
            .map(|e| PolicyRef {
                policy: &e.policy,
                id: &e.id,
                kind: e.kind,
            })
            .collect()
    }

    /// Compiles stored policies. A stored document that no longer compiles, or an attachment of an
    /// unknown built-in, fails the whole set (never silently drops a deny).
    ///
    /// # Errors
    /// `ServiceFailure`-style internal error.
    pub fn compile(applicable: Vec<Applicable>) -> Result<PolicySet, ApiError> {
        let mut entries = Vec::with_capacity(applicable.len());
        for a in applicable {
            let (id, kind) = match &a.source {
                Source::UserInline { name } => (name.clone(), SourceKind::User),
                Source::GroupInline { name, .. } => (name.clone(), SourceKind::Group),
                Source::RoleInline { name } => (name.clone(), SourceKind::Role),
                Source::Managed { arn, .. } => (
                    arn.clone(),
                    if arn.starts_with("arn:aws:iam::aws:policy/") {
                        SourceKind::AwsManaged
                    } else {
                        SourceKind::UserManaged
                    },
                ),
            };
            let policy = match &a.document {
                Some(doc) => Policy::parse(doc, PolicyKind::Identity).map_err(|e| {
                    tracing::error!(policy = %id, error = %e, "stored policy does not compile");
                    ApiError::internal()
                })?,
                None => builtin::compiled(&id).cloned().ok_or_else(|| {
                    tracing::error!(policy = %id, "attached policy does not exist");
                    ApiError::internal()
                })?,
            };
            entries.push(Entry { policy, id, kind });
        }
        Ok(PolicySet { entries })
    }
}

/// Authorization state of a node.
#[derive(Debug)]
pub struct Authz {
    /// Settings.
    pub settings: Settings,
    /// Compiled policy sets by user or role id.
    cache: TtlCache<Arc<PolicySet>>,
    /// Roles with their compiled trust policies, by name.
    roles: TtlCache<Arc<TrustedRole>>,
}

impl Default for Authz {
    fn default() -> Self {
        Authz::new(Settings::default())
    }
}

/// A role as `AssumeRole` needs it: the stored row and its compiled trust policy.
#[derive(Debug)]
pub struct TrustedRole {
    /// The stored role.
    pub role: stsd_store::roles::Role,
    /// Its trust policy, compiled.
    pub trust: Policy,
}

impl Authz {
    /// With these settings.
    pub fn new(settings: Settings) -> Self {
        Authz {
            settings,
            cache: TtlCache::new(POLICY_CACHE_TTL, POLICY_CACHE_CAPACITY),
            roles: TtlCache::new(POLICY_CACHE_TTL, POLICY_CACHE_CAPACITY),
        }
    }

    /// Forgets every cached policy set and role (after any policy, group, attachment or role change
    /// on this node).
    pub fn invalidate(&self) {
        self.cache.clear();
        self.roles.clear();
    }
}

/// A user's effective policy set, from the cache when fresh.
///
/// # Errors
/// Store errors as AWS errors.
pub async fn user_policy_set(state: &AppState, user_id: &str) -> Result<Arc<PolicySet>, ApiError> {
    if let Some(set) = state.authz.cache.get(user_id) {
        return Ok(set);
    }
    let started = Instant::now();
    let applicable = state
        .store
        .user_policies(user_id)
        .await
        .map_err(|e| crate::errors::from_store(&e))?;
    state.metrics.store("user_policies", started.elapsed());
    let set = Arc::new(PolicySet::compile(applicable)?);
    state.authz.cache.insert(user_id, Arc::clone(&set));
    Ok(set)
}

/// What an authorization check asks.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// `service:Action`.
    pub action: &'a str,
    /// The resource ARN (`*` for actions without a resource type).
    pub resource: &'a str,
    /// How AccessDenied shows the resource (`None`: no ` on resource:` clause).
    pub shown: Option<&'a str>,
}

/// Whether `who` may perform the check, with its request context. The root may do everything.
///
/// # Errors
/// `AccessDenied` with AWS's message; store errors.
pub async fn authorize(
    state: &AppState,
    who: &Who,
    ctx: &Context,
    check: Check<'_>,
) -> Result<(), ApiError> {
    let Some(d) = decision_for(state, who, ctx, check).await? else {
        return Ok(());
    };
    match d.decision {
        Decision::Allowed(_) => Ok(()),
        _ => Err(ApiError::access_denied(stsd_policy::access_denied_message(
            &who.arn,
            check.action,
            check.shown,
            &d,
        ))),
    }
}

/// The decision for `who` (identity layer ∩ its session layers); `None` for the root without session
/// layers, which may do everything. Every authorization (IAM actions, the authorizer) goes through here.
///
/// # Errors
/// Store errors; session policies that no longer compile.
pub async fn decision_for(
    state: &AppState,
    who: &Who,
    ctx: &Context,
    check: Check<'_>,
) -> Result<Option<LayeredDecision>, ApiError> {
    let set = match (&who.role, &who.user) {
        (Some(r), _) => role_policy_set(state, &r.role_id).await?,
        (None, Some((user_id, _, _))) => user_policy_set(state, user_id).await?,
        // The root may do everything, unless its session was scoped down.
        (None, None) if who.session.is_none() => return Ok(None),
        (None, None) => Arc::clone(&ALLOW_ALL),
    };
    let layers = session_layers(state, who).await?;
    Ok(Some(decide_layers(&set, &layers, ctx, check)))
}

/// The root's identity policy: everything.
static ALLOW_ALL: std::sync::LazyLock<Arc<PolicySet>> = std::sync::LazyLock::new(|| {
    let entries = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .map(|policy| Entry {
        policy,
        id: "root".into(),
        kind: SourceKind::None,
    })
    .into_iter()
    .collect();
    Arc::new(PolicySet { entries })
});

/// An identity layer that allows everything (the root's; and for grants that only session layers limit).
pub fn allow_all() -> Arc<PolicySet> {
    Arc::clone(&ALLOW_ALL)
}

/// The role named `name` with its compiled trust policy, from the cache when fresh (at most
/// [`POLICY_CACHE_TTL`] old; role writes through this node clear it). `None`: no such role (not cached,
/// so a new role can be assumed at once).
///
/// # Errors
/// Store errors as AWS errors; a stored trust policy that no longer compiles is an internal error.
pub async fn role_for_assume(
    state: &AppState,
    name: &str,
) -> Result<Option<Arc<TrustedRole>>, ApiError> {
    if let Some(r) = state.authz.roles.get(name) {
        return Ok(Some(r));
    }
    let started = Instant::now();
    let found = state
        .store
        .role_by_name(name)
        .await
        .map_err(|e| crate::errors::from_store(&e))?;
    state.metrics.store("role_by_name", started.elapsed());
    let Some(role) = found else {
        return Ok(None);
    };
    let trust = Policy::parse_with(
        &role.trust_policy,
        PolicyKind::Trust,
        stsd_policy::ParseOptions {
            allow_legacy_version: true,
        },
    )
    .map_err(|e| {
        tracing::error!(role = %role.name, error = %e, "stored trust policy does not compile");
        ApiError::internal()
    })?;
    let entry = Arc::new(TrustedRole { role, trust });
    state.authz.roles.insert(name, Arc::clone(&entry));
    Ok(Some(entry))
}

/// A role's policy set (inline and attached), from the cache when fresh.
///
/// # Errors
/// Store errors as AWS errors.
pub async fn role_policy_set(state: &AppState, role_id: &str) -> Result<Arc<PolicySet>, ApiError> {
    if let Some(set) = state.authz.cache.get(role_id) {
        return Ok(set);
    }
    let started = Instant::now();
    let applicable = state
        .store
        .role_policies(role_id)
        .await
        .map_err(|e| crate::errors::from_store(&e))?;
    state.metrics.store("role_policies", started.elapsed());
    let set = Arc::new(PolicySet::compile(applicable)?);
    state.authz.cache.insert(role_id, Arc::clone(&set));
    Ok(set)
}

/// Compiles a session's layers: the AssumeRole session policies (inline and managed, one layer),
/// then each GetScopedCredentials scope-down policy (one layer each). Empty for plain sessions.
///
/// # Errors
/// Store errors; a session policy that no longer compiles or no longer exists is an internal error
/// (never silently widened).
pub async fn session_layers(state: &AppState, who: &Who) -> Result<Vec<PolicySet>, ApiError> {
    let Some(ext) = &who.session else {
        return Ok(Vec::new());
    };
    let compile = |doc: &str, id: &str| {
        Policy::parse(doc, PolicyKind::Identity)
            .map(|policy| Entry {
                policy,
                id: id.to_owned(),
                kind: SourceKind::Session,
            })
            .map_err(|e| {
                tracing::error!(error = %e, "session policy does not compile");
                ApiError::internal()
            })
    };
    let mut layers = Vec::new();
    if ext.session_policy.is_some() || !ext.policy_arns.is_empty() {
        let mut entries = Vec::new();
        if let Some(doc) = &ext.session_policy {
            entries.push(compile(doc, "session")?);
        }
        if !ext.policy_arns.is_empty() {
            let docs = state
                .store
                .managed_documents(&ext.policy_arns)
                .await
                .map_err(|e| crate::errors::from_store(&e))?;
            for (arn, doc) in docs {
                match doc {
                    Some(doc) => entries.push(compile(&doc, &arn)?),
                    None => {
                        if let Some(p) = builtin::compiled(&arn) {
                            entries.push(Entry {
                                policy: p.clone(),
                                id: arn,
                                kind: SourceKind::Session,
                            });
                        }
                        // A managed session policy deleted since: it allows nothing.
                    }
                }
            }
        }
        layers.push(PolicySet { entries });
    }
    for (i, doc) in ext.scope_policies.iter().enumerate() {
        layers.push(PolicySet {
            entries: vec![compile(doc, &format!("scope-{}", i + 1))?],
        });
    }
    Ok(layers)
}

/// Evaluates one check against a policy set intersected with session layers.
pub fn decide_layers(
    set: &PolicySet,
    layers: &[PolicySet],
    ctx: &Context,
    check: Check<'_>,
) -> LayeredDecision {
    let refs = set.refs();
    let layer_refs: Vec<Vec<PolicyRef<'_>>> = layers.iter().map(PolicySet::refs).collect();
    let slices: Vec<&[PolicyRef<'_>]> = layer_refs.iter().map(Vec::as_slice).collect();
    let req = stsd_policy::Request {
        action: check.action,
        resource: check.resource,
        principal: None,
        context: ctx,
    };
    stsd_policy::evaluate_layers(&refs, &slices, &req)
}

/// Evaluates one check against a policy set.
pub fn decide(set: &PolicySet, ctx: &Context, check: Check<'_>) -> LayeredDecision {
    let refs = set.refs();
    let req = stsd_policy::Request {
        action: check.action,
        resource: check.resource,
        principal: None,
        context: ctx,
    };
    stsd_policy::evaluate_layers(&refs, &[], &req)
}
