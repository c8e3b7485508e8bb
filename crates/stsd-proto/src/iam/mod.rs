//! The IAM API subset stsd implements (`2010-05-08`): users, access keys and MFA devices (here), inline
//! and managed policies (`policies.rs`), groups (`groups.rs`) and the policy simulator (`simulate.rs`).
//! Typed actions parsed from [`Params`] with IAM's validation grammar (values omitted from messages),
//! typed outputs, and their XML bodies.
//!
//! Shapes, member names and constraints follow the service model (botocore 1.44.8,
//! `botocore/data/iam/2010-05-08/service-2.json`).

use crate::error::ApiError;
use crate::params::Params;
use crate::request::{IAM_NS, IAM_VERSION};
use crate::validate::{Style, Violations, is_word, parse_int};
use crate::xml::{XmlWriter, success_body};

mod groups;
mod passwords;
mod policies;
mod roles;
mod simulate;

pub use groups::GroupView;
pub use passwords::{LoginProfileView, PasswordPolicyView};
pub use policies::{
    AttachedPolicyView, EntityFilter, EntityPolicyOp, EntityRef, HolderKind, PolicyEntityView,
    PolicyHolder, PolicyScope, PolicyVersionView, PolicyView, url_decode, url_encode,
};
pub use roles::RoleView;
pub use simulate::{
    ContextEntry, ContextKeyType, EvalDecision, EvaluationResultView, MatchedStatementView,
};

/// Default page size of list operations.
pub const DEFAULT_MAX_ITEMS: i64 = 100;

/// Paging input of list operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Resume after this marker (as returned by a truncated answer).
    pub marker: Option<String>,
    /// Page size, 1..=1000.
    pub max_items: i64,
}

/// `AssignmentStatus` of `ListVirtualMFADevices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Devices enabled for a user.
    Assigned,
    /// Devices not enabled for anyone.
    Unassigned,
    /// All devices.
    Any,
}

/// A parsed and validated IAM request.
#[derive(Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum IamAction {
    CreateUser {
        user_name: String,
        path: String,
    },
    GetUser {
        user_name: Option<String>,
    },
    ListUsers {
        path_prefix: String,
        page: Page,
    },
    DeleteUser {
        user_name: String,
    },
    CreateAccessKey {
        user_name: Option<String>,
    },
    ListAccessKeys {
        user_name: Option<String>,
        page: Page,
    },
    UpdateAccessKey {
        user_name: Option<String>,
        access_key_id: String,
        active: bool,
    },
    DeleteAccessKey {
        user_name: Option<String>,
        access_key_id: String,
    },
    GetAccessKeyLastUsed {
        access_key_id: String,
    },
    CreateVirtualMfaDevice {
        name: String,
        path: String,
    },
    EnableMfaDevice {
        user_name: String,
        serial_number: String,
        code1: String,
        code2: String,
    },
    ResyncMfaDevice {
        user_name: String,
        serial_number: String,
        code1: String,
        code2: String,
    },
    DeactivateMfaDevice {
        user_name: Option<String>,
        serial_number: String,
    },
    DeleteVirtualMfaDevice {
        serial_number: String,
    },
    ListMfaDevices {
        user_name: Option<String>,
        page: Page,
    },
    ListVirtualMfaDevices {
        assignment: Assignment,
        page: Page,
    },
    GetMfaDevice {
        serial_number: String,
        user_name: Option<String>,
    },

    // Inline user policies (see [`policies`]).
    PutUserPolicy {
        user_name: String,
        policy_name: String,
        policy_document: String,
    },
    GetUserPolicy {
        user_name: String,
        policy_name: String,
    },
    ListUserPolicies {
        user_name: String,
        page: Page,
    },
    DeleteUserPolicy {
        user_name: String,
        policy_name: String,
    },

    // Managed policies (see [`policies`]).
    /// `tags` are the `Tags.member.N.{Key,Value}` pairs in wire order.
    CreatePolicy {
        policy_name: String,
        path: String,
        policy_document: String,
        description: Option<String>,
        tags: Vec<(String, String)>,
    },
    GetPolicy {
        policy_arn: String,
    },
    GetPolicyVersion {
        policy_arn: String,
        version_id: String,
    },
    /// `usage_filter` is `PermissionsPolicy` or `PermissionsBoundary` (validated).
    ListPolicies {
        scope: PolicyScope,
        only_attached: bool,
        path_prefix: String,
        usage_filter: Option<String>,
        page: Page,
    },
    CreatePolicyVersion {
        policy_arn: String,
        policy_document: String,
        set_as_default: bool,
    },
    SetDefaultPolicyVersion {
        policy_arn: String,
        version_id: String,
    },
    DeletePolicyVersion {
        policy_arn: String,
        version_id: String,
    },
    ListPolicyVersions {
        policy_arn: String,
        page: Page,
    },
    DeletePolicy {
        policy_arn: String,
    },
    AttachUserPolicy {
        user_name: String,
        policy_arn: String,
    },
    DetachUserPolicy {
        user_name: String,
        policy_arn: String,
    },
    ListAttachedUserPolicies {
        user_name: String,
        path_prefix: Option<String>,
        page: Page,
    },
    /// `PolicyUsageFilter` is validated but not carried.
    ListEntitiesForPolicy {
        policy_arn: String,
        entity_filter: Option<EntityFilter>,
        path_prefix: Option<String>,
        page: Page,
    },

    // Groups (see [`groups`]); their policies are in [`policies`].
    CreateGroup {
        group_name: String,
        path: String,
    },
    GetGroup {
        group_name: String,
        page: Page,
    },
    ListGroups {
        path_prefix: String,
        page: Page,
    },
    DeleteGroup {
        group_name: String,
    },
    AddUserToGroup {
        group_name: String,
        user_name: String,
    },
    RemoveUserFromGroup {
        group_name: String,
        user_name: String,
    },
    ListGroupsForUser {
        user_name: String,
        page: Page,
    },
    PutGroupPolicy {
        group_name: String,
        policy_name: String,
        policy_document: String,
    },
    GetGroupPolicy {
        group_name: String,
        policy_name: String,
    },
    ListGroupPolicies {
        group_name: String,
        page: Page,
    },
    DeleteGroupPolicy {
        group_name: String,
        policy_name: String,
    },
    AttachGroupPolicy {
        group_name: String,
        policy_arn: String,
    },
    DetachGroupPolicy {
        group_name: String,
        policy_arn: String,
    },
    ListAttachedGroupPolicies {
        group_name: String,
        path_prefix: Option<String>,
        page: Page,
    },

    // The policy simulator (see [`simulate`]).
    SimulatePrincipalPolicy {
        policy_source_arn: String,
        policy_input_list: Vec<String>,
        action_names: Vec<String>,
        resource_arns: Vec<String>,
        context_entries: Vec<ContextEntry>,
        caller_arn: Option<String>,
        page: Page,
    },
    SimulateCustomPolicy {
        policy_input_list: Vec<String>,
        action_names: Vec<String>,
        resource_arns: Vec<String>,
        context_entries: Vec<ContextEntry>,
        caller_arn: Option<String>,
        page: Page,
    },
    GetContextKeysForPrincipalPolicy {
        policy_source_arn: String,
        policy_input_list: Vec<String>,
    },
    GetContextKeysForCustomPolicy {
        policy_input_list: Vec<String>,
    },
    CreateRole {
        path: String,
        role_name: String,
        assume_role_policy_document: String,
        description: Option<String>,
        max_session_duration: Option<i64>,
    },
    GetRole {
        role_name: String,
    },
    ListRoles {
        path_prefix: String,
        page: Page,
    },
    UpdateRole {
        role_name: String,
        description: Option<String>,
        max_session_duration: Option<i64>,
    },
    UpdateAssumeRolePolicy {
        role_name: String,
        policy_document: String,
    },
    DeleteRole {
        role_name: String,
    },
    PutRolePolicy {
        role_name: String,
        policy_name: String,
        policy_document: String,
    },
    GetRolePolicy {
        role_name: String,
        policy_name: String,
    },
    ListRolePolicies {
        role_name: String,
        page: Page,
    },
    DeleteRolePolicy {
        role_name: String,
        policy_name: String,
    },
    AttachRolePolicy {
        role_name: String,
        policy_arn: String,
    },
    DetachRolePolicy {
        role_name: String,
        policy_arn: String,
    },
    ListAttachedRolePolicies {
        role_name: String,
        path_prefix: Option<String>,
        page: Page,
    },
    // Console passwords (`passwords.rs`). Passwords never appear in `Debug` output.
    CreateLoginProfile {
        user_name: Option<String>,
        password: String,
        password_reset_required: bool,
    },
    GetLoginProfile {
        user_name: Option<String>,
    },
    UpdateLoginProfile {
        user_name: String,
        password: Option<String>,
        password_reset_required: Option<bool>,
    },
    DeleteLoginProfile {
        user_name: Option<String>,
    },
    ChangePassword {
        old_password: String,
        new_password: String,
    },
    GetAccountPasswordPolicy,
    UpdateAccountPasswordPolicy {
        policy: PasswordPolicyView,
    },
    DeleteAccountPasswordPolicy,
}

impl std::fmt::Debug for IamAction {
    // Authentication codes are one-time secrets: print only the operation name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IamAction({})", self.name())
    }
}

const USER_NAME_PATTERN: &str = "[\\w+=,.@-]+";
const PATH_PATTERN: &str = "(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)";

fn is_name_char(c: char) -> bool {
    is_word(c) || "+=,.@-".contains(c)
}

fn is_serial_char(c: char) -> bool {
    is_word(c) || "+=/:,.@-".contains(c)
}

const DOCUMENT_PATTERN: &str = "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+";
const POLICY_PATH_PATTERN: &str = "((/[A-Za-z0-9\\.,\\+@=_-]+)*)/";
const VERSION_ID_PATTERN: &str = "v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?";
const PATH_PREFIX_PATTERN: &str = "\\u002F[\\u0021-\\u007F]*";

/// A character of the model's `policyDocumentType`: TAB, LF, CR, U+0020..=U+00FF.
fn is_document_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}')
}

/// `((/[A-Za-z0-9\.,\+@=_-]+)*)/`: `/`, or non-empty segments each after a `/`, then a final `/`.
fn policy_path_ok(p: &str) -> bool {
    let Some(body) = p.strip_suffix('/') else {
        return false;
    };
    if body.is_empty() {
        return true;
    }
    let Some(body) = body.strip_prefix('/') else {
        return false;
    };
    body.split('/').all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".,+@=_-".contains(c))
    })
}

/// `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`.
fn version_id_ok(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let (num, suffix) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    num.starts_with(|c: char| ('1'..='9').contains(&c))
        && num.bytes().all(|b| b.is_ascii_digit())
        && suffix.is_none_or(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// A full-match test of a string against a model pattern.
type FullMatch = fn(&str) -> bool;

/// The constraints of a list's element type (a string shape of the model).
struct ElemRules {
    min: Option<usize>,
    max: Option<usize>,
    /// The model's pattern text and a full-match test.
    pattern: Option<(&'static str, FullMatch)>,
}

impl ElemRules {
    fn accepts(&self, v: &str) -> bool {
        let n = v.chars().count();
        self.min.is_none_or(|m| n >= m)
            && self.max.is_none_or(|m| n <= m)
            && self.pattern.is_none_or(|(_, ok)| ok(v))
    }

    /// Coral's order: maximum length, minimum length, pattern [I].
    fn rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = self.max {
            out.push(format!("Member must have length less than or equal to {m}"));
        }
        if let Some(m) = self.min {
            out.push(format!(
                "Member must have length greater than or equal to {m}"
            ));
        }
        if let Some((p, _)) = self.pattern {
            out.push(format!(
                "Member must satisfy regular expression pattern: {p}"
            ));
        }
        out
    }
}

fn path_ok(p: &str) -> bool {
    p == "/"
        || (p.len() >= 2
            && p.starts_with('/')
            && p.ends_with('/')
            && p[1..p.len() - 1]
                .chars()
                .all(|c| ('\u{21}'..='\u{7e}').contains(&c)))
}

/// Reads parameters and records violations.
struct Fields<'a> {
    params: &'a Params,
    v: Violations,
}

impl<'a> Fields<'a> {
    fn new(params: &'a Params) -> Self {
        Fields {
            params,
            v: Violations::new(Style::OmitValue),
        }
    }

    fn opt(
        &mut self,
        param: &str,
        member: &str,
        len: (usize, usize),
        pattern: &str,
        allowed: impl Fn(char) -> bool,
    ) -> Option<String> {
        let value = self.params.get(param)?;
        self.v.length(member, value, Some(len.0), Some(len.1));
        self.v.pattern(member, value, pattern, true, allowed);
        Some(value.to_owned())
    }

    fn req(
        &mut self,
        param: &str,
        member: &str,
        len: (usize, usize),
        pattern: &str,
        allowed: impl Fn(char) -> bool,
    ) -> String {
        match self.opt(param, member, len, pattern, allowed) {
            Some(v) => v,
            None => {
                self.v.not_null(member);
                String::new()
            }
        }
    }

    fn user_name(&mut self, required: bool, max: usize) -> Option<String> {
        if required {
            Some(self.req(
                "UserName",
                "userName",
                (1, max),
                USER_NAME_PATTERN,
                is_name_char,
            ))
        } else {
            self.opt(
                "UserName",
                "userName",
                (1, max),
                USER_NAME_PATTERN,
                is_name_char,
            )
        }
    }

    fn path(&mut self) -> String {
        self.path_type("Path", "path")
            .unwrap_or_else(|| "/".to_owned())
    }

    /// An optional member of the model's `pathType`: `/` or `/.../` of printable ASCII, 1..=512.
    fn path_type(&mut self, param: &str, member: &str) -> Option<String> {
        let p = self.params.get(param)?;
        self.v.length(member, p, Some(1), Some(512));
        if !path_ok(p) {
            self.regex_failed(member, p, PATH_PATTERN);
        }
        Some(p.to_owned())
    }

    /// `PathPrefix` of the model's `pathPrefixType` (`ListUsers`, `ListGroups`), `/` when absent.
    fn path_prefix(&mut self) -> String {
        let Some(p) = self.params.get("PathPrefix") else {
            return "/".to_owned();
        };
        self.v.length("pathPrefix", p, Some(1), Some(512));
        if !p.starts_with('/') || !p.chars().all(|c| ('\u{21}'..='\u{7f}').contains(&c)) {
            self.regex_failed("pathPrefix", p, PATH_PREFIX_PATTERN);
        }
        p.to_owned()
    }

    /// Records that `value` does not match the model's regular expression `pattern`.
    fn regex_failed(&mut self, member: &str, value: &str, pattern: &str) {
        self.v.push(
            member,
            value,
            &format!("satisfy regular expression pattern: {pattern}"),
        );
    }

    /// A required name of the model's `[\w+=,.@-]+` family (user, group, policy names), `1..=max` long.
    fn req_name(&mut self, param: &str, member: &str, max: usize) -> String {
        self.req(param, member, (1, max), USER_NAME_PATTERN, is_name_char)
    }

    /// A required `PolicyName`.
    fn policy_name(&mut self) -> String {
        self.req_name("PolicyName", "policyName", 128)
    }

    /// An optional member of the model's `arnType` (length 20..=2048, no pattern).
    fn arn(&mut self, param: &str, member: &str) -> Option<String> {
        let value = self.params.get(param)?;
        self.v.length(member, value, Some(20), Some(2048));
        Some(value.to_owned())
    }

    /// A required member of the model's `arnType`.
    fn req_arn(&mut self, param: &str, member: &str) -> String {
        self.arn(param, member).unwrap_or_else(|| {
            self.v.not_null(member);
            String::new()
        })
    }

    /// A required `PolicyArn`.
    fn policy_arn(&mut self) -> String {
        self.req_arn("PolicyArn", "policyArn")
    }

    /// A required `PolicyDocument` (the model's `policyDocumentType`).
    fn document(&mut self) -> String {
        self.req(
            "PolicyDocument",
            "policyDocument",
            (1, 131_072),
            DOCUMENT_PATTERN,
            is_document_char,
        )
    }

    /// A required `VersionId` (`v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`, no length limits).
    fn version_id(&mut self) -> String {
        match self.params.get("VersionId") {
            None => {
                self.v.not_null("versionId");
                String::new()
            }
            Some(v) => {
                if !version_id_ok(v) {
                    self.regex_failed("versionId", v, VERSION_ID_PATTERN);
                }
                v.to_owned()
            }
        }
    }

    /// An optional member of the model's `policyPathType` (`((/[A-Za-z0-9\.,\+@=_-]+)*)/`, 1..=512).
    fn policy_path(&mut self, param: &str, member: &str) -> Option<String> {
        let p = self.params.get(param)?;
        self.v.length(member, p, Some(1), Some(512));
        if !policy_path_ok(p) {
            self.regex_failed(member, p, POLICY_PATH_PATTERN);
        }
        Some(p.to_owned())
    }

    /// An optional boolean: `true`/`false` in any case; anything else is a 400 `MalformedInput` [I].
    fn boolean(&mut self, param: &str, member: &str) -> Result<Option<bool>, ApiError> {
        match self.params.get(param) {
            None => Ok(None),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(raw) => Err(ApiError::malformed_input(format!(
                "Value '{raw}' at '{member}' failed to parse: Member must be a boolean"
            ))),
        }
    }

    /// An optional enumerated value: one of `values` (case-sensitive), else a violation listing them.
    fn enumerated(
        &mut self,
        param: &str,
        member: &str,
        values: &[&'static str],
    ) -> Option<&'static str> {
        let raw = self.params.get(param)?;
        match values.iter().find(|v| **v == raw) {
            Some(v) => Some(v),
            None => {
                self.v.push(
                    member,
                    raw,
                    &format!("satisfy enum value set: [{}]", values.join(", ")),
                );
                None
            }
        }
    }

    /// A list of strings (`Param.member.N`), each checked against `elem`. Coral reports a bad element once
    /// for the whole list, naming every constraint of the element type:
    /// `Member must satisfy constraint: [Member must have length less than or equal to 128, ...]` [I].
    fn string_list(
        &mut self,
        param: &str,
        member: &str,
        required: bool,
        elem: &ElemRules,
    ) -> Vec<String> {
        let Some(values) = self.params.list(param) else {
            if required {
                self.v.not_null(member);
            }
            return Vec::new();
        };
        if values.iter().any(|v| !elem.accepts(v)) {
            self.v.push(
                member,
                "",
                &format!("satisfy constraint: [{}]", elem.rules().join(", ")),
            );
        }
        values.into_iter().map(str::to_owned).collect()
    }

    fn access_key_id(&mut self) -> String {
        self.req("AccessKeyId", "accessKeyId", (16, 128), "[\\w]+", is_word)
    }

    fn serial(&mut self) -> String {
        self.req(
            "SerialNumber",
            "serialNumber",
            (9, 256),
            "[\\w+=/:,.@-]+",
            is_serial_char,
        )
    }

    fn code(&mut self, param: &str, member: &str) -> String {
        self.req(param, member, (6, 6), "[\\d]+", |c| c.is_ascii_digit())
    }

    fn page(&mut self) -> Result<Page, ApiError> {
        let marker = self.opt("Marker", "marker", (1, 320), "[\\u0020-\\u00FF]+", |c| {
            ('\u{20}'..='\u{ff}').contains(&c)
        });
        let max_items = match self.params.get("MaxItems") {
            None => DEFAULT_MAX_ITEMS,
            Some(raw) => {
                let n = parse_int("maxItems", raw)?;
                self.v.int_range("maxItems", n, Some(1), Some(1000));
                n
            }
        };
        Ok(Page { marker, max_items })
    }

    fn finish<T>(self, value: T) -> Result<T, ApiError> {
        self.v.finish().map(|()| value)
    }
}

impl IamAction {
    /// Parses and validates an IAM action (`Version` has been checked to be `2010-05-08`).
    ///
    /// # Errors
    /// `InvalidAction` for an operation stsd does not implement, `ValidationError` for constraint
    /// violations (all of them at once), `MalformedInput` for non-integer numbers.
    pub fn parse(action: &str, params: &Params) -> Result<IamAction, ApiError> {
        let mut f = Fields::new(params);
        let parsed = match action {
            "CreateUser" => {
                let user_name = f.req(
                    "UserName",
                    "userName",
                    (1, 64),
                    USER_NAME_PATTERN,
                    is_name_char,
                );
                let path = f.path();
                IamAction::CreateUser { user_name, path }
            }
            "GetUser" => IamAction::GetUser {
                user_name: f.user_name(false, 128),
            },
            "ListUsers" => IamAction::ListUsers {
                path_prefix: f.path_prefix(),
                page: f.page()?,
            },
            "DeleteUser" => IamAction::DeleteUser {
                user_name: f.user_name(true, 128).unwrap_or_default(),
            },
            "CreateAccessKey" => IamAction::CreateAccessKey {
                user_name: f.user_name(false, 128),
            },
            "ListAccessKeys" => IamAction::ListAccessKeys {
                user_name: f.user_name(false, 128),
                page: f.page()?,
            },
            "UpdateAccessKey" => {
                let user_name = f.user_name(false, 128);
                let access_key_id = f.access_key_id();
                let status = params.get("Status");
                let active = match status {
                    Some("Active") => true,
                    Some("Inactive" | "Expired") => false,
                    Some(_) => {
                        f.v.push(
                            "status",
                            "",
                            "satisfy enum value set: [Active, Inactive, Expired]",
                        );
                        false
                    }
                    None => {
                        f.v.not_null("status");
                        false
                    }
                };
                if status == Some("Expired") {
                    return Err(ApiError::invalid_input(
                        "Status can only be set to Active or Inactive",
                    ));
                }
                IamAction::UpdateAccessKey {
                    user_name,
                    access_key_id,
                    active,
                }
            }
            "DeleteAccessKey" => IamAction::DeleteAccessKey {
                user_name: f.user_name(false, 128),
                access_key_id: f.access_key_id(),
            },
            "GetAccessKeyLastUsed" => IamAction::GetAccessKeyLastUsed {
                access_key_id: f.access_key_id(),
            },
            "CreateVirtualMFADevice" => {
                let path = f.path();
                let name = f.req(
                    "VirtualMFADeviceName",
                    "virtualMFADeviceName",
                    (1, 226),
                    USER_NAME_PATTERN,
                    is_name_char,
                );
                IamAction::CreateVirtualMfaDevice { name, path }
            }
            "EnableMFADevice" | "ResyncMFADevice" => {
                let user_name = f.user_name(true, 128).unwrap_or_default();
                let serial_number = f.serial();
                let code1 = f.code("AuthenticationCode1", "authenticationCode1");
                let code2 = f.code("AuthenticationCode2", "authenticationCode2");
                if action == "EnableMFADevice" {
                    IamAction::EnableMfaDevice {
                        user_name,
                        serial_number,
                        code1,
                        code2,
                    }
                } else {
                    IamAction::ResyncMfaDevice {
                        user_name,
                        serial_number,
                        code1,
                        code2,
                    }
                }
            }
            "DeactivateMFADevice" => IamAction::DeactivateMfaDevice {
                user_name: f.user_name(false, 128),
                serial_number: f.serial(),
            },
            "DeleteVirtualMFADevice" => IamAction::DeleteVirtualMfaDevice {
                serial_number: f.serial(),
            },
            "ListMFADevices" => IamAction::ListMfaDevices {
                user_name: f.user_name(false, 128),
                page: f.page()?,
            },
            "ListVirtualMFADevices" => {
                let assignment = match params.get("AssignmentStatus") {
                    None | Some("Any") => Assignment::Any,
                    Some("Assigned") => Assignment::Assigned,
                    Some("Unassigned") => Assignment::Unassigned,
                    Some(_) => {
                        f.v.push(
                            "assignmentStatus",
                            "",
                            "satisfy enum value set: [Assigned, Unassigned, Any]",
                        );
                        Assignment::Any
                    }
                };
                IamAction::ListVirtualMfaDevices {
                    assignment,
                    page: f.page()?,
                }
            }
            "GetMFADevice" => {
                let serial_number = f.serial();
                IamAction::GetMfaDevice {
                    serial_number,
                    user_name: f.user_name(false, 64),
                }
            }
            other => {
                let parsed = match policies::parse(other, &mut f)? {
                    Some(a) => a,
                    None => match groups::parse(other, &mut f)? {
                        Some(a) => a,
                        None => match simulate::parse(other, &mut f)? {
                            Some(a) => a,
                            None => match roles::parse(other, &mut f)? {
                                Some(a) => a,
                                None => match passwords::parse(other, &mut f)? {
                                    Some(a) => a,
                                    None => {
                                        return Err(ApiError::invalid_action(other, IAM_VERSION));
                                    }
                                },
                            },
                        },
                    },
                };
                return f.finish(parsed);
            }
        };
        f.finish(parsed)
    }

    /// The wire operation name.
    pub fn name(&self) -> &'static str {
        match self {
            IamAction::CreateUser { .. } => "CreateUser",
            IamAction::GetUser { .. } => "GetUser",
            IamAction::ListUsers { .. } => "ListUsers",
            IamAction::DeleteUser { .. } => "DeleteUser",
            IamAction::CreateAccessKey { .. } => "CreateAccessKey",
            IamAction::ListAccessKeys { .. } => "ListAccessKeys",
            IamAction::UpdateAccessKey { .. } => "UpdateAccessKey",
            IamAction::DeleteAccessKey { .. } => "DeleteAccessKey",
            IamAction::GetAccessKeyLastUsed { .. } => "GetAccessKeyLastUsed",
            IamAction::CreateVirtualMfaDevice { .. } => "CreateVirtualMFADevice",
            IamAction::EnableMfaDevice { .. } => "EnableMFADevice",
            IamAction::ResyncMfaDevice { .. } => "ResyncMFADevice",
            IamAction::DeactivateMfaDevice { .. } => "DeactivateMFADevice",
            IamAction::DeleteVirtualMfaDevice { .. } => "DeleteVirtualMFADevice",
            IamAction::ListMfaDevices { .. } => "ListMFADevices",
            IamAction::ListVirtualMfaDevices { .. } => "ListVirtualMFADevices",
            IamAction::GetMfaDevice { .. } => "GetMFADevice",
            IamAction::PutUserPolicy { .. } => "PutUserPolicy",
            IamAction::GetUserPolicy { .. } => "GetUserPolicy",
            IamAction::ListUserPolicies { .. } => "ListUserPolicies",
            IamAction::DeleteUserPolicy { .. } => "DeleteUserPolicy",
            IamAction::CreatePolicy { .. } => "CreatePolicy",
            IamAction::GetPolicy { .. } => "GetPolicy",
            IamAction::GetPolicyVersion { .. } => "GetPolicyVersion",
            IamAction::ListPolicies { .. } => "ListPolicies",
            IamAction::CreatePolicyVersion { .. } => "CreatePolicyVersion",
            IamAction::SetDefaultPolicyVersion { .. } => "SetDefaultPolicyVersion",
            IamAction::DeletePolicyVersion { .. } => "DeletePolicyVersion",
            IamAction::ListPolicyVersions { .. } => "ListPolicyVersions",
            IamAction::DeletePolicy { .. } => "DeletePolicy",
            IamAction::AttachUserPolicy { .. } => "AttachUserPolicy",
            IamAction::DetachUserPolicy { .. } => "DetachUserPolicy",
            IamAction::ListAttachedUserPolicies { .. } => "ListAttachedUserPolicies",
            IamAction::ListEntitiesForPolicy { .. } => "ListEntitiesForPolicy",
            IamAction::CreateGroup { .. } => "CreateGroup",
            IamAction::GetGroup { .. } => "GetGroup",
            IamAction::ListGroups { .. } => "ListGroups",
            IamAction::DeleteGroup { .. } => "DeleteGroup",
            IamAction::AddUserToGroup { .. } => "AddUserToGroup",
            IamAction::RemoveUserFromGroup { .. } => "RemoveUserFromGroup",
            IamAction::ListGroupsForUser { .. } => "ListGroupsForUser",
            IamAction::PutGroupPolicy { .. } => "PutGroupPolicy",
            IamAction::GetGroupPolicy { .. } => "GetGroupPolicy",
            IamAction::ListGroupPolicies { .. } => "ListGroupPolicies",
            IamAction::DeleteGroupPolicy { .. } => "DeleteGroupPolicy",
            IamAction::AttachGroupPolicy { .. } => "AttachGroupPolicy",
            IamAction::DetachGroupPolicy { .. } => "DetachGroupPolicy",
            IamAction::ListAttachedGroupPolicies { .. } => "ListAttachedGroupPolicies",
            IamAction::SimulatePrincipalPolicy { .. } => "SimulatePrincipalPolicy",
            IamAction::SimulateCustomPolicy { .. } => "SimulateCustomPolicy",
            IamAction::GetContextKeysForPrincipalPolicy { .. } => {
                "GetContextKeysForPrincipalPolicy"
            }
            IamAction::GetContextKeysForCustomPolicy { .. } => "GetContextKeysForCustomPolicy",
            other => roles::name(other)
                .or_else(|| passwords::name(other))
                .unwrap_or("Unknown"),
        }
    }
}

impl IamAction {
    /// The query parameters that express this action (`Action` and `Version` included), for clients
    /// such as `stsd admin --endpoint-url`. [`IamAction::parse`] of them gives the action back.
    pub fn to_params(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            ("Action".into(), self.name().into()),
            ("Version".into(), IAM_VERSION.into()),
        ];
        let mut put = |k: &str, v: &str| p.push((k.to_owned(), v.to_owned()));
        let page = put_page;
        match self {
            IamAction::CreateUser { user_name, path } => {
                put("UserName", user_name);
                put("Path", path);
            }
            IamAction::GetUser { user_name } | IamAction::CreateAccessKey { user_name } => {
                if let Some(u) = user_name {
                    put("UserName", u);
                }
            }
            IamAction::ListUsers {
                path_prefix,
                page: pg,
            } => {
                put("PathPrefix", path_prefix);
                page(&mut put, pg);
            }
            IamAction::DeleteUser { user_name } => put("UserName", user_name),
            IamAction::ListAccessKeys {
                user_name,
                page: pg,
            }
            | IamAction::ListMfaDevices {
                user_name,
                page: pg,
            } => {
                if let Some(u) = user_name {
                    put("UserName", u);
                }
                page(&mut put, pg);
            }
            IamAction::UpdateAccessKey {
                user_name,
                access_key_id,
                active,
            } => {
                if let Some(u) = user_name {
                    put("UserName", u);
                }
                put("AccessKeyId", access_key_id);
                put("Status", if *active { "Active" } else { "Inactive" });
            }
            IamAction::DeleteAccessKey {
                user_name,
                access_key_id,
            } => {
                if let Some(u) = user_name {
                    put("UserName", u);
                }
                put("AccessKeyId", access_key_id);
            }
            IamAction::GetAccessKeyLastUsed { access_key_id } => put("AccessKeyId", access_key_id),
            IamAction::CreateVirtualMfaDevice { name, path } => {
                put("VirtualMFADeviceName", name);
                put("Path", path);
            }
            IamAction::EnableMfaDevice {
                user_name,
                serial_number,
                code1,
                code2,
            }
            | IamAction::ResyncMfaDevice {
                user_name,
                serial_number,
                code1,
                code2,
            } => {
                put("UserName", user_name);
                put("SerialNumber", serial_number);
                put("AuthenticationCode1", code1);
                put("AuthenticationCode2", code2);
            }
            IamAction::DeactivateMfaDevice {
                user_name,
                serial_number,
            } => {
                if let Some(u) = user_name {
                    put("UserName", u);
                }
                put("SerialNumber", serial_number);
            }
            IamAction::DeleteVirtualMfaDevice { serial_number } => {
                put("SerialNumber", serial_number)
            }
            IamAction::ListVirtualMfaDevices {
                assignment,
                page: pg,
            } => {
                put(
                    "AssignmentStatus",
                    match assignment {
                        Assignment::Assigned => "Assigned",
                        Assignment::Unassigned => "Unassigned",
                        Assignment::Any => "Any",
                    },
                );
                page(&mut put, pg);
            }
            IamAction::GetMfaDevice {
                serial_number,
                user_name,
            } => {
                put("SerialNumber", serial_number);
                if let Some(u) = user_name {
                    put("UserName", u);
                }
            }
            other => {
                policies::to_params(other, &mut put);
                groups::to_params(other, &mut put);
                simulate::to_params(other, &mut put);
                roles::to_params(other, &mut put);
                passwords::to_params(other, &mut put);
            }
        }
        p
    }
}

/// Appends `Marker` and `MaxItems` (the latter only when not the default).
fn put_page(put: &mut dyn FnMut(&str, &str), page: &Page) {
    if let Some(m) = &page.marker {
        put("Marker", m);
    }
    if page.max_items != DEFAULT_MAX_ITEMS {
        put("MaxItems", &page.max_items.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// A user as IAM shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// Path.
    pub path: String,
    /// Name.
    pub user_name: String,
    /// `AIDA...`
    pub user_id: String,
    /// ARN.
    pub arn: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
}

/// An access key's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyView {
    /// Owner name (absent for the root).
    pub user_name: Option<String>,
    /// Key id.
    pub access_key_id: String,
    /// `Active` / `Inactive`.
    pub status: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
}

/// An MFA device as the list operations show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDeviceView {
    /// Serial number (ARN for virtual devices).
    pub serial_number: String,
    /// The user it is enabled for (for `ListMFADevices`/`GetMFADevice`, the user name).
    pub user: Option<UserView>,
    /// When it was enabled.
    pub enable_date: Option<String>,
}

/// What a successful IAM action returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum IamOutput {
    User {
        action: &'static str,
        user: UserView,
    },
    Users {
        users: Vec<UserView>,
        next_marker: Option<String>,
    },
    /// A new access key: the only time the secret leaves the server.
    NewAccessKey {
        key: AccessKeyView,
        secret_access_key: String,
    },
    AccessKeys {
        keys: Vec<AccessKeyView>,
        next_marker: Option<String>,
    },
    AccessKeyLastUsed {
        user_name: Option<String>,
        last_used_date: Option<String>,
        service: String,
        region: String,
    },
    /// A new virtual device: the only time the seed leaves the server.
    NewVirtualMfaDevice {
        serial_number: String,
        base32_seed: String,
        qr_code_png: Vec<u8>,
    },
    MfaDevices {
        user_name: String,
        devices: Vec<MfaDeviceView>,
        next_marker: Option<String>,
    },
    VirtualMfaDevices {
        devices: Vec<MfaDeviceView>,
        next_marker: Option<String>,
    },
    MfaDevice {
        user_name: Option<String>,
        serial_number: String,
        enable_date: Option<String>,
    },
    /// An action with an empty result (`DeleteUser`, `EnableMFADevice`, `PutUserPolicy`, ...).
    Empty { action: &'static str },

    /// `GetUserPolicy`, `GetGroupPolicy` (and `GetRolePolicy`): the raw document, URL-encoded in the XML.
    PolicyDocument {
        action: &'static str,
        entity: EntityRef,
        policy_name: String,
        document: String,
    },
    /// `ListUserPolicies`, `ListGroupPolicies`.
    PolicyNames {
        names: Vec<String>,
        next_marker: Option<String>,
    },
    /// `CreatePolicy`, `GetPolicy`.
    Policy {
        action: &'static str,
        policy: PolicyView,
    },
    /// `ListPolicies`.
    Policies {
        policies: Vec<PolicyView>,
        next_marker: Option<String>,
    },
    /// `GetPolicyVersion`, `CreatePolicyVersion`.
    PolicyVersion {
        action: &'static str,
        version: PolicyVersionView,
    },
    /// `ListPolicyVersions` (documents are not shown).
    PolicyVersions {
        versions: Vec<PolicyVersionView>,
        next_marker: Option<String>,
    },
    /// `ListAttachedUserPolicies`, `ListAttachedGroupPolicies`.
    AttachedPolicies {
        action: &'static str,
        policies: Vec<AttachedPolicyView>,
        next_marker: Option<String>,
    },
    /// `ListEntitiesForPolicy`.
    EntitiesForPolicy {
        groups: Vec<PolicyEntityView>,
        users: Vec<PolicyEntityView>,
        roles: Vec<PolicyEntityView>,
        next_marker: Option<String>,
    },
    /// `CreateGroup`.
    Group {
        action: &'static str,
        group: GroupView,
    },
    /// `GetGroup`: the group and a page of its members.
    GroupDetail {
        group: GroupView,
        users: Vec<UserView>,
        next_marker: Option<String>,
    },
    /// `ListGroups`, `ListGroupsForUser`.
    Groups {
        action: &'static str,
        groups: Vec<GroupView>,
        next_marker: Option<String>,
    },
    /// `SimulatePrincipalPolicy`, `SimulateCustomPolicy`.
    Simulation {
        action: &'static str,
        results: Vec<EvaluationResultView>,
        next_marker: Option<String>,
    },
    /// `GetContextKeysForPrincipalPolicy`, `GetContextKeysForCustomPolicy`.
    ContextKeys {
        action: &'static str,
        names: Vec<String>,
    },
    /// `CreateRole`, `GetRole`.
    Role {
        action: &'static str,
        role: RoleView,
    },
    /// `ListRoles`.
    Roles {
        roles: Vec<RoleView>,
        next_marker: Option<String>,
    },
    /// `CreateLoginProfile`, `GetLoginProfile` (never the password).
    LoginProfile {
        action: &'static str,
        profile: LoginProfileView,
    },
    /// `GetAccountPasswordPolicy`.
    PasswordPolicy { policy: PasswordPolicyView },
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write_user(w: &mut XmlWriter, tag: &str, u: &UserView) {
    w.element(tag, |w| {
        w.leaf("Path", &u.path);
        w.leaf("UserName", &u.user_name);
        w.leaf("UserId", &u.user_id);
        w.leaf("Arn", &u.arn);
        w.leaf("CreateDate", &u.create_date);
    });
}

fn write_paging(w: &mut XmlWriter, next_marker: &Option<String>) {
    w.leaf(
        "IsTruncated",
        if next_marker.is_some() {
            "true"
        } else {
            "false"
        },
    );
    if let Some(m) = next_marker {
        w.leaf("Marker", m);
    }
}

fn write_key(w: &mut XmlWriter, tag: &str, k: &AccessKeyView, secret: Option<&str>) {
    w.element(tag, |w| {
        if let Some(u) = &k.user_name {
            w.leaf("UserName", u);
        }
        w.leaf("AccessKeyId", &k.access_key_id);
        w.leaf("Status", &k.status);
        if let Some(s) = secret {
            w.leaf("SecretAccessKey", s);
        }
        w.leaf("CreateDate", &k.create_date);
    });
}

impl IamOutput {
    /// The response body.
    pub fn to_xml(&self, action: &str, request_id: &str) -> String {
        let result: Box<dyn Fn(&mut XmlWriter) + '_> = match self {
            // UpdateRole's output shape is an empty structure with a result wrapper (the SDKs look for it).
            IamOutput::Empty { .. } if action == "UpdateRole" => Box::new(|_| {}),
            IamOutput::Empty { .. } => return success_body(action, IAM_NS, request_id, None),
            IamOutput::User { user, .. } => Box::new(move |w| write_user(w, "User", user)),
            IamOutput::Users { users, next_marker } => Box::new(move |w| {
                w.element("Users", |w| {
                    users.iter().for_each(|u| write_user(w, "member", u))
                });
                write_paging(w, next_marker);
            }),
            IamOutput::NewAccessKey {
                key,
                secret_access_key,
            } => Box::new(move |w| write_key(w, "AccessKey", key, Some(secret_access_key))),
            IamOutput::AccessKeys { keys, next_marker } => Box::new(move |w| {
                w.element("AccessKeyMetadata", |w| {
                    keys.iter().for_each(|k| write_key(w, "member", k, None));
                });
                write_paging(w, next_marker);
            }),
            IamOutput::AccessKeyLastUsed {
                user_name,
                last_used_date,
                service,
                region,
            } => Box::new(move |w| {
                if let Some(u) = user_name {
                    w.leaf("UserName", u);
                }
                w.element("AccessKeyLastUsed", |w| {
                    if let Some(d) = last_used_date {
                        w.leaf("LastUsedDate", d);
                    }
                    w.leaf("ServiceName", service);
                    w.leaf("Region", region);
                });
            }),
            IamOutput::NewVirtualMfaDevice {
                serial_number,
                base32_seed,
                qr_code_png,
            } => Box::new(move |w| {
                w.element("VirtualMFADevice", |w| {
                    w.leaf("SerialNumber", serial_number);
                    w.leaf("Base32StringSeed", &b64(base32_seed.as_bytes()));
                    w.leaf("QRCodePNG", &b64(qr_code_png));
                });
            }),
            IamOutput::MfaDevices {
                user_name,
                devices,
                next_marker,
            } => Box::new(move |w| {
                w.element("MFADevices", |w| {
                    for d in devices {
                        w.element("member", |w| {
                            w.leaf("UserName", user_name);
                            w.leaf("SerialNumber", &d.serial_number);
                            if let Some(e) = &d.enable_date {
                                w.leaf("EnableDate", e);
                            }
                        });
                    }
                });
                write_paging(w, next_marker);
            }),
            IamOutput::VirtualMfaDevices {
                devices,
                next_marker,
            } => Box::new(move |w| {
                w.element("VirtualMFADevices", |w| {
                    for d in devices {
                        w.element("member", |w| {
                            w.leaf("SerialNumber", &d.serial_number);
                            if let Some(u) = &d.user {
                                write_user(w, "User", u);
                            }
                            if let Some(e) = &d.enable_date {
                                w.leaf("EnableDate", e);
                            }
                        });
                    }
                });
                write_paging(w, next_marker);
            }),
            IamOutput::MfaDevice {
                user_name,
                serial_number,
                enable_date,
            } => Box::new(move |w| {
                if let Some(u) = user_name {
                    w.leaf("UserName", u);
                }
                w.leaf("SerialNumber", serial_number);
                if let Some(e) = enable_date {
                    w.leaf("EnableDate", e);
                }
            }),
            other => Box::new(move |w| {
                let _ = policies::write(other, w)
                    || groups::write(other, w)
                    || simulate::write(other, w)
                    || roles::write(other, w)
                    || passwords::write(other, w);
            }),
        };
        success_body(action, IAM_NS, request_id, Some(&*result))
    }
}

fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err("invalid base64".into()),
        })
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data: &[u8] = match bytes.iter().position(|b| *b == b'=') {
        Some(i) => &bytes[..i],
        None => &bytes,
    };
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return Err("truncated base64".into()),
        };
        out.extend_from_slice(&n.to_be_bytes()[1..=take]);
    }
    Ok(out)
}

fn user_from(el: &crate::xml::Element) -> UserView {
    let t = |n: &str| el.child_text(n).unwrap_or_default().to_owned();
    UserView {
        path: t("Path"),
        user_name: t("UserName"),
        user_id: t("UserId"),
        arn: t("Arn"),
        create_date: t("CreateDate"),
    }
}

fn key_from(el: &crate::xml::Element) -> AccessKeyView {
    AccessKeyView {
        user_name: el.child_text("UserName").map(str::to_owned),
        access_key_id: el.child_text("AccessKeyId").unwrap_or_default().to_owned(),
        status: el.child_text("Status").unwrap_or_default().to_owned(),
        create_date: el.child_text("CreateDate").unwrap_or_default().to_owned(),
    }
}

fn marker_from(result: &crate::xml::Element) -> Option<String> {
    (result.child_text("IsTruncated") == Some("true"))
        .then(|| result.child_text("Marker").map(str::to_owned))
        .flatten()
}

impl IamOutput {
    /// Reads a success body written by [`IamOutput::to_xml`] for `action` (used by remote clients).
    ///
    /// # Errors
    /// A message when the body is not the expected response.
    pub fn from_xml(action: &IamAction, doc: &str) -> Result<IamOutput, String> {
        let root = crate::xml::parse(doc)?;
        let name = action.name();
        if root.name != format!("{name}Response") {
            return Err(format!("expected {name}Response, got {}", root.name));
        }
        let result = root.child(&format!("{name}Result"));
        let need = || result.ok_or_else(|| format!("{name}Response has no {name}Result"));
        Ok(match action {
            IamAction::CreateUser { .. } | IamAction::GetUser { .. } => IamOutput::User {
                action: name,
                user: user_from(need()?.child("User").ok_or("no User")?),
            },
            IamAction::ListUsers { .. } => {
                let r = need()?;
                IamOutput::Users {
                    users: r
                        .child("Users")
                        .map(|u| u.children_named("member").map(user_from).collect())
                        .unwrap_or_default(),
                    next_marker: marker_from(r),
                }
            }
            IamAction::CreateAccessKey { .. } => {
                let k = need()?.child("AccessKey").ok_or("no AccessKey")?;
                IamOutput::NewAccessKey {
                    key: key_from(k),
                    secret_access_key: k
                        .child_text("SecretAccessKey")
                        .ok_or("no SecretAccessKey")?
                        .to_owned(),
                }
            }
            IamAction::ListAccessKeys { .. } => {
                let r = need()?;
                IamOutput::AccessKeys {
                    keys: r
                        .child("AccessKeyMetadata")
                        .map(|m| m.children_named("member").map(key_from).collect())
                        .unwrap_or_default(),
                    next_marker: marker_from(r),
                }
            }
            IamAction::GetAccessKeyLastUsed { .. } => {
                let r = need()?;
                let u = r.child("AccessKeyLastUsed").ok_or("no AccessKeyLastUsed")?;
                IamOutput::AccessKeyLastUsed {
                    user_name: r.child_text("UserName").map(str::to_owned),
                    last_used_date: u.child_text("LastUsedDate").map(str::to_owned),
                    service: u.child_text("ServiceName").unwrap_or_default().to_owned(),
                    region: u.child_text("Region").unwrap_or_default().to_owned(),
                }
            }
            IamAction::CreateVirtualMfaDevice { .. } => {
                let d = need()?
                    .child("VirtualMFADevice")
                    .ok_or("no VirtualMFADevice")?;
                let seed = b64_decode(
                    d.child_text("Base32StringSeed")
                        .ok_or("no Base32StringSeed")?,
                )?;
                IamOutput::NewVirtualMfaDevice {
                    serial_number: d
                        .child_text("SerialNumber")
                        .ok_or("no SerialNumber")?
                        .to_owned(),
                    base32_seed: String::from_utf8(seed).map_err(|_| "seed is not text")?,
                    qr_code_png: b64_decode(d.child_text("QRCodePNG").unwrap_or_default())?,
                }
            }
            IamAction::ListMfaDevices { .. } => {
                let r = need()?;
                let members: Vec<&crate::xml::Element> = r
                    .child("MFADevices")
                    .map(|m| m.children_named("member").collect())
                    .unwrap_or_default();
                IamOutput::MfaDevices {
                    user_name: members
                        .first()
                        .and_then(|m| m.child_text("UserName"))
                        .unwrap_or_default()
                        .to_owned(),
                    devices: members
                        .iter()
                        .map(|m| MfaDeviceView {
                            serial_number: m
                                .child_text("SerialNumber")
                                .unwrap_or_default()
                                .to_owned(),
                            user: None,
                            enable_date: m.child_text("EnableDate").map(str::to_owned),
                        })
                        .collect(),
                    next_marker: marker_from(r),
                }
            }
            IamAction::ListVirtualMfaDevices { .. } => {
                let r = need()?;
                IamOutput::VirtualMfaDevices {
                    devices: r
                        .child("VirtualMFADevices")
                        .map(|m| {
                            m.children_named("member")
                                .map(|d| MfaDeviceView {
                                    serial_number: d
                                        .child_text("SerialNumber")
                                        .unwrap_or_default()
                                        .to_owned(),
                                    user: d.child("User").map(user_from),
                                    enable_date: d.child_text("EnableDate").map(str::to_owned),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    next_marker: marker_from(r),
                }
            }
            IamAction::GetMfaDevice { .. } => {
                let r = need()?;
                IamOutput::MfaDevice {
                    user_name: r.child_text("UserName").map(str::to_owned),
                    serial_number: r.child_text("SerialNumber").unwrap_or_default().to_owned(),
                    enable_date: r.child_text("EnableDate").map(str::to_owned),
                }
            }
            IamAction::DeleteUser { .. }
            | IamAction::UpdateAccessKey { .. }
            | IamAction::DeleteAccessKey { .. }
            | IamAction::EnableMfaDevice { .. }
            | IamAction::ResyncMfaDevice { .. }
            | IamAction::DeactivateMfaDevice { .. }
            | IamAction::DeleteVirtualMfaDevice { .. } => IamOutput::Empty { action: name },
            other => policies::from_xml(other, name, result)?
                .or(groups::from_xml(other, name, result)?)
                .or(simulate::from_xml(other, name, result)?)
                .or(roles::from_xml(other, name, result)?)
                .or(passwords::from_xml(other, name, result)?)
                .ok_or_else(|| format!("no reader for {name}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(action: &str, q: &str) -> Result<IamAction, ApiError> {
        IamAction::parse(action, &Params::parse(q.as_bytes()))
    }

    #[test]
    fn create_user_validation_omits_values() {
        assert_eq!(
            parse("CreateUser", "UserName=alice").unwrap(),
            IamAction::CreateUser {
                user_name: "alice".into(),
                path: "/".into()
            }
        );
        let e = parse("CreateUser", "UserName=a+b").unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
        let e = parse("CreateUser", "").unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"
        );
        let e = parse(
            "CreateUser",
            &format!("UserName={}&Path=eng", "x".repeat(65)),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected: "),
            "{}",
            e.message
        );
        assert!(parse("CreateUser", "UserName=bob&Path=%2Feng%2F").is_ok());
    }

    #[test]
    fn codes_and_paging() {
        let e = parse(
            "EnableMFADevice",
            "UserName=bob&SerialNumber=arn%3Aaws%3Aiam%3A%3A1%3Amfa%2Fbob&AuthenticationCode1=12345&AuthenticationCode2=abcdef",
        )
        .unwrap_err();
        assert!(e.message.contains("Value at 'authenticationCode1' failed to satisfy constraint: Member must have length greater than or equal to 6"), "{}", e.message);
        assert!(e.message.contains("Value at 'authenticationCode2' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]+"), "{}", e.message);
        assert!(!e.message.contains("abcdef"));
        assert_eq!(
            parse("ListUsers", "MaxItems=0").unwrap_err().message,
            "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        assert_eq!(
            parse("ListUsers", "MaxItems=x").unwrap_err().code,
            "MalformedInput"
        );
        assert_eq!(
            parse("ListVirtualMFADevices", "AssignmentStatus=Foo")
                .unwrap_err()
                .message,
            "1 validation error detected: Value at 'assignmentStatus' failed to satisfy constraint: Member must satisfy enum value set: [Assigned, Unassigned, Any]"
        );
        assert_eq!(parse("CreateRoot", "").unwrap_err().code, "InvalidAction");
        assert!(!format!("{:?}", parse("EnableMFADevice", "UserName=bob&SerialNumber=GAHT12345678&AuthenticationCode1=123456&AuthenticationCode2=654321").unwrap()).contains("123456"));
    }

    #[test]
    fn xml_shapes() {
        let u = UserView {
            path: "/".into(),
            user_name: "alice".into(),
            user_id: "AIDAEXAMPLE0000000000".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            create_date: "2026-11-23T00:00:00Z".into(),
        };
        let body = IamOutput::Users {
            users: vec![u],
            next_marker: Some("alice".into()),
        }
        .to_xml("ListUsers", "rid");
        assert!(body.starts_with("<ListUsersResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n  <ListUsersResult>\n    <Users>\n      <member>\n        <Path>/</Path>\n"), "{body}");
        assert!(body.contains("    <IsTruncated>true</IsTruncated>\n    <Marker>alice</Marker>\n  </ListUsersResult>\n"), "{body}");
        let empty = IamOutput::Empty {
            action: "DeleteUser",
        }
        .to_xml("DeleteUser", "rid");
        assert!(!empty.contains("Result"));
        assert_eq!(b64(b"JBSWY3DP"), "SkJTV1kzRFA=");
        assert_eq!(b64(b"ab"), "YWI=");
        assert_eq!(b64(b""), "");
    }

    #[test]
    fn actions_round_trip_through_params() {
        let page = Page {
            marker: Some("m k".into()),
            max_items: 7,
        };
        let actions = vec![
            IamAction::CreateUser {
                user_name: "a".into(),
                path: "/x/".into(),
            },
            IamAction::GetUser { user_name: None },
            IamAction::ListUsers {
                path_prefix: "/".into(),
                page: page.clone(),
            },
            IamAction::DeleteUser {
                user_name: "a".into(),
            },
            IamAction::CreateAccessKey {
                user_name: Some("a".into()),
            },
            IamAction::ListAccessKeys {
                user_name: None,
                page: Page {
                    marker: None,
                    max_items: 100,
                },
            },
            IamAction::UpdateAccessKey {
                user_name: None,
                access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
                active: false,
            },
            IamAction::DeleteAccessKey {
                user_name: Some("a".into()),
                access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
            },
            IamAction::GetAccessKeyLastUsed {
                access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
            },
            IamAction::CreateVirtualMfaDevice {
                name: "d".into(),
                path: "/".into(),
            },
            IamAction::EnableMfaDevice {
                user_name: "a".into(),
                serial_number: "arn:aws:iam::1:mfa/d".into(),
                code1: "123456".into(),
                code2: "654321".into(),
            },
            IamAction::ResyncMfaDevice {
                user_name: "a".into(),
                serial_number: "GAHT12345678".into(),
                code1: "123456".into(),
                code2: "654321".into(),
            },
            IamAction::DeactivateMfaDevice {
                user_name: None,
                serial_number: "GAHT12345678".into(),
            },
            IamAction::DeleteVirtualMfaDevice {
                serial_number: "arn:aws:iam::1:mfa/d".into(),
            },
            IamAction::ListMfaDevices {
                user_name: Some("a".into()),
                page: page.clone(),
            },
            IamAction::ListVirtualMfaDevices {
                assignment: Assignment::Unassigned,
                page,
            },
            IamAction::GetMfaDevice {
                serial_number: "GAHT12345678".into(),
                user_name: Some("a".into()),
            },
        ];
        let mut actions = actions;
        actions.extend(new_actions());
        for a in actions {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in a.to_params() {
                ser.append_pair(&k, &v);
            }
            let params = Params::parse(ser.finish().as_bytes());
            let back = IamAction::parse(params.get("Action").unwrap(), &params).unwrap();
            assert!(back == a, "{} did not round-trip", a.name());
        }
    }

    #[test]
    fn outputs_round_trip_through_xml() {
        let u = UserView {
            path: "/".into(),
            user_name: "a&b".into(),
            user_id: "AIDAEXAMPLE0000000000".into(),
            arn: "arn:aws:iam::1:user/a&b".into(),
            create_date: "2026-11-23T00:00:00Z".into(),
        };
        let k = AccessKeyView {
            user_name: Some("a".into()),
            access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
            status: "Active".into(),
            create_date: "2026-11-23T00:00:00Z".into(),
        };
        let cases = vec![
            (
                IamAction::GetUser { user_name: None },
                IamOutput::User {
                    action: "GetUser",
                    user: u.clone(),
                },
            ),
            (
                IamAction::ListUsers {
                    path_prefix: "/".into(),
                    page: Page {
                        marker: None,
                        max_items: 1,
                    },
                },
                IamOutput::Users {
                    users: vec![u.clone(), u.clone()],
                    next_marker: Some("x".into()),
                },
            ),
            (
                IamAction::CreateAccessKey { user_name: None },
                IamOutput::NewAccessKey {
                    key: k.clone(),
                    secret_access_key: "s+/=".into(),
                },
            ),
            (
                IamAction::ListAccessKeys {
                    user_name: None,
                    page: Page {
                        marker: None,
                        max_items: 100,
                    },
                },
                IamOutput::AccessKeys {
                    keys: vec![k],
                    next_marker: None,
                },
            ),
            (
                IamAction::CreateVirtualMfaDevice {
                    name: "d".into(),
                    path: "/".into(),
                },
                IamOutput::NewVirtualMfaDevice {
                    serial_number: "arn:aws:iam::1:mfa/d".into(),
                    base32_seed: "JBSWY3DPEHPK3PXP".into(),
                    qr_code_png: vec![0x89, 0x50, 0x4e, 0x47, 0, 255, 7],
                },
            ),
            (
                IamAction::ListVirtualMfaDevices {
                    assignment: Assignment::Any,
                    page: Page {
                        marker: None,
                        max_items: 100,
                    },
                },
                IamOutput::VirtualMfaDevices {
                    devices: vec![MfaDeviceView {
                        serial_number: "s1xxxxxxx".into(),
                        user: Some(u.clone()),
                        enable_date: Some("d".into()),
                    }],
                    next_marker: None,
                },
            ),
            (
                IamAction::DeleteUser {
                    user_name: "a".into(),
                },
                IamOutput::Empty {
                    action: "DeleteUser",
                },
            ),
        ];
        let mut cases = cases;
        cases.extend(new_outputs(&u));
        for (action, out) in cases {
            let xml = out.to_xml(action.name(), "rid");
            assert_eq!(
                IamOutput::from_xml(&action, &xml).unwrap(),
                out,
                "{}",
                action.name()
            );
        }
        assert!(IamOutput::from_xml(&IamAction::GetUser { user_name: None }, "<Other/>").is_err());
    }

    /// One value of every new action, exercising optional members and lists.
    fn new_actions() -> Vec<IamAction> {
        let page = Page {
            marker: Some("m".into()),
            max_items: 1000,
        };
        let default_page = Page {
            marker: None,
            max_items: DEFAULT_MAX_ITEMS,
        };
        let doc = "{\"Version\": \"2012-10-17\",\n \"Statement\": [] }";
        let arn = "arn:aws:iam::123456789012:policy/p+q".to_owned();
        let entry = ContextEntry {
            key: "aws:MultiFactorAuthPresent".into(),
            values: vec!["true".into()],
            kind: ContextKeyType::Boolean,
        };
        let no_values = ContextEntry {
            key: "aws:SourceIp".into(),
            values: vec![],
            kind: ContextKeyType::IpList,
        };
        vec![
            IamAction::PutUserPolicy {
                user_name: "a".into(),
                policy_name: "p".into(),
                policy_document: doc.into(),
            },
            IamAction::GetUserPolicy {
                user_name: "a".into(),
                policy_name: "p".into(),
            },
            IamAction::ListUserPolicies {
                user_name: "a".into(),
                page: page.clone(),
            },
            IamAction::DeleteUserPolicy {
                user_name: "a".into(),
                policy_name: "p".into(),
            },
            IamAction::CreatePolicy {
                policy_name: "p".into(),
                path: "/a/b/".into(),
                policy_document: doc.into(),
                description: Some("d & e".into()),
                tags: vec![("k".into(), "v".into()), ("team".into(), String::new())],
            },
            IamAction::CreatePolicy {
                policy_name: "p".into(),
                path: "/".into(),
                policy_document: doc.into(),
                description: None,
                tags: vec![],
            },
            IamAction::GetPolicy {
                policy_arn: arn.clone(),
            },
            IamAction::GetPolicyVersion {
                policy_arn: arn.clone(),
                version_id: "v12".into(),
            },
            IamAction::ListPolicies {
                scope: PolicyScope::Local,
                only_attached: true,
                path_prefix: "/x/".into(),
                usage_filter: Some("PermissionsPolicy".into()),
                page: page.clone(),
            },
            IamAction::ListPolicies {
                scope: PolicyScope::All,
                only_attached: false,
                path_prefix: "/".into(),
                usage_filter: None,
                page: default_page.clone(),
            },
            IamAction::CreatePolicyVersion {
                policy_arn: arn.clone(),
                policy_document: doc.into(),
                set_as_default: true,
            },
            IamAction::CreatePolicyVersion {
                policy_arn: arn.clone(),
                policy_document: doc.into(),
                set_as_default: false,
            },
            IamAction::SetDefaultPolicyVersion {
                policy_arn: arn.clone(),
                version_id: "v2".into(),
            },
            IamAction::DeletePolicyVersion {
                policy_arn: arn.clone(),
                version_id: "v3.a-B".into(),
            },
            IamAction::ListPolicyVersions {
                policy_arn: arn.clone(),
                page: page.clone(),
            },
            IamAction::DeletePolicy {
                policy_arn: arn.clone(),
            },
            IamAction::AttachUserPolicy {
                user_name: "a".into(),
                policy_arn: arn.clone(),
            },
            IamAction::DetachUserPolicy {
                user_name: "a".into(),
                policy_arn: arn.clone(),
            },
            IamAction::ListAttachedUserPolicies {
                user_name: "a".into(),
                path_prefix: Some("/x/".into()),
                page: page.clone(),
            },
            IamAction::ListAttachedUserPolicies {
                user_name: "a".into(),
                path_prefix: None,
                page: default_page.clone(),
            },
            IamAction::ListEntitiesForPolicy {
                policy_arn: arn.clone(),
                entity_filter: Some(EntityFilter::AwsManagedPolicy),
                path_prefix: Some("/a:b/".into()),
                page: page.clone(),
            },
            IamAction::ListEntitiesForPolicy {
                policy_arn: arn.clone(),
                entity_filter: None,
                path_prefix: None,
                page: default_page.clone(),
            },
            IamAction::CreateGroup {
                group_name: "g".into(),
                path: "/ops/".into(),
            },
            IamAction::GetGroup {
                group_name: "g".into(),
                page: page.clone(),
            },
            IamAction::ListGroups {
                path_prefix: "/ops".into(),
                page: page.clone(),
            },
            IamAction::DeleteGroup {
                group_name: "g".into(),
            },
            IamAction::AddUserToGroup {
                group_name: "g".into(),
                user_name: "a".into(),
            },
            IamAction::RemoveUserFromGroup {
                group_name: "g".into(),
                user_name: "a".into(),
            },
            IamAction::ListGroupsForUser {
                user_name: "a".into(),
                page: page.clone(),
            },
            IamAction::PutGroupPolicy {
                group_name: "g".into(),
                policy_name: "p".into(),
                policy_document: doc.into(),
            },
            IamAction::GetGroupPolicy {
                group_name: "g".into(),
                policy_name: "p".into(),
            },
            IamAction::ListGroupPolicies {
                group_name: "g".into(),
                page: page.clone(),
            },
            IamAction::DeleteGroupPolicy {
                group_name: "g".into(),
                policy_name: "p".into(),
            },
            IamAction::AttachGroupPolicy {
                group_name: "g".into(),
                policy_arn: arn.clone(),
            },
            IamAction::DetachGroupPolicy {
                group_name: "g".into(),
                policy_arn: arn.clone(),
            },
            IamAction::ListAttachedGroupPolicies {
                group_name: "g".into(),
                path_prefix: Some("/".into()),
                page: page.clone(),
            },
            IamAction::SimulatePrincipalPolicy {
                policy_source_arn: "arn:aws:iam::123456789012:user/a".into(),
                policy_input_list: vec![doc.into(), "{}".into()],
                action_names: vec!["iam:GetUser".into(), "sts:GetSessionToken".into()],
                resource_arns: vec!["*".into()],
                context_entries: vec![entry.clone(), no_values.clone()],
                caller_arn: Some("arn:aws:iam::123456789012:user/b".into()),
                page: page.clone(),
            },
            IamAction::SimulatePrincipalPolicy {
                policy_source_arn: "arn:aws:iam::123456789012:user/a".into(),
                policy_input_list: vec![],
                action_names: vec![],
                resource_arns: vec![],
                context_entries: vec![],
                caller_arn: None,
                page: default_page.clone(),
            },
            IamAction::SimulateCustomPolicy {
                policy_input_list: vec![doc.into()],
                action_names: vec!["s3:GetObject".into()],
                resource_arns: vec!["arn:aws:s3:::b/k".into(), "*".into()],
                context_entries: vec![no_values, entry],
                caller_arn: None,
                page,
            },
            IamAction::SimulateCustomPolicy {
                policy_input_list: vec![],
                action_names: vec![],
                resource_arns: vec![],
                context_entries: vec![],
                caller_arn: Some("arn:aws:iam::123456789012:user/b".into()),
                page: default_page,
            },
            IamAction::GetContextKeysForPrincipalPolicy {
                policy_source_arn: "arn:aws:iam::123456789012:group/g".into(),
                policy_input_list: vec![doc.into()],
            },
            IamAction::GetContextKeysForPrincipalPolicy {
                policy_source_arn: "arn:aws:iam::123456789012:group/g".into(),
                policy_input_list: vec![],
            },
            IamAction::GetContextKeysForCustomPolicy {
                policy_input_list: vec![doc.into()],
            },
            IamAction::GetContextKeysForCustomPolicy {
                policy_input_list: vec![],
            },
        ]
    }

    #[test]
    fn every_new_action_has_a_round_trip_case() {
        let mut names: Vec<&str> = new_actions().iter().map(IamAction::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 35, "{names:?}");
    }

    /// One value of every new output, with the action that produces it.
    fn new_outputs(u: &UserView) -> Vec<(IamAction, IamOutput)> {
        let page = Page {
            marker: None,
            max_items: DEFAULT_MAX_ITEMS,
        };
        let arn = "arn:aws:iam::123456789012:policy/p".to_owned();
        let doc = "{\n  \"Version\": \"2012-10-17\", \"x\": \"a+b 50% <é> &'\"\n}";
        let policy = PolicyView {
            policy_name: "p".into(),
            policy_id: "ANPAEXAMPLE000000000".into(),
            arn: arn.clone(),
            path: "/".into(),
            default_version_id: "v1".into(),
            attachment_count: 3,
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: Some("d & <e>".into()),
            create_date: "2026-12-03T00:00:00Z".into(),
            update_date: "2026-12-03T01:00:00Z".into(),
        };
        let listed = PolicyView {
            description: None,
            is_attachable: false,
            ..policy.clone()
        };
        let version = PolicyVersionView {
            document: Some(doc.into()),
            version_id: "v1".into(),
            is_default_version: true,
            create_date: "2026-12-03T00:00:00Z".into(),
        };
        let group = GroupView {
            path: "/".into(),
            group_name: "g".into(),
            group_id: "AGPAEXAMPLE000000000".into(),
            arn: "arn:aws:iam::123456789012:group/g".into(),
            create_date: "2026-12-03T00:00:00Z".into(),
        };
        let entity = PolicyEntityView {
            name: "n".into(),
            id: "AIDAEXAMPLE000000000".into(),
        };
        let result = EvaluationResultView {
            action_name: "iam:GetUser".into(),
            resource_name: "*".into(),
            decision: EvalDecision::ExplicitDeny,
            matched: vec![MatchedStatementView {
                source_policy_id: "PolicyInputList.1".into(),
                source_policy_type: "IAM Policy".into(),
                start: (1, 2),
                end: (10, 42),
            }],
            missing_context_values: vec!["aws:MultiFactorAuthPresent".into()],
        };
        let bare = EvaluationResultView {
            decision: EvalDecision::ImplicitDeny,
            matched: vec![],
            missing_context_values: vec![],
            ..result.clone()
        };
        vec![
            (
                IamAction::GetUserPolicy {
                    user_name: "a".into(),
                    policy_name: "p".into(),
                },
                IamOutput::PolicyDocument {
                    action: "GetUserPolicy",
                    entity: EntityRef::User("a".into()),
                    policy_name: "p".into(),
                    document: doc.into(),
                },
            ),
            (
                IamAction::GetGroupPolicy {
                    group_name: "g".into(),
                    policy_name: "p".into(),
                },
                IamOutput::PolicyDocument {
                    action: "GetGroupPolicy",
                    entity: EntityRef::Group("g".into()),
                    policy_name: "p".into(),
                    document: doc.into(),
                },
            ),
            (
                IamAction::ListUserPolicies {
                    user_name: "a".into(),
                    page: page.clone(),
                },
                IamOutput::PolicyNames {
                    names: vec!["p1".into(), "p2".into()],
                    next_marker: Some("p2".into()),
                },
            ),
            (
                IamAction::ListGroupPolicies {
                    group_name: "g".into(),
                    page: page.clone(),
                },
                IamOutput::PolicyNames {
                    names: vec![],
                    next_marker: None,
                },
            ),
            (
                IamAction::CreatePolicy {
                    policy_name: "p".into(),
                    path: "/".into(),
                    policy_document: doc.into(),
                    description: None,
                    tags: vec![],
                },
                IamOutput::Policy {
                    action: "CreatePolicy",
                    policy: policy.clone(),
                },
            ),
            (
                IamAction::GetPolicy {
                    policy_arn: arn.clone(),
                },
                IamOutput::Policy {
                    action: "GetPolicy",
                    policy: listed.clone(),
                },
            ),
            (
                IamAction::ListPolicies {
                    scope: PolicyScope::All,
                    only_attached: false,
                    path_prefix: "/".into(),
                    usage_filter: None,
                    page: page.clone(),
                },
                IamOutput::Policies {
                    policies: vec![listed, policy],
                    next_marker: Some("m".into()),
                },
            ),
            (
                IamAction::GetPolicyVersion {
                    policy_arn: arn.clone(),
                    version_id: "v1".into(),
                },
                IamOutput::PolicyVersion {
                    action: "GetPolicyVersion",
                    version: version.clone(),
                },
            ),
            (
                IamAction::CreatePolicyVersion {
                    policy_arn: arn.clone(),
                    policy_document: doc.into(),
                    set_as_default: false,
                },
                IamOutput::PolicyVersion {
                    action: "CreatePolicyVersion",
                    version: PolicyVersionView {
                        document: None,
                        is_default_version: false,
                        ..version.clone()
                    },
                },
            ),
            (
                IamAction::ListPolicyVersions {
                    policy_arn: arn.clone(),
                    page: page.clone(),
                },
                IamOutput::PolicyVersions {
                    versions: vec![PolicyVersionView {
                        document: None,
                        ..version
                    }],
                    next_marker: None,
                },
            ),
            (
                IamAction::ListAttachedUserPolicies {
                    user_name: "a".into(),
                    path_prefix: None,
                    page: page.clone(),
                },
                IamOutput::AttachedPolicies {
                    action: "ListAttachedUserPolicies",
                    policies: vec![AttachedPolicyView {
                        policy_name: "p".into(),
                        policy_arn: arn.clone(),
                    }],
                    next_marker: Some("x".into()),
                },
            ),
            (
                IamAction::ListAttachedGroupPolicies {
                    group_name: "g".into(),
                    path_prefix: None,
                    page: page.clone(),
                },
                IamOutput::AttachedPolicies {
                    action: "ListAttachedGroupPolicies",
                    policies: vec![],
                    next_marker: None,
                },
            ),
            (
                IamAction::ListEntitiesForPolicy {
                    policy_arn: arn.clone(),
                    entity_filter: None,
                    path_prefix: None,
                    page: page.clone(),
                },
                IamOutput::EntitiesForPolicy {
                    groups: vec![entity.clone()],
                    users: vec![entity.clone(), entity],
                    roles: vec![],
                    next_marker: None,
                },
            ),
            (
                IamAction::CreateGroup {
                    group_name: "g".into(),
                    path: "/".into(),
                },
                IamOutput::Group {
                    action: "CreateGroup",
                    group: group.clone(),
                },
            ),
            (
                IamAction::GetGroup {
                    group_name: "g".into(),
                    page: page.clone(),
                },
                IamOutput::GroupDetail {
                    group: group.clone(),
                    users: vec![u.clone()],
                    next_marker: Some("a".into()),
                },
            ),
            (
                IamAction::ListGroups {
                    path_prefix: "/".into(),
                    page: page.clone(),
                },
                IamOutput::Groups {
                    action: "ListGroups",
                    groups: vec![group.clone(), group.clone()],
                    next_marker: None,
                },
            ),
            (
                IamAction::ListGroupsForUser {
                    user_name: "a".into(),
                    page: page.clone(),
                },
                IamOutput::Groups {
                    action: "ListGroupsForUser",
                    groups: vec![group],
                    next_marker: Some("g".into()),
                },
            ),
            (
                IamAction::SimulatePrincipalPolicy {
                    policy_source_arn: "arn:aws:iam::123456789012:user/a".into(),
                    policy_input_list: vec![],
                    action_names: vec!["iam:GetUser".into()],
                    resource_arns: vec![],
                    context_entries: vec![],
                    caller_arn: None,
                    page: page.clone(),
                },
                IamOutput::Simulation {
                    action: "SimulatePrincipalPolicy",
                    results: vec![result.clone(), bare],
                    next_marker: Some("2".into()),
                },
            ),
            (
                IamAction::SimulateCustomPolicy {
                    policy_input_list: vec![doc.into()],
                    action_names: vec!["iam:GetUser".into()],
                    resource_arns: vec![],
                    context_entries: vec![],
                    caller_arn: None,
                    page,
                },
                IamOutput::Simulation {
                    action: "SimulateCustomPolicy",
                    results: vec![result],
                    next_marker: None,
                },
            ),
            (
                IamAction::GetContextKeysForPrincipalPolicy {
                    policy_source_arn: "arn:aws:iam::123456789012:user/a".into(),
                    policy_input_list: vec![],
                },
                IamOutput::ContextKeys {
                    action: "GetContextKeysForPrincipalPolicy",
                    names: vec!["aws:CurrentTime".into(), "aws:username".into()],
                },
            ),
            (
                IamAction::GetContextKeysForCustomPolicy {
                    policy_input_list: vec![doc.into()],
                },
                IamOutput::ContextKeys {
                    action: "GetContextKeysForCustomPolicy",
                    names: vec![],
                },
            ),
            (
                IamAction::PutUserPolicy {
                    user_name: "a".into(),
                    policy_name: "p".into(),
                    policy_document: doc.into(),
                },
                IamOutput::Empty {
                    action: "PutUserPolicy",
                },
            ),
            (
                IamAction::DeletePolicy { policy_arn: arn },
                IamOutput::Empty {
                    action: "DeletePolicy",
                },
            ),
            (
                IamAction::AddUserToGroup {
                    group_name: "g".into(),
                    user_name: "a".into(),
                },
                IamOutput::Empty {
                    action: "AddUserToGroup",
                },
            ),
        ]
    }

    const NEW_ACTIONS: [&str; 35] = [
        "PutUserPolicy",
        "GetUserPolicy",
        "ListUserPolicies",
        "DeleteUserPolicy",
        "CreatePolicy",
        "GetPolicy",
        "GetPolicyVersion",
        "ListPolicies",
        "CreatePolicyVersion",
        "SetDefaultPolicyVersion",
        "DeletePolicyVersion",
        "ListPolicyVersions",
        "DeletePolicy",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "ListAttachedUserPolicies",
        "ListEntitiesForPolicy",
        "CreateGroup",
        "GetGroup",
        "ListGroups",
        "DeleteGroup",
        "AddUserToGroup",
        "RemoveUserFromGroup",
        "ListGroupsForUser",
        "PutGroupPolicy",
        "GetGroupPolicy",
        "ListGroupPolicies",
        "DeleteGroupPolicy",
        "AttachGroupPolicy",
        "DetachGroupPolicy",
        "ListAttachedGroupPolicies",
        "SimulatePrincipalPolicy",
        "SimulateCustomPolicy",
        "GetContextKeysForPrincipalPolicy",
        "GetContextKeysForCustomPolicy",
    ];

    proptest::proptest! {
        /// Whatever the parameters, parsing does not panic, and an accepted action re-parses from its
        /// own `to_params` to itself.
        #[test]
        fn accepted_actions_are_stable(
            action in proptest::sample::select(NEW_ACTIONS.to_vec()),
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "UserName", "GroupName", "PolicyName", "PolicyDocument", "PolicyArn", "VersionId",
                        "Path", "PathPrefix", "Description", "Scope", "OnlyAttached", "SetAsDefault",
                        "PolicyUsageFilter", "EntityFilter", "Marker", "MaxItems", "PolicySourceArn",
                        "CallerArn", "ActionNames", "ActionNames.member.1", "ActionNames.member.2",
                        "PolicyInputList.member.1", "ResourceArns.member.1", "Tags.member.1.Key",
                        "Tags.member.1.Value", "ContextEntries.member.1.ContextKeyName",
                        "ContextEntries.member.1.ContextKeyType",
                        "ContextEntries.member.1.ContextKeyValues.member.1",
                    ]),
                    proptest::sample::select(vec![
                        "", "a", "/", "/a/", "v1", "10", "0", "true", "All", "User", "boolean",
                        "arn:aws:iam::123456789012:user/a", "{\"Version\": \"2012-10-17\"}", "a b", "é",
                        "iam:GetUser",
                    ]),
                ),
                0..12,
            ),
        ) {
            let params = Params::from_pairs(
                pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            );
            if let Ok(a) = IamAction::parse(action, &params) {
                proptest::prop_assert_eq!(a.name(), action);
                let again = Params::from_pairs(a.to_params());
                let back = IamAction::parse(action, &again);
                proptest::prop_assert!(back.as_ref() == Ok(&a), "{} did not round-trip", action);
            }
        }

        #[test]
        fn documents_url_round_trip(doc in "\\PC{0,64}") {
            let enc = url_encode(&doc);
            proptest::prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
            proptest::prop_assert_eq!(url_decode(&enc), Ok(doc));
        }
    }
}
