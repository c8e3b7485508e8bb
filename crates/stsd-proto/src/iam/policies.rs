//! Inline policies of users and groups, managed policies, their versions and attachments.
//!
//! Documents IAM returns are URL-encoded (RFC 3986) inside the XML: botocore reads them with
//! `json.loads(urllib.parse.unquote(v))`, so a space must be `%20`, never `+` ([`url_encode`]).

use super::{IamAction, IamOutput, marker_from, put_page, write_paging};
use crate::error::ApiError;
use crate::xml::{Element, XmlWriter};

/// `Scope` of `ListPolicies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyScope {
    /// `All` (the default).
    All,
    /// `AWS`: AWS managed policies only.
    Aws,
    /// `Local`: customer managed policies only.
    Local,
}

impl PolicyScope {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyScope::All => "All",
            PolicyScope::Aws => "AWS",
            PolicyScope::Local => "Local",
        }
    }

    /// The scope named `s` (case-sensitive, as IAM's enum check).
    pub fn from_wire(s: &str) -> Option<Self> {
        [PolicyScope::All, PolicyScope::Aws, PolicyScope::Local]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// `EntityFilter` of `ListEntitiesForPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityFilter {
    /// `User`.
    User,
    /// `Role`.
    Role,
    /// `Group`.
    Group,
    /// `LocalManagedPolicy`.
    LocalManagedPolicy,
    /// `AWSManagedPolicy`.
    AwsManagedPolicy,
}

impl EntityFilter {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityFilter::User => "User",
            EntityFilter::Role => "Role",
            EntityFilter::Group => "Group",
            EntityFilter::LocalManagedPolicy => "LocalManagedPolicy",
            EntityFilter::AwsManagedPolicy => "AWSManagedPolicy",
        }
    }

    /// The filter named `s` (case-sensitive, as IAM's enum check).
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    const ALL: [EntityFilter; 5] = [
        EntityFilter::User,
        EntityFilter::Role,
        EntityFilter::Group,
        EntityFilter::LocalManagedPolicy,
        EntityFilter::AwsManagedPolicy,
    ];
}

const SCOPES: [&str; 3] = ["All", "AWS", "Local"];
const USAGE_FILTERS: [&str; 2] = ["PermissionsPolicy", "PermissionsBoundary"];
const ENTITY_FILTERS: [&str; 5] = [
    "User",
    "Role",
    "Group",
    "LocalManagedPolicy",
    "AWSManagedPolicy",
];

/// Parses the policy actions; `None` for any other action.
pub(super) fn parse(
    action: &str,
    f: &mut super::Fields<'_>,
) -> Result<Option<IamAction>, ApiError> {
    // Members are read in the model's order, so clauses come in that order.
    Ok(Some(match action {
        "PutUserPolicy" => IamAction::PutUserPolicy {
            user_name: f.req_name("UserName", "userName", 128),
            policy_name: f.policy_name(),
            policy_document: f.document(),
        },
        "GetUserPolicy" => IamAction::GetUserPolicy {
            user_name: f.req_name("UserName", "userName", 128),
            policy_name: f.policy_name(),
        },
        "ListUserPolicies" => IamAction::ListUserPolicies {
            user_name: f.req_name("UserName", "userName", 128),
            page: f.page()?,
        },
        "DeleteUserPolicy" => IamAction::DeleteUserPolicy {
            user_name: f.req_name("UserName", "userName", 128),
            policy_name: f.policy_name(),
        },
        "PutGroupPolicy" => IamAction::PutGroupPolicy {
            group_name: f.req_name("GroupName", "groupName", 128),
            policy_name: f.policy_name(),
            policy_document: f.document(),
        },
        "GetGroupPolicy" => IamAction::GetGroupPolicy {
            group_name: f.req_name("GroupName", "groupName", 128),
            policy_name: f.policy_name(),
        },
        "ListGroupPolicies" => IamAction::ListGroupPolicies {
            group_name: f.req_name("GroupName", "groupName", 128),
            page: f.page()?,
        },
        "DeleteGroupPolicy" => IamAction::DeleteGroupPolicy {
            group_name: f.req_name("GroupName", "groupName", 128),
            policy_name: f.policy_name(),
        },
        "CreatePolicy" => IamAction::CreatePolicy {
            policy_name: f.policy_name(),
            path: f
                .policy_path("Path", "path")
                .unwrap_or_else(|| "/".to_owned()),
            policy_document: f.document(),
            description: f.params.get("Description").map(|d| {
                f.v.length("description", d, None, Some(1000));
                d.to_owned()
            }),
            tags: tags(f),
        },
        "GetPolicy" => IamAction::GetPolicy {
            policy_arn: f.policy_arn(),
        },
        "GetPolicyVersion" => IamAction::GetPolicyVersion {
            policy_arn: f.policy_arn(),
            version_id: f.version_id(),
        },
        "ListPolicies" => IamAction::ListPolicies {
            scope: f
                .enumerated("Scope", "scope", &SCOPES)
                .and_then(PolicyScope::from_wire)
                .unwrap_or(PolicyScope::All),
            only_attached: f.boolean("OnlyAttached", "onlyAttached")?.unwrap_or(false),
            path_prefix: f
                .policy_path("PathPrefix", "pathPrefix")
                .unwrap_or_else(|| "/".to_owned()),
            usage_filter: f
                .enumerated("PolicyUsageFilter", "policyUsageFilter", &USAGE_FILTERS)
                .map(str::to_owned),
            page: f.page()?,
        },
        "CreatePolicyVersion" => IamAction::CreatePolicyVersion {
            policy_arn: f.policy_arn(),
            policy_document: f.document(),
            set_as_default: f.boolean("SetAsDefault", "setAsDefault")?.unwrap_or(false),
        },
        "SetDefaultPolicyVersion" => IamAction::SetDefaultPolicyVersion {
            policy_arn: f.policy_arn(),
            version_id: f.version_id(),
        },
        "DeletePolicyVersion" => IamAction::DeletePolicyVersion {
            policy_arn: f.policy_arn(),
            version_id: f.version_id(),
        },
        "ListPolicyVersions" => IamAction::ListPolicyVersions {
            policy_arn: f.policy_arn(),
            page: f.page()?,
        },
        "DeletePolicy" => IamAction::DeletePolicy {
            policy_arn: f.policy_arn(),
        },
        "AttachUserPolicy" => IamAction::AttachUserPolicy {
            user_name: f.req_name("UserName", "userName", 64),
            policy_arn: f.policy_arn(),
        },
        "DetachUserPolicy" => IamAction::DetachUserPolicy {
            user_name: f.req_name("UserName", "userName", 64),
            policy_arn: f.policy_arn(),
        },
        "ListAttachedUserPolicies" => IamAction::ListAttachedUserPolicies {
            user_name: f.req_name("UserName", "userName", 64),
            path_prefix: f.policy_path("PathPrefix", "pathPrefix"),
            page: f.page()?,
        },
        "AttachGroupPolicy" => IamAction::AttachGroupPolicy {
            group_name: f.req_name("GroupName", "groupName", 128),
            policy_arn: f.policy_arn(),
        },
        "DetachGroupPolicy" => IamAction::DetachGroupPolicy {
            group_name: f.req_name("GroupName", "groupName", 128),
            policy_arn: f.policy_arn(),
        },
        "ListAttachedGroupPolicies" => IamAction::ListAttachedGroupPolicies {
            group_name: f.req_name("GroupName", "groupName", 128),
            path_prefix: f.policy_path("PathPrefix", "pathPrefix"),
            page: f.page()?,
        },
        "ListEntitiesForPolicy" => {
            let policy_arn = f.policy_arn();
            let entity_filter = f
                .enumerated("EntityFilter", "entityFilter", &ENTITY_FILTERS)
                .and_then(EntityFilter::from_wire);
            let path_prefix = f.path_type("PathPrefix", "pathPrefix");
            // Validated, not carried: stsd has no permissions boundaries yet.
            let _ = f.enumerated("PolicyUsageFilter", "policyUsageFilter", &USAGE_FILTERS);
            IamAction::ListEntitiesForPolicy {
                policy_arn,
                entity_filter,
                path_prefix,
                page: f.page()?,
            }
        }
        _ => return Ok(None),
    }))
}

/// `Tags.member.N.{Key,Value}` (list of at most 50; key `1..=128`, value `0..=256`, both of
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`), members named `tags.N.member.key` in messages.
fn tags(f: &mut super::Fields<'_>) -> Vec<(String, String)> {
    const KEY_PATTERN: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+";
    const VALUE_PATTERN: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*";
    let Some(members) = f.params.list_structs("Tags") else {
        return Vec::new();
    };
    if members.len() > 50 {
        f.v.push("tags", "", "have length less than or equal to 50");
    }
    let mut out = Vec::with_capacity(members.len());
    for (n, tag) in members {
        let key_member = format!("tags.{n}.member.key");
        let value_member = format!("tags.{n}.member.value");
        let key = match tag.get("Key") {
            Some(k) => {
                f.v.length(&key_member, k, Some(1), Some(128));
                f.v.pattern(&key_member, k, KEY_PATTERN, true, is_tag_char);
                k.to_owned()
            }
            None => {
                f.v.not_null(&key_member);
                String::new()
            }
        };
        let value = match tag.get("Value") {
            Some(v) => {
                f.v.length(&value_member, v, None, Some(256));
                f.v.pattern(&value_member, v, VALUE_PATTERN, false, is_tag_char);
                v.to_owned()
            }
            None => {
                f.v.not_null(&value_member);
                String::new()
            }
        };
        out.push((key, value));
    }
    out
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: letters (Rust's `Alphabetic`, a slight superset of `L`), separators
/// (whitespace that is not a control character), numbers, and `_.:/=+-@`.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

/// Appends the parameters of the policy actions; other actions append nothing.
pub(super) fn to_params(a: &IamAction, put: &mut dyn FnMut(&str, &str)) {
    match a {
        IamAction::PutUserPolicy {
            user_name,
            policy_name,
            policy_document,
        } => {
            put("UserName", user_name);
            put("PolicyName", policy_name);
            put("PolicyDocument", policy_document);
        }
        IamAction::GetUserPolicy {
            user_name,
            policy_name,
        }
        | IamAction::DeleteUserPolicy {
            user_name,
            policy_name,
        } => {
            put("UserName", user_name);
            put("PolicyName", policy_name);
        }
        IamAction::ListUserPolicies { user_name, page } => {
            put("UserName", user_name);
            put_page(put, page);
        }
        IamAction::PutGroupPolicy {
            group_name,
            policy_name,
            policy_document,
        } => {
            put("GroupName", group_name);
            put("PolicyName", policy_name);
            put("PolicyDocument", policy_document);
        }
        IamAction::GetGroupPolicy {
            group_name,
            policy_name,
        }
        | IamAction::DeleteGroupPolicy {
            group_name,
            policy_name,
        } => {
            put("GroupName", group_name);
            put("PolicyName", policy_name);
        }
        IamAction::ListGroupPolicies { group_name, page } => {
            put("GroupName", group_name);
            put_page(put, page);
        }
        IamAction::CreatePolicy {
            policy_name,
            path,
            policy_document,
            description,
            tags,
        } => {
            put("PolicyName", policy_name);
            put("Path", path);
            put("PolicyDocument", policy_document);
            if let Some(d) = description {
                put("Description", d);
            }
            for (i, (k, v)) in tags.iter().enumerate() {
                put(&format!("Tags.member.{}.Key", i + 1), k);
                put(&format!("Tags.member.{}.Value", i + 1), v);
            }
        }
        IamAction::GetPolicy { policy_arn } | IamAction::DeletePolicy { policy_arn } => {
            put("PolicyArn", policy_arn);
        }
        IamAction::GetPolicyVersion {
            policy_arn,
            version_id,
        }
        | IamAction::SetDefaultPolicyVersion {
            policy_arn,
            version_id,
        }
        | IamAction::DeletePolicyVersion {
            policy_arn,
            version_id,
        } => {
            put("PolicyArn", policy_arn);
            put("VersionId", version_id);
        }
        IamAction::ListPolicies {
            scope,
            only_attached,
            path_prefix,
            usage_filter,
            page,
        } => {
            put("Scope", scope.as_str());
            if *only_attached {
                put("OnlyAttached", "true");
            }
            put("PathPrefix", path_prefix);
            if let Some(u) = usage_filter {
                put("PolicyUsageFilter", u);
            }
            put_page(put, page);
        }
        IamAction::CreatePolicyVersion {
            policy_arn,
            policy_document,
            set_as_default,
        } => {
            put("PolicyArn", policy_arn);
            put("PolicyDocument", policy_document);
            if *set_as_default {
                put("SetAsDefault", "true");
            }
        }
        IamAction::ListPolicyVersions { policy_arn, page } => {
            put("PolicyArn", policy_arn);
            put_page(put, page);
        }
        IamAction::AttachUserPolicy {
            user_name,
            policy_arn,
        }
        | IamAction::DetachUserPolicy {
            user_name,
            policy_arn,
        } => {
            put("UserName", user_name);
            put("PolicyArn", policy_arn);
        }
        IamAction::AttachGroupPolicy {
            group_name,
            policy_arn,
        }
        | IamAction::DetachGroupPolicy {
            group_name,
            policy_arn,
        } => {
            put("GroupName", group_name);
            put("PolicyArn", policy_arn);
        }
        IamAction::ListAttachedUserPolicies {
            user_name,
            path_prefix,
            page,
        } => {
            put("UserName", user_name);
            if let Some(p) = path_prefix {
                put("PathPrefix", p);
            }
            put_page(put, page);
        }
        IamAction::ListAttachedGroupPolicies {
            group_name,
            path_prefix,
            page,
        } => {
            put("GroupName", group_name);
            if let Some(p) = path_prefix {
                put("PathPrefix", p);
            }
            put_page(put, page);
        }
        IamAction::ListEntitiesForPolicy {
            policy_arn,
            entity_filter,
            path_prefix,
            page,
        } => {
            put("PolicyArn", policy_arn);
            if let Some(e) = entity_filter {
                put("EntityFilter", e.as_str());
            }
            if let Some(p) = path_prefix {
                put("PathPrefix", p);
            }
            put_page(put, page);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The per-entity policy actions, by entity and operation

/// The kind of entity that holds inline policies and managed-policy attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderKind {
    /// An IAM user.
    User,
    /// An IAM group.
    Group,
    /// An IAM role.
    Role,
}

/// The entity a per-entity policy action names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyHolder<'a> {
    /// User, group or role.
    pub kind: HolderKind,
    /// Its name as given (`UserName`, `GroupName` or `RoleName`).
    pub name: &'a str,
}

/// What a per-entity policy action does to its entity's policies: the seven operations IAM has for
/// each of users, groups and roles (`PutUserPolicy`, `PutGroupPolicy`, `PutRolePolicy`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityPolicyOp<'a> {
    /// `Put*Policy`.
    PutInline {
        /// `PolicyName`.
        policy_name: &'a str,
        /// `PolicyDocument`.
        document: &'a str,
    },
    /// `Get*Policy`.
    GetInline {
        /// `PolicyName`.
        policy_name: &'a str,
    },
    /// `List*Policies`.
    ListInline {
        /// Paging.
        page: &'a super::Page,
    },
    /// `Delete*Policy`.
    DeleteInline {
        /// `PolicyName`.
        policy_name: &'a str,
    },
    /// `Attach*Policy`.
    Attach {
        /// `PolicyArn`.
        policy_arn: &'a str,
    },
    /// `Detach*Policy`.
    Detach {
        /// `PolicyArn`.
        policy_arn: &'a str,
    },
    /// `ListAttached*Policies`.
    ListAttached {
        /// `PathPrefix`.
        path_prefix: Option<&'a str>,
        /// Paging.
        page: &'a super::Page,
    },
}

impl IamAction {
    /// For the 21 per-entity policy actions, the entity they name and what they do; `None` for every
    /// other action. One executor serves users, groups and roles alike through this view.
    pub fn entity_policy_call(&self) -> Option<(PolicyHolder<'_>, EntityPolicyOp<'_>)> {
        use EntityPolicyOp as Op;
        use HolderKind::{Group, Role, User};
        let (kind, name, op) = match self {
            IamAction::PutUserPolicy {
                user_name: n,
                policy_name,
                policy_document: d,
            } => (
                User,
                n,
                Op::PutInline {
                    policy_name,
                    document: d,
                },
            ),
            IamAction::PutGroupPolicy {
                group_name: n,
                policy_name,
                policy_document: d,
            } => (
                Group,
                n,
                Op::PutInline {
                    policy_name,
                    document: d,
                },
            ),
            IamAction::PutRolePolicy {
                role_name: n,
                policy_name,
                policy_document: d,
            } => (
                Role,
                n,
                Op::PutInline {
                    policy_name,
                    document: d,
                },
            ),
            IamAction::GetUserPolicy {
                user_name: n,
                policy_name,
            } => (User, n, Op::GetInline { policy_name }),
            IamAction::GetGroupPolicy {
                group_name: n,
                policy_name,
            } => (Group, n, Op::GetInline { policy_name }),
            IamAction::GetRolePolicy {
                role_name: n,
                policy_name,
            } => (Role, n, Op::GetInline { policy_name }),
            IamAction::ListUserPolicies { user_name: n, page } => {
                (User, n, Op::ListInline { page })
            }
            IamAction::ListGroupPolicies {
                group_name: n,
                page,
            } => (Group, n, Op::ListInline { page }),
            IamAction::ListRolePolicies { role_name: n, page } => {
                (Role, n, Op::ListInline { page })
            }
            IamAction::DeleteUserPolicy {
                user_name: n,
                policy_name,
            } => (User, n, Op::DeleteInline { policy_name }),
            IamAction::DeleteGroupPolicy {
                group_name: n,
                policy_name,
            } => (Group, n, Op::DeleteInline { policy_name }),
            IamAction::DeleteRolePolicy {
                role_name: n,
                policy_name,
            } => (Role, n, Op::DeleteInline { policy_name }),
            IamAction::AttachUserPolicy {
                user_name: n,
                policy_arn,
            } => (User, n, Op::Attach { policy_arn }),
            IamAction::AttachGroupPolicy {
                group_name: n,
                policy_arn,
            } => (Group, n, Op::Attach { policy_arn }),
            IamAction::AttachRolePolicy {
                role_name: n,
                policy_arn,
            } => (Role, n, Op::Attach { policy_arn }),
            IamAction::DetachUserPolicy {
                user_name: n,
                policy_arn,
            } => (User, n, Op::Detach { policy_arn }),
            IamAction::DetachGroupPolicy {
                group_name: n,
                policy_arn,
            } => (Group, n, Op::Detach { policy_arn }),
            IamAction::DetachRolePolicy {
                role_name: n,
                policy_arn,
            } => (Role, n, Op::Detach { policy_arn }),
            IamAction::ListAttachedUserPolicies {
                user_name: n,
                path_prefix: p,
                page,
            } => (
                User,
                n,
                Op::ListAttached {
                    path_prefix: p.as_deref(),
                    page,
                },
            ),
            IamAction::ListAttachedGroupPolicies {
                group_name: n,
                path_prefix: p,
                page,
            } => (
                Group,
                n,
                Op::ListAttached {
                    path_prefix: p.as_deref(),
                    page,
                },
            ),
            IamAction::ListAttachedRolePolicies {
                role_name: n,
                path_prefix: p,
                page,
            } => (
                Role,
                n,
                Op::ListAttached {
                    path_prefix: p.as_deref(),
                    page,
                },
            ),
            _ => return None,
        };
        Some((PolicyHolder { kind, name }, op))
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// Whose inline policy a [`IamOutput::PolicyDocument`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityRef {
    /// A user, by name (`<UserName>`).
    User(String),
    /// A group, by name (`<GroupName>`).
    Group(String),
    /// A role, by name (`<RoleName>`).
    Role(String),
}

/// A managed policy as IAM shows it (the model's `Policy`; `Tags` are not shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    /// Name.
    pub policy_name: String,
    /// `ANPA...`
    pub policy_id: String,
    /// ARN.
    pub arn: String,
    /// Path.
    pub path: String,
    /// `v1`, `v2`, ...
    pub default_version_id: String,
    /// Users, groups and roles it is attached to.
    pub attachment_count: i64,
    /// Entities it is the permissions boundary of.
    pub permissions_boundary_usage_count: i64,
    /// Whether it can be attached.
    pub is_attachable: bool,
    /// Shown by `GetPolicy`/`CreatePolicy` only, when set.
    pub description: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub update_date: String,
}

/// A version of a managed policy (the model's `PolicyVersion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionView {
    /// The raw document (URL-encoded in the XML); `None` in `ListPolicyVersions`.
    pub document: Option<String>,
    /// `v1`, `v2`, ...
    pub version_id: String,
    /// Whether it is the default version.
    pub is_default_version: bool,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
}

/// A managed policy attached to a user, group or role (the model's `AttachedPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPolicyView {
    /// Name.
    pub policy_name: String,
    /// ARN.
    pub policy_arn: String,
}

/// A group, user or role in `ListEntitiesForPolicy` (`PolicyGroup`, `PolicyUser`, `PolicyRole`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntityView {
    /// `GroupName` / `UserName` / `RoleName`.
    pub name: String,
    /// `GroupId` / `UserId` / `RoleId`.
    pub id: String,
}

/// Percent-encodes `text` per RFC 3986 as IAM does for policy documents: the unreserved characters
/// `A-Za-z0-9-_.~` are kept, every other UTF-8 byte becomes `%XX` (upper-case hex; a space is `%20`).
pub fn url_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` escapes (as Python's `urllib.parse.unquote`, but strictly: `+` stays `+`).
///
/// # Errors
/// A message for a truncated or non-hex escape, or bytes that are not UTF-8.
pub fn url_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let digit = |j: usize| {
                bytes
                    .get(j)
                    .and_then(|c| char::from(*c).to_digit(16))
                    .and_then(|d| u8::try_from(d).ok())
            };
            match (digit(i + 1), digit(i + 2)) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(format!("bad percent escape at byte {i}")),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "decoded document is not UTF-8".to_owned())
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn write_policy(w: &mut XmlWriter, tag: &str, p: &PolicyView) {
    w.element(tag, |w| {
        w.leaf("PolicyName", &p.policy_name);
        w.leaf("PolicyId", &p.policy_id);
        w.leaf("Arn", &p.arn);
        w.leaf("Path", &p.path);
        w.leaf("DefaultVersionId", &p.default_version_id);
        w.leaf("AttachmentCount", &p.attachment_count.to_string());
        w.leaf(
            "PermissionsBoundaryUsageCount",
            &p.permissions_boundary_usage_count.to_string(),
        );
        w.leaf("IsAttachable", bool_text(p.is_attachable));
        if let Some(d) = &p.description {
            w.leaf("Description", d);
        }
        w.leaf("CreateDate", &p.create_date);
        w.leaf("UpdateDate", &p.update_date);
    });
}

fn write_version(w: &mut XmlWriter, tag: &str, v: &PolicyVersionView) {
    w.element(tag, |w| {
        if let Some(d) = &v.document {
            w.leaf("Document", &url_encode(d));
        }
        w.leaf("VersionId", &v.version_id);
        w.leaf("IsDefaultVersion", bool_text(v.is_default_version));
        w.leaf("CreateDate", &v.create_date);
    });
}

fn write_entities(w: &mut XmlWriter, list: &str, kind: &str, items: &[PolicyEntityView]) {
    let (name_tag, id_tag) = (format!("{kind}Name"), format!("{kind}Id"));
    w.element(list, |w| {
        for e in items {
            w.element("member", |w| {
                w.leaf(&name_tag, &e.name);
                w.leaf(&id_tag, &e.id);
            });
        }
    });
}

/// Writes the result members of the policy outputs; `false` for any other output.
pub(super) fn write(out: &IamOutput, w: &mut XmlWriter) -> bool {
    match out {
        IamOutput::PolicyDocument {
            entity,
            policy_name,
            document,
            ..
        } => {
            match entity {
                EntityRef::User(n) => w.leaf("UserName", n),
                EntityRef::Group(n) => w.leaf("GroupName", n),
                EntityRef::Role(n) => w.leaf("RoleName", n),
            }
            w.leaf("PolicyName", policy_name);
            w.leaf("PolicyDocument", &url_encode(document));
        }
        IamOutput::PolicyNames { names, next_marker } => {
            w.element("PolicyNames", |w| {
                names.iter().for_each(|n| w.leaf("member", n));
            });
            write_paging(w, next_marker);
        }
        IamOutput::Policy { policy, .. } => write_policy(w, "Policy", policy),
        IamOutput::Policies {
            policies,
            next_marker,
        } => {
            w.element("Policies", |w| {
                policies.iter().for_each(|p| write_policy(w, "member", p));
            });
            write_paging(w, next_marker);
        }
        IamOutput::PolicyVersion { version, .. } => write_version(w, "PolicyVersion", version),
        IamOutput::PolicyVersions {
            versions,
            next_marker,
        } => {
            w.element("Versions", |w| {
                versions.iter().for_each(|v| write_version(w, "member", v));
            });
            write_paging(w, next_marker);
        }
        IamOutput::AttachedPolicies {
            policies,
            next_marker,
            ..
        } => {
            w.element("AttachedPolicies", |w| {
                for p in policies {
                    w.element("member", |w| {
                        w.leaf("PolicyName", &p.policy_name);
                        w.leaf("PolicyArn", &p.policy_arn);
                    });
                }
            });
            write_paging(w, next_marker);
        }
        IamOutput::EntitiesForPolicy {
            groups,
            users,
            roles,
            next_marker,
        } => {
            write_entities(w, "PolicyGroups", "Group", groups);
            write_entities(w, "PolicyUsers", "User", users);
            write_entities(w, "PolicyRoles", "Role", roles);
            write_paging(w, next_marker);
        }
        _ => return false,
    }
    true
}

fn text(el: &Element, name: &str) -> String {
    el.child_text(name).unwrap_or_default().to_owned()
}

fn int(el: &Element, name: &str) -> Result<i64, String> {
    let t = el.child_text(name).unwrap_or("0");
    t.parse()
        .map_err(|_| format!("{name} is not an integer: {t}"))
}

fn policy_from(el: &Element) -> Result<PolicyView, String> {
    Ok(PolicyView {
        policy_name: text(el, "PolicyName"),
        policy_id: text(el, "PolicyId"),
        arn: text(el, "Arn"),
        path: text(el, "Path"),
        default_version_id: text(el, "DefaultVersionId"),
        attachment_count: int(el, "AttachmentCount")?,
        permissions_boundary_usage_count: int(el, "PermissionsBoundaryUsageCount")?,
        is_attachable: el.child_text("IsAttachable") == Some("true"),
        description: el.child_text("Description").map(str::to_owned),
        create_date: text(el, "CreateDate"),
        update_date: text(el, "UpdateDate"),
    })
}

fn version_from(el: &Element) -> Result<PolicyVersionView, String> {
    Ok(PolicyVersionView {
        document: el.child_text("Document").map(url_decode).transpose()?,
        version_id: text(el, "VersionId"),
        is_default_version: el.child_text("IsDefaultVersion") == Some("true"),
        create_date: text(el, "CreateDate"),
    })
}

fn members<'a>(r: &'a Element, list: &str) -> Vec<&'a Element> {
    r.child(list)
        .map(|l| l.children_named("member").collect())
        .unwrap_or_default()
}

fn entities_from(r: &Element, list: &str, kind: &str) -> Vec<PolicyEntityView> {
    let (name_tag, id_tag) = (format!("{kind}Name"), format!("{kind}Id"));
    members(r, list)
        .into_iter()
        .map(|m| PolicyEntityView {
            name: text(m, &name_tag),
            id: text(m, &id_tag),
        })
        .collect()
}

/// Reads the result of a policy action; `None` for any other action.
pub(super) fn from_xml(
    action: &IamAction,
    name: &'static str,
    result: Option<&Element>,
) -> Result<Option<IamOutput>, String> {
    let need = || result.ok_or_else(|| format!("{name}Response has no {name}Result"));
    Ok(Some(match action {
        IamAction::GetUserPolicy { .. } | IamAction::GetGroupPolicy { .. } => {
            let r = need()?;
            let entity = if matches!(action, IamAction::GetUserPolicy { .. }) {
                EntityRef::User(r.child_text("UserName").ok_or("no UserName")?.to_owned())
            } else {
                EntityRef::Group(r.child_text("GroupName").ok_or("no GroupName")?.to_owned())
            };
            IamOutput::PolicyDocument {
                action: name,
                entity,
                policy_name: text(r, "PolicyName"),
                document: url_decode(r.child_text("PolicyDocument").ok_or("no PolicyDocument")?)?,
            }
        }
        IamAction::ListUserPolicies { .. } | IamAction::ListGroupPolicies { .. } => {
            let r = need()?;
            IamOutput::PolicyNames {
                names: members(r, "PolicyNames")
                    .into_iter()
                    .map(|m| m.text.clone())
                    .collect(),
                next_marker: marker_from(r),
            }
        }
        IamAction::CreatePolicy { .. } | IamAction::GetPolicy { .. } => IamOutput::Policy {
            action: name,
            policy: policy_from(need()?.child("Policy").ok_or("no Policy")?)?,
        },
        IamAction::ListPolicies { .. } => {
            let r = need()?;
            IamOutput::Policies {
                policies: members(r, "Policies")
                    .into_iter()
                    .map(policy_from)
                    .collect::<Result<_, _>>()?,
                next_marker: marker_from(r),
            }
        }
        IamAction::GetPolicyVersion { .. } | IamAction::CreatePolicyVersion { .. } => {
            IamOutput::PolicyVersion {
                action: name,
                version: version_from(need()?.child("PolicyVersion").ok_or("no PolicyVersion")?)?,
            }
        }
        IamAction::ListPolicyVersions { .. } => {
            let r = need()?;
            IamOutput::PolicyVersions {
                versions: members(r, "Versions")
                    .into_iter()
                    .map(version_from)
                    .collect::<Result<_, _>>()?,
                next_marker: marker_from(r),
            }
        }
        IamAction::ListAttachedUserPolicies { .. }
        | IamAction::ListAttachedGroupPolicies { .. } => {
            let r = need()?;
            IamOutput::AttachedPolicies {
                action: name,
                policies: members(r, "AttachedPolicies")
                    .into_iter()
                    .map(|m| AttachedPolicyView {
                        policy_name: text(m, "PolicyName"),
                        policy_arn: text(m, "PolicyArn"),
                    })
                    .collect(),
                next_marker: marker_from(r),
            }
        }
        IamAction::ListEntitiesForPolicy { .. } => {
            let r = need()?;
            IamOutput::EntitiesForPolicy {
                groups: entities_from(r, "PolicyGroups", "Group"),
                users: entities_from(r, "PolicyUsers", "User"),
                roles: entities_from(r, "PolicyRoles", "Role"),
                next_marker: marker_from(r),
            }
        }
        IamAction::PutUserPolicy { .. }
        | IamAction::DeleteUserPolicy { .. }
        | IamAction::PutGroupPolicy { .. }
        | IamAction::DeleteGroupPolicy { .. }
        | IamAction::SetDefaultPolicyVersion { .. }
        | IamAction::DeletePolicyVersion { .. }
        | IamAction::DeletePolicy { .. }
        | IamAction::AttachUserPolicy { .. }
        | IamAction::DetachUserPolicy { .. }
        | IamAction::AttachGroupPolicy { .. }
        | IamAction::DetachGroupPolicy { .. } => IamOutput::Empty { action: name },
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_is_rfc3986() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\t\"a+b\": \"50% é ~x_y.z-\"\r}";
        let enc = url_encode(doc);
        assert_eq!(
            enc,
            "%7B%0A%20%20%22Version%22%3A%20%222012-10-17%22%2C%09%22a%2Bb%22%3A%20%2250%25%20%C3%A9%20~x_y.z-%22%0D%7D"
        );
        assert!(!enc.contains('+') && !enc.contains(' '));
        assert_eq!(url_decode(&enc).unwrap(), doc);
        // Every Latin-1 character round-trips.
        let latin1: String = ('\u{20}'..='\u{ff}').collect();
        assert_eq!(url_decode(&url_encode(&latin1)).unwrap(), latin1);
        assert_eq!(url_decode("a+b%20c").unwrap(), "a+b c");
        for bad in ["%", "%4", "%zz", "%C3"] {
            assert!(url_decode(bad).is_err(), "{bad}");
        }
    }

    /// Each of the 21 per-entity policy actions, parsed from its wire form, is seen as its entity and
    /// operation with the values sent; other actions are not.
    #[test]
    fn per_entity_policy_actions_are_seen_by_entity_and_operation() {
        use crate::params::Params;
        let doc = "{\"Version\":\"2012-10-17\",\"Statement\":[]}";
        let arn = "arn:aws:iam::aws:policy/ReadOnlyAccess";
        let page = crate::iam::Page {
            marker: Some("m".into()),
            max_items: 7,
        };
        let mut seen = 0;
        for (kind, noun) in [
            (HolderKind::User, "User"),
            (HolderKind::Group, "Group"),
            (HolderKind::Role, "Role"),
        ] {
            let ops = [
                (
                    format!("Put{noun}Policy"),
                    "&PolicyName=p&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D",
                    EntityPolicyOp::PutInline {
                        policy_name: "p",
                        document: doc,
                    },
                ),
                (
                    format!("Get{noun}Policy"),
                    "&PolicyName=p",
                    EntityPolicyOp::GetInline { policy_name: "p" },
                ),
                (
                    format!("List{noun}Policies"),
                    "&Marker=m&MaxItems=7",
                    EntityPolicyOp::ListInline { page: &page },
                ),
                (
                    format!("Delete{noun}Policy"),
                    "&PolicyName=p",
                    EntityPolicyOp::DeleteInline { policy_name: "p" },
                ),
                (
                    format!("Attach{noun}Policy"),
                    "&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess",
                    EntityPolicyOp::Attach { policy_arn: arn },
                ),
                (
                    format!("Detach{noun}Policy"),
                    "&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess",
                    EntityPolicyOp::Detach { policy_arn: arn },
                ),
                (
                    format!("ListAttached{noun}Policies"),
                    "&PathPrefix=%2Fx%2F&Marker=m&MaxItems=7",
                    EntityPolicyOp::ListAttached {
                        path_prefix: Some("/x/"),
                        page: &page,
                    },
                ),
            ];
            for (action, rest, op) in ops {
                let q = format!("Action={action}&Version=2010-05-08&{noun}Name=n{rest}");
                let params = Params::parse(q.as_bytes());
                let parsed = IamAction::parse(&action, &params).unwrap();
                assert_eq!(parsed.name(), action);
                assert_eq!(
                    parsed.entity_policy_call(),
                    Some((PolicyHolder { kind, name: "n" }, op)),
                    "{action}"
                );
                seen += 1;
            }
        }
        assert_eq!(seen, 21);
        for q in [
            "Action=CreatePolicy&PolicyName=p&PolicyDocument=%7B%7D",
            "Action=ListEntitiesForPolicy&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess",
            "Action=GetRole&RoleName=n",
            "Action=CreateUser&UserName=n",
            "Action=ListGroupsForUser&UserName=n",
        ] {
            let params = Params::parse(q.as_bytes());
            let action = params.get("Action").unwrap();
            let parsed = IamAction::parse(action, &params).unwrap();
            assert_eq!(parsed.entity_policy_call(), None, "{q}");
        }
    }
}

#[cfg(test)]
mod xml_tests {
    use super::*;

    #[test]
    fn inline_document_is_url_encoded_in_place() {
        let body = IamOutput::PolicyDocument {
            action: "GetUserPolicy",
            entity: EntityRef::User("alice".into()),
            policy_name: "p".into(),
            document: "{\"a\": \"b+c\"}".into(),
        }
        .to_xml("GetUserPolicy", "rid");
        assert!(
            body.contains("  <GetUserPolicyResult>\n    <UserName>alice</UserName>\n    <PolicyName>p</PolicyName>\n    <PolicyDocument>%7B%22a%22%3A%20%22b%2Bc%22%7D</PolicyDocument>\n  </GetUserPolicyResult>\n"),
            "{body}"
        );
        let role = IamOutput::PolicyDocument {
            action: "GetRolePolicy",
            entity: EntityRef::Role("r".into()),
            policy_name: "p".into(),
            document: "{}".into(),
        }
        .to_xml("GetRolePolicy", "rid");
        assert!(role.contains("<RoleName>r</RoleName>"), "{role}");
    }

    #[test]
    fn policy_members_in_model_order() {
        let body = IamOutput::Policy {
            action: "GetPolicy",
            policy: PolicyView {
                policy_name: "p".into(),
                policy_id: "ANPAEXAMPLE000000000".into(),
                arn: "arn:aws:iam::123456789012:policy/p".into(),
                path: "/".into(),
                default_version_id: "v1".into(),
                attachment_count: 2,
                permissions_boundary_usage_count: 0,
                is_attachable: true,
                description: Some("d".into()),
                create_date: "2026-12-03T00:00:00Z".into(),
                update_date: "2026-12-03T00:00:00Z".into(),
            },
        }
        .to_xml("GetPolicy", "rid");
        let want = "  <GetPolicyResult>
    <Policy>
      <PolicyName>p</PolicyName>
      <PolicyId>ANPAEXAMPLE000000000</PolicyId>
      <Arn>arn:aws:iam::123456789012:policy/p</Arn>
      <Path>/</Path>
      <DefaultVersionId>v1</DefaultVersionId>
      <AttachmentCount>2</AttachmentCount>
      <PermissionsBoundaryUsageCount>0</PermissionsBoundaryUsageCount>
      <IsAttachable>true</IsAttachable>
      <Description>d</Description>
      <CreateDate>2026-12-03T00:00:00Z</CreateDate>
      <UpdateDate>2026-12-03T00:00:00Z</UpdateDate>
    </Policy>
  </GetPolicyResult>
";
        assert!(body.contains(want), "{body}");
        let entities = IamOutput::EntitiesForPolicy {
            groups: vec![],
            users: vec![PolicyEntityView {
                name: "u".into(),
                id: "AIDAEXAMPLE000000000".into(),
            }],
            roles: vec![],
            next_marker: Some("n".into()),
        }
        .to_xml("ListEntitiesForPolicy", "rid");
        assert!(
            entities.contains("    <PolicyUsers>\n      <member>\n        <UserName>u</UserName>\n        <UserId>AIDAEXAMPLE000000000</UserId>\n      </member>\n    </PolicyUsers>\n    <PolicyRoles>\n    </PolicyRoles>\n    <IsTruncated>true</IsTruncated>\n    <Marker>n</Marker>\n"),
            "{entities}"
        );
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;
    use crate::iam::Page;
    use crate::params::Params;

    fn parse(action: &str, q: &str) -> Result<IamAction, ApiError> {
        IamAction::parse(action, &Params::parse(q.as_bytes()))
    }

    fn message(action: &str, q: &str) -> String {
        parse(action, q).unwrap_err().message
    }

    const ONE: &str = "1 validation error detected: ";

    #[test]
    fn policy_names() {
        let long = "p".repeat(129);
        assert_eq!(
            message("GetUserPolicy", &format!("UserName=a&PolicyName={long}")),
            format!(
                "{ONE}Value at 'policyName' failed to satisfy constraint: Member must have length less than or equal to 128"
            )
        );
        assert!(
            parse(
                "GetUserPolicy",
                &format!("UserName=a&PolicyName={}", "p".repeat(128))
            )
            .is_ok()
        );
        assert_eq!(
            message("DeleteGroupPolicy", "GroupName=g&PolicyName=a%2Fb"),
            format!(
                "{ONE}Value at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
            )
        );
        assert_eq!(
            message("PutUserPolicy", ""),
            "3 validation errors detected: Value null at 'userName' failed to satisfy constraint: Member must not be null; Value null at 'policyName' failed to satisfy constraint: Member must not be null; Value null at 'policyDocument' failed to satisfy constraint: Member must not be null"
        );
        // Attach/Detach take the 64-character userNameType, the inline forms the 128-character one.
        assert!(
            parse(
                "PutUserPolicy",
                &format!(
                    "UserName={}&PolicyName=p&PolicyDocument=%7B%7D",
                    "u".repeat(128)
                )
            )
            .is_ok()
        );
        assert_eq!(
            message(
                "AttachUserPolicy",
                &format!("UserName={}&PolicyArn=arn", "u".repeat(65))
            ),
            "2 validation errors detected: Value at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64; Value at 'policyArn' failed to satisfy constraint: Member must have length greater than or equal to 20"
        );
    }

    #[test]
    fn documents() {
        let ok = "PutGroupPolicy";
        assert!(
            parse(
                ok,
                "GroupName=g&PolicyName=p&PolicyDocument=%7B%09%0A%0D+%C3%BF%7D"
            )
            .is_ok()
        );
        for bad in ["%01", "%E2%82%AC", ""] {
            let m = message(
                ok,
                &format!("GroupName=g&PolicyName=p&PolicyDocument={bad}"),
            );
            assert!(
                m.contains("Value at 'policyDocument' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"),
                "{bad}: {m}"
            );
            assert!(!m.contains(bad) || bad.is_empty(), "{m}");
        }
        let big = "a".repeat(131_073);
        assert_eq!(
            message(
                "CreatePolicyVersion",
                &format!("PolicyArn=arn:aws:iam::1:policy/p&PolicyDocument={big}")
            ),
            format!(
                "{ONE}Value at 'policyDocument' failed to satisfy constraint: Member must have length less than or equal to 131072"
            )
        );
    }

    #[test]
    fn managed_policy_members() {
        for (path, ok) in [
            ("/", true),
            ("/a/", true),
            ("/a.b/c,d+e@f=g_h-i/", true),
            ("", false),
            ("a/", false),
            ("/a", false),
            ("//", false),
            ("/a//b/", false),
            ("/a b/", false),
            ("/a:b/", false),
        ] {
            let r = parse(
                "CreatePolicy",
                &format!(
                    "PolicyName=p&PolicyDocument=%7B%7D&Path={}",
                    form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
                ),
            );
            assert_eq!(r.is_ok(), ok, "{path:?}: {r:?}");
        }
        assert_eq!(
            message("CreatePolicy", "PolicyName=p&PolicyDocument=x&Path=a"),
            format!(
                "{ONE}Value at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/"
            )
        );
        assert_eq!(
            message(
                "CreatePolicy",
                &format!(
                    "PolicyName=p&PolicyDocument=x&Description={}",
                    "d".repeat(1001)
                )
            ),
            format!(
                "{ONE}Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000"
            )
        );
        let arn = "PolicyArn=arn%3Aaws%3Aiam%3A%3A1%3Apolicy%2Fp";
        for (v, ok) in [
            ("v1", true),
            ("v10", true),
            ("v2.", true),
            ("v2.a-Z9", true),
            ("v0", false),
            ("v01", false),
            ("1", false),
            ("V1", false),
            ("v", false),
            ("v1.a_b", false),
            ("v1.a.b", false),
            ("", false),
        ] {
            let r = parse("GetPolicyVersion", &format!("{arn}&VersionId={v}"));
            assert_eq!(r.is_ok(), ok, "{v:?}: {r:?}");
        }
        assert_eq!(
            message("DeletePolicyVersion", &format!("{arn}&VersionId=x")),
            format!(
                "{ONE}Value at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?"
            )
        );
        assert_eq!(
            message("SetDefaultPolicyVersion", ""),
            "2 validation errors detected: Value null at 'policyArn' failed to satisfy constraint: Member must not be null; Value null at 'versionId' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn list_policies_members() {
        assert_eq!(
            parse("ListPolicies", "").unwrap(),
            IamAction::ListPolicies {
                scope: PolicyScope::All,
                only_attached: false,
                path_prefix: "/".into(),
                usage_filter: None,
                page: Page {
                    marker: None,
                    max_items: 100
                },
            }
        );
        assert_eq!(
            parse("ListPolicies", "Scope=AWS&OnlyAttached=TRUE&MaxItems=5").unwrap(),
            IamAction::ListPolicies {
                scope: PolicyScope::Aws,
                only_attached: true,
                path_prefix: "/".into(),
                usage_filter: None,
                page: Page {
                    marker: None,
                    max_items: 5
                },
            }
        );
        assert_eq!(
            message("ListPolicies", "Scope=aws"),
            format!(
                "{ONE}Value at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
            )
        );
        assert_eq!(
            message("ListPolicies", "PolicyUsageFilter=Boundary&MaxItems=1001"),
            "2 validation errors detected: Value at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]; Value at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000"
        );
        let e = parse("ListPolicies", "OnlyAttached=yes").unwrap_err();
        assert_eq!((e.status, e.code.as_ref()), (400, "MalformedInput"));
        assert_eq!(
            parse(
                "ListPolicyVersions",
                "PolicyArn=arn%3Aaws%3Aiam%3A%3A1%3Apolicy%2Fp&MaxItems=ten"
            )
            .unwrap_err()
            .code,
            "MalformedInput"
        );
        assert_eq!(
            message(
                "ListEntitiesForPolicy",
                "PolicyArn=arn%3Aaws%3Aiam%3A%3A1%3Apolicy%2Fp&EntityFilter=user&PathPrefix=x"
            ),
            "2 validation errors detected: Value at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]; Value at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
        );
    }

    #[test]
    fn tags() {
        let base = "PolicyName=p&PolicyDocument=x";
        let IamAction::CreatePolicy { tags, .. } = parse(
            "CreatePolicy",
            &format!("{base}&Tags.member.2.Key=b&Tags.member.2.Value=&Tags.member.1.Value=%C3%A9+1&Tags.member.1.Key=a"),
        )
        .unwrap() else {
            panic!("not CreatePolicy")
        };
        assert_eq!(
            tags,
            [("a".into(), "é 1".into()), ("b".into(), String::new())]
        );
        assert_eq!(
            message(
                "CreatePolicy",
                &format!(
                    "{base}&Tags.member.1.Value=v&Tags.member.2.Key=a%21&Tags.member.2.Value=v"
                )
            ),
            "2 validation errors detected: Value null at 'tags.1.member.key' failed to satisfy constraint: Member must not be null; Value at 'tags.2.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"
        );
        let many: String = (1..=51)
            .map(|i| format!("&Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v"))
            .collect();
        assert_eq!(
            message("CreatePolicy", &format!("{base}{many}")),
            format!(
                "{ONE}Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
            )
        );
    }

    #[test]
    fn group_members() {
        assert_eq!(
            parse("CreateGroup", "GroupName=ops").unwrap(),
            IamAction::CreateGroup {
                group_name: "ops".into(),
                path: "/".into()
            }
        );
        assert_eq!(
            message("CreateGroup", "Path=ops&GroupName=a+b"),
            "2 validation errors detected: Value at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F); Value at 'groupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
        assert_eq!(
            message("AddUserToGroup", "GroupName=g"),
            format!(
                "{ONE}Value null at 'userName' failed to satisfy constraint: Member must not be null"
            )
        );
        assert_eq!(
            message("ListGroups", "PathPrefix=ops"),
            format!(
                "{ONE}Value at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*"
            )
        );
    }
}
