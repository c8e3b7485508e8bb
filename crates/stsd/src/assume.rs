//! `AssumeRole` and `GetScopedCredentials`: role sessions and scoped sessions (reference
//! `roles-and-sessions.md`).
//!
//! Who may assume a role (§5, policy reference §4.1): the role's trust policy must allow the caller,
//! an explicit deny anywhere wins, and in the same account a trust policy that names the account
//! (`:root`) or everyone (`"AWS": "*"`) also needs the caller's identity policies to allow
//! `sts:AssumeRole` on the role, while one that names the caller's user ARN (or the calling session's
//! role or `assumed-role` ARN) grants by itself. The root may not assume roles.
//!
//! MFA: `aws:MultiFactorAuthPresent` is `true` in the trust evaluation when this call carried a valid
//! code, or when the calling session was obtained with MFA (GetSessionToken with MFA, then
//! AssumeRole: the aws-vault chain); the role session keeps that MFA state and its original time, so
//! `aws:MultiFactorAuthAge` counts from the original verification.

use crate::auth::{Caller, assumed_role_arn};
use crate::authz::{self, Check, context};
use crate::iam::roles::role_arn;
use crate::state::AppState;
use crate::sts::{Executed, MFA_BOTH_REQUIRED, verify_mfa};
use stsd_core::ids;
use stsd_core::timefmt::iso8601;
use stsd_core::token::{MfaContext, Principal, SessionClaims, SessionExt, compact_json};
use stsd_policy::{
    Decision, Policy, PolicyKind, PolicyRef, PrincipalInfo, SourceKind, Value,
    access_denied_message, access_denied_text,
};
use stsd_proto::ApiError;
use stsd_proto::error::MFA_UNABLE_TO_VALIDATE;
use stsd_proto::sts::{self as wire, AssumeRoleInput, GetScopedCredentialsInput};
use stsd_store::Owner;

/// Default duration of a role session.
pub const ROLE_DEFAULT_DURATION: i64 = 3600;
/// Longest session a role session may create by assuming another role.
pub const CHAINED_MAX_DURATION: i64 = 3600;
/// Scope-down layers a session may carry.
pub const MAX_SCOPE_LAYERS: usize = 3;

const ASSUME: &str = "sts:AssumeRole";

/// `arn:aws:iam::ACCT:role/PATH/NAME` → `(account, path, name)`.
fn split_role_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let full = resource.strip_prefix("role")?;
    if !full.starts_with('/') {
        return None;
    }
    let cut = full.rfind('/')?;
    let (path, name) = (&full[..=cut], &full[cut + 1..]);
    (!name.is_empty()).then_some((account, path, name))
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "MalformedPolicyDocument", message)
}

fn packed_too_large(claims: &SessionClaims) -> ApiError {
    let len = claims.token_len().unwrap_or(usize::MAX / 200);
    let pct = (len * 100).div_ceil(stsd_proto::sts::MAX_SESSION_TOKEN_SIZE);
    ApiError::new(
        400,
        "PackedPolicyTooLarge",
        format!("Packed policy consumes {pct}% of allotted space, please use smaller policy."),
    )
}

/// Compiles a session policy (identity grammar), as AWS reports a bad one.
fn session_policy(doc: &str) -> Result<String, ApiError> {
    Policy::parse(doc, PolicyKind::Identity).map_err(|e| malformed(e.message))?;
    Ok(compact_json(doc))
}

/// Seals claims and writes the credentials; `TooLarge` is `PackedPolicyTooLarge`.
fn seal(
    state: &AppState,
    claims: &SessionClaims,
    min: Option<i64>,
    request_id: &str,
) -> Result<String, ApiError> {
    let min = usize::try_from(min.unwrap_or(0)).unwrap_or(0);
    state.key_ring().seal(claims, min).map_err(|e| match e {
        stsd_core::token::TokenError::TooLarge => packed_too_large(claims),
        e => {
            tracing::error!(request_id, error = %e, "sealing a session token failed");
            ApiError::internal()
        }
    })
}

/// Runs `AssumeRole`. `device`: the MFA device the request names, if it was read with the caller's key.
///
/// # Errors
/// The AWS error.
pub async fn assume_role(
    state: &AppState,
    caller: &Caller,
    transport: &context::Transport<'_>,
    input: &AssumeRoleInput,
    request_id: &str,
    device: Option<crate::state::DeviceRead>,
) -> Result<Executed, ApiError> {
    let now = state.clock.now();
    let account = &state.account;
    let identity = caller.identity(account);
    // Whose MFA devices a code may come from.
    let owner_id: Option<String> = match caller {
        Caller::LongTerm(k) => match &k.owner {
            Owner::Root => None,
            Owner::User(u) => Some(u.user_id.clone()),
        },
        Caller::Session(c) => match &c.principal {
            Principal::Root => None,
            Principal::User { user_id, .. } => Some(user_id.clone()),
            Principal::Role { .. } => Some(String::new()),
        },
    };
    let Some(owner_id) = owner_id else {
        return Err(ApiError::access_denied(
            "Roles may not be assumed by root accounts.",
        ));
    };
    if input
        .source_identity
        .as_deref()
        .is_some_and(|s| s.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(ApiError::validation(
            "SourceIdentity cannot start with the reserved prefix 'aws:'",
        ));
    }
    // MFA given with this call: the same verification, replay refusal and lock-out as
    // GetSessionToken. Otherwise the calling session's MFA state carries over.
    let parent = caller.claims();
    let call_mfa = match (&input.serial_number, &input.token_code) {
        (None, None) => None,
        (Some(serial), Some(code)) => {
            if owner_id.is_empty() {
                // A role session has no MFA devices of its own.
                return Err(ApiError::access_denied(MFA_UNABLE_TO_VALIDATE));
            }
            Some(Box::pin(verify_mfa(state, &owner_id, serial, code, now, device)).await?)
        }
        _ => return Err(ApiError::access_denied(MFA_BOTH_REQUIRED)),
    };
    let mfa: Option<MfaContext> = call_mfa
        .clone()
        .or_else(|| parent.and_then(|c| c.mfa.clone()));
    let chained = caller.is_role_session();

    // The request context of the trust evaluation.
    let who = context::Who::of(caller, account);
    let client = context::client(transport, &state.authz.settings.trusted_proxies);
    let user_agent = transport
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let mut ctx = context::build(
        Some(caller),
        &who,
        account,
        now,
        Some(client),
        user_agent,
        &state
            .regions
            .as_deref()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_else(|| "us-east-1".into()),
    );
    if call_mfa.is_some() {
        ctx.set_static("aws:MultiFactorAuthPresent", Value::Bool(true));
        ctx.set_static("aws:MultiFactorAuthAge", Value::Num(0.0));
    }
    ctx.set_static(
        "sts:RoleSessionName",
        Value::Str(input.role_session_name.clone()),
    );
    if let Some(e) = &input.external_id {
        ctx.set_static("sts:ExternalId", Value::Str(e.clone()));
    }
    if let Some(s) = &input.source_identity {
        ctx.set_static("sts:SourceIdentity", Value::Str(s.clone()));
    }
    for (k, v) in &input.tags {
        ctx.set(&format!("aws:RequestTag/{k}"), Value::Str(v.clone()));
    }
    if !input.tags.is_empty() {
        ctx.set_list(
            "aws:TagKeys",
            input
                .tags
                .iter()
                .map(|(k, _)| Value::Str(k.clone()))
                .collect(),
        );
    }
    if !input.transitive_tag_keys.is_empty() {
        ctx.set_list(
            "sts:TransitiveTagKeys",
            input
                .transitive_tag_keys
                .iter()
                .map(|k| Value::Str(k.clone()))
                .collect(),
        );
    }

    let deny = |tail: String| ApiError::access_denied(tail);
    let no_trust = |shown: &str| {
        deny(access_denied_text(
            &identity.arn,
            ASSUME,
            Some(shown),
            "role trust",
            false,
            None,
        ))
    };
    // The role: in this account, by name, with the path the ARN names.
    let trusted_role = match split_role_arn(&input.role_arn) {
        Some((acct, path, name)) if acct == account.as_str() => authz::role_for_assume(state, name)
            .await?
            .filter(|t| t.role.path == path && t.role.name == name),
        _ => None,
    };
    let Some(trusted_role) = trusted_role else {
        return Err(no_trust(&input.role_arn));
    };
    let role = &trusted_role.role;
    let arn = role_arn(account, &role.path, &role.name);
    let trust_refs = [PolicyRef {
        policy: &trusted_role.trust,
        id: "trust",
        kind: SourceKind::Resource,
    }];
    // The ARN trust policies name the caller by: the user's, or for a role session the role's (and
    // the session's own assumed-role ARN).
    let principal_arn = who
        .role
        .as_ref()
        .map_or_else(|| identity.arn.clone(), |r| r.role_arn.clone());
    let trust_eval = |action: &str, arn_as: &str, acct: &str| {
        stsd_policy::evaluate(
            &trust_refs,
            &stsd_policy::Request {
                action,
                resource: &arn,
                principal: Some(PrincipalInfo {
                    arn: arn_as,
                    account: acct,
                }),
                context: &ctx,
            },
        )
    };
    let trusted = trust_eval(ASSUME, &principal_arn, account);
    if let Decision::ExplicitDeny(_) = trusted {
        return Err(deny(access_denied_text(
            &identity.arn,
            ASSUME,
            Some(&arn),
            "role trust",
            true,
            None,
        )));
    }
    // The caller's identity policies (∩ its session layers).
    let set = match (&who.role, &who.user) {
        (Some(r), _) => authz::role_policy_set(state, &r.role_id).await?,
        (None, Some((user_id, _, _))) => authz::user_policy_set(state, user_id).await?,
        (None, None) => return Err(deny("Roles may not be assumed by root accounts.".into())),
    };
    let layers = authz::session_layers(state, &who).await?;
    let check = Check {
        action: ASSUME,
        resource: &arn,
        shown: Some(&arn),
    };
    let id_decision = authz::decide_layers(&set, &layers, &ctx, check);
    if let Decision::ExplicitDeny(_) = id_decision.decision {
        return Err(deny(access_denied_message(
            &identity.arn,
            ASSUME,
            Some(&arn),
            &id_decision,
        )));
    }
    if !trusted.is_allowed() {
        return Err(no_trust(&arn));
    }
    // A trust policy that names the caller itself grants without an identity allow; one that names
    // the account or everyone needs the identity policies too.
    let everyone = trust_eval(ASSUME, "", "").is_allowed();
    let named_session = chained && trust_eval(ASSUME, &identity.arn, "").is_allowed();
    let named = trust_eval(ASSUME, &principal_arn, "").is_allowed() || named_session;
    let granted_by_trust = named && !everyone;
    if granted_by_trust && chained && !named_session && !layers.is_empty() {
        // Naming the calling session's role (not the session itself): still limited by the session's
        // own session policies (policy reference §4.1.6).
        let d = authz::decide_layers(&authz::allow_all(), &layers, &ctx, check);
        if !d.decision.is_allowed() {
            return Err(deny(access_denied_message(
                &identity.arn,
                ASSUME,
                Some(&arn),
                &d,
            )));
        }
    }
    if !granted_by_trust && !id_decision.decision.is_allowed() {
        return Err(deny(access_denied_message(
            &identity.arn,
            ASSUME,
            Some(&arn),
            &id_decision,
        )));
    }
    // Passing tags and a source identity needs the trust policy's leave too.
    for (needed, action) in [
        (!input.tags.is_empty(), "sts:TagSession"),
        (input.source_identity.is_some(), "sts:SetSourceIdentity"),
    ] {
        if needed && !trust_eval(action, &principal_arn, account).is_allowed() {
            return Err(deny(access_denied_text(
                &identity.arn,
                action,
                Some(&arn),
                "role trust",
                false,
                None,
            )));
        }
    }

    // Durations (after authorization: the role's limit is not revealed to strangers).
    let duration = input.duration_seconds.unwrap_or(ROLE_DEFAULT_DURATION);
    if chained && duration > CHAINED_MAX_DURATION {
        return Err(ApiError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > role.max_session_duration {
        return Err(ApiError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }

    // Session policies, tags (transitive ones inherited), source identity (set once).
    let policy = input.policy.as_deref().map(session_policy).transpose()?;
    for a in &input.policy_arns {
        if !a.starts_with("arn:aws:iam::") || !a.contains(":policy/") {
            return Err(ApiError::invalid_input(format!("ARN {a} is not valid.")));
        }
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut transitive: Vec<String> = Vec::new();
    if let Some(p) = parent {
        for (k, v) in &p.ext.tags {
            if p.ext
                .transitive_tag_keys
                .iter()
                .any(|t| t.eq_ignore_ascii_case(k))
            {
                tags.push((k.clone(), v.clone()));
                transitive.push(k.clone());
            }
        }
    }
    for (k, v) in &input.tags {
        if transitive.iter().any(|t| t.eq_ignore_ascii_case(k)) {
            return Err(ApiError::invalid_input(format!(
                "One or more of the specified transitive tag keys conflict with the inherited tag {k}"
            )));
        }
        tags.retain(|(old, _)| !old.eq_ignore_ascii_case(k));
        tags.push((k.clone(), v.clone()));
    }
    for k in &input.transitive_tag_keys {
        if !transitive.iter().any(|t| t.eq_ignore_ascii_case(k)) {
            transitive.push(k.clone());
        }
    }
    let inherited_source = parent.and_then(|p| p.ext.source_identity.clone());
    let source_identity = match (inherited_source, &input.source_identity) {
        (Some(old), Some(new)) if &old != new => {
            return Err(ApiError::access_denied(
                "SourceIdentity cannot be changed once it is set in a role chain",
            ));
        }
        (Some(old), _) => Some(old),
        (None, new) => new.clone(),
    };
    let claims = SessionClaims {
        account_id: state.account_id,
        principal: Principal::Role {
            role_id: role.role_id.clone(),
            name: role.name.clone(),
            path: role.path.clone(),
            session_name: input.role_session_name.clone(),
        },
        access_key_id: ids::new_session_key_id(state.account_id),
        secret_access_key: ids::new_secret_access_key(),
        source_access_key_id: caller.rate_limit_key().to_owned(),
        issued_at: now,
        expires_at: now + duration,
        mfa,
        ext: SessionExt {
            source_identity: source_identity.clone(),
            session_policy: policy,
            policy_arns: input.policy_arns.clone(),
            scope_policies: Vec::new(),
            tags,
            transitive_tag_keys: transitive,
        },
    };
    let token = seal(state, &claims, input.minimum_session_token_size, request_id)?;
    let expiration = iso8601(claims.expires_at);
    let assumed_id = format!("{}:{}", role.role_id, input.role_session_name);
    let session_arn = assumed_role_arn(account, &role.name, &input.role_session_name);
    let body = wire::assume_role_body(
        &wire::Credentials {
            access_key_id: &claims.access_key_id,
            secret_access_key: claims.secret_access_key.expose(),
            session_token: &token,
            expiration: &expiration,
        },
        &assumed_id,
        &session_arn,
        source_identity.as_deref(),
        request_id,
    );
    // At debug, as issued session tokens are: the audit log (`--audit-log`) is the record of each call.
    tracing::debug!(role = %role.name, session = %input.role_session_name, chained, mfa = claims.mfa.is_some(), "role assumed");
    let response = state.audit.is_some().then(|| {
        serde_json::json!({
            "credentials": {"accessKeyId": claims.access_key_id, "expiration": expiration},
            "assumedRoleUser": {"assumedRoleId": assumed_id, "arn": session_arn},
            "sessionTokenSize": token.len(),
        })
    });
    Ok(Executed { body, response })
}

/// Runs `GetScopedCredentials`: the caller's session, with one more scope-down layer and/or a
/// shorter life. The identity, MFA state, tags and source identity are unchanged; so is the issue
/// time, so revoking the parent's sessions revokes the scoped ones too.
///
/// # Errors
/// The AWS error.
pub fn get_scoped_credentials(
    state: &AppState,
    caller: &Caller,
    input: &GetScopedCredentialsInput,
    request_id: &str,
) -> Result<Executed, ApiError> {
    let Some(parent) = caller.claims() else {
        // Long-term keys are refused (the model; the text is not documented) [I].
        return Err(ApiError::access_denied(
            "GetScopedCredentials can only be called with temporary security credentials",
        ));
    };
    let now = state.clock.now();
    let mut ext = parent.ext.clone();
    if let Some(p) = &input.policy {
        if ext.scope_policies.len() >= MAX_SCOPE_LAYERS {
            return Err(ApiError::access_denied(format!(
                "The session already has the maximum of {MAX_SCOPE_LAYERS} scope-down policies"
            )));
        }
        ext.scope_policies.push(session_policy(p)?);
    }
    let expires_at = match input.duration_seconds {
        Some(d) if now + d > parent.expires_at => {
            return Err(ApiError::new(
                400,
                "InsufficientSessionLifetime",
                "The requested DurationSeconds exceeds the remaining lifetime of the calling session.",
            ));
        }
        Some(d) => now + d,
        None => parent.expires_at,
    };
    let claims = SessionClaims {
        account_id: parent.account_id,
        principal: parent.principal.clone(),
        access_key_id: ids::new_session_key_id(state.account_id),
        secret_access_key: ids::new_secret_access_key(),
        source_access_key_id: parent.source_access_key_id.clone(),
        issued_at: parent.issued_at,
        expires_at,
        mfa: parent.mfa.clone(),
        ext,
    };
    let token = seal(state, &claims, input.minimum_session_token_size, request_id)?;
    let expiration = iso8601(claims.expires_at);
    let identity = caller.identity(&state.account);
    let scoped_id = identity.user_id.clone();
    let body = wire::get_scoped_credentials_body(
        &wire::Credentials {
            access_key_id: &claims.access_key_id,
            secret_access_key: claims.secret_access_key.expose(),
            session_token: &token,
            expiration: &expiration,
        },
        &scoped_id,
        &identity.arn,
        claims.ext.scope_policies.len(),
        claims.ext.source_identity.as_deref(),
        request_id,
    );
    let response = state.audit.is_some().then(|| {
        serde_json::json!({
            "credentials": {"accessKeyId": claims.access_key_id, "expiration": expiration},
            "scopedPoliciesCount": claims.ext.scope_policies.len(),
            "sessionTokenSize": token.len(),
        })
    });
    Ok(Executed { body, response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert_eq!(
            split_role_arn("arn:aws:iam::123456789012:role/ops/admin"),
            Some(("123456789012", "/ops/", "admin"))
        );
        assert_eq!(
            split_role_arn("arn:aws:iam::123456789012:role/admin"),
            Some(("123456789012", "/", "admin"))
        );
        assert_eq!(split_role_arn("arn:aws:iam::123456789012:user/admin"), None);
        assert_eq!(split_role_arn("arn:aws:iam::123456789012:role/"), None);
    }
}
