//! Administration pages of the console (issue 19), under `/console/admin/`: users, groups, managed
//! policies and the policy simulator, in the console's base layout (templates in
//! `crates/stsd/templates/console/admin/`, see [`view`]).
//!
//! There is no permission model here: every page runs IAM actions through the console's executor
//! ([`super::run_action_api`] → [`crate::iam::Iam`]) as the signed-in principal, with the sign-in's MFA
//! state as `aws:MultiFactorAuthPresent`, so the principal's policies decide (the root may do
//! everything) and every call is in the audit log. A denial shows IAM's own `AccessDenied` text in a
//! `role="alert"` element, with the status the API would answer (403). The one setting IAM lacks, the
//! per-user "MFA required" flag of `stsd admin mfa require`, is authorized as `iam:UpdateUser` (and read
//! as `iam:GetUser`) on the user.
//!
//! The router checks the session (fully signed in) and, for every POST, the CSRF token before calling
//! [`handle`]. State-changing forms are POSTs that redirect (303) back to the page with a fixed notice,
//! or re-render it with the error.

mod view;

use super::session::SessionInfo;
use super::view::Layout;
use super::{Reply, audit, identity, render, respond, run_action_api};
use crate::handler::Incoming;
use crate::state::AppState;
use serde_json::json;
use stsd_core::secret::Secret;
use stsd_proto::iam::{
    ContextEntry, ContextKeyType, IamAction, IamOutput, Page, PolicyScope, url_decode, url_encode,
};
use stsd_proto::{ApiError, Params};
use view::{
    AttachedRow, DeviceRow, EntityRef, EntityRow, GroupDetail, GroupPage, GroupsPage, IndexPage,
    KeyCreatedPage, KeyRow, Link, PoliciesPage, PolicyDetail, PolicyPage, PolicyRow, ProfileRow,
    SimRow, SimulatorPage, UserDetail, UserPage, UsersPage,
};

/// Notices a redirect may ask for (`?done=...`): fixed texts, never text from the request.
const NOTICES: &[(&str, &str)] = &[
    ("user-created", "The user was created."),
    ("user-deleted", "The user was deleted."),
    ("group-created", "The group was created."),
    ("group-deleted", "The group was deleted."),
    ("policy-created", "The policy was created."),
    ("saved", "The change was saved."),
];

/// One request's context.
struct Ctx<'a> {
    state: &'a AppState,
    req: &'a Incoming<'a>,
    info: &'a SessionInfo,
    csrf: &'a Secret,
    query: Params,
}

/// The outcome shown above a page: an error (its status and IAM's message) or nothing.
#[derive(Default)]
struct Shown {
    status: Option<u16>,
    alert: Option<String>,
}

impl Shown {
    fn error(e: &ApiError) -> Self {
        Shown {
            status: Some(e.status),
            alert: Some(e.message.clone()),
        }
    }

    fn status(&self) -> u16 {
        self.status.unwrap_or(200)
    }
}

fn all() -> Page {
    Page {
        marker: None,
        max_items: 1000,
    }
}

fn seg(s: &str) -> String {
    url_encode(s)
}

fn user_href(name: &str) -> String {
    format!("/console/admin/users/{}", seg(name))
}

fn group_href(name: &str) -> String {
    format!("/console/admin/groups/{}", seg(name))
}

fn policy_href(arn: &str) -> String {
    format!("/console/admin/policies/view?arn={}", url_encode(arn))
}

fn see_other(location: &str) -> Reply {
    let mut r = respond(303, String::new(), None);
    if let Ok(v) = http::HeaderValue::from_str(location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

/// Serves one administration request (the session is signed in; a POST's CSRF token was checked).
pub(crate) async fn handle(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
) -> Reply {
    let query = Params::parse(req.query.as_bytes());
    let cx = Ctx {
        state,
        req,
        info,
        csrf,
        query,
    };
    let rest = req.path.strip_prefix("/console/admin").unwrap_or_default();
    let Ok(segs) = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(url_decode)
        .collect::<Result<Vec<String>, _>>()
    else {
        return super::not_found(state, Some((info, csrf)));
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let post = req.method == "POST";
    match (segs.as_slice(), post) {
        ([], false) => render(
            200,
            &IndexPage {
                layout: cx.layout("Administration", None),
            },
            None,
        ),
        (["users"], false) => users(&cx, Shown::default(), "").await,
        (["users"], true) => create_user(&cx, form).await,
        (["users", name], false) => user(&cx, name, Shown::default()).await,
        (["users", name], true) => user_post(&cx, name, form).await,
        (["groups"], false) => groups(&cx, Shown::default(), "").await,
        (["groups"], true) => create_group(&cx, form).await,
        (["groups", name], false) => group(&cx, name, Shown::default()).await,
        (["groups", name], true) => group_post(&cx, name, form).await,
        (["policies"], false) => policies(&cx, Shown::default(), "", "").await,
        (["policies"], true) => create_policy(&cx, form).await,
        (["policies", "view"], false) => policy_view(&cx).await,
        (["simulator"], false) => simulator(&cx).await,
        _ => super::not_found(state, Some((info, csrf))),
    }
}

impl<'a> Ctx<'a> {
    /// Runs one IAM action as the signed-in principal: the API's validation, then its executor.
    async fn run(&self, action: IamAction) -> Result<IamOutput, ApiError> {
        let params = Params::from_pairs(action.to_params());
        let parsed = IamAction::parse(action.name(), &params)?;
        run_action_api(self.state, self.req, self.info, &parsed).await
    }

    /// The signed-in layout, "Administration" current, with the error (if any) and the notice after a
    /// redirect.
    fn layout<'b>(&'b self, title: &'b str, alert: Option<&'b str>) -> Layout<'b> {
        let notice = self
            .query
            .get("done")
            .and_then(|d| NOTICES.iter().find(|(k, _)| *k == d))
            .map(|(_, t)| *t);
        Layout::signed_in(self.state, self.info, self.csrf, title)
            .current("admin")
            .alert(alert)
            .status(notice)
    }

    /// The "MFA required" flag through the executor's authorization (`iam:GetUser` to read,
    /// `iam:UpdateUser` to change), audited like every console IAM call.
    async fn mfa_required(&self, user_name: &str, set: Option<bool>) -> Result<bool, ApiError> {
        let Some(actor) = super::actor(self.state, self.req, self.info).await else {
            return Err(ApiError::access_denied("Your user no longer exists."));
        };
        let result = crate::iam::Iam::new(self.state, actor)
            .user_mfa_required(user_name, set)
            .await;
        if let Some(on) = set {
            let mut event = json!({"eventSource": "iam.amazonaws.com", "eventName": "UpdateUser",
                "eventType": "AwsApiCall", "userIdentity": identity(self.state, &self.info.principal),
                "requestParameters": {"userName": crate::audit::clean(user_name, 128), "stsdMfaRequired": on}});
            if let (Err(e), Some(o)) = (&result, event.as_object_mut()) {
                o.insert("errorCode".into(), json!(e.code));
                o.insert(
                    "errorMessage".into(),
                    json!(crate::audit::clean(&e.message, 512)),
                );
            }
            audit(self.state, self.req, event);
        }
        result
    }

    /// Managed policies the principal may list, for attach forms (empty when refused: the form then
    /// takes an ARN).
    async fn attachable(&self) -> Vec<(String, String)> {
        match self
            .run(IamAction::ListPolicies {
                scope: PolicyScope::All,
                only_attached: false,
                path_prefix: "/".into(),
                usage_filter: None,
                page: all(),
            })
            .await
        {
            Ok(IamOutput::Policies { policies, .. }) => policies
                .into_iter()
                .map(|p| (p.arn, p.policy_name))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn attached_rows(out: Result<IamOutput, ApiError>) -> Result<Vec<AttachedRow>, String> {
    match out {
        Ok(IamOutput::AttachedPolicies { policies, .. }) => Ok(policies
            .into_iter()
            .map(|p| AttachedRow {
                href: policy_href(&p.policy_arn),
                name: p.policy_name,
                arn: p.policy_arn,
            })
            .collect()),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.message),
    }
}

/// Runs a list page's List* action: its rows (`None` when listing was refused) and what the page
/// shows above them (the form's error first; else the list's).
async fn list_rows<R>(
    cx: &Ctx<'_>,
    shown: Shown,
    action: IamAction,
    rows: impl FnOnce(IamOutput) -> Vec<R>,
) -> (Option<Vec<R>>, Shown) {
    let (rows, listed) = match cx.run(action).await {
        Ok(out) => (Some(rows(out)), Shown::default()),
        Err(e) => (None, Shown::error(&e)),
    };
    (rows, if shown.alert.is_some() { shown } else { listed })
}

// ---------------------------------------------------------------------------------------------
// Users

async fn users(cx: &Ctx<'_>, shown: Shown, typed: &str) -> Reply {
    let action = IamAction::ListUsers {
        path_prefix: "/".into(),
        page: all(),
    };
    let (users, shown) = list_rows(cx, shown, action, |out| match out {
        IamOutput::Users { users, .. } => users
            .into_iter()
            .map(|u| EntityRow {
                href: user_href(&u.user_name),
                name: u.user_name,
                arn: u.arn,
                created: u.create_date,
            })
            .collect(),
        _ => Vec::new(),
    })
    .await;
    let page = UsersPage {
        layout: cx.layout("Users", shown.alert.as_deref()),
        csrf: cx.csrf.expose(),
        users,
        typed,
    };
    render(shown.status(), &page, None)
}

async fn create_user(cx: &Ctx<'_>, form: &Params) -> Reply {
    let name = form.get("name").unwrap_or_default().trim();
    match cx
        .run(IamAction::CreateUser {
            user_name: name.to_owned(),
            path: "/".into(),
        })
        .await
    {
        Ok(_) => see_other(&format!("{}?done=user-created", user_href(name))),
        Err(e) => users(cx, Shown::error(&e), name).await,
    }
}

async fn user(cx: &Ctx<'_>, name: &str, shown: Shown) -> Reply {
    let title = format!("User {name}");
    let u = match cx
        .run(IamAction::GetUser {
            user_name: Some(name.to_owned()),
        })
        .await
    {
        Ok(IamOutput::User { user, .. }) => user,
        Ok(_) => return super::not_found(cx.state, Some((cx.info, cx.csrf))),
        Err(e) => {
            let shown = Shown::error(&e);
            let page = UserPage {
                layout: cx.layout(&title, shown.alert.as_deref()),
                csrf: cx.csrf.expose(),
                user: None,
            };
            return render(shown.status(), &page, None);
        }
    };
    let own = Some(name.to_owned());
    let password = match cx
        .run(IamAction::GetLoginProfile {
            user_name: own.clone(),
        })
        .await
    {
        Ok(IamOutput::LoginProfile { profile, .. }) => Ok(Some(ProfileRow {
            created: profile.create_date,
            reset_required: profile.password_reset_required,
        })),
        Ok(_) => Ok(None),
        Err(e) if e.code == "NoSuchEntity" => Ok(None),
        Err(e) => Err(e.message),
    };
    let keys = match cx
        .run(IamAction::ListAccessKeys {
            user_name: own.clone(),
            page: all(),
        })
        .await
    {
        Ok(IamOutput::AccessKeys { keys, .. }) => Ok(keys
            .into_iter()
            .map(|k| KeyRow {
                active: k.status == "Active",
                id: k.access_key_id,
                status: k.status,
                created: k.create_date,
            })
            .collect()),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.message),
    };
    let devices = match cx
        .run(IamAction::ListMfaDevices {
            user_name: own.clone(),
            page: all(),
        })
        .await
    {
        Ok(IamOutput::MfaDevices { devices, .. }) => Ok(devices
            .into_iter()
            .map(|d| DeviceRow {
                serial: d.serial_number,
                enabled: d.enable_date.unwrap_or_default(),
            })
            .collect()),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.message),
    };
    let groups = match cx
        .run(IamAction::ListGroupsForUser {
            user_name: name.to_owned(),
            page: all(),
        })
        .await
    {
        Ok(IamOutput::Groups { groups, .. }) => Ok(groups
            .into_iter()
            .map(|g| Link {
                href: group_href(&g.group_name),
                name: g.group_name,
            })
            .collect()),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.message),
    };
    let attached = attached_rows(
        cx.run(IamAction::ListAttachedUserPolicies {
            user_name: name.to_owned(),
            path_prefix: None,
            page: all(),
        })
        .await,
    );
    let inline = match cx
        .run(IamAction::ListUserPolicies {
            user_name: name.to_owned(),
            page: all(),
        })
        .await
    {
        Ok(IamOutput::PolicyNames { names, .. }) => Ok(names),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.message),
    };
    let detail = UserDetail {
        here: user_href(&u.user_name),
        mfa_required: cx.mfa_required(name, None).await.map_err(|e| e.message),
        password,
        keys,
        devices,
        groups,
        all_groups: match cx
            .run(IamAction::ListGroups {
                path_prefix: "/".into(),
                page: all(),
            })
            .await
        {
            Ok(IamOutput::Groups { groups, .. }) => {
                groups.into_iter().map(|g| g.group_name).collect()
            }
            _ => Vec::new(),
        },
        attached,
        attachable: cx.attachable().await,
        inline,
        name: u.user_name,
        arn: u.arn,
        id: u.user_id,
        created: u.create_date,
    };
    let page = UserPage {
        layout: cx.layout(&title, shown.alert.as_deref()),
        csrf: cx.csrf.expose(),
        user: Some(detail),
    };
    render(shown.status(), &page, None)
}
/// Removes what keeps IAM from deleting a user, through the executor, one action at a time.
async fn empty_user(cx: &Ctx<'_>, name: &str) -> Result<(), ApiError> {
    let user = Some(name.to_owned());
    match cx
        .run(IamAction::DeleteLoginProfile {
            user_name: user.clone(),
        })
        .await
    {
        Err(e) if e.code != "NoSuchEntity" => return Err(e),
        _ => {}
    }
    if let IamOutput::AccessKeys { keys, .. } = cx
        .run(IamAction::ListAccessKeys {
            user_name: user.clone(),
            page: all(),
        })
        .await?
    {
        for k in keys {
            cx.run(IamAction::DeleteAccessKey {
                user_name: user.clone(),
                access_key_id: k.access_key_id,
            })
            .await?;
        }
    }
    if let IamOutput::MfaDevices { devices, .. } = cx
        .run(IamAction::ListMfaDevices {
            user_name: user.clone(),
            page: all(),
        })
        .await?
    {
        for d in devices {
            cx.run(IamAction::DeactivateMfaDevice {
                user_name: user.clone(),
                serial_number: d.serial_number,
            })
            .await?;
        }
    }
    if let IamOutput::Groups { groups, .. } = cx
        .run(IamAction::ListGroupsForUser {
            user_name: name.to_owned(),
            page: all(),
        })
        .await?
    {
        for g in groups {
            cx.run(IamAction::RemoveUserFromGroup {
                group_name: g.group_name,
                user_name: name.to_owned(),
            })
            .await?;
        }
    }
    if let IamOutput::AttachedPolicies { policies, .. } = cx
        .run(IamAction::ListAttachedUserPolicies {
            user_name: name.to_owned(),
            path_prefix: None,
            page: all(),
        })
        .await?
    {
        for p in policies {
            cx.run(IamAction::DetachUserPolicy {
                user_name: name.to_owned(),
                policy_arn: p.policy_arn,
            })
            .await?;
        }
    }
    if let IamOutput::PolicyNames { names, .. } = cx
        .run(IamAction::ListUserPolicies {
            user_name: name.to_owned(),
            page: all(),
        })
        .await?
    {
        for n in names {
            cx.run(IamAction::DeleteUserPolicy {
                user_name: name.to_owned(),
                policy_name: n,
            })
            .await?;
        }
    }
    Ok(())
}

async fn user_post(cx: &Ctx<'_>, name: &str, form: &Params) -> Reply {
    let here = format!("/console/admin/users/{}", seg(name));
    let field = |k: &str| form.get(k).unwrap_or_default().trim().to_owned();
    let own = Some(name.to_owned());
    let checked = |k: &str| form.get(k) == Some("on");
    let result = match form.get("op").unwrap_or_default() {
        "delete" => {
            let emptied = if checked("force") {
                empty_user(cx, name).await
            } else {
                Ok(())
            };
            let result = match emptied {
                Ok(()) => {
                    cx.run(IamAction::DeleteUser {
                        user_name: name.to_owned(),
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => return see_other("/console/admin/users?done=user-deleted"),
                Err(e) => Err(e),
            }
        }
        "mfa-required" => cx
            .mfa_required(name, Some(checked("mfa_required")))
            .await
            .map(|_| IamOutput::Empty {
                action: "UpdateUser",
            }),
        "password-create" => {
            cx.run(IamAction::CreateLoginProfile {
                user_name: own,
                password: form.get("password").unwrap_or_default().to_owned(),
                password_reset_required: checked("reset_required"),
            })
            .await
        }
        "password-update" => {
            let pw = form.get("password").unwrap_or_default();
            cx.run(IamAction::UpdateLoginProfile {
                user_name: name.to_owned(),
                password: (!pw.is_empty()).then(|| pw.to_owned()),
                password_reset_required: Some(checked("reset_required")),
            })
            .await
        }
        "password-delete" => {
            cx.run(IamAction::DeleteLoginProfile { user_name: own })
                .await
        }
        "key-create" => cx.run(IamAction::CreateAccessKey { user_name: own }).await,
        op @ ("key-activate" | "key-deactivate") => {
            cx.run(IamAction::UpdateAccessKey {
                user_name: own,
                access_key_id: field("key"),
                active: op == "key-activate",
            })
            .await
        }
        "key-delete" => {
            cx.run(IamAction::DeleteAccessKey {
                user_name: own,
                access_key_id: field("key"),
            })
            .await
        }
        "mfa-deactivate" => {
            cx.run(IamAction::DeactivateMfaDevice {
                user_name: own,
                serial_number: field("serial"),
            })
            .await
        }
        "group-add" => {
            cx.run(IamAction::AddUserToGroup {
                group_name: field("group"),
                user_name: name.to_owned(),
            })
            .await
        }
        "group-remove" => {
            cx.run(IamAction::RemoveUserFromGroup {
                group_name: field("group"),
                user_name: name.to_owned(),
            })
            .await
        }
        "policy-attach" => {
            cx.run(IamAction::AttachUserPolicy {
                user_name: name.to_owned(),
                policy_arn: field("policy_arn"),
            })
            .await
        }
        "policy-detach" => {
            cx.run(IamAction::DetachUserPolicy {
                user_name: name.to_owned(),
                policy_arn: field("policy_arn"),
            })
            .await
        }
        "inline-delete" => {
            cx.run(IamAction::DeleteUserPolicy {
                user_name: name.to_owned(),
                policy_name: field("policy_name"),
            })
            .await
        }
        _ => Err(ApiError::invalid_input("Unknown operation.")),
    };
    match result {
        Ok(IamOutput::NewAccessKey {
            key,
            secret_access_key,
        }) => {
            let secret = Secret::new(secret_access_key);
            let page = KeyCreatedPage {
                layout: cx.layout("Access key created", None),
                user: name,
                id: &key.access_key_id,
                secret: secret.expose(),
                back: &here,
            };
            render(200, &page, None)
        }
        Ok(_) => see_other(&format!("{here}?done=saved")),
        Err(e) => user(cx, name, Shown::error(&e)).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Groups

async fn groups(cx: &Ctx<'_>, shown: Shown, typed: &str) -> Reply {
    let action = IamAction::ListGroups {
        path_prefix: "/".into(),
        page: all(),
    };
    let (groups, shown) = list_rows(cx, shown, action, |out| match out {
        IamOutput::Groups { groups, .. } => groups
            .into_iter()
            .map(|g| EntityRow {
                href: group_href(&g.group_name),
                name: g.group_name,
                arn: g.arn,
                created: g.create_date,
            })
            .collect(),
        _ => Vec::new(),
    })
    .await;
    let page = GroupsPage {
        layout: cx.layout("Groups", shown.alert.as_deref()),
        csrf: cx.csrf.expose(),
        groups,
        typed,
    };
    render(shown.status(), &page, None)
}

async fn create_group(cx: &Ctx<'_>, form: &Params) -> Reply {
    let name = form.get("name").unwrap_or_default().trim();
    match cx
        .run(IamAction::CreateGroup {
            group_name: name.to_owned(),
            path: "/".into(),
        })
        .await
    {
        Ok(_) => see_other(&format!("{}?done=group-created", group_href(name))),
        Err(e) => groups(cx, Shown::error(&e), name).await,
    }
}

async fn group(cx: &Ctx<'_>, name: &str, shown: Shown) -> Reply {
    let title = format!("Group {name}");
    let (g, members) = match cx
        .run(IamAction::GetGroup {
            group_name: name.to_owned(),
            page: all(),
        })
        .await
    {
        Ok(IamOutput::GroupDetail { group, users, .. }) => (group, users),
        Ok(_) => return super::not_found(cx.state, Some((cx.info, cx.csrf))),
        Err(e) => {
            let shown = Shown::error(&e);
            let page = GroupPage {
                layout: cx.layout(&title, shown.alert.as_deref()),
                csrf: cx.csrf.expose(),
                group: None,
            };
            return render(shown.status(), &page, None);
        }
    };
    let attached = attached_rows(
        cx.run(IamAction::ListAttachedGroupPolicies {
            group_name: name.to_owned(),
            path_prefix: None,
            page: all(),
        })
        .await,
    );
    let detail = GroupDetail {
        here: group_href(&g.group_name),
        members: members
            .into_iter()
            .map(|u| Link {
                href: user_href(&u.user_name),
                name: u.user_name,
            })
            .collect(),
        attached,
        attachable: cx.attachable().await,
        name: g.group_name,
        arn: g.arn,
        created: g.create_date,
    };
    let page = GroupPage {
        layout: cx.layout(&title, shown.alert.as_deref()),
        csrf: cx.csrf.expose(),
        group: Some(detail),
    };
    render(shown.status(), &page, None)
}

async fn group_post(cx: &Ctx<'_>, name: &str, form: &Params) -> Reply {
    let here = group_href(name);
    let field = |k: &str| form.get(k).unwrap_or_default().trim().to_owned();
    let group_name = name.to_owned();
    let result = match form.get("op").unwrap_or_default() {
        "delete" => match cx.run(IamAction::DeleteGroup { group_name }).await {
            Ok(_) => return see_other("/console/admin/groups?done=group-deleted"),
            Err(e) => Err(e),
        },
        "member-add" => {
            cx.run(IamAction::AddUserToGroup {
                group_name,
                user_name: field("user"),
            })
            .await
        }
        "member-remove" => {
            cx.run(IamAction::RemoveUserFromGroup {
                group_name,
                user_name: field("user"),
            })
            .await
        }
        "policy-attach" => {
            cx.run(IamAction::AttachGroupPolicy {
                group_name,
                policy_arn: field("policy_arn"),
            })
            .await
        }
        "policy-detach" => {
            cx.run(IamAction::DetachGroupPolicy {
                group_name,
                policy_arn: field("policy_arn"),
            })
            .await
        }
        _ => Err(ApiError::invalid_input("Unknown operation.")),
    };
    match result {
        Ok(_) => see_other(&format!("{here}?done=saved")),
        Err(e) => group(cx, name, Shown::error(&e)).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Policies

async fn policies(cx: &Ctx<'_>, shown: Shown, typed_name: &str, typed_document: &str) -> Reply {
    let action = IamAction::ListPolicies {
        scope: PolicyScope::All,
        only_attached: false,
        path_prefix: "/".into(),
        usage_filter: None,
        page: all(),
    };
    let (policies, shown) = list_rows(cx, shown, action, |out| match out {
        IamOutput::Policies { policies, .. } => policies
            .into_iter()
            .map(|p| PolicyRow {
                href: policy_href(&p.arn),
                aws_managed: p.arn.starts_with("arn:aws:iam::aws:policy/"),
                name: p.policy_name,
                arn: p.arn,
                attachments: p.attachment_count,
            })
            .collect(),
        _ => Vec::new(),
    })
    .await;
    let page = PoliciesPage {
        layout: cx.layout("Policies", shown.alert.as_deref()),
        csrf: cx.csrf.expose(),
        policies,
        typed_name,
        typed_document,
    };
    render(shown.status(), &page, None)
}

async fn create_policy(cx: &Ctx<'_>, form: &Params) -> Reply {
    let name = form.get("name").unwrap_or_default().trim();
    let doc = form.get("document").unwrap_or_default();
    let description = form
        .get("description")
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    match cx
        .run(IamAction::CreatePolicy {
            policy_name: name.to_owned(),
            path: "/".into(),
            policy_document: doc.to_owned(),
            description,
            tags: Vec::new(),
        })
        .await
    {
        Ok(IamOutput::Policy { policy, .. }) => {
            see_other(&format!("{}&done=policy-created", policy_href(&policy.arn)))
        }
        Ok(_) => see_other("/console/admin/policies?done=policy-created"),
        Err(e) => policies(cx, Shown::error(&e), name, doc).await,
    }
}

async fn policy_view(cx: &Ctx<'_>) -> Reply {
    let arn = cx.query.get("arn").unwrap_or_default().to_owned();
    let policy = match cx
        .run(IamAction::GetPolicy {
            policy_arn: arn.clone(),
        })
        .await
    {
        Ok(IamOutput::Policy { policy, .. }) => policy,
        Ok(_) => return super::not_found(cx.state, Some((cx.info, cx.csrf))),
        Err(e) => {
            let shown = Shown::error(&e);
            let page = PolicyPage {
                layout: cx.layout("Policy", shown.alert.as_deref()),
                policy: None,
            };
            return render(shown.status(), &page, None);
        }
    };
    let document = match cx
        .run(IamAction::GetPolicyVersion {
            policy_arn: arn.clone(),
            version_id: policy.default_version_id.clone(),
        })
        .await
    {
        Ok(IamOutput::PolicyVersion { version, .. }) => {
            let raw = version.document.unwrap_or_default();
            Ok(serde_json::from_str::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(raw))
        }
        Ok(_) => Ok(String::new()),
        Err(e) => Err(e.message),
    };
    let entities = match cx
        .run(IamAction::ListEntitiesForPolicy {
            policy_arn: arn,
            entity_filter: None,
            path_prefix: None,
            page: all(),
        })
        .await
    {
        Ok(IamOutput::EntitiesForPolicy {
            groups,
            users,
            roles,
            ..
        }) => {
            let mut v: Vec<EntityRef> = users
                .into_iter()
                .map(|u| EntityRef {
                    href: user_href(&u.name),
                    name: u.name,
                    kind: "User",
                })
                .collect();
            v.extend(groups.into_iter().map(|g| EntityRef {
                href: group_href(&g.name),
                name: g.name,
                kind: "Group",
            }));
            v.extend(roles.into_iter().map(|r| EntityRef {
                href: String::new(),
                name: r.name,
                kind: "Role",
            }));
            Ok(v)
        }
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.message),
    };
    let title = format!("Policy {}", policy.policy_name);
    let page = PolicyPage {
        layout: cx.layout(&title, None),
        policy: Some(PolicyDetail {
            arn: policy.arn,
            description: policy.description.unwrap_or_default(),
            version: policy.default_version_id,
            attachments: policy.attachment_count,
            updated: policy.update_date,
            document,
            entities,
        }),
    };
    render(200, &page, None)
}

// ---------------------------------------------------------------------------------------------
// Simulator

async fn simulator(cx: &Ctx<'_>) -> Reply {
    let q = &cx.query;
    let user = q.get("user").unwrap_or_default().trim();
    let actions = q.get("actions").unwrap_or_default();
    let resource = q
        .get("resource")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("*");
    let mfa = q.get("mfa") == Some("on");
    let action_names: Vec<String> = actions
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let mut shown = Shown::default();
    let mut results = None;
    if !user.is_empty() && !action_names.is_empty() {
        // The user's ARN with its path, as the executor builds resources; the simulation itself is
        // authorized (`iam:SimulatePrincipalPolicy` on that ARN) before anything about the user shows.
        let path = cx
            .state
            .store
            .user_by_name(user)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "/".to_owned(), |u| u.path);
        let source = crate::auth::user_arn(&cx.state.account, &path, user);
        let result = cx
            .run(IamAction::SimulatePrincipalPolicy {
                policy_source_arn: source,
                policy_input_list: Vec::new(),
                action_names,
                resource_arns: vec![resource.to_owned()],
                // What a request of this user signed in to the console carries: its name (for
                // `${aws:username}`, which IAM's simulator only knows when given) and the MFA state.
                context_entries: vec![
                    ContextEntry {
                        key: "aws:username".into(),
                        values: vec![user.to_owned()],
                        kind: ContextKeyType::String,
                    },
                    ContextEntry {
                        key: "aws:MultiFactorAuthPresent".into(),
                        values: vec![mfa.to_string()],
                        kind: ContextKeyType::Boolean,
                    },
                ],
                caller_arn: None,
                page: all(),
            })
            .await;
        match result {
            Ok(IamOutput::Simulation { results: r, .. }) => {
                results = Some(
                    r.into_iter()
                        .map(|r| SimRow {
                            matched: r
                                .matched
                                .iter()
                                .map(|m| {
                                    format!(
                                        "{} ({}), line {} to {}",
                                        m.source_policy_id,
                                        m.source_policy_type,
                                        m.start.0,
                                        m.end.0
                                    )
                                })
                                .collect(),
                            missing: r.missing_context_values.join(", "),
                            action: r.action_name,
                            resource: r.resource_name,
                            decision: r.decision.as_str(),
                        })
                        .collect(),
                );
            }
            Ok(_) => results = Some(Vec::new()),
            Err(e) => shown = Shown::error(&e),
        }
    }
    let page = SimulatorPage {
        layout: cx.layout("Policy simulator", shown.alert.as_deref()),
        user,
        actions,
        resource,
        mfa,
        results,
    };
    render(shown.status(), &page, None)
}
