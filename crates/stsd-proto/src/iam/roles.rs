//! Roles: `CreateRole`, `GetRole`, `ListRoles`, `UpdateRole`, `UpdateAssumeRolePolicy`, `DeleteRole`,
//! role inline policies (`Put/Get/List/DeleteRolePolicy`) and attachments
//! (`Attach/Detach/ListAttachedRolePolicies`). Shapes and constraints from the model (`iam/2010-05-08`).

use super::{
    AttachedPolicyView, EntityRef, IamAction, IamOutput, is_document_char, marker_from, put_page,
    url_decode, url_encode, write_paging,
};
use crate::error::ApiError;
use crate::validate::parse_int;
use crate::xml::{Element, XmlWriter};

/// A role as IAM shows it (the model's `Role`; tags, boundary and last use are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    /// Path.
    pub path: String,
    /// Name.
    pub role_name: String,
    /// `AROA...`
    pub role_id: String,
    /// ARN.
    pub arn: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
    /// The trust policy (URL-encoded on the wire).
    pub assume_role_policy_document: String,
    /// Description.
    pub description: Option<String>,
    /// Longest session in seconds.
    pub max_session_duration: i64,
}

const DESCRIPTION_PATTERN: &str = "[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*";

fn is_description_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}')
}

fn role_name(f: &mut super::Fields<'_>) -> String {
    f.req_name("RoleName", "roleName", 64)
}

fn description(f: &mut super::Fields<'_>) -> Option<String> {
    let d = f.params.get("Description")?;
    f.v.length("description", d, Some(0), Some(1000));
    f.v.pattern(
        "description",
        d,
        DESCRIPTION_PATTERN,
        true,
        is_description_char,
    );
    Some(d.to_owned())
}

fn max_session_duration(f: &mut super::Fields<'_>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = f.params.get("MaxSessionDuration") else {
        return Ok(None);
    };
    let n = parse_int("maxSessionDuration", raw)?;
    f.v.int_range("maxSessionDuration", n, Some(3600), Some(43_200));
    Ok(Some(n))
}

fn trust_document(f: &mut super::Fields<'_>, param: &str, member: &str) -> String {
    f.req(
        param,
        member,
        (1, 131_072),
        super::DOCUMENT_PATTERN,
        is_document_char,
    )
}

/// Parses the role actions; `None` for any other action.
pub(super) fn parse(
    action: &str,
    f: &mut super::Fields<'_>,
) -> Result<Option<IamAction>, ApiError> {
    Ok(Some(match action {
        "CreateRole" => {
            let path = f.path();
            let role_name = role_name(f);
            let assume_role_policy_document =
                trust_document(f, "AssumeRolePolicyDocument", "assumeRolePolicyDocument");
            let description = description(f);
            let max_session_duration = max_session_duration(f)?;
            IamAction::CreateRole {
                path,
                role_name,
                assume_role_policy_document,
                description,
                max_session_duration,
            }
        }
        "GetRole" => IamAction::GetRole {
            role_name: role_name(f),
        },
        "ListRoles" => IamAction::ListRoles {
            path_prefix: f.path_prefix(),
            page: f.page()?,
        },
        "UpdateRole" => {
            let role_name = role_name(f);
            let description = description(f);
            let max_session_duration = max_session_duration(f)?;
            IamAction::UpdateRole {
                role_name,
                description,
                max_session_duration,
            }
        }
        "UpdateAssumeRolePolicy" => IamAction::UpdateAssumeRolePolicy {
            role_name: role_name(f),
            policy_document: trust_document(f, "PolicyDocument", "policyDocument"),
        },
        "DeleteRole" => IamAction::DeleteRole {
            role_name: role_name(f),
        },
        "PutRolePolicy" => IamAction::PutRolePolicy {
            role_name: role_name(f),
            policy_name: f.policy_name(),
            policy_document: f.document(),
        },
        "GetRolePolicy" => IamAction::GetRolePolicy {
            role_name: role_name(f),
            policy_name: f.policy_name(),
        },
        "ListRolePolicies" => IamAction::ListRolePolicies {
            role_name: role_name(f),
            page: f.page()?,
        },
        "DeleteRolePolicy" => IamAction::DeleteRolePolicy {
            role_name: role_name(f),
            policy_name: f.policy_name(),
        },
        "AttachRolePolicy" => IamAction::AttachRolePolicy {
            role_name: role_name(f),
            policy_arn: f.policy_arn(),
        },
        "DetachRolePolicy" => IamAction::DetachRolePolicy {
            role_name: role_name(f),
            policy_arn: f.policy_arn(),
        },
        "ListAttachedRolePolicies" => IamAction::ListAttachedRolePolicies {
            role_name: role_name(f),
            path_prefix: f.policy_path("PathPrefix", "pathPrefix"),
            page: f.page()?,
        },
        _ => return Ok(None),
    }))
}

/// The wire names of the role actions.
pub(super) fn name(a: &IamAction) -> Option<&'static str> {
    Some(match a {
        IamAction::CreateRole { .. } => "CreateRole",
        IamAction::GetRole { .. } => "GetRole",
        IamAction::ListRoles { .. } => "ListRoles",
        IamAction::UpdateRole { .. } => "UpdateRole",
        IamAction::UpdateAssumeRolePolicy { .. } => "UpdateAssumeRolePolicy",
        IamAction::DeleteRole { .. } => "DeleteRole",
        IamAction::PutRolePolicy { .. } => "PutRolePolicy",
        IamAction::GetRolePolicy { .. } => "GetRolePolicy",
        IamAction::ListRolePolicies { .. } => "ListRolePolicies",
        IamAction::DeleteRolePolicy { .. } => "DeleteRolePolicy",
        IamAction::AttachRolePolicy { .. } => "AttachRolePolicy",
        IamAction::DetachRolePolicy { .. } => "DetachRolePolicy",
        IamAction::ListAttachedRolePolicies { .. } => "ListAttachedRolePolicies",
        _ => return None,
    })
}

/// Appends the parameters of the role actions; other actions append nothing.
pub(super) fn to_params(a: &IamAction, put: &mut dyn FnMut(&str, &str)) {
    match a {
        IamAction::CreateRole {
            path,
            role_name,
            assume_role_policy_document,
            description,
            max_session_duration,
        } => {
            put("Path", path);
            put("RoleName", role_name);
            put("AssumeRolePolicyDocument", assume_role_policy_document);
            if let Some(d) = description {
                put("Description", d);
            }
            if let Some(m) = max_session_duration {
                put("MaxSessionDuration", &m.to_string());
            }
        }
        IamAction::GetRole { role_name } | IamAction::DeleteRole { role_name } => {
            put("RoleName", role_name);
        }
        IamAction::ListRoles { path_prefix, page } => {
            put("PathPrefix", path_prefix);
            put_page(put, page);
        }
        IamAction::UpdateRole {
            role_name,
            description,
            max_session_duration,
        } => {
            put("RoleName", role_name);
            if let Some(d) = description {
                put("Description", d);
            }
            if let Some(m) = max_session_duration {
                put("MaxSessionDuration", &m.to_string());
            }
        }
        IamAction::UpdateAssumeRolePolicy {
            role_name,
            policy_document,
        } => {
            put("RoleName", role_name);
            put("PolicyDocument", policy_document);
        }
        IamAction::PutRolePolicy {
            role_name,
            policy_name,
            policy_document,
        } => {
            put("RoleName", role_name);
            put("PolicyName", policy_name);
            put("PolicyDocument", policy_document);
        }
        IamAction::GetRolePolicy {
            role_name,
            policy_name,
        }
        | IamAction::DeleteRolePolicy {
            role_name,
            policy_name,
        } => {
            put("RoleName", role_name);
            put("PolicyName", policy_name);
        }
        IamAction::ListRolePolicies { role_name, page } => {
            put("RoleName", role_name);
            put_page(put, page);
        }
        IamAction::AttachRolePolicy {
            role_name,
            policy_arn,
        }
        | IamAction::DetachRolePolicy {
            role_name,
            policy_arn,
        } => {
            put("RoleName", role_name);
            put("PolicyArn", policy_arn);
        }
        IamAction::ListAttachedRolePolicies {
            role_name,
            path_prefix,
            page,
        } => {
            put("RoleName", role_name);
            if let Some(p) = path_prefix {
                put("PathPrefix", p);
            }
            put_page(put, page);
        }
        _ => {}
    }
}

fn write_role(w: &mut XmlWriter, tag: &str, r: &RoleView) {
    w.element(tag, |w| {
        w.leaf("Path", &r.path);
        w.leaf("RoleName", &r.role_name);
        w.leaf("RoleId", &r.role_id);
        w.leaf("Arn", &r.arn);
        w.leaf("CreateDate", &r.create_date);
        w.leaf(
            "AssumeRolePolicyDocument",
            &url_encode(&r.assume_role_policy_document),
        );
        if let Some(d) = &r.description {
            w.leaf("Description", d);
        }
        w.leaf("MaxSessionDuration", &r.max_session_duration.to_string());
    });
}

/// Writes the result members of the role outputs; `false` for any other output.
pub(super) fn write(out: &IamOutput, w: &mut XmlWriter) -> bool {
    match out {
        IamOutput::Role { role, .. } => write_role(w, "Role", role),
        IamOutput::Roles { roles, next_marker } => {
            w.element("Roles", |w| {
                roles.iter().for_each(|r| write_role(w, "member", r));
            });
            write_paging(w, next_marker);
        }
        _ => return false,
    }
    true
}

fn role_from(el: &Element) -> Result<RoleView, String> {
    let t = |n: &str| el.child_text(n).unwrap_or_default().to_owned();
    Ok(RoleView {
        path: t("Path"),
        role_name: t("RoleName"),
        role_id: t("RoleId"),
        arn: t("Arn"),
        create_date: t("CreateDate"),
        assume_role_policy_document: url_decode(&t("AssumeRolePolicyDocument"))?,
        description: el.child_text("Description").map(str::to_owned),
        max_session_duration: t("MaxSessionDuration").parse().unwrap_or(3600),
    })
}

/// Reads the result of a role action; `None` for any other action.
pub(super) fn from_xml(
    action: &IamAction,
    name: &'static str,
    result: Option<&Element>,
) -> Result<Option<IamOutput>, String> {
    let need = || result.ok_or_else(|| format!("{name}Response has no {name}Result"));
    let members = |r: &Element, list: &str| -> Vec<String> {
        r.child(list)
            .map(|l| l.children_named("member").map(|m| m.text.clone()).collect())
            .unwrap_or_default()
    };
    Ok(Some(match action {
        IamAction::CreateRole { .. } | IamAction::GetRole { .. } => IamOutput::Role {
            action: name,
            role: role_from(need()?.child("Role").ok_or("no Role")?)?,
        },
        IamAction::ListRoles { .. } => {
            let r = need()?;
            let mut roles = Vec::new();
            if let Some(l) = r.child("Roles") {
                for m in l.children_named("member") {
                    roles.push(role_from(m)?);
                }
            }
            IamOutput::Roles {
                roles,
                next_marker: marker_from(r),
            }
        }
        IamAction::GetRolePolicy { .. } => {
            let r = need()?;
            IamOutput::PolicyDocument {
                action: name,
                entity: EntityRef::Role(r.child_text("RoleName").unwrap_or_default().to_owned()),
                policy_name: r.child_text("PolicyName").unwrap_or_default().to_owned(),
                document: url_decode(r.child_text("PolicyDocument").ok_or("no PolicyDocument")?)?,
            }
        }
        IamAction::ListRolePolicies { .. } => {
            let r = need()?;
            IamOutput::PolicyNames {
                names: members(r, "PolicyNames"),
                next_marker: marker_from(r),
            }
        }
        IamAction::ListAttachedRolePolicies { .. } => {
            let r = need()?;
            let policies = r
                .child("AttachedPolicies")
                .map(|l| {
                    l.children_named("member")
                        .map(|m| AttachedPolicyView {
                            policy_name: m.child_text("PolicyName").unwrap_or_default().to_owned(),
                            policy_arn: m.child_text("PolicyArn").unwrap_or_default().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            IamOutput::AttachedPolicies {
                action: name,
                policies,
                next_marker: marker_from(r),
            }
        }
        IamAction::UpdateRole { .. }
        | IamAction::UpdateAssumeRolePolicy { .. }
        | IamAction::DeleteRole { .. }
        | IamAction::PutRolePolicy { .. }
        | IamAction::DeleteRolePolicy { .. }
        | IamAction::AttachRolePolicy { .. }
        | IamAction::DetachRolePolicy { .. } => IamOutput::Empty { action: name },
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    fn parse(action: &str, q: &str) -> Result<IamAction, ApiError> {
        IamAction::parse(action, &Params::parse(q.as_bytes()))
    }

    #[test]
    fn create_role_validation() {
        let a = parse(
            "CreateRole",
            "RoleName=admin&AssumeRolePolicyDocument=%7B%7D&MaxSessionDuration=7200",
        )
        .unwrap();
        assert_eq!(
            a,
            IamAction::CreateRole {
                path: "/".into(),
                role_name: "admin".into(),
                assume_role_policy_document: "{}".into(),
                description: None,
                max_session_duration: Some(7200),
            }
        );
        let e = parse(
            "CreateRole",
            "RoleName=admin&AssumeRolePolicyDocument=%7B%7D&MaxSessionDuration=60",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600"
        );
        let e = parse("CreateRole", "RoleName=a%20b").unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected"),
            "{}",
            e.message
        );
        // Round trip through the parameters.
        let back = IamAction::parse(
            "CreateRole",
            &Params::from_pairs(a.to_params().into_iter().skip(2).collect()),
        );
        assert_eq!(back.unwrap(), a);
    }

    #[test]
    fn role_xml_round_trip() {
        let role = RoleView {
            path: "/".into(),
            role_name: "admin".into(),
            role_id: "AROAEXAMPLE".into(),
            arn: "arn:aws:iam::123456789012:role/admin".into(),
            create_date: "2026-12-01T00:00:00Z".into(),
            assume_role_policy_document: "{\"Version\": \"2012-10-17\"}".into(),
            description: Some("d".into()),
            max_session_duration: 3600,
        };
        let out = IamOutput::Role {
            action: "GetRole",
            role: role.clone(),
        };
        let xml = out.to_xml("GetRole", "rid");
        assert!(
            xml.contains("<AssumeRolePolicyDocument>%7B%22Version%22%3A%20%222012-10-17%22%7D</AssumeRolePolicyDocument>"),
            "{xml}"
        );
        let back = IamOutput::from_xml(
            &IamAction::GetRole {
                role_name: "admin".into(),
            },
            &xml,
        )
        .unwrap();
        assert_eq!(back, out);
    }
}
