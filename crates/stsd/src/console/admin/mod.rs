//! Administration pages of the console (issue 19), under `/console/admin/`: users, groups, managed
//! policies and the policy simulator.
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

use super::{Incoming, SessionInfo, audit, esc, identity, page, respond, run_action_api};
use crate::state::AppState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::json;
use stsd_core::secret::Secret;
use stsd_proto::iam::{
    ContextEntry, ContextKeyType, EntityFilter, IamAction, IamOutput, Page, PolicyScope,
    url_decode, url_encode,
};
use stsd_proto::{ApiError, Params};

/// Whether `path` is one of the administration pages.
pub fn is_admin_path(path: &str) -> bool {
    path == "/console/admin" || path.starts_with("/console/admin/")
}

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

/// A page being built: its status, an optional alert, and its body.
struct Out {
    status: u16,
    body: String,
}

impl Out {
    fn new() -> Self {
        Out {
            status: 200,
            body: String::new(),
        }
    }

    /// Shows an error as IAM words it; the page takes the error's status.
    fn error(&mut self, e: &ApiError) {
        self.status = e.status;
        self.alert(&e.message);
    }

    fn alert(&mut self, text: &str) {
        self.body
            .push_str(&format!("<p role=\"alert\">{}</p>\n", esc(text)));
    }

    fn push(&mut self, html: &str) {
        self.body.push_str(html);
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

fn nav() -> &'static str {
    "<nav aria-label=\"Administration\"><ul>\
     <li><a href=\"/console/\">My security credentials</a></li>\
     <li><a href=\"/console/admin/\">Administration</a></li>\
     <li><a href=\"/console/admin/users\">Users</a></li>\
     <li><a href=\"/console/admin/groups\">Groups</a></li>\
     <li><a href=\"/console/admin/policies\">Policies</a></li>\
     <li><a href=\"/console/admin/simulator\">Policy simulator</a></li>\
     </ul></nav>\n"
}

fn render(title: &str, out: Out) -> Response<Full<Bytes>> {
    respond(
        out.status,
        page(title, &format!("{}{}", nav(), out.body)),
        None,
    )
}

fn see_other(location: &str) -> Response<Full<Bytes>> {
    let mut r = respond(303, String::new(), None);
    if let Ok(v) = http::HeaderValue::from_str(location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

/// Serves one administration request (the session is signed in; a POST's CSRF token was checked).
pub async fn handle(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
) -> Response<Full<Bytes>> {
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
        return respond(404, page("Not found", nav()), None);
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let post = req.method == "POST";
    match (segs.as_slice(), post) {
        ([], false) => index(&cx),
        (["users"], false) => users(&cx, Out::new(), "").await,
        (["users"], true) => create_user(&cx, form).await,
        (["users", name], false) => user(&cx, name, Out::new()).await,
        (["users", name], true) => user_post(&cx, name, form).await,
        (["groups"], false) => groups(&cx, Out::new(), "").await,
        (["groups"], true) => create_group(&cx, form).await,
        (["groups", name], false) => group(&cx, name, Out::new()).await,
        (["groups", name], true) => group_post(&cx, name, form).await,
        (["policies"], false) => policies(&cx, Out::new(), "", "").await,
        (["policies"], true) => create_policy(&cx, form).await,
        (["policies", "view"], false) => policy_view(&cx).await,
        (["simulator"], false) => simulator(&cx).await,
        _ => respond(404, page("Not found", nav()), None),
    }
}

impl Ctx<'_> {
    /// Runs one IAM action as the signed-in principal: the API's validation, then its executor.
    async fn run(&self, action: IamAction) -> Result<IamOutput, ApiError> {
        let params = Params::from_pairs(action.to_params());
        let parsed = IamAction::parse(action.name(), &params)?;
        run_action_api(self.state, self.req, self.info, &parsed).await
    }

    /// The page's notice after a redirect.
    fn notice(&self, out: &mut Out) {
        if let Some(text) = self
            .query
            .get("done")
            .and_then(|d| NOTICES.iter().find(|(k, _)| *k == d))
            .map(|(_, t)| *t)
        {
            out.push(&format!("<p role=\"status\">{}</p>\n", esc(text)));
        }
    }

    fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(self.csrf.expose())
        )
    }

    /// A one-button POST form carrying `op` and hidden fields.
    fn button(&self, action: &str, op: &str, hidden: &[(&str, &str)], label: &str) -> String {
        let fields: String = hidden
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    esc(k),
                    esc(v)
                )
            })
            .collect();
        format!(
            "<form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"{}\">{fields}<button type=\"submit\">{}</button></form>",
            esc(action),
            self.csrf_field(),
            esc(op),
            esc(label)
        )
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
}

fn index(cx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut out = Out::new();
    cx.notice(&mut out);
    out.push(
        "<p>What each page shows and changes is decided by your IAM policies, as for the API.</p>\n<ul>\
         <li><a href=\"/console/admin/users\">Users</a>: create and delete users; their console passwords, access keys, MFA devices, groups and policies</li>\
         <li><a href=\"/console/admin/groups\">Groups</a>: members and attached policies</li>\
         <li><a href=\"/console/admin/policies\">Policies</a>: managed policies, their documents and attachments</li>\
         <li><a href=\"/console/admin/simulator\">Policy simulator</a>: what a user's policies allow, with or without MFA</li>\
         </ul>\n",
    );
    render("Administration", out)
}

// ---------------------------------------------------------------------------------------------
// Users

async fn users(cx: &Ctx<'_>, mut out: Out, typed: &str) -> Response<Full<Bytes>> {
    cx.notice(&mut out);
    match cx
        .run(IamAction::ListUsers {
            path_prefix: "/".into(),
            page: all(),
        })
        .await
    {
        Err(e) => out.error(&e),
        Ok(IamOutput::Users { users, .. }) => {
            if users.is_empty() {
                out.push("<p>No users.</p>\n");
            } else {
                out.push("<table><thead><tr><th scope=\"col\">User name</th><th scope=\"col\">ARN</th><th scope=\"col\">Created</th></tr></thead><tbody>\n");
                for u in &users {
                    out.push(&format!(
                        "<tr><th scope=\"row\"><a href=\"/console/admin/users/{}\">{}</a></th><td>{}</td><td>{}</td></tr>\n",
                        esc(&seg(&u.user_name)),
                        esc(&u.user_name),
                        esc(&u.arn),
                        esc(&u.create_date)
                    ));
                }
                out.push("</tbody></table>\n");
            }
        }
        Ok(_) => {}
    }
    out.push(&format!(
        "<h2>Create user</h2>\n<form method=\"post\" action=\"/console/admin/users\">{}\
         <p><label for=\"user-name\">User name</label><br><input id=\"user-name\" name=\"name\" value=\"{}\" required maxlength=\"64\"></p>\
         <p><button type=\"submit\">Create user</button></p></form>\n",
        cx.csrf_field(),
        esc(typed)
    ));
    render("Users", out)
}

async fn create_user(cx: &Ctx<'_>, form: &Params) -> Response<Full<Bytes>> {
    let name = form.get("name").unwrap_or_default().trim();
    match cx
        .run(IamAction::CreateUser {
            user_name: name.to_owned(),
            path: "/".into(),
        })
        .await
    {
        Ok(_) => see_other(&format!(
            "/console/admin/users/{}?done=user-created",
            seg(name)
        )),
        Err(e) => {
            let mut out = Out::new();
            out.error(&e);
            users(cx, out, name).await
        }
    }
}

async fn user(cx: &Ctx<'_>, name: &str, mut out: Out) -> Response<Full<Bytes>> {
    cx.notice(&mut out);
    let title = format!("User {name}");
    let u = match cx
        .run(IamAction::GetUser {
            user_name: Some(name.to_owned()),
        })
        .await
    {
        Err(e) => {
            out.error(&e);
            return render(&title, out);
        }
        Ok(IamOutput::User { user, .. }) => user,
        Ok(_) => return render(&title, out),
    };
    let here = format!("/console/admin/users/{}", seg(&u.user_name));
    out.push(&format!(
        "<dl><dt>User name</dt><dd>{}</dd><dt>ARN</dt><dd>{}</dd><dt>User ID</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd></dl>\n",
        esc(&u.user_name),
        esc(&u.arn),
        esc(&u.user_id),
        esc(&u.create_date)
    ));

    // The require-MFA switch.
    out.push("<h2>Require MFA</h2>\n");
    match cx.mfa_required(name, None).await {
        Err(e) => out.alert(&e.message),
        Ok(on) => out.push(&format!(
            "<p>When on, this user's access keys get session credentials from <code>GetSessionToken</code> only with an MFA code.</p>\
             <form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"mfa-required\">\
             <p><input type=\"checkbox\" id=\"mfa-required\" name=\"mfa_required\" value=\"on\"{}> <label for=\"mfa-required\">Require MFA for this user</label></p>\
             <p><button type=\"submit\">Save</button></p></form>\n",
            esc(&here),
            cx.csrf_field(),
            if on { " checked" } else { "" }
        )),
    }

    // Console password.
    out.push("<h2>Console password</h2>\n");
    let reset_box = |checked: bool| {
        format!(
            "<p><input type=\"checkbox\" id=\"password-reset-required\" name=\"reset_required\" value=\"on\"{}> \
             <label for=\"password-reset-required\">User must create a new password at next sign-in</label></p>",
            if checked { " checked" } else { "" }
        )
    };
    match cx
        .run(IamAction::GetLoginProfile {
            user_name: Some(name.to_owned()),
        })
        .await
    {
        Ok(IamOutput::LoginProfile { profile, .. }) => {
            out.push(&format!(
                "<p>Console password set on {}{}.</p>\n\
                 <form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"password-update\">\
                 <p><label for=\"password\">New password</label><br><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\"></p>{}\
                 <p><button type=\"submit\">Reset password</button></p></form>\n{}",
                esc(&profile.create_date),
                if profile.password_reset_required {
                    "; the user must change it at next sign-in"
                } else {
                    ""
                },
                esc(&here),
                cx.csrf_field(),
                reset_box(profile.password_reset_required),
                cx.button(&here, "password-delete", &[], "Remove console password")
            ));
        }
        Ok(_) => {}
        Err(e) if e.code == "NoSuchEntity" => out.push(&format!(
            "<p>No console password.</p>\n\
             <form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"password-create\">\
             <p><label for=\"password\">Password</label><br><input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"new-password\"></p>{}\
             <p><button type=\"submit\">Set password</button></p></form>\n",
            esc(&here),
            cx.csrf_field(),
            reset_box(true)
        )),
        Err(e) => out.alert(&e.message),
    }

    // Access keys.
    out.push("<h2>Access keys</h2>\n");
    match cx
        .run(IamAction::ListAccessKeys {
            user_name: Some(name.to_owned()),
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::AccessKeys { keys, .. }) => {
            if keys.is_empty() {
                out.push("<p>No access keys.</p>\n");
            } else {
                out.push("<table><thead><tr><th scope=\"col\">Access key ID</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n");
                for k in &keys {
                    let id = k.access_key_id.as_str();
                    let actions = if k.status == "Active" {
                        cx.button(&here, "key-deactivate", &[("key", id)], "Deactivate")
                    } else {
                        format!(
                            "{}{}",
                            cx.button(&here, "key-activate", &[("key", id)], "Activate"),
                            cx.button(&here, "key-delete", &[("key", id)], "Delete")
                        )
                    };
                    out.push(&format!(
                        "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{actions}</td></tr>\n",
                        esc(id),
                        esc(&k.status),
                        esc(&k.create_date)
                    ));
                }
                out.push("</tbody></table>\n");
            }
            if keys.len() < 2 {
                out.push(&cx.button(&here, "key-create", &[], "Create access key"));
                out.push("\n");
            }
        }
        Ok(_) => {}
    }

    // MFA devices.
    out.push("<h2>MFA devices</h2>\n");
    match cx
        .run(IamAction::ListMfaDevices {
            user_name: Some(name.to_owned()),
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::MfaDevices { devices, .. }) if !devices.is_empty() => {
            out.push("<table><thead><tr><th scope=\"col\">Serial number</th><th scope=\"col\">Enabled</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n");
            for d in &devices {
                out.push(&format!(
                    "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>\n",
                    esc(&d.serial_number),
                    esc(d.enable_date.as_deref().unwrap_or("")),
                    cx.button(
                        &here,
                        "mfa-deactivate",
                        &[("serial", &d.serial_number)],
                        "Deactivate"
                    )
                ));
            }
            out.push("</tbody></table>\n");
        }
        Ok(_) => out.push(
            "<p>No MFA devices. The user assigns one on its own security credentials page.</p>\n",
        ),
    }

    // Groups.
    out.push("<h2>Groups</h2>\n");
    match cx
        .run(IamAction::ListGroupsForUser {
            user_name: name.to_owned(),
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::Groups { groups, .. }) => {
            if groups.is_empty() {
                out.push("<p>Not in any group.</p>\n");
            } else {
                out.push("<table><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n");
                for g in &groups {
                    out.push(&format!(
                        "<tr><th scope=\"row\"><a href=\"/console/admin/groups/{}\">{}</a></th><td>{}</td></tr>\n",
                        esc(&seg(&g.group_name)),
                        esc(&g.group_name),
                        cx.button(&here, "group-remove", &[("group", &g.group_name)], "Remove from group")
                    ));
                }
                out.push("</tbody></table>\n");
            }
            out.push(&format!(
                "<form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"group-add\">\
                 <p><label for=\"add-group\">Add to group</label><br><input id=\"add-group\" name=\"group\" required maxlength=\"128\"></p>\
                 <p><button type=\"submit\">Add to group</button></p></form>\n",
                esc(&here),
                cx.csrf_field()
            ));
        }
        Ok(_) => {}
    }

    // Policies.
    out.push("<h2>Permissions policies</h2>\n<h3>Attached managed policies</h3>\n");
    match cx
        .run(IamAction::ListAttachedUserPolicies {
            user_name: name.to_owned(),
            path_prefix: None,
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::AttachedPolicies { policies, .. }) => {
            attached_table(cx, &mut out, &here, &policies);
            attach_form(cx, &mut out, &here).await;
        }
        Ok(_) => {}
    }
    out.push("<h3>Inline policies</h3>\n");
    match cx
        .run(IamAction::ListUserPolicies {
            user_name: name.to_owned(),
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::PolicyNames { names, .. }) if !names.is_empty() => {
            out.push("<table><thead><tr><th scope=\"col\">Policy name</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n");
            for n in &names {
                out.push(&format!(
                    "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
                    esc(n),
                    cx.button(&here, "inline-delete", &[("policy_name", n)], "Delete")
                ));
            }
            out.push("</tbody></table>\n");
        }
        Ok(_) => out.push("<p>No inline policies.</p>\n"),
    }

    // Delete.
    out.push(&format!(
        "<h2>Delete user</h2>\n<p>IAM refuses to delete a user that still has a console password, access keys, MFA devices, groups or policies.</p>\
         <form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"delete\">\
         <p><input type=\"checkbox\" id=\"delete-force\" name=\"force\" value=\"on\"> <label for=\"delete-force\">Remove them first</label></p>\
         <p><button type=\"submit\">Delete user</button></p></form>\n",
        esc(&here),
        cx.csrf_field()
    ));
    render(&title, out)
}

fn attached_table(
    cx: &Ctx<'_>,
    out: &mut Out,
    here: &str,
    policies: &[stsd_proto::iam::AttachedPolicyView],
) {
    if policies.is_empty() {
        out.push("<p>No attached policies.</p>\n");
        return;
    }
    out.push("<table><thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">ARN</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n");
    for p in policies {
        out.push(&format!(
            "<tr><th scope=\"row\"><a href=\"/console/admin/policies/view?arn={}\">{}</a></th><td>{}</td><td>{}</td></tr>\n",
            esc(&url_encode(&p.policy_arn)),
            esc(&p.policy_name),
            esc(&p.policy_arn),
            cx.button(here, "policy-detach", &[("policy_arn", &p.policy_arn)], "Detach")
        ));
    }
    out.push("</tbody></table>\n");
}

/// The attach form: a choice of the managed policies the principal may list, or an ARN to type.
async fn attach_form(cx: &Ctx<'_>, out: &mut Out, here: &str) {
    let field = match cx
        .run(IamAction::ListPolicies {
            scope: PolicyScope::All,
            only_attached: false,
            path_prefix: "/".into(),
            usage_filter: None,
            page: all(),
        })
        .await
    {
        Ok(IamOutput::Policies { policies, .. }) if !policies.is_empty() => {
            let options: String = policies
                .iter()
                .map(|p| {
                    format!(
                        "<option value=\"{}\">{}</option>",
                        esc(&p.arn),
                        esc(&p.policy_name)
                    )
                })
                .collect();
            format!("<select id=\"attach-policy\" name=\"policy_arn\">{options}</select>")
        }
        _ => "<input id=\"attach-policy\" name=\"policy_arn\" required>".to_owned(),
    };
    out.push(&format!(
        "<form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"policy-attach\">\
         <p><label for=\"attach-policy\">Managed policy to attach</label><br>{field}</p>\
         <p><button type=\"submit\">Attach policy</button></p></form>\n",
        esc(here),
        cx.csrf_field()
    ));
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

async fn user_post(cx: &Ctx<'_>, name: &str, form: &Params) -> Response<Full<Bytes>> {
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
            let mut out = Out::new();
            out.push(&format!(
                "<p role=\"status\">This is the only time the secret access key can be viewed. Save it now.</p>\n\
                 <dl><dt>User</dt><dd>{}</dd><dt>Access key ID</dt><dd><code>{}</code></dd><dt>Secret access key</dt><dd><code>{}</code></dd></dl>\n\
                 <p><a href=\"{}\">Back to the user</a></p>\n",
                esc(name),
                esc(&key.access_key_id),
                esc(secret.expose()),
                esc(&here)
            ));
            render("Access key created", out)
        }
        Ok(_) => see_other(&format!("{here}?done=saved")),
        Err(e) => {
            let mut out = Out::new();
            out.error(&e);
            let status = out.status;
            let mut r = user(cx, name, out).await;
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            r
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Groups

async fn groups(cx: &Ctx<'_>, mut out: Out, typed: &str) -> Response<Full<Bytes>> {
    cx.notice(&mut out);
    match cx
        .run(IamAction::ListGroups {
            path_prefix: "/".into(),
            page: all(),
        })
        .await
    {
        Err(e) => out.error(&e),
        Ok(IamOutput::Groups { groups, .. }) => {
            if groups.is_empty() {
                out.push("<p>No groups.</p>\n");
            } else {
                out.push("<table><thead><tr><th scope=\"col\">Group name</th><th scope=\"col\">ARN</th><th scope=\"col\">Created</th></tr></thead><tbody>\n");
                for g in &groups {
                    out.push(&format!(
                        "<tr><th scope=\"row\"><a href=\"/console/admin/groups/{}\">{}</a></th><td>{}</td><td>{}</td></tr>\n",
                        esc(&seg(&g.group_name)),
                        esc(&g.group_name),
                        esc(&g.arn),
                        esc(&g.create_date)
                    ));
                }
                out.push("</tbody></table>\n");
            }
        }
        Ok(_) => {}
    }
    out.push(&format!(
        "<h2>Create group</h2>\n<form method=\"post\" action=\"/console/admin/groups\">{}\
         <p><label for=\"group-name\">Group name</label><br><input id=\"group-name\" name=\"name\" value=\"{}\" required maxlength=\"128\"></p>\
         <p><button type=\"submit\">Create group</button></p></form>\n",
        cx.csrf_field(),
        esc(typed)
    ));
    render("Groups", out)
}

async fn create_group(cx: &Ctx<'_>, form: &Params) -> Response<Full<Bytes>> {
    let name = form.get("name").unwrap_or_default().trim();
    match cx
        .run(IamAction::CreateGroup {
            group_name: name.to_owned(),
            path: "/".into(),
        })
        .await
    {
        Ok(_) => see_other(&format!(
            "/console/admin/groups/{}?done=group-created",
            seg(name)
        )),
        Err(e) => {
            let mut out = Out::new();
            out.error(&e);
            groups(cx, out, name).await
        }
    }
}

async fn group(cx: &Ctx<'_>, name: &str, mut out: Out) -> Response<Full<Bytes>> {
    cx.notice(&mut out);
    let title = format!("Group {name}");
    let (g, members) = match cx
        .run(IamAction::GetGroup {
            group_name: name.to_owned(),
            page: all(),
        })
        .await
    {
        Err(e) => {
            out.error(&e);
            return render(&title, out);
        }
        Ok(IamOutput::GroupDetail { group, users, .. }) => (group, users),
        Ok(_) => return render(&title, out),
    };
    let here = format!("/console/admin/groups/{}", seg(&g.group_name));
    out.push(&format!(
        "<dl><dt>Group name</dt><dd>{}</dd><dt>ARN</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd></dl>\n<h2>Members</h2>\n",
        esc(&g.group_name),
        esc(&g.arn),
        esc(&g.create_date)
    ));
    if members.is_empty() {
        out.push("<p>No members.</p>\n");
    } else {
        out.push("<table><thead><tr><th scope=\"col\">User</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n");
        for u in &members {
            out.push(&format!(
                "<tr><th scope=\"row\"><a href=\"/console/admin/users/{}\">{}</a></th><td>{}</td></tr>\n",
                esc(&seg(&u.user_name)),
                esc(&u.user_name),
                cx.button(&here, "member-remove", &[("user", &u.user_name)], "Remove")
            ));
        }
        out.push("</tbody></table>\n");
    }
    out.push(&format!(
        "<form method=\"post\" action=\"{}\">{}<input type=\"hidden\" name=\"op\" value=\"member-add\">\
         <p><label for=\"add-member\">Add user</label><br><input id=\"add-member\" name=\"user\" required maxlength=\"64\"></p>\
         <p><button type=\"submit\">Add user</button></p></form>\n<h2>Attached managed policies</h2>\n",
        esc(&here),
        cx.csrf_field()
    ));
    match cx
        .run(IamAction::ListAttachedGroupPolicies {
            group_name: name.to_owned(),
            path_prefix: None,
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::AttachedPolicies { policies, .. }) => {
            attached_table(cx, &mut out, &here, &policies);
            attach_form(cx, &mut out, &here).await;
        }
        Ok(_) => {}
    }
    out.push(&format!(
        "<h2>Delete group</h2>\n<p>IAM refuses to delete a group that still has members or policies.</p>{}\n",
        cx.button(&here, "delete", &[], "Delete group")
    ));
    render(&title, out)
}

async fn group_post(cx: &Ctx<'_>, name: &str, form: &Params) -> Response<Full<Bytes>> {
    let here = format!("/console/admin/groups/{}", seg(name));
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
        Err(e) => {
            let mut out = Out::new();
            out.error(&e);
            let status = out.status;
            let mut r = group(cx, name, out).await;
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            r
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Policies

async fn policies(
    cx: &Ctx<'_>,
    mut out: Out,
    typed_name: &str,
    typed_doc: &str,
) -> Response<Full<Bytes>> {
    cx.notice(&mut out);
    let mut create_status = None;
    if out.status != 200 {
        create_status = Some(out.status);
    }
    match cx
        .run(IamAction::ListPolicies {
            scope: PolicyScope::All,
            only_attached: false,
            path_prefix: "/".into(),
            usage_filter: None,
            page: all(),
        })
        .await
    {
        Err(e) => out.error(&e),
        Ok(IamOutput::Policies { policies, .. }) => {
            out.push("<table><thead><tr><th scope=\"col\">Policy name</th><th scope=\"col\">Type</th><th scope=\"col\">Attachments</th><th scope=\"col\">ARN</th></tr></thead><tbody>\n");
            for p in &policies {
                out.push(&format!(
                    "<tr><th scope=\"row\"><a href=\"/console/admin/policies/view?arn={}\">{}</a></th><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    esc(&url_encode(&p.arn)),
                    esc(&p.policy_name),
                    if p.arn.starts_with("arn:aws:iam::aws:policy/") {
                        "AWS managed"
                    } else {
                        "Customer managed"
                    },
                    p.attachment_count,
                    esc(&p.arn)
                ));
            }
            out.push("</tbody></table>\n");
        }
        Ok(_) => {}
    }
    if let Some(s) = create_status {
        out.status = s;
    }
    out.push(&format!(
        "<h2>Create policy</h2>\n<form method=\"post\" action=\"/console/admin/policies\">{}\
         <p><label for=\"policy-name\">Policy name</label><br><input id=\"policy-name\" name=\"name\" value=\"{}\" required maxlength=\"128\"></p>\
         <p><label for=\"policy-description\">Description (optional)</label><br><input id=\"policy-description\" name=\"description\" maxlength=\"1000\"></p>\
         <p><label for=\"policy-document\">Policy document (JSON)</label><br><textarea id=\"policy-document\" name=\"document\" rows=\"16\" cols=\"80\" required>{}</textarea></p>\
         <p><button type=\"submit\">Create policy</button></p></form>\n",
        cx.csrf_field(),
        esc(typed_name),
        esc(typed_doc)
    ));
    render("Policies", out)
}

async fn create_policy(cx: &Ctx<'_>, form: &Params) -> Response<Full<Bytes>> {
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
        Ok(IamOutput::Policy { policy, .. }) => see_other(&format!(
            "/console/admin/policies/view?arn={}&done=policy-created",
            url_encode(&policy.arn)
        )),
        Ok(_) => see_other("/console/admin/policies?done=policy-created"),
        Err(e) => {
            let mut out = Out::new();
            out.error(&e);
            policies(cx, out, name, doc).await
        }
    }
}

async fn policy_view(cx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut out = Out::new();
    cx.notice(&mut out);
    let arn = cx.query.get("arn").unwrap_or_default().to_owned();
    let policy = match cx
        .run(IamAction::GetPolicy {
            policy_arn: arn.clone(),
        })
        .await
    {
        Err(e) => {
            out.error(&e);
            return render("Policy", out);
        }
        Ok(IamOutput::Policy { policy, .. }) => policy,
        Ok(_) => return render("Policy", out),
    };
    let title = format!("Policy {}", policy.policy_name);
    out.push(&format!(
        "<dl><dt>ARN</dt><dd>{}</dd><dt>Description</dt><dd>{}</dd><dt>Default version</dt><dd>{}</dd><dt>Attachments</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd></dl>\n<h2>Document</h2>\n",
        esc(&policy.arn),
        esc(policy.description.as_deref().unwrap_or("")),
        esc(&policy.default_version_id),
        policy.attachment_count,
        esc(&policy.update_date)
    ));
    match cx
        .run(IamAction::GetPolicyVersion {
            policy_arn: arn.clone(),
            version_id: policy.default_version_id.clone(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::PolicyVersion { version, .. }) => {
            let raw = version.document.unwrap_or_default();
            let pretty = serde_json::from_str::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(raw);
            out.push(&format!("<pre><code>{}</code></pre>\n", esc(&pretty)));
        }
        Ok(_) => {}
    }
    out.push("<h2>Attached to</h2>\n");
    match cx
        .run(IamAction::ListEntitiesForPolicy {
            policy_arn: arn,
            entity_filter: None::<EntityFilter>,
            path_prefix: None,
            page: all(),
        })
        .await
    {
        Err(e) => out.alert(&e.message),
        Ok(IamOutput::EntitiesForPolicy {
            groups,
            users,
            roles,
            ..
        }) => {
            if groups.is_empty() && users.is_empty() && roles.is_empty() {
                out.push("<p>Not attached to any user, group or role.</p>\n");
            } else {
                out.push("<table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Type</th></tr></thead><tbody>\n");
                for u in &users {
                    out.push(&format!(
                        "<tr><th scope=\"row\"><a href=\"/console/admin/users/{}\">{}</a></th><td>User</td></tr>\n",
                        esc(&seg(&u.name)),
                        esc(&u.name)
                    ));
                }
                for g in &groups {
                    out.push(&format!(
                        "<tr><th scope=\"row\"><a href=\"/console/admin/groups/{}\">{}</a></th><td>Group</td></tr>\n",
                        esc(&seg(&g.name)),
                        esc(&g.name)
                    ));
                }
                for r in &roles {
                    out.push(&format!(
                        "<tr><th scope=\"row\">{}</th><td>Role</td></tr>\n",
                        esc(&r.name)
                    ));
                }
                out.push("</tbody></table>\n");
            }
        }
        Ok(_) => {}
    }
    render(&title, out)
}

// ---------------------------------------------------------------------------------------------
// Simulator

async fn simulator(cx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut out = Out::new();
    let q = &cx.query;
    let user = q.get("user").unwrap_or_default().trim().to_owned();
    let actions_text = q.get("actions").unwrap_or_default().to_owned();
    let resource = q
        .get("resource")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("*")
        .to_owned();
    let with_mfa = q.get("mfa") == Some("on");
    out.push(&format!(
        "<p>Evaluates a user's policies (its own, its groups') for actions on a resource, as the API would decide them.</p>\n\
         <form method=\"get\" action=\"/console/admin/simulator\">\
         <p><label for=\"sim-user\">User name</label><br><input id=\"sim-user\" name=\"user\" value=\"{}\" required maxlength=\"64\"></p>\
         <p><label for=\"sim-actions\">Actions (one per line or separated by commas, e.g. <code>iam:CreateAccessKey</code>)</label><br><textarea id=\"sim-actions\" name=\"actions\" rows=\"4\" cols=\"60\" required>{}</textarea></p>\
         <p><label for=\"sim-resource\">Resource ARN</label><br><input id=\"sim-resource\" name=\"resource\" value=\"{}\"></p>\
         <p><input type=\"checkbox\" id=\"sim-mfa\" name=\"mfa\" value=\"on\"{}> <label for=\"sim-mfa\">Signed in with MFA (<code>aws:MultiFactorAuthPresent</code>)</label></p>\
         <p><button type=\"submit\">Run simulation</button></p></form>\n",
        esc(&user),
        esc(&actions_text),
        esc(&resource),
        if with_mfa { " checked" } else { "" }
    ));
    let action_names: Vec<String> = actions_text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if user.is_empty() || action_names.is_empty() {
        return render("Policy simulator", out);
    }
    // The user's ARN with its path, as the executor builds resources; the simulation itself is
    // authorized (`iam:SimulatePrincipalPolicy` on that ARN) before anything about the user shows.
    let path = cx
        .state
        .store
        .user_by_name(&user)
        .await
        .ok()
        .flatten()
        .map_or_else(|| "/".to_owned(), |u| u.path);
    let source = crate::auth::user_arn(&cx.state.account, &path, &user);
    let result = cx
        .run(IamAction::SimulatePrincipalPolicy {
            policy_source_arn: source,
            policy_input_list: Vec::new(),
            action_names,
            resource_arns: vec![resource],
            // What a request of this user signed in to the console carries: its name (for
            // `${aws:username}`, which IAM's simulator only knows when given) and the MFA state.
            context_entries: vec![
                ContextEntry {
                    key: "aws:username".into(),
                    values: vec![user.clone()],
                    kind: ContextKeyType::String,
                },
                ContextEntry {
                    key: "aws:MultiFactorAuthPresent".into(),
                    values: vec![with_mfa.to_string()],
                    kind: ContextKeyType::Boolean,
                },
            ],
            caller_arn: None,
            page: all(),
        })
        .await;
    out.push("<h2>Results</h2>\n");
    match result {
        Err(e) => out.error(&e),
        Ok(IamOutput::Simulation { results, .. }) => {
            out.push("<table><thead><tr><th scope=\"col\">Action</th><th scope=\"col\">Resource</th><th scope=\"col\">Decision</th><th scope=\"col\">Matched statements</th></tr></thead><tbody>\n");
            for r in &results {
                let matched: Vec<String> = r
                    .matched
                    .iter()
                    .map(|m| {
                        format!(
                            "{} ({}), line {} to {}",
                            esc(&m.source_policy_id),
                            esc(&m.source_policy_type),
                            m.start.0,
                            m.end.0
                        )
                    })
                    .collect();
                let mut cell = matched.join("<br>");
                if !r.missing_context_values.is_empty() {
                    cell.push_str(&format!(
                        "<br>Missing context values: {}",
                        esc(&r.missing_context_values.join(", "))
                    ));
                }
                out.push(&format!(
                    "<tr><th scope=\"row\">{}</th><td>{}</td><td><strong class=\"decision\">{}</strong></td><td>{cell}</td></tr>\n",
                    esc(&r.action_name),
                    esc(&r.resource_name),
                    r.decision.as_str()
                ));
            }
            out.push("</tbody></table>\n");
        }
        Ok(_) => {}
    }
    render("Policy simulator", out)
}
