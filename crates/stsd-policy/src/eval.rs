//! Evaluation (reference §4) and AWS's AccessDenied text (§6.1).

use crate::policy::{Effect, Policy, Principals, Statement};
use crate::value::Context;
use crate::{Position, pattern::arn_parts};

/// The caller, for `Principal`/`NotPrincipal` in trust and resource policies.
#[derive(Clone, Copy, Debug)]
pub struct PrincipalInfo<'a> {
    /// The caller's ARN as policies name it: user ARN, role ARN (for a role session trust
    /// policies name the role), `arn:aws:iam::ACCT:root`, or a service / federated principal.
    pub arn: &'a str,
    /// The caller's account id (matches `"AWS": "ACCT"` / `arn:aws:iam::ACCT:root`).
    pub account: &'a str,
}

/// One authorization question.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `service:Action`, e.g. `iam:CreateAccessKey` (any case).
    pub action: &'a str,
    /// The resource ARN, or `*` for actions without a resource type.
    pub resource: &'a str,
    /// The caller, if policies with a `Principal` are evaluated.
    pub principal: Option<PrincipalInfo<'a>>,
    /// Request context (keys present per AWS's rules).
    pub context: &'a Context,
}

/// Where a policy came from (the simulator's `SourcePolicyType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// User inline policy.
    User,
    /// Group inline policy.
    Group,
    /// Role inline policy.
    Role,
    /// AWS managed policy.
    AwsManaged,
    /// Customer managed policy.
    UserManaged,
    /// Resource-based policy (a trust policy is one).
    Resource,
    /// Session policy.
    Session,
    /// Anything else (e.g. SimulateCustomPolicy input).
    None,
}

impl SourceKind {
    /// The IAM `PolicySourceType` value: `user`, `group`, `role`, `aws-managed`, `user-managed`,
    /// `resource`, `none`. IAM has no value for session policies; they report `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::User => "user",
            SourceKind::Group => "group",
            SourceKind::Role => "role",
            SourceKind::AwsManaged => "aws-managed",
            SourceKind::UserManaged => "user-managed",
            SourceKind::Resource => "resource",
            SourceKind::Session | SourceKind::None => "none",
        }
    }

    fn is_managed(self) -> bool {
        matches!(self, SourceKind::AwsManaged | SourceKind::UserManaged)
    }
}

/// A policy with its identity, as given to [`evaluate`].
#[derive(Clone, Copy, Debug)]
pub struct PolicyRef<'a> {
    /// The compiled policy.
    pub policy: &'a Policy,
    /// Inline policy name or managed policy ARN (the simulator's `SourcePolicyId`).
    pub id: &'a str,
    /// Where it came from.
    pub kind: SourceKind,
}

/// A statement that applied to the request.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    /// Index of the policy in the slice given.
    pub policy: usize,
    /// Index of the statement in the policy.
    pub statement: usize,
    /// The policy's [`PolicyRef::id`].
    pub id: String,
    /// The policy's [`PolicyRef::kind`].
    pub kind: SourceKind,
    /// Statement start (see [`Policy::statement_span`]).
    pub start: Position,
    /// Statement end.
    pub end: Position,
}

/// Result of [`evaluate`]: the simulator's `allowed` / `explicitDeny` / `implicitDeny`.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Some Allow statement applied and no Deny: the Allow statements that applied.
    Allowed(Vec<Matched>),
    /// A Deny statement applied: every Deny statement that applied.
    ExplicitDeny(Vec<Matched>),
    /// Nothing applied.
    ImplicitDeny,
}

impl Decision {
    /// Is it `Allowed`?
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    /// The simulator's `EvalDecision` value: `allowed`, `explicitDeny`, `implicitDeny`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allowed(_) => "allowed",
            Decision::ExplicitDeny(_) => "explicitDeny",
            Decision::ImplicitDeny => "implicitDeny",
        }
    }
}

fn principal_listed(p: &Principals, who: Option<&PrincipalInfo<'_>>) -> bool {
    if p.any {
        return true;
    }
    let Some(w) = who else { return false };
    p.aws.iter().any(|a| {
        a == w.arn
            || matches!(arn_parts(a), Some([_, _, "iam", _, acct, "root"]) if acct == w.account)
    }) || p.other.iter().any(|o| o == w.arn)
}

/// The request as matched: action lower-cased, resource split once.
struct Prepared<'r> {
    action: &'r str,
    resource: &'r str,
    parts: Option<[&'r str; 6]>,
}

/// Does the statement apply to the request (action, resource, principal, every condition)?
fn applies(s: &Statement, p: &Prepared<'_>, req: &Request<'_>) -> bool {
    let ctx = req.context;
    if s.actions.matches(p.action, ctx) == s.not_action {
        return false;
    }
    if let Some((not, pats)) = &s.resources
        && pats
            .iter()
            .any(|pat| pat.matches_split(p.resource, p.parts.as_ref(), ctx) == Some(true))
            == *not
    {
        return false;
    }
    if let Some((not, pr)) = &s.principal
        && principal_listed(pr, req.principal.as_ref()) == *not
    {
        return false;
    }
    s.conds.iter().all(|c| c.eval(ctx))
}

/// Lower-cases `action` into `buf` when it is short ASCII (no allocation), else allocates.
fn lower_action<'b>(action: &str, buf: &'b mut [u8; 128]) -> std::borrow::Cow<'b, str> {
    match buf.get_mut(..action.len()) {
        Some(b) if action.is_ascii() => {
            b.copy_from_slice(action.as_bytes());
            b.make_ascii_lowercase();
            std::borrow::Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default())
        }
        _ => std::borrow::Cow::Owned(action.to_lowercase()),
    }
}

/// The outcome of [`decide`]: [`Decision`] without the matched statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Some Allow applied and no Deny.
    Allowed,
    /// A Deny applied.
    ExplicitDeny,
    /// Nothing applied.
    ImplicitDeny,
}

/// [`evaluate`] without collecting the matched statements: allocation-free for the common
/// operators, stops at the first applicable Deny. For the hot path; call [`evaluate`] again when
/// the details are needed (simulator, AccessDenied text).
pub fn decide(policies: &[PolicyRef<'_>], req: &Request<'_>) -> Outcome {
    let mut buf = [0u8; 128];
    let action = lower_action(req.action, &mut buf);
    let prepared = Prepared {
        action: &action,
        resource: req.resource,
        parts: arn_parts(req.resource),
    };
    let any = |effect: Effect| {
        policies.iter().any(|pr| {
            pr.policy
                .statements
                .iter()
                .any(|s| s.effect == effect && applies(s, &prepared, req))
        })
    };
    if any(Effect::Deny) {
        Outcome::ExplicitDeny
    } else if any(Effect::Allow) {
        Outcome::Allowed
    } else {
        Outcome::ImplicitDeny
    }
}

/// Evaluates policies as one set: the union of their Allow statements, an explicit Deny in any of
/// them wins (reference §4.1 steps 2–3).
///
/// The root user bypass (root may do everything) is the caller's job: do not call this for root.
pub fn evaluate(policies: &[PolicyRef<'_>], req: &Request<'_>) -> Decision {
    let mut buf = [0u8; 128];
    let action = lower_action(req.action, &mut buf);
    let prepared = Prepared {
        action: &action,
        resource: req.resource,
        parts: arn_parts(req.resource),
    };
    // Deny statements first: an Allow is only looked at (and recorded) when nothing denies.
    let collect = |effect: Effect| {
        let mut out = Vec::new();
        for (pi, pr) in policies.iter().enumerate() {
            for (si, s) in pr.policy.statements.iter().enumerate() {
                if s.effect == effect && applies(s, &prepared, req) {
                    out.push(Matched {
                        policy: pi,
                        statement: si,
                        id: pr.id.to_owned(),
                        kind: pr.kind,
                        start: s.start,
                        end: s.end,
                    });
                }
            }
        }
        out
    };
    let denies = collect(Effect::Deny);
    if !denies.is_empty() {
        return Decision::ExplicitDeny(denies);
    }
    let allows = collect(Effect::Allow);
    if allows.is_empty() {
        Decision::ImplicitDeny
    } else {
        Decision::Allowed(allows)
    }
}

/// Which kind of policy decided a layered evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The identity policies (user/group/role inline and managed).
    Identity,
    /// A session policy layer (AssumeRole `Policy`/`PolicyArns`, scope-down policies).
    Session,
}

/// Result of [`evaluate_layers`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayeredDecision {
    /// The decision.
    pub decision: Decision,
    /// For a deny: the layer whose Deny statement, or missing Allow, decided. For an allow:
    /// [`Layer::Identity`] (the identity layer's matches are reported).
    pub layer: Layer,
}

/// Identity policies intersected with each session layer: allowed only when the identity
/// policies allow and every session layer allows; an explicit Deny in any layer wins (identity
/// first, then layers in order). An empty session layer allows nothing.
pub fn evaluate_layers(
    identity: &[PolicyRef<'_>],
    sessions: &[&[PolicyRef<'_>]],
    req: &Request<'_>,
) -> LayeredDecision {
    evaluate_layers_indexed(identity, sessions, req).0
}

/// [`evaluate_layers`], also returning the index in `sessions` of the layer that decided a deny
/// (`None` when the identity layer decided or the request is allowed). Lets a caller that passes
/// a permissions boundary as one of the layers word AccessDenied itself
/// ([`access_denied_text`] with `permissions boundary`).
pub fn evaluate_layers_indexed(
    identity: &[PolicyRef<'_>],
    sessions: &[&[PolicyRef<'_>]],
    req: &Request<'_>,
) -> (LayeredDecision, Option<usize>) {
    let id = evaluate(identity, req);
    if matches!(id, Decision::ExplicitDeny(_)) {
        return (
            LayeredDecision {
                decision: id,
                layer: Layer::Identity,
            },
            None,
        );
    }
    let mut first_missing: Option<usize> = None;
    for (i, layer) in sessions.iter().enumerate() {
        let d = evaluate(layer, req);
        match d {
            Decision::ExplicitDeny(_) => {
                return (
                    LayeredDecision {
                        decision: d,
                        layer: Layer::Session,
                    },
                    Some(i),
                );
            }
            Decision::ImplicitDeny if first_missing.is_none() => first_missing = Some(i),
            _ => {}
        }
    }
    if !id.is_allowed() {
        return (
            LayeredDecision {
                decision: Decision::ImplicitDeny,
                layer: Layer::Identity,
            },
            None,
        );
    }
    match first_missing {
        Some(i) => (
            LayeredDecision {
                decision: Decision::ImplicitDeny,
                layer: Layer::Session,
            },
            Some(i),
        ),
        None => (
            LayeredDecision {
                decision: id,
                layer: Layer::Identity,
            },
            None,
        ),
    }
}

/// AWS's AccessDenied message (reference §6.1) for a layered decision.
///
/// `resource` is rendered as given (see §6.2: `user alice`, an ARN, …); `None` drops
/// ` on resource: …`. The type is `identity-based` (or `resource-based` when a resource policy
/// denied) for [`Layer::Identity`], `session` for [`Layer::Session`]; an explicit deny from a
/// managed policy gets the 2025 tail `: <policy ARN>`. For an `Allowed` decision (not an error)
/// the implicit-deny text is returned.
pub fn access_denied_message(
    caller_arn: &str,
    action: &str,
    resource: Option<&str>,
    d: &LayeredDecision,
) -> String {
    let base = match d.layer {
        Layer::Identity => "identity-based",
        Layer::Session => "session",
    };
    match &d.decision {
        Decision::ExplicitDeny(m) => {
            let ty = if d.layer == Layer::Identity
                && m.first().is_some_and(|m| m.kind == SourceKind::Resource)
            {
                "resource-based"
            } else {
                base
            };
            let arn = m
                .iter()
                .find(|m| m.kind.is_managed())
                .map(|m| m.id.as_str());
            access_denied_text(caller_arn, action, resource, ty, true, arn)
        }
        _ => access_denied_text(caller_arn, action, resource, base, false, None),
    }
}

/// The general AccessDenied form: `policy_type` is one of AWS's words (`identity-based`,
/// `resource-based`, `permissions boundary`, `session`, `role trust`, …); `explicit` selects
/// `with an explicit deny in a(n) … policy: ARN` (the ARN tail optional) over `because no … policy allows
/// the … action`; `permissions boundary` takes no word `policy`.
pub fn access_denied_text(
    caller_arn: &str,
    action: &str,
    resource: Option<&str>,
    policy_type: &str,
    explicit: bool,
    policy_arn: Option<&str>,
) -> String {
    let on = resource
        .map(|r| format!(" on resource: {r}"))
        .unwrap_or_default();
    // AWS writes "no permissions boundary allows", without "policy".
    let word = if policy_type == "permissions boundary" {
        ""
    } else {
        " policy"
    };
    if explicit {
        let article = if policy_type == "role trust" {
            "the"
        } else if policy_type.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let tail = policy_arn.map(|a| format!(": {a}")).unwrap_or_default();
        format!(
            "User: {caller_arn} is not authorized to perform: {action}{on} with an explicit deny in {article} {policy_type}{word}{tail}"
        )
    } else {
        format!(
            "User: {caller_arn} is not authorized to perform: {action}{on} because no {policy_type}{word} allows the {action} action"
        )
    }
}
