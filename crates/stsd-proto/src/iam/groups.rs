//! Groups and their members. Group policies (inline and attached) are in [`super::policies`].

use super::{IamAction, IamOutput, marker_from, put_page, user_from, write_paging, write_user};
use crate::error::ApiError;
use crate::xml::{Element, XmlWriter};

/// A group as IAM shows it (the model's `Group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// Path.
    pub path: String,
    /// Name.
    pub group_name: String,
    /// `AGPA...`
    pub group_id: String,
    /// ARN.
    pub arn: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
}

/// Parses the group actions; `None` for any other action.
pub(super) fn parse(
    action: &str,
    f: &mut super::Fields<'_>,
) -> Result<Option<IamAction>, ApiError> {
    Ok(Some(match action {
        "CreateGroup" => IamAction::CreateGroup {
            path: f.path(),
            group_name: f.req_name("GroupName", "groupName", 128),
        },
        "GetGroup" => IamAction::GetGroup {
            group_name: f.req_name("GroupName", "groupName", 128),
            page: f.page()?,
        },
        "ListGroups" => IamAction::ListGroups {
            path_prefix: f.path_prefix(),
            page: f.page()?,
        },
        "DeleteGroup" => IamAction::DeleteGroup {
            group_name: f.req_name("GroupName", "groupName", 128),
        },
        "AddUserToGroup" => IamAction::AddUserToGroup {
            group_name: f.req_name("GroupName", "groupName", 128),
            user_name: f.req_name("UserName", "userName", 128),
        },
        "RemoveUserFromGroup" => IamAction::RemoveUserFromGroup {
            group_name: f.req_name("GroupName", "groupName", 128),
            user_name: f.req_name("UserName", "userName", 128),
        },
        "ListGroupsForUser" => IamAction::ListGroupsForUser {
            user_name: f.req_name("UserName", "userName", 128),
            page: f.page()?,
        },
        _ => return Ok(None),
    }))
}

/// Appends the parameters of the group actions; other actions append nothing.
pub(super) fn to_params(a: &IamAction, put: &mut dyn FnMut(&str, &str)) {
    match a {
        IamAction::CreateGroup { group_name, path } => {
            put("Path", path);
            put("GroupName", group_name);
        }
        IamAction::GetGroup { group_name, page } => {
            put("GroupName", group_name);
            put_page(put, page);
        }
        IamAction::ListGroups { path_prefix, page } => {
            put("PathPrefix", path_prefix);
            put_page(put, page);
        }
        IamAction::DeleteGroup { group_name } => put("GroupName", group_name),
        IamAction::AddUserToGroup {
            group_name,
            user_name,
        }
        | IamAction::RemoveUserFromGroup {
            group_name,
            user_name,
        } => {
            put("GroupName", group_name);
            put("UserName", user_name);
        }
        IamAction::ListGroupsForUser { user_name, page } => {
            put("UserName", user_name);
            put_page(put, page);
        }
        _ => {}
    }
}

fn write_group(w: &mut XmlWriter, tag: &str, g: &GroupView) {
    w.element(tag, |w| {
        w.leaf("Path", &g.path);
        w.leaf("GroupName", &g.group_name);
        w.leaf("GroupId", &g.group_id);
        w.leaf("Arn", &g.arn);
        w.leaf("CreateDate", &g.create_date);
    });
}

/// Writes the result members of the group outputs; `false` for any other output.
pub(super) fn write(out: &IamOutput, w: &mut XmlWriter) -> bool {
    match out {
        IamOutput::Group { group, .. } => write_group(w, "Group", group),
        IamOutput::GroupDetail {
            group,
            users,
            next_marker,
        } => {
            write_group(w, "Group", group);
            w.element("Users", |w| {
                users.iter().for_each(|u| write_user(w, "member", u));
            });
            write_paging(w, next_marker);
        }
        IamOutput::Groups {
            groups,
            next_marker,
            ..
        } => {
            w.element("Groups", |w| {
                groups.iter().for_each(|g| write_group(w, "member", g));
            });
            write_paging(w, next_marker);
        }
        _ => return false,
    }
    true
}

fn group_from(el: &Element) -> GroupView {
    let t = |n: &str| el.child_text(n).unwrap_or_default().to_owned();
    GroupView {
        path: t("Path"),
        group_name: t("GroupName"),
        group_id: t("GroupId"),
        arn: t("Arn"),
        create_date: t("CreateDate"),
    }
}

/// Reads the result of a group action; `None` for any other action.
pub(super) fn from_xml(
    action: &IamAction,
    name: &'static str,
    result: Option<&Element>,
) -> Result<Option<IamOutput>, String> {
    let need = || result.ok_or_else(|| format!("{name}Response has no {name}Result"));
    Ok(Some(match action {
        IamAction::CreateGroup { .. } => IamOutput::Group {
            action: name,
            group: group_from(need()?.child("Group").ok_or("no Group")?),
        },
        IamAction::GetGroup { .. } => {
            let r = need()?;
            IamOutput::GroupDetail {
                group: group_from(r.child("Group").ok_or("no Group")?),
                users: r
                    .child("Users")
                    .map(|u| u.children_named("member").map(user_from).collect())
                    .unwrap_or_default(),
                next_marker: marker_from(r),
            }
        }
        IamAction::ListGroups { .. } | IamAction::ListGroupsForUser { .. } => {
            let r = need()?;
            IamOutput::Groups {
                action: name,
                groups: r
                    .child("Groups")
                    .map(|g| g.children_named("member").map(group_from).collect())
                    .unwrap_or_default(),
                next_marker: marker_from(r),
            }
        }
        IamAction::DeleteGroup { .. }
        | IamAction::AddUserToGroup { .. }
        | IamAction::RemoveUserFromGroup { .. } => IamOutput::Empty { action: name },
        _ => return Ok(None),
    }))
}
