//! The administration pages' templates (`crates/stsd/templates/console/admin/`), in the console's base
//! layout. No struct derives `Debug`: they carry the CSRF token, and one a new secret access key.

use crate::console::view::Layout;
use askama::Template;

/// A name linking to its page.
pub(crate) struct Link {
    pub name: String,
    pub href: String,
}

/// A user or group in a list.
pub(crate) struct EntityRow {
    pub name: String,
    pub href: String,
    pub arn: String,
    pub created: String,
}

/// An attached managed policy.
pub(crate) struct AttachedRow {
    pub name: String,
    pub href: String,
    pub arn: String,
}

/// An access key of the user.
pub(crate) struct KeyRow {
    pub id: String,
    pub status: String,
    pub created: String,
    pub active: bool,
}

/// An MFA device of the user.
pub(crate) struct DeviceRow {
    pub serial: String,
    pub enabled: String,
}

/// The user's login profile.
pub(crate) struct ProfileRow {
    pub created: String,
    pub reset_required: bool,
}

/// `/console/admin/`.
#[derive(Template)]
#[template(path = "console/admin/index.html")]
pub(crate) struct IndexPage<'a> {
    pub layout: Layout<'a>,
}

/// `/console/admin/users`.
#[derive(Template)]
#[template(path = "console/admin/users.html")]
pub(crate) struct UsersPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    /// `None` when listing was refused (the alert says why).
    pub users: Option<Vec<EntityRow>>,
    /// The name typed in the create form (kept after an error).
    pub typed: &'a str,
}

/// What the user page shows; each section is the list or the denial's message.
pub(crate) struct UserDetail {
    pub here: String,
    pub name: String,
    pub arn: String,
    pub id: String,
    pub created: String,
    pub mfa_required: Result<bool, String>,
    pub password: Result<Option<ProfileRow>, String>,
    pub keys: Result<Vec<KeyRow>, String>,
    pub devices: Result<Vec<DeviceRow>, String>,
    pub groups: Result<Vec<Link>, String>,
    /// Groups the principal may list, for the "Add to group" form (empty when refused: the form then
    /// takes a name).
    pub all_groups: Vec<String>,
    pub attached: Result<Vec<AttachedRow>, String>,
    /// Managed policies the principal may list, `(arn, name)`, for the attach form.
    pub attachable: Vec<(String, String)>,
    pub inline: Result<Vec<String>, String>,
}

/// `/console/admin/users/NAME`.
#[derive(Template)]
#[template(path = "console/admin/user.html")]
pub(crate) struct UserPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    /// `None` when `GetUser` failed (the alert says why).
    pub user: Option<UserDetail>,
}

/// A new access key of a user, with its secret (shown once).
#[derive(Template)]
#[template(path = "console/admin/key_created.html")]
pub(crate) struct KeyCreatedPage<'a> {
    pub layout: Layout<'a>,
    pub user: &'a str,
    pub id: &'a str,
    pub secret: &'a str,
    pub back: &'a str,
}

/// `/console/admin/groups`.
#[derive(Template)]
#[template(path = "console/admin/groups.html")]
pub(crate) struct GroupsPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    pub groups: Option<Vec<EntityRow>>,
    pub typed: &'a str,
}

/// What the group page shows.
pub(crate) struct GroupDetail {
    pub here: String,
    pub name: String,
    pub arn: String,
    pub created: String,
    pub members: Vec<Link>,
    pub attached: Result<Vec<AttachedRow>, String>,
    pub attachable: Vec<(String, String)>,
}

/// `/console/admin/groups/NAME`.
#[derive(Template)]
#[template(path = "console/admin/group.html")]
pub(crate) struct GroupPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    pub group: Option<GroupDetail>,
}

/// A managed policy in the list.
pub(crate) struct PolicyRow {
    pub name: String,
    pub href: String,
    pub arn: String,
    pub aws_managed: bool,
    pub attachments: i64,
}

/// `/console/admin/policies`.
#[derive(Template)]
#[template(path = "console/admin/policies.html")]
pub(crate) struct PoliciesPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    pub policies: Option<Vec<PolicyRow>>,
    pub typed_name: &'a str,
    pub typed_document: &'a str,
}

/// A user, group or role a policy is attached to (`href` empty for roles).
pub(crate) struct EntityRef {
    pub name: String,
    pub href: String,
    pub kind: &'static str,
}

/// What the policy page shows.
pub(crate) struct PolicyDetail {
    pub arn: String,
    pub description: String,
    pub version: String,
    pub attachments: i64,
    pub updated: String,
    /// The default version's document, pretty-printed.
    pub document: Result<String, String>,
    pub entities: Result<Vec<EntityRef>, String>,
}

/// `/console/admin/policies/view?arn=ARN`.
#[derive(Template)]
#[template(path = "console/admin/policy.html")]
pub(crate) struct PolicyPage<'a> {
    pub layout: Layout<'a>,
    pub policy: Option<PolicyDetail>,
}

/// One simulated action.
pub(crate) struct SimRow {
    pub action: String,
    pub resource: String,
    pub decision: &'static str,
    pub matched: Vec<String>,
    pub missing: String,
}

/// `/console/admin/simulator`.
#[derive(Template)]
#[template(path = "console/admin/simulator.html")]
pub(crate) struct SimulatorPage<'a> {
    pub layout: Layout<'a>,
    pub user: &'a str,
    pub actions: &'a str,
    pub resource: &'a str,
    pub mfa: bool,
    pub results: Option<Vec<SimRow>>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn layout(title: &str) -> Layout<'_> {
        Layout {
            title,
            account: "123456789012",
            user: Some("root"),
            csrf: Some("tok\"en"),
            nav: true,
            current: "admin",
            alert: None,
            status: None,
            css: "/console/static/console.css",
        }
    }

    #[test]
    fn admin_templates_escape_names_documents_and_the_csrf_token() {
        let html = PoliciesPage {
            layout: layout("Policies"),
            csrf: "tok\"en",
            policies: Some(vec![PolicyRow {
                name: "<b>x</b>".into(),
                href: "/console/admin/policies/view?arn=a&b".into(),
                arn: "arn".into(),
                aws_managed: false,
                attachments: 0,
            }]),
            typed_name: "\"><script>",
            typed_document: "</textarea><script>",
        }
        .render()
        .unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<b>x"),
            "{html}"
        );
        assert!(html.contains("value=\"tok&#34;en\""), "{html}");
        assert!(html.contains("aria-current=\"page\">Administration"));
        assert!(html.contains("<label for=\"policy-document\">"));

        let html = SimulatorPage {
            layout: layout("Policy simulator"),
            user: "<u>",
            actions: "iam:GetUser",
            resource: "*",
            mfa: true,
            results: Some(vec![SimRow {
                action: "iam:GetUser".into(),
                resource: "*".into(),
                decision: "allowed",
                matched: vec!["<p>".into()],
                missing: String::new(),
            }]),
        }
        .render()
        .unwrap();
        assert!(html.contains("<strong class=\"decision\">allowed</strong>"));
        assert!(html.contains("id=\"sim-mfa\" name=\"mfa\" value=\"on\" checked>"));
        assert!(
            !html.contains("<u>") && html.contains("&#60;p&#62;"),
            "{html}"
        );
    }
}
