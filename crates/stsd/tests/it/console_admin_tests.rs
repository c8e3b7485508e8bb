//! The console's administration pages over HTTP (`/console/admin/`): the root manages users, a user
//! without permissions gets IAM's `AccessDenied` text with 403, a user with an administrator policy is
//! allowed, forms need the CSRF token, the simulator decides as the engine does with and without MFA,
//! malformed policy documents show IAM's message.

use crate::harness::{Opts, Server};
use crate::raw::{Response, send};
use crate::sdk::iam;

fn get(server: &Server, path: &str, cookie: &str) -> Response {
    send(
        server.addr,
        "GET",
        path,
        &[("Cookie".to_owned(), format!("stsd-console={cookie}"))],
        b"",
    )
}

fn post(server: &Server, path: &str, cookie: Option<&str>, form: &str) -> Response {
    let mut headers = vec![(
        "Content-Type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    if let Some(c) = cookie {
        headers.push(("Cookie".to_owned(), format!("stsd-console={c}")));
    }
    send(server.addr, "POST", path, &headers, form.as_bytes())
}

fn csrf(r: &Response) -> String {
    let at = r.body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    r.body[at..].split('"').next().unwrap().to_owned()
}

/// Signs in (`user` "root" signs in as the root) and answers the session cookie.
fn sign_in(server: &Server, user: &str, password: &str) -> String {
    let form = if user == "root" {
        format!("account={}&root=on&password={password}", server.account)
    } else {
        format!("account={}&user={user}&password={password}", server.account)
    };
    let r = post(server, "/console/signin", None, &form);
    assert_eq!(r.status, 303, "{}", r.body);
    let h = r.header("set-cookie").expect("a Set-Cookie header");
    let v = h.strip_prefix("stsd-console=").expect("the console cookie");
    v.split(';').next().unwrap().to_owned()
}

fn set_root_password(server: &Server, password: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stsd"))
        .args(["admin", "--data-dir"])
        .arg(&server.data_dir)
        .args(["root", "password"])
        .env_remove("STSD_DATA_DIR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// HTML text back to plain text (the escapes the console's pages use).
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The texts of a page's `role="alert"` elements.
fn alerts(r: &Response) -> Vec<String> {
    r.body
        .split("role=\"alert\"")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find('>')? + 1;
            let end = rest.find("</p>")?;
            Some(unescape(&rest[start..end]))
        })
        .collect()
}

/// The decision cell of a simulator answer (one action).
fn decision(r: &Response) -> String {
    let prefix = "<strong class=\"decision\">";
    let at = r.body.find(prefix).expect("a decision") + prefix.len();
    r.body[at..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn console_admin_users_permissions_csrf_simulator_and_policies() {
    let audit_dir = crate::harness::TempDir::new("console-admin-audit");
    let audit = audit_dir.data_dir().with_file_name("audit.log");
    let audit_arg = audit.display().to_string();
    let mut server = Server::start_with(Opts::args(&["--console", "--audit-log", &audit_arg]));
    let acct = server.account.clone();
    // Without a session: back to the sign-in page.
    let r = send(server.addr, "GET", "/console/admin/users", &[], b"");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/console/"));
    let root = iam(&server.endpoint(), &server.root);
    set_root_password(&server, "Root-Pass-123");
    for name in ["alice", "adam", "bob"] {
        root.create_user().user_name(name).send().await.unwrap();
        root.create_login_profile()
            .user_name(name)
            .password("Some-Pass-123")
            .send()
            .await
            .unwrap();
    }
    let admin = root
        .create_policy()
        .policy_name("IamAdmin")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    root.attach_user_policy()
        .user_name("adam")
        .policy_arn(admin.arn().unwrap())
        .send()
        .await
        .unwrap();
    root.attach_user_policy()
        .user_name("bob")
        .policy_arn("arn:aws:iam::aws:policy/StsdSelfManageCredentialsWithMFA")
        .send()
        .await
        .unwrap();

    // The root: index, list, create (CSRF needed), delete with AWS's DeleteConflict, then emptied.
    let rc = sign_in(&server, "root", "Root-Pass-123");
    let r = get(&server, "/console/admin/", &rc);
    assert_eq!(r.status, 200, "{}", r.body);
    for link in [
        "/console/admin/users",
        "/console/admin/groups",
        "/console/admin/policies",
        "/console/admin/simulator",
    ] {
        assert!(r.body.contains(&format!("href=\"{link}\"")), "{link}");
    }
    let r = get(&server, "/console/admin/users", &rc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(">alice</a>") && r.body.contains(">adam</a>"));
    assert!(
        r.body
            .contains("<label for=\"user-name\">User name</label>")
    );
    assert!(r.body.contains("<th scope=\"col\">User name</th>"));
    let token = csrf(&r);
    let r = post(&server, "/console/admin/users", Some(&rc), "name=carol");
    assert_eq!(r.status, 403, "no CSRF token");
    let r = post(
        &server,
        "/console/admin/users",
        Some(&rc),
        &format!("csrf={}&name=carol", enc(&token)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("/console/admin/users/carol?done=user-created")
    );
    let r = get(&server, "/console/admin/users/carol", &rc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&format!("arn:aws:iam::{acct}:user/carol")));
    // A console password and an access key (its secret shown once).
    let t = enc(&token);
    let r = post(
        &server,
        "/console/admin/users/carol",
        Some(&rc),
        &format!("csrf={t}&op=password-create&password=Carol-Pass-123&reset_required=on"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = post(
        &server,
        "/console/admin/users/carol",
        Some(&rc),
        &format!("csrf={t}&op=key-create"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Secret access key"));
    let r = get(&server, "/console/admin/users/carol", &rc);
    assert!(r.body.contains("the user must change it at next sign-in"));
    let r = post(
        &server,
        "/console/admin/users/carol",
        Some(&rc),
        &format!("csrf={t}&op=delete"),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        alerts(&r),
        ["Cannot delete entity, must delete login profile first."],
        "{}",
        r.body
    );
    let r = post(
        &server,
        "/console/admin/users/carol",
        Some(&rc),
        &format!("csrf={t}&op=delete&force=on"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("/console/admin/users?done=user-deleted")
    );
    let r = get(&server, "/console/admin/users", &rc);
    assert!(!r.body.contains(">carol</a>"));
    assert!(
        root.get_user().user_name("carol").send().await.is_err(),
        "carol is gone"
    );

    // A user without permissions: IAM's AccessDenied text, 403.
    let ac = sign_in(&server, "alice", "Some-Pass-123");
    let r = get(&server, "/console/admin/users", &ac);
    assert_eq!(r.status, 403, "{}", r.body);
    let denied = alerts(&r);
    assert_eq!(denied.len(), 1, "{}", r.body);
    assert!(
        denied[0].starts_with(&format!(
            "User: arn:aws:iam::{acct}:user/alice is not authorized to perform: iam:ListUsers on resource: "
        )),
        "{denied:?}"
    );
    let r = get(&server, "/console/admin/users/adam", &ac);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("iam:GetUser"));

    // A user with an administrator policy is allowed; the require-MFA switch.
    let dc = sign_in(&server, "adam", "Some-Pass-123");
    let r = get(&server, "/console/admin/users", &dc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(">alice</a>"));
    let r = get(&server, "/console/admin/users/alice", &dc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"mfa-required\" name=\"mfa_required\" value=\"on\">")
    );
    let dt = enc(&csrf(&r));
    let r = post(
        &server,
        "/console/admin/users/alice",
        Some(&dc),
        &format!("csrf={dt}&op=mfa-required&mfa_required=on"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = get(&server, "/console/admin/users/alice", &dc);
    assert!(
        r.body
            .contains("id=\"mfa-required\" name=\"mfa_required\" value=\"on\" checked>"),
        "{}",
        r.body
    );
    // ...which bob (AWS's MFA policy, signed in without MFA) may not flip.
    let bc = sign_in(&server, "bob", "Some-Pass-123");
    let r = get(&server, "/console/admin/users/bob", &bc);
    let bt = enc(&csrf(&r));
    let r = post(
        &server,
        "/console/admin/users/bob",
        Some(&bc),
        &format!("csrf={bt}&op=mfa-required&mfa_required=on"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("is not authorized to perform: iam:UpdateUser")
    );

    // The simulator with AWS's MFA example policy.
    let bob_arn = enc(&format!("arn:aws:iam::{acct}:user/bob"));
    let sim = |action: &str, mfa: bool| {
        get(
            &server,
            &format!(
                "/console/admin/simulator?user=bob&actions={}&resource={bob_arn}{}",
                enc(action),
                if mfa { "&mfa=on" } else { "" }
            ),
            &rc,
        )
    };
    let r = sim("iam:CreateAccessKey", true);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(decision(&r), "allowed", "{}", r.body);
    assert!(r.body.contains("StsdSelfManageCredentialsWithMFA"));
    assert_eq!(decision(&sim("iam:CreateAccessKey", false)), "explicitDeny");
    assert_eq!(decision(&sim("iam:GetUser", false)), "allowed");
    assert_eq!(decision(&sim("iam:ListUsers", true)), "implicitDeny");
    // The simulator is an IAM action like any other.
    let r = get(
        &server,
        "/console/admin/simulator?user=bob&actions=iam:GetUser",
        &ac,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("iam:SimulatePrincipalPolicy"));

    // Policies: the list has the built-ins; a malformed document shows IAM's message.
    let r = get(&server, "/console/admin/policies", &rc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(">StsdSelfManageCredentialsWithMFA</a>")
            && r.body.contains(">IamAdmin</a>")
    );
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#;
    let api = root
        .create_policy()
        .policy_name("Bad")
        .policy_document(bad)
        .send()
        .await
        .unwrap_err();
    let api = api.into_service_error();
    let message = api.meta().message().unwrap().to_owned();
    assert_eq!(api.meta().code(), Some("MalformedPolicyDocument"));
    let r = post(
        &server,
        "/console/admin/policies",
        Some(&rc),
        &format!("csrf={t}&name=Bad&document={}", enc(bad)),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(alerts(&r), [message], "{}", r.body);
    // A good one, then its page: the document pretty-printed, its attachments.
    let good = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#;
    let r = post(
        &server,
        "/console/admin/policies",
        Some(&rc),
        &format!("csrf={t}&name=Reader&document={}", enc(good)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with("/console/admin/policies/view?arn="));
    let r = get(&server, &location, &rc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        unescape(&r.body).contains("\"Action\": \"iam:GetUser\""),
        "{}",
        r.body
    );
    let r = get(
        &server,
        &format!(
            "/console/admin/policies/view?arn={}",
            enc(admin.arn().unwrap())
        ),
        &rc,
    );
    assert!(r.body.contains(">adam</a>"), "{}", r.body);

    // Console administration is in the audit log like the API, without passwords.
    server.stop();
    let text = std::fs::read_to_string(&audit).unwrap();
    for event in [
        "\"CreateUser\"",
        "\"DeleteUser\"",
        "\"UpdateUser\"",
        "\"SimulatePrincipalPolicy\"",
    ] {
        assert!(text.contains(event), "{event} in {text}");
    }
    assert!(text.contains("\"errorCode\":\"AccessDenied\""));
    for secret in ["Carol-Pass-123", "Root-Pass-123", &rc] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn console_admin_groups() {
    let server = Server::start_with(Opts::args(&["--console"]));
    let root = iam(&server.endpoint(), &server.root);
    set_root_password(&server, "Root-Pass-123");
    root.create_user().user_name("gina").send().await.unwrap();
    let rc = sign_in(&server, "root", "Root-Pass-123");
    let r = get(&server, "/console/admin/groups", &rc);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = enc(&csrf(&r));
    let r = post(
        &server,
        "/console/admin/groups",
        Some(&rc),
        &format!("csrf={t}&name=devs"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = get(&server, "/console/admin/users/gina", &rc);
    assert!(
        r.body.contains("<option value=\"devs\">devs</option>"),
        "{}",
        r.body
    );
    for form in [
        "op=member-add&user=gina".to_owned(),
        format!(
            "op=policy-attach&policy_arn={}",
            enc("arn:aws:iam::aws:policy/IAMUserChangePassword")
        ),
    ] {
        let r = post(
            &server,
            "/console/admin/groups/devs",
            Some(&rc),
            &format!("csrf={t}&{form}"),
        );
        assert_eq!(r.status, 303, "{form}: {}", r.body);
    }
    let r = get(&server, "/console/admin/groups/devs", &rc);
    assert!(r.body.contains(">gina</a>") && r.body.contains(">IAMUserChangePassword</a>"));
    let r = get(&server, "/console/admin/users/gina", &rc);
    assert!(r.body.contains(">devs</a>"), "{}", r.body);
    // A group with members is not deleted (IAM's DeleteConflict), an empty one is.
    let r = post(
        &server,
        "/console/admin/groups/devs",
        Some(&rc),
        &format!("csrf={t}&op=delete"),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(alerts(&r).len(), 1, "{}", r.body);
    for form in [
        "op=member-remove&user=gina".to_owned(),
        format!(
            "op=policy-detach&policy_arn={}",
            enc("arn:aws:iam::aws:policy/IAMUserChangePassword")
        ),
        "op=delete".to_owned(),
    ] {
        let r = post(
            &server,
            "/console/admin/groups/devs",
            Some(&rc),
            &format!("csrf={t}&{form}"),
        );
        assert_eq!(r.status, 303, "{form}: {}", r.body);
    }
    let r = get(&server, "/console/admin/groups", &rc);
    assert!(!r.body.contains(">devs</a>"));
}
