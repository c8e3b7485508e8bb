//! Parsing, validation (IAM's checks and messages, in moto's order) and compilation of a policy
//! document.

use crate::condition::{Cond, Family, Op, Vals};
use crate::json::{self, JVal, Node};
use crate::pattern::{ActionSet, ArnPattern, Pattern};
use crate::value::{Cidr, parse_bool, parse_date, parse_num};
use crate::{PolicyError, Position};

/// Where a policy is attached, which decides the elements it may or must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Identity-based policy (user/group/role inline or managed), also used for session policies
    /// and permissions boundaries: no `Principal`/`NotPrincipal`, `Resource`/`NotResource` required.
    Identity,
    /// A role trust policy: `Principal` required, no `NotPrincipal`, no `Resource`, actions only
    /// `sts:AssumeRole`, `sts:AssumeRoleWithSAML`, `sts:AssumeRoleWithWebIdentity` (plus
    /// `sts:TagSession`, `sts:SetSourceIdentity`, which AWS documents for trust policies).
    Trust,
    /// Another resource-based policy: `Principal` or `NotPrincipal` required, resources required.
    Resource,
}

/// Options for [`Policy::parse_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept a missing `Version` or `2008-10-17` (then `${…}` is literal text). IAM requires
    /// `2012-10-17` for managed policies; [`Policy::parse`] applies that to every document, as moto
    /// does. Set this for documents AWS accepts in the old version (e.g. legacy inline or trust
    /// policies).
    pub allow_legacy_version: bool,
}

/// Statement effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// `Principal` / `NotPrincipal` contents.
#[derive(Clone, Debug, Default)]
pub(crate) struct Principals {
    /// `"*"` or `{"AWS": "*"}`.
    pub any: bool,
    /// AWS principals as ARNs (an account id is stored as `arn:aws:iam::ACCT:root`).
    pub aws: Vec<String>,
    /// `Service`, `Federated` and `CanonicalUser` values, compared with the caller's ARN as is.
    pub other: Vec<String>,
}

/// A compiled statement.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub effect: Effect,
    /// `true` for `NotAction`.
    pub not_action: bool,
    /// Actions (matched case-insensitively).
    pub actions: ActionSet,
    /// `None` when the statement has no resource element (trust policies): any resource.
    pub resources: Option<(bool, Box<[ArnPattern]>)>,
    /// `(is NotPrincipal, principals)`.
    pub principal: Option<(bool, Principals)>,
    pub conds: Box<[Cond]>,
    pub start: Position,
    pub end: Position,
}

/// A parsed, validated and compiled policy document. Cheap to clone and share (`Send + Sync`);
/// evaluation never re-parses.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Shared: cloning a policy copies a pointer.
    pub(crate) statements: std::sync::Arc<[Statement]>,
    kind: PolicyKind,
    cond_keys: Vec<String>,
}

fn err(message: impl Into<String>) -> PolicyError {
    PolicyError {
        message: message.into(),
    }
}

fn syntax() -> PolicyError {
    err("Syntax errors in policy.")
}

const LEGACY: &str = "The policy failed legacy parsing";

const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

const IAM_PATHS: [&str; 13] = [
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

const TRUST_ACTIONS: [&str; 5] = [
    "sts:assumerole",
    "sts:assumerolewithsaml",
    "sts:assumerolewithwebidentity",
    "sts:tagsession",
    "sts:setsourceidentity",
];

/// A statement's members after the syntax pass.
struct Raw<'a> {
    m: &'a [(String, Node)],
    node: &'a Node,
}

impl<'a> Raw<'a> {
    fn get(&self, k: &str) -> Option<&'a Node> {
        json::get(self.m, k)
    }

    fn strs(&self, k: &str) -> Vec<&'a str> {
        match self.get(k).map(|n| &n.v) {
            Some(JVal::Str(s)) => vec![s.as_str()],
            Some(JVal::Arr(items)) => items
                .iter()
                .filter_map(|i| match &i.v {
                    JVal::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The element is present and not an empty list.
    fn non_empty(&self, k: &str) -> bool {
        match self.get(k).map(|n| &n.v) {
            Some(JVal::Arr(a)) => !a.is_empty(),
            Some(_) => true,
            None => false,
        }
    }

    fn label(&self, i: usize) -> String {
        match self.get("Sid").map(|n| &n.v) {
            Some(JVal::Str(s)) if !s.is_empty() => format!("statement {} (Sid {s})", i + 1),
            _ => format!("statement {}", i + 1),
        }
    }
}

fn is_str_or_str_list(n: &Node) -> bool {
    match &n.v {
        JVal::Str(_) => true,
        JVal::Arr(a) => a.iter().all(|i| matches!(i.v, JVal::Str(_))),
        _ => false,
    }
}

fn is_scalar(n: &Node) -> bool {
    matches!(n.v, JVal::Str(_) | JVal::Num(_) | JVal::Bool(_))
}

fn check_principal_syntax(n: &Node) -> bool {
    match &n.v {
        JVal::Str(s) => s == "*",
        JVal::Obj(m) => {
            !m.is_empty()
                && m.iter().all(|(k, v)| {
                    matches!(
                        k.as_str(),
                        "AWS" | "Service" | "Federated" | "CanonicalUser"
                    ) && match &v.v {
                        JVal::Str(_) => true,
                        JVal::Arr(a) => {
                            !a.is_empty() && a.iter().all(|i| matches!(i.v, JVal::Str(_)))
                        }
                        _ => false,
                    }
                })
        }
        _ => false,
    }
}

fn check_statement_syntax(n: &Node) -> Option<()> {
    let m = n.as_obj()?;
    if !m.iter().all(|(k, _)| STATEMENT_KEYS.contains(&k.as_str())) {
        return None;
    }
    let has = |k: &str| json::get(m, k).is_some();
    if (has("Action") && has("NotAction"))
        || (has("Resource") && has("NotResource"))
        || (has("Principal") && has("NotPrincipal"))
    {
        return None;
    }
    match json::get(m, "Effect").map(|e| &e.v) {
        Some(JVal::Str(e)) if e.eq_ignore_ascii_case("allow") || e.eq_ignore_ascii_case("deny") => {
        }
        _ => return None,
    }
    for k in ["Action", "NotAction", "Resource", "NotResource"] {
        if let Some(v) = json::get(m, k)
            && !is_str_or_str_list(v)
        {
            return None;
        }
    }
    for k in ["Principal", "NotPrincipal"] {
        if let Some(v) = json::get(m, k)
            && !check_principal_syntax(v)
        {
            return None;
        }
    }
    if let Some(c) = json::get(m, "Condition") {
        for (op, block) in c.as_obj()? {
            let block = block.as_obj()?;
            for (_, v) in block {
                let ok = match &v.v {
                    JVal::Arr(a) => a.iter().all(is_scalar),
                    _ => is_scalar(v),
                };
                if !ok {
                    return None;
                }
            }
            if Op::parse(op).is_none() && !block.is_empty() {
                return None;
            }
        }
    }
    if let Some(s) = json::get(m, "Sid")
        && !matches!(s.v, JVal::Str(_))
    {
        return None;
    }
    Some(())
}

/// moto's resource-format check: the message of the first problem, if any.
fn resource_format_error(r: &str) -> Option<String> {
    if r == "*" {
        return None;
    }
    let Some((_, rest)) = r.split_once(':') else {
        return Some(format!("Resource {r} must be in ARN format or \"*\"."));
    };
    let (partition, rest) = match rest.split_once(':') {
        Some((p, rest)) => (p, Some(rest)),
        None => (rest, None),
    };
    if !PARTITIONS.contains(&partition) {
        let parts: Vec<&str> = rest.unwrap_or_default().split(':').collect();
        let first = parts.first().copied().unwrap_or_default();
        let a1 = if !first.is_empty() || parts.len() > 1 {
            first
        } else {
            "*"
        };
        let a2 = parts.get(1).copied().unwrap_or("*");
        let a3 = parts.get(2).copied().unwrap_or("*");
        let a4 = if parts.len() > 3 {
            parts[3..].join(":")
        } else {
            "*".to_owned()
        };
        return Some(format!(
            "Partition \"{partition}\" is not valid for resource \"arn:{partition}:{a1}:{a2}:{a3}:{a4}\"."
        ));
    }
    let vendor =
        || "Resource vendor must be fully qualified and cannot contain regexes.".to_owned();
    let Some(rest) = rest else {
        return Some(vendor());
    };
    let (service, after_service) = match rest.split_once(':') {
        Some((s, a)) => (s, Some(a)),
        None => (rest, None),
    };
    if service.is_empty() || service.contains(['*', '?']) {
        return Some(vendor());
    }
    let region_empty = after_service.is_some_and(|a| a.starts_with(':'));
    if !region_empty {
        match service {
            "iam" => {
                return Some(format!(
                    "IAM resource {r} cannot contain region information."
                ));
            }
            "s3" => return Some(format!("Resource {r} can not contain region information.")),
            _ => {}
        }
    }
    if service == "iam" {
        let resource = after_service
            .and_then(|a| a.split_once(':'))
            .and_then(|(_, a)| a.split_once(':'))
            .map_or("", |(_, res)| res);
        if resource != "*" && !IAM_PATHS.iter().any(|p| resource.starts_with(p)) {
            return Some(format!(
                "IAM resource path must either be \"*\" or start with {}.",
                IAM_PATHS.join(", ")
            ));
        }
    }
    None
}

/// moto's legacy ARN shape check (`arn:aws:s3::bucket` fails).
fn resource_legacy_ok(r: &str) -> bool {
    if r == "*" {
        return true;
    }
    (r.matches(':').count() >= 5 || !r.contains("::"))
        && r.split(':').nth(2).is_some_and(|s| !s.is_empty())
}

fn action_prefix_error(a: &str) -> Option<String> {
    let parts: Vec<&str> = a.split(':').collect();
    if parts.len() == 1 && a != "*" {
        return Some(
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.".into(),
        );
    }
    if parts.len() > 2 {
        return Some("Actions/Condition can contain only one colon.".into());
    }
    let vendor = parts.first().copied().unwrap_or_default();
    if vendor != "*"
        && !vendor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Some(format!("Vendor {vendor} is not valid"));
    }
    None
}

/// Is `v` a well-formed `"AWS"` principal: `*`, an account id, an IAM/STS ARN of a 12-digit
/// account without wildcards (`…:root`, `user/…`, `role/…`, `assumed-role/…`, `federated-user/…`),
/// or a unique id (`AIDA…`, `AROA…`, as IAM stores principals)?
fn valid_aws_principal(v: &str) -> bool {
    let account = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    if v == "*" || account(v) {
        return true;
    }
    if v.len() >= 16
        && v.starts_with('A')
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return true;
    }
    if v.contains(['*', '?']) {
        return false;
    }
    match crate::pattern::arn_parts(v) {
        Some(["arn", partition, "iam", "", acct, res])
            if PARTITIONS.contains(&partition) && account(acct) =>
        {
            res == "root"
                || ["user/", "role/", "federated-user/"]
                    .iter()
                    .any(|p| res.len() > p.len() && res.starts_with(p))
        }
        Some(["arn", partition, "sts", "", acct, res])
            if PARTITIONS.contains(&partition) && account(acct) =>
        {
            ["assumed-role/", "federated-user/"]
                .iter()
                .any(|p| res.len() > p.len() && res.starts_with(p))
        }
        _ => false,
    }
}

/// IAM's message for a principal it cannot accept: malformed, or (checked by the caller against
/// the store) a user or role that does not exist.
pub fn invalid_principal_message(aws_principal: &str) -> String {
    format!("Invalid principal in policy: \"AWS\":\"{aws_principal}\"")
}

/// Condition value as text (JSON strings, numbers and booleans).
fn scalar_text(n: &Node) -> Option<&str> {
    match &n.v {
        JVal::Str(s) | JVal::Num(s) => Some(s),
        JVal::Bool(true) => Some("true"),
        JVal::Bool(false) => Some("false"),
        _ => None,
    }
}

fn cond_values(n: &Node) -> Vec<&Node> {
    match &n.v {
        JVal::Arr(a) => a.iter().collect(),
        _ => vec![n],
    }
}

fn compile_cond(
    op: Op,
    opname: &str,
    key: &str,
    v: &Node,
    vars: bool,
    label: &str,
) -> Result<Cond, PolicyError> {
    let items = cond_values(v);
    let texts: Vec<&str> = items.iter().filter_map(|n| scalar_text(n)).collect();
    let bad = |t: &str, what: &str| {
        err(format!(
            "Invalid {what} value \"{t}\" for condition operator {opname} and key {key} in {label}."
        ))
    };
    let vals = match op.family {
        Family::StringEq | Family::StringEqIgnoreCase => {
            Vals::Str(texts.iter().map(|t| Pattern::new(t, false, vars)).collect())
        }
        Family::StringLike => {
            Vals::Str(texts.iter().map(|t| Pattern::new(t, true, vars)).collect())
        }
        Family::Numeric(_) => Vals::Num(
            texts
                .iter()
                .map(|t| parse_num(t).ok_or_else(|| bad(t, "numeric")))
                .collect::<Result<_, _>>()?,
        ),
        Family::Date(_) => Vals::Date(
            texts
                .iter()
                .map(|t| parse_date(t).ok_or_else(|| err(LEGACY)))
                .collect::<Result<_, _>>()?,
        ),
        Family::Bool | Family::Null => Vals::Bool(texts.iter().map(|t| parse_bool(t)).collect()),
        Family::Binary => {
            use base64::Engine as _;
            Vals::Bin(
                texts
                    .iter()
                    .map(|t| {
                        base64::engine::general_purpose::STANDARD
                            .decode(t.trim())
                            .map_err(|_| bad(t, "base64"))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Family::Ip => Vals::Ip(
            texts
                .iter()
                .map(|t| Cidr::parse(t).ok_or_else(|| bad(t, "IP address")))
                .collect::<Result<_, _>>()?,
        ),
        Family::Arn => Vals::Arn(
            texts
                .iter()
                .map(|t| ArnPattern::new(t, vars, true))
                .collect(),
        ),
    };
    Ok(Cond {
        op,
        key: key.into(),
        vals,
    })
}

fn compile_principals(n: &Node) -> Principals {
    let mut p = Principals::default();
    match &n.v {
        JVal::Str(_) => p.any = true,
        JVal::Obj(m) => {
            for (k, v) in m {
                let vals: Vec<&str> = match &v.v {
                    JVal::Str(s) => vec![s.as_str()],
                    JVal::Arr(a) => a
                        .iter()
                        .filter_map(|i| match &i.v {
                            JVal::Str(s) => Some(s.as_str()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for s in vals {
                    if k == "AWS" {
                        if s == "*" {
                            p.any = true;
                        } else if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
                            p.aws.push(format!("arn:aws:iam::{s}:root"));
                        } else {
                            p.aws.push(s.to_owned());
                        }
                    } else {
                        p.other.push(s.to_owned());
                    }
                }
            }
        }
        _ => {}
    }
    p
}

impl Policy {
    /// Parses, validates and compiles `document` for `kind`, requiring `"Version": "2012-10-17"`.
    ///
    /// # Errors
    /// [`PolicyError`] with IAM's `MalformedPolicyDocument` message for the first failing check.
    pub fn parse(document: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        Self::parse_with(document, kind, ParseOptions::default())
    }

    /// [`Policy::parse`] with options.
    ///
    /// # Errors
    /// [`PolicyError`] with IAM's `MalformedPolicyDocument` message for the first failing check.
    pub fn parse_with(
        document: &str,
        kind: PolicyKind,
        opts: ParseOptions,
    ) -> Result<Policy, PolicyError> {
        // 1. Syntax: character set, JSON, shape.
        if document.is_empty()
            || !document
                .chars()
                .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
        {
            return Err(syntax());
        }
        let root = json::parse(document).ok_or_else(syntax)?;
        let top = root.as_obj().ok_or_else(syntax)?;
        if !top
            .iter()
            .all(|(k, _)| matches!(k.as_str(), "Version" | "Id" | "Statement"))
        {
            return Err(syntax());
        }
        let version = match json::get(top, "Version").map(|v| &v.v) {
            None => None,
            Some(JVal::Str(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.as_str()),
            Some(_) => return Err(syntax()),
        };
        if let Some(id) = json::get(top, "Id")
            && !matches!(id.v, JVal::Str(_))
        {
            return Err(syntax());
        }
        let stmt_nodes: Vec<&Node> = match json::get(top, "Statement").map(|s| (s, &s.v)) {
            Some((s, JVal::Obj(_))) => vec![s],
            Some((_, JVal::Arr(a))) if !a.is_empty() => a.iter().collect(),
            _ => return Err(syntax()),
        };
        for n in &stmt_nodes {
            check_statement_syntax(n).ok_or_else(syntax)?;
        }
        let raws: Vec<Raw<'_>> = stmt_nodes
            .iter()
            .filter_map(|n| n.as_obj().map(|m| Raw { m, node: n }))
            .collect();

        // 2. Version.
        let v2012 = version == Some("2012-10-17");
        if !v2012 && !opts.allow_legacy_version {
            return Err(err(
                "Policy document must be version 2012-10-17 or greater.",
            ));
        }

        // 3. Legacy parsing: Effect case, dates, then resource formats and ARN shapes.
        for r in &raws {
            if !matches!(r.get("Effect").map(|e| &e.v), Some(JVal::Str(e)) if e == "Allow" || e == "Deny")
            {
                return Err(err(LEGACY));
            }
            if let Some(c) = r.get("Condition").and_then(Node::as_obj) {
                for (op, block) in c {
                    let Some(o) = Op::parse(op) else { continue };
                    if !matches!(o.family, Family::Date(_)) {
                        continue;
                    }
                    for (_, v) in block.as_obj().unwrap_or_default() {
                        for item in cond_values(v) {
                            if scalar_text(item).and_then(parse_date).is_none() {
                                return Err(err(LEGACY));
                            }
                        }
                    }
                }
            }
        }
        let mut resource_error: Option<String> = None;
        for key in ["Resource", "NotResource"] {
            for r in &raws {
                if r.get(key).is_none() {
                    continue;
                }
                for res in r.strs(key) {
                    if resource_error.is_none() {
                        resource_error = resource_format_error(res);
                    }
                }
                if resource_error.is_none()
                    && !r.strs(key).iter().all(|res| resource_legacy_ok(res))
                {
                    return Err(err(LEGACY));
                }
            }
        }

        // 4. Sids.
        let mut sids: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for r in &raws {
            if let Some(JVal::Str(s)) = r.get("Sid").map(|n| &n.v) {
                if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(err(
                        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
                    ));
                }
                if !s.is_empty() && !sids.insert(s.as_str()) {
                    return Err(err(
                        "Statement IDs (SID) in a single policy must be unique.",
                    ));
                }
            }
        }

        // 5. Actions present.
        for r in &raws {
            let key = if r.get("Action").is_some() {
                "Action"
            } else {
                "NotAction"
            };
            if !r.non_empty(key) {
                return Err(err("Policy statement must contain actions."));
            }
        }

        // 6. Resource format error found above.
        if let Some(e) = resource_error {
            return Err(err(e));
        }

        // 7. Action prefixes.
        for key in ["Action", "NotAction"] {
            for r in &raws {
                for a in r.strs(key) {
                    if let Some(e) = action_prefix_error(a) {
                        return Err(err(e));
                    }
                }
            }
        }

        // 8. Kind-specific checks.
        match kind {
            PolicyKind::Identity | PolicyKind::Resource => {
                for r in &raws {
                    let key = if r.get("Resource").is_some() {
                        "Resource"
                    } else {
                        "NotResource"
                    };
                    if !r.non_empty(key) {
                        return Err(err("Policy statement must contain resources."));
                    }
                }
                for r in &raws {
                    let has_principal =
                        r.get("Principal").is_some() || r.get("NotPrincipal").is_some();
                    if kind == PolicyKind::Identity && has_principal {
                        return Err(err("Policy document should not specify a principal."));
                    }
                    if kind == PolicyKind::Resource && !has_principal {
                        return Err(err("Missing required field Principal."));
                    }
                }
            }
            PolicyKind::Trust => {
                for r in &raws {
                    for key in ["Action", "NotAction"] {
                        if r.strs(key)
                            .iter()
                            .any(|a| !TRUST_ACTIONS.contains(&a.to_ascii_lowercase().as_str()))
                        {
                            return Err(err(
                                "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
                            ));
                        }
                    }
                }
                for r in &raws {
                    for key in ["Resource", "NotResource", "NotPrincipal"] {
                        if r.get(key).is_some() {
                            return Err(err(format!("Has prohibited field {key}.")));
                        }
                    }
                    if r.get("Principal").is_none() {
                        return Err(err("Missing required field Principal."));
                    }
                }
            }
        }

        // 9. AWS principal shapes (trust and resource policies).
        if kind != PolicyKind::Identity {
            for r in &raws {
                for key in ["Principal", "NotPrincipal"] {
                    if let Some(JVal::Obj(m)) = r.get(key).map(|n| &n.v)
                        && let Some(aws) = json::get(m, "AWS")
                    {
                        let vals: Vec<&str> = match &aws.v {
                            JVal::Str(s) => vec![s.as_str()],
                            JVal::Arr(a) => a
                                .iter()
                                .filter_map(|i| match &i.v {
                                    JVal::Str(s) => Some(s.as_str()),
                                    _ => None,
                                })
                                .collect(),
                            _ => Vec::new(),
                        };
                        if let Some(bad) = vals.into_iter().find(|v| !valid_aws_principal(v)) {
                            return Err(err(invalid_principal_message(bad)));
                        }
                    }
                }
            }
        }

        // 10. Compile.
        let mut statements = Vec::with_capacity(raws.len());
        let mut cond_keys: Vec<String> = Vec::new();
        let mut seen_keys: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (i, r) in raws.iter().enumerate() {
            let label = r.label(i);
            let effect = match r.get("Effect").map(|e| &e.v) {
                Some(JVal::Str(e)) if e == "Deny" => Effect::Deny,
                _ => Effect::Allow,
            };
            let not_action = r.get("NotAction").is_some();
            let akey = if not_action { "NotAction" } else { "Action" };
            let actions = ActionSet::new(r.strs(akey).into_iter());
            let resources = if r.get("Resource").is_some() || r.get("NotResource").is_some() {
                let not = r.get("NotResource").is_some();
                let key = if not { "NotResource" } else { "Resource" };
                Some((
                    not,
                    r.strs(key)
                        .iter()
                        .map(|s| ArnPattern::new(s, v2012, false))
                        .collect(),
                ))
            } else {
                None
            };
            let principal = match (r.get("Principal"), r.get("NotPrincipal")) {
                (Some(p), _) => Some((false, compile_principals(p))),
                (None, Some(p)) => Some((true, compile_principals(p))),
                (None, None) => None,
            };
            let mut conds = Vec::new();
            if let Some(c) = r.get("Condition").and_then(Node::as_obj) {
                for (opname, block) in c {
                    let Some(op) = Op::parse(opname) else {
                        continue;
                    };
                    for (key, v) in block.as_obj().unwrap_or_default() {
                        conds.push(compile_cond(op, opname, key, v, v2012, &label)?);
                        if seen_keys.insert(key.to_ascii_lowercase()) {
                            cond_keys.push(key.clone());
                        }
                    }
                }
            }
            statements.push(Statement {
                effect,
                not_action,
                actions,
                resources,
                principal,
                conds: conds.into_boxed_slice(),
                start: r.node.start,
                end: r.node.end,
            });
        }
        Ok(Policy {
            statements: statements.into(),
            kind,
            cond_keys,
        })
    }

    /// The `"AWS"` principals named in `Principal`/`NotPrincipal` elements, in document order,
    /// deduplicated (an account id is returned as `arn:aws:iam::ACCT:root`). For the write path of
    /// trust policies: IAM rejects a user or role that does not exist with
    /// [`invalid_principal_message`].
    pub fn aws_principals(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.statements.iter() {
            if let Some((_, p)) = &s.principal {
                if p.any && !out.iter().any(|o| o == "*") {
                    out.push("*".to_owned());
                }
                for a in &p.aws {
                    if !out.contains(a) {
                        out.push(a.clone());
                    }
                }
            }
        }
        out
    }

    /// Number of statements.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// The kind the policy was parsed as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// Condition keys referenced in `Condition` blocks, as first written, deduplicated
    /// case-insensitively, in document order (for `GetContextKeysFor*Policy` and the simulator's
    /// `MissingContextValues`).
    pub fn condition_keys(&self) -> Vec<String> {
        self.cond_keys.clone()
    }

    /// Keys used as policy variables (`${aws:username}`) in resources and condition values, as
    /// written, deduplicated case-insensitively.
    pub fn variable_keys(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |k: &str| {
            if seen.insert(k.to_ascii_lowercase()) {
                out.push(k.to_owned());
            }
        };
        for s in self.statements.iter() {
            if let Some((_, rs)) = &s.resources {
                rs.iter().flat_map(ArnPattern::var_keys).for_each(&mut add);
            }
            for c in s.conds.iter() {
                match &c.vals {
                    Vals::Str(ps) => ps.iter().flat_map(Pattern::var_keys).for_each(&mut add),
                    Vals::Arn(ps) => ps.iter().flat_map(ArnPattern::var_keys).for_each(&mut add),
                    _ => {}
                }
            }
        }
        out
    }

    /// Start and end of statement `i` in the document: the position of its `{` and the position
    /// just after its `}` (1-based line and column, columns counted in characters). Out of range:
    /// `(1:1, 1:1)`.
    pub fn statement_span(&self, i: usize) -> (Position, Position) {
        self.statements.get(i).map_or(
            (
                Position { line: 1, column: 1 },
                Position { line: 1, column: 1 },
            ),
            |s| (s.start, s.end),
        )
    }
}
