//! The web console over HTTP (`--console`): security headers, sign-in without revealing what was wrong,
//! the session cookie's attributes, CSRF refusal, a forced password change, change password and sign-out,
//! denials with IAM's message, and an audit log without passwords.

use crate::harness::{Opts, Server, TempDir};
use crate::raw::{Response, send};
use crate::sdk::iam;
use crate::sign::Creds;

/// Creates IAM user `name` with console password `password` and, with `self_service`, the managed policy
/// that lets it manage its own credentials.
async fn console_user(root: &aws_sdk_iam::Client, name: &str, password: &str, self_service: bool) {
    root.create_user().user_name(name).send().await.unwrap();
    if self_service {
        root.attach_user_policy()
            .user_name(name)
            .policy_arn("arn:aws:iam::aws:policy/StsdSelfManageCredentials")
            .send()
            .await
            .unwrap();
    }
    root.create_login_profile()
        .user_name(name)
        .password(password)
        .send()
        .await
        .unwrap();
}

/// The seed a device-creation page shows (its "Secret key").
fn shown_seed(r: &Response) -> Vec<u8> {
    let at = r.body.find("Secret key: <code>").expect("a secret key") + 18;
    let text = r.body[at..].split('<').next().unwrap();
    data_encoding::BASE32_NOPAD.decode(text.as_bytes()).unwrap()
}

/// Enables the device `serial` shown with `seed` through the console form, with the codes of steps
/// `step - 1` and `step` (the caller's current step: later codes stay unused for the rest of its test).
fn enable(
    server: &Server,
    cookie: &str,
    token: &str,
    serial: &str,
    seed: &[u8],
    step: i64,
) -> Response {
    let code = |s: i64| stsd_core::totp::code(seed, s);
    post(
        server,
        "/console/mfa/enable",
        Some(cookie),
        &format!(
            "csrf={token}&serial={serial}&code1={}&code2={}",
            code(step - 1),
            code(step)
        ),
    )
}

fn get(server: &Server, cookie: Option<&str>) -> Response {
    let headers: Vec<(String, String)> = cookie
        .map(|c| vec![("Cookie".to_owned(), format!("stsd-console={c}"))])
        .unwrap_or_default();
    send(server.addr, "GET", "/console/", &headers, b"")
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

/// The session cookie a response sets.
fn set_cookie(r: &Response) -> String {
    let h = r.header("set-cookie").expect("a Set-Cookie header");
    let v = h.strip_prefix("stsd-console=").expect("the console cookie");
    v.split(';').next().unwrap().to_owned()
}

fn csrf(r: &Response) -> String {
    let at = r.body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    r.body[at..].split('"').next().unwrap().to_owned()
}

fn sign_in(server: &Server, user: &str, password: &str) -> Response {
    post(
        server,
        "/console/signin",
        None,
        &format!("account={}&user={user}&password={password}", server.account),
    )
}

#[tokio::test]
async fn console_sign_in_cookies_csrf_and_change_password() {
    // On by default; `--console=false` turns it off.
    let plain = Server::start_with(Opts::args(&["--console=false"]));
    assert!(!get(&plain, None).body.contains("Sign in"));
    drop(plain);
    let default = Server::start();
    assert!(get(&default, None).body.contains("Sign in"));
    drop(default);

    let audit_dir = TempDir::new("console-audit");
    let audit = audit_dir.data_dir().with_file_name("audit.log");
    let audit_arg = audit.display().to_string();
    let mut server = Server::start_with(Opts::args(&["--console", "--audit-log", &audit_arg]));
    let ep = server.endpoint();
    let acct = server.account.clone();
    let root = iam(&ep, &server.root);
    console_user(&root, "alice", "Correct-Horse-7", true).await;
    console_user(&root, "bob", "Correct-Horse-7", false).await;
    let key = root
        .create_access_key()
        .user_name("alice")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();

    // The sign-in page and its headers.
    let r = get(&server, None);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<label for=\"password\">Password</label>"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    // Failures look the same whatever was wrong, and set no cookie.
    for (user, password, account) in [
        ("alice", "Wrong-Horse-7", acct.as_str()),
        ("nobody", "Correct-Horse-7", acct.as_str()),
        ("alice", "Correct-Horse-7", "123456789012"),
    ] {
        let r = post(
            &server,
            "/console/signin",
            None,
            &format!("account={account}&user={user}&password={password}"),
        );
        assert_eq!(r.status, 401, "{user} {account}");
        assert!(
            r.body
                .contains("Your authentication information is incorrect. Please try again.")
        );
        assert!(r.header("set-cookie").is_none());
    }
    // A sign-in posted from another site is refused.
    // (Lock-out after failed passwords: `failed_passwords_lock_the_sign_in`.)
    let r = send(
        server.addr,
        "POST",
        "/console/signin",
        &[
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Origin".into(), "https://evil.example".into()),
        ],
        format!("account={acct}&user=alice&password=Correct-Horse-7").as_bytes(),
    );
    assert_eq!(r.status, 403);
    // `Origin: null` (what browsers send under `Referrer-Policy: no-referrer`) is believed only with the
    // browser's `Sec-Fetch-Site: same-origin` (a same-origin sign-in in Chromium: test_browser.py).
    for fetch_site in [None, Some("cross-site"), Some("same-site")] {
        let mut headers = vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Origin".into(), "null".into()),
        ];
        if let Some(f) = fetch_site {
            headers.push(("Sec-Fetch-Site".into(), f.into()));
        }
        let r = send(
            server.addr,
            "POST",
            "/console/signin",
            &headers,
            format!("account={acct}&user=alice&password=Correct-Horse-7").as_bytes(),
        );
        assert_eq!(
            r.status, 403,
            "Origin: null, Sec-Fetch-Site: {fetch_site:?}"
        );
    }

    // Success: a random, HttpOnly, SameSite=Strict cookie (no Secure without TLS).
    let r = sign_in(&server, "alice", "Correct-Horse-7");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/console/"));
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.ends_with("; Path=/; HttpOnly; SameSite=Strict"),
        "{set}"
    );
    let cookie = set_cookie(&r);
    assert!(cookie.len() >= 43 && !cookie.contains("alice"));
    let page = get(&server, Some(&cookie));
    assert!(
        page.body.contains("My security credentials"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("arn:aws:iam::{acct}:user/alice"))
    );
    assert!(
        page.body.contains(key.access_key_id()),
        "keys listed through IAM"
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let token = csrf(&page);

    // Access keys: create (the secret shown once), use, deactivate (refused at once), delete.
    assert!(page.body.contains("Create access key"));
    let r = post(&server, "/console/keys", Some(&cookie), "op=create");
    assert_eq!(r.status, 403, "no CSRF token");
    let r = post(
        &server,
        "/console/keys",
        Some(&cookie),
        &format!("csrf={token}&op=create"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let field = |label: &str| {
        let prefix = format!("<dt>{label}</dt><dd><code>");
        let at = r.body.find(&prefix).unwrap() + prefix.len();
        r.body[at..].split('<').next().unwrap().to_owned()
    };
    let new_key = Creds {
        id: field("Access key ID"),
        secret: field("Secret access key"),
        token: None,
    };
    assert!(
        new_key.id.starts_with("AKIA") && new_key.secret.len() == 40,
        "{}",
        r.body
    );
    let as_alice = iam(&ep, &new_key);
    assert_eq!(
        as_alice
            .get_user()
            .send()
            .await
            .unwrap()
            .user
            .unwrap()
            .user_name(),
        "alice"
    );
    let page = get(&server, Some(&cookie));
    assert!(page.body.contains(&new_key.id) && !page.body.contains(&new_key.secret));
    assert!(
        !page.body.contains("Create access key"),
        "two keys: no more"
    );
    let r = post(
        &server,
        "/console/keys",
        Some(&cookie),
        &format!("csrf={token}&op=deactivate&id={}", new_key.id),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let e = as_alice.get_user().send().await.unwrap_err();
    assert_eq!(
        e.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{e:?}"
    );
    let r = post(
        &server,
        "/console/keys",
        Some(&cookie),
        &format!("csrf={token}&op=delete&id={}", new_key.id),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!get(&server, Some(&cookie)).body.contains(&new_key.id));

    // Forms without the session's CSRF token are refused and change nothing.
    let change = "old=Correct-Horse-7&new=Battery-Staple-8&confirm=Battery-Staple-8";
    let r = post(&server, "/console/password", Some(&cookie), change);
    assert_eq!(r.status, 403);
    let r = post(
        &server,
        "/console/password",
        Some(&cookie),
        &format!("csrf=x{token}&{change}"),
    );
    assert_eq!(r.status, 403);
    let r = post(
        &server,
        "/console/password",
        None,
        &format!("csrf={token}&{change}"),
    );
    assert_eq!(r.status, 403);
    assert_eq!(sign_in(&server, "alice", "Correct-Horse-7").status, 303);

    // Change password through IAM's ChangePassword: policy violations show IAM's message.
    let r = post(
        &server,
        "/console/password",
        Some(&cookie),
        &format!("csrf={token}&old=Correct-Horse-7&new=short&confirm=short"),
    );
    assert!(
        r.body
            .contains("Password should have a minimum length of 8"),
        "{}",
        r.body
    );
    let r = post(
        &server,
        "/console/password",
        Some(&cookie),
        &format!("csrf={token}&{change}"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let new_cookie = set_cookie(&r);
    assert!(
        !get(&server, Some(&cookie))
            .body
            .contains("My security credentials")
    );
    assert_eq!(sign_in(&server, "alice", "Correct-Horse-7").status, 401);
    assert_eq!(sign_in(&server, "alice", "Battery-Staple-8").status, 303);

    // Sign-out ends the session and clears the cookie.
    let page = get(&server, Some(&new_cookie));
    let r = post(
        &server,
        "/console/signout",
        Some(&new_cookie),
        &format!("csrf={}", csrf(&page)),
    );
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert!(get(&server, Some(&new_cookie)).body.contains("Sign in"));

    // Bob has no policies: the page shows IAM's denial; a forced reset asks for a new password first.
    root.update_login_profile()
        .user_name("bob")
        .password_reset_required(true)
        .send()
        .await
        .unwrap();
    let bob = set_cookie(&sign_in(&server, "bob", "Correct-Horse-7"));
    let page = get(&server, Some(&bob));
    assert!(
        page.body.contains("You must change your password"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Access keys"));
    let r = post(
        &server,
        "/console/password",
        Some(&bob),
        &format!(
            "csrf={}&old=Correct-Horse-7&new=Bobs-New-Pass-1&confirm=Bobs-New-Pass-1",
            csrf(&page)
        ),
    );
    assert!(
        r.body.contains(&format!(
            "User: arn:aws:iam::{acct}:user/bob is not authorized to perform: iam:ChangePassword on resource: user bob because no identity-based policy allows the iam:ChangePassword action"
        )),
        "{}",
        r.body
    );
    // The account policy's AllowUsersToChangePassword lets him.
    root.update_account_password_policy()
        .allow_users_to_change_password(true)
        .send()
        .await
        .unwrap();
    let r = post(
        &server,
        "/console/password",
        Some(&bob),
        &format!(
            "csrf={}&old=Correct-Horse-7&new=Bobs-New-Pass-1&confirm=Bobs-New-Pass-1",
            csrf(&page)
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let bob = set_cookie(&r);
    let page = get(&server, Some(&bob));
    assert!(page.body.contains("My security credentials"));
    assert!(
        page.body
            .contains("is not authorized to perform: iam:ListAccessKeys"),
        "{}",
        page.body
    );

    // Revoking bob's sessions (the admin CLI, as for API sessions) ends his console session too,
    // within the revocation cache's 5 seconds.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stsd"))
        .args(["admin", "--data-dir"])
        .arg(&server.data_dir)
        .args(["sessions", "revoke", "--user", "bob"])
        .env_remove("STSD_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while get(&server, Some(&bob))
        .body
        .contains("My security credentials")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "bob's console session survived revocation"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    server.stop();
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        text.contains("ConsoleLogin") && text.contains("\"ChangePassword\""),
        "{text}"
    );
    for secret in [
        "Correct-Horse-7",
        "Battery-Staple-8",
        "Bobs-New-Pass-1",
        &cookie,
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
        assert!(
            !server.stderr().contains(secret),
            "{secret} in the server log"
        );
    }
}

#[tokio::test]
async fn expired_passwords_must_be_changed_or_reset_by_an_administrator() {
    let dir = TempDir::new("console-expiry");
    let data = dir.data_dir();
    let at = |offset_days: i64| {
        Opts::args(&[
            "--console",
            "--clock-offset-seconds",
            &(offset_days * 86_400).to_string(),
        ])
    };
    let mut server = Server::start_in(&data, &at(0));
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "carol", "Carol-Pass-1", false).await;
    root.update_account_password_policy()
        .max_password_age(1)
        .allow_users_to_change_password(true)
        .send()
        .await
        .unwrap();
    assert!(
        get(
            &server,
            Some(&set_cookie(&sign_in(&server, "carol", "Carol-Pass-1")))
        )
        .body
        .contains("My security credentials")
    );
    server.stop();

    // Two days later the password has expired: a new one is needed before anything else.
    let mut server = Server::start_in(&data, &at(2));
    let c = set_cookie(&sign_in(&server, "carol", "Carol-Pass-1"));
    let page = get(&server, Some(&c));
    assert!(
        page.body.contains("You must change your password"),
        "{}",
        page.body
    );
    let r = post(
        &server,
        "/console/password",
        Some(&c),
        &format!(
            "csrf={}&old=Carol-Pass-1&new=Carol-Pass-2&confirm=Carol-Pass-2",
            csrf(&page)
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        get(&server, Some(&set_cookie(&r)))
            .body
            .contains("My security credentials")
    );
    server.stop();

    // With HardExpiry, an expired password no longer signs in at all.
    let mut server = Server::start_in(&data, &at(0));
    iam(&server.endpoint(), &server.root)
        .update_account_password_policy()
        .max_password_age(1)
        .hard_expiry(true)
        .send()
        .await
        .unwrap();
    server.stop();
    let mut server = Server::start_in(&data, &at(4));
    let r = sign_in(&server, "carol", "Carol-Pass-2");
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Your password has expired"));
    assert!(r.header("set-cookie").is_none());
    server.stop();
}

#[tokio::test]
async fn failed_passwords_lock_the_sign_in() {
    let server = Server::start_with(Opts::args(&[
        "--console",
        "--mfa-max-failures",
        "3",
        "--mfa-lockout",
        "600",
    ]));
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "dave", "Dave-Pass-1", false).await;
    assert_eq!(sign_in(&server, "dave", "Wrong-Pass-1").status, 401);
    // A success forgets earlier failures.
    assert_eq!(sign_in(&server, "dave", "Dave-Pass-1").status, 303);
    for _ in 0..3 {
        assert_eq!(sign_in(&server, "dave", "Wrong-Pass-1").status, 401);
    }
    // Locked: the right password gets the same answer as a wrong one.
    let r = sign_in(&server, "dave", "Dave-Pass-1");
    assert_eq!(r.status, 401);
    assert!(
        r.body
            .contains("Your authentication information is incorrect. Please try again.")
    );
    assert!(r.header("set-cookie").is_none());
    assert!(
        server
            .stderr()
            .contains("console sign-in locked after failed passwords")
    );
}

#[tokio::test]
async fn assign_and_remove_a_virtual_mfa_device() {
    let server = Server::start_with(Opts::args(&["--console"]));
    let acct = server.account.clone();
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "erin", "Erin-Pass-1", true).await;
    let c = set_cookie(&sign_in(&server, "erin", "Erin-Pass-1"));
    let page = get(&server, Some(&c));
    assert!(page.body.contains("No MFA device") && page.body.contains("Assign MFA device"));
    let token = csrf(&page);
    let r = post(&server, "/console/mfa/create", Some(&c), "name=erin");
    assert_eq!(r.status, 403, "no CSRF token");
    let r = post(
        &server,
        "/console/mfa/create",
        Some(&c),
        &format!("csrf={token}&name=erin"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("src=\"data:image/png;base64,iVBORw0KGgo"));
    let seed = shown_seed(&r);
    let serial = format!("arn:aws:iam::{acct}:mfa/erin");
    assert!(
        r.body
            .contains(&format!("name=\"serial\" value=\"{serial}\""))
    );
    let step = stsd_core::totp::step_at(crate::harness::unix_now());
    let code = |s: i64| stsd_core::totp::code(&seed, s);
    // Wrong codes: IAM's message, nothing enabled.
    let r = post(
        &server,
        "/console/mfa/enable",
        Some(&c),
        &format!("csrf={token}&serial={serial}&code1=000000&code2=000000"),
    );
    assert!(
        r.body
            .contains("Authentication code for device is not valid."),
        "{}",
        r.body
    );
    let r = enable(&server, &c, &token, &serial, &seed, step);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = get(&server, Some(&c));
    assert!(page.body.contains(&serial), "{}", page.body);
    // Signed in without MFA, stsd's stricter rule keeps the device: removing it needs an MFA sign-in.
    let r = post(
        &server,
        "/console/mfa/remove",
        Some(&c),
        &format!("csrf={token}&serial={serial}"),
    );
    assert!(
        r.body.contains("the user has an enabled MFA device and the request was not made with MFA session credentials"),
        "{}",
        r.body
    );
    // A new sign-in asks for the code; with it, the device can be removed.
    let pending = set_cookie(&sign_in(&server, "erin", "Erin-Pass-1"));
    let page = get(&server, Some(&pending));
    assert!(page.body.contains("MFA code"));
    let r = post(
        &server,
        "/console/mfa",
        Some(&pending),
        &format!(
            "csrf={}&serial={serial}&code={}",
            csrf(&page),
            code(step + 1)
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let c = set_cookie(&r);
    let page = get(&server, Some(&c));
    assert!(page.body.contains("<dt>MFA at sign-in</dt><dd>yes</dd>"));
    let r = post(
        &server,
        "/console/mfa/remove",
        Some(&c),
        &format!("csrf={}&serial={serial}", csrf(&page)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(get(&server, Some(&c)).body.contains("No MFA device"));
    let devices = root
        .list_virtual_mfa_devices()
        .send()
        .await
        .unwrap()
        .virtual_mfa_devices;
    assert!(
        devices.iter().all(|d| d.serial_number() != serial),
        "deleted, not only deactivated"
    );
}

fn get_path(server: &Server, path: &str, cookie: Option<&str>) -> Response {
    let headers: Vec<(String, String)> = cookie
        .map(|c| vec![("Cookie".to_owned(), format!("stsd-console={c}"))])
        .unwrap_or_default();
    send(server.addr, "GET", path, &headers, b"")
}

#[tokio::test]
async fn layout_stylesheet_and_navigation() {
    let server = Server::start_with(Opts::args(&["--console"]));
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "gina", "Gina-Pass-1", true).await;
    // The sign-in page: the layout, the stylesheet, no navigation before signing in.
    let r = get(&server, None);
    assert!(r.body.starts_with("<!doctype html>") && r.body.contains("<html lang=\"en\">"));
    assert!(r.body.contains("name=\"viewport\""));
    assert!(
        r.body.contains(&server.account),
        "the header names the account"
    );
    assert!(!r.body.contains("Session credentials") && !r.body.contains("/console/signout"));
    let marker = "rel=\"stylesheet\" href=\"";
    let at = r.body.find(marker).unwrap() + marker.len();
    let css_url = r.body[at..].split('"').next().unwrap().to_owned();
    assert!(
        css_url.starts_with("/console/static/console.css?v="),
        "{css_url}"
    );
    let css = get_path(&server, &css_url, None);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(
        css.header("cache-control")
            .unwrap()
            .contains("max-age=31536000")
    );
    assert_eq!(css.header("x-content-type-options"), Some("nosniff"));
    assert!(css.body.contains("@media"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("style-src 'self'")
    );
    // Signed in: navigation, sign-out in the header, the current page marked.
    let c = set_cookie(&sign_in(&server, "gina", "Gina-Pass-1"));
    let page = get(&server, Some(&c));
    for link in [
        "href=\"/console/\" aria-current=\"page\">My security credentials",
        "href=\"/console/session\"",
        "href=\"/console/admin/\"",
        "action=\"/console/signout\"",
    ] {
        assert!(page.body.contains(link), "{link}: {}", page.body);
    }
    // Values are escaped by the templates.
    assert!(!page.body.contains("<script"));
    // Administration (the pages: `console_admin_tests`), behind the session (and CSRF for forms).
    let r = get_path(&server, "/console/admin/", Some(&c));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Sign out"));
    assert!(
        r.body
            .contains("href=\"/console/admin/\" aria-current=\"page\">Administration"),
        "{}",
        r.body
    );
    let r = get_path(&server, "/console/admin/users", None);
    assert_eq!(r.status, 303);
    let r = post(&server, "/console/admin/users", Some(&c), "op=x");
    assert_eq!(r.status, 403, "no CSRF token");
    let r = post(
        &server,
        "/console/admin/nothing",
        Some(&c),
        &format!("csrf={}&op=x", csrf(&page)),
    );
    assert_eq!(r.status, 404);
    assert_eq!(get_path(&server, "/console/nothing", Some(&c)).status, 404);
}

/// The value of `export NAME=` on a page.
fn export(body: &str, name: &str) -> String {
    let prefix = format!("export {name}=");
    let at = body.find(&prefix).unwrap() + prefix.len();
    body[at..].split(['\n', '<']).next().unwrap().to_owned()
}

#[tokio::test]
async fn session_credentials_from_the_console() {
    let server = Server::start_with(Opts::args(&["--console"]));
    let acct = server.account.clone();
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "hank", "Hank-Pass-1", false).await;
    assert_eq!(get_path(&server, "/console/session", None).status, 303);
    let c = set_cookie(&sign_in(&server, "hank", "Hank-Pass-1"));
    let page = get_path(&server, "/console/session", Some(&c));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"duration\" name=\"duration\""));
    assert!(
        page.body
            .contains("href=\"/console/session\" aria-current=\"page\"")
    );
    let token = csrf(&page);
    assert_eq!(
        post(&server, "/console/session", Some(&c), "duration=900").status,
        403,
        "no CSRF token"
    );
    // The API's validation and message.
    let r = post(
        &server,
        "/console/session",
        Some(&c),
        &format!("csrf={token}&duration=12"),
    );
    assert!(
        r.body
            .contains("Member must have value greater than or equal to 900"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("export AWS_"));
    let r = post(
        &server,
        "/console/session",
        Some(&c),
        &format!("csrf={token}&duration=900"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let creds = Creds {
        id: export(&r.body, "AWS_ACCESS_KEY_ID"),
        secret: export(&r.body, "AWS_SECRET_ACCESS_KEY"),
        token: Some(export(&r.body, "AWS_SESSION_TOKEN")),
    };
    assert!(
        creds.id.starts_with("ASIA") && creds.secret.len() == 40,
        "{}",
        r.body
    );
    let sts = crate::sdk::client(&server.endpoint(), &creds);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{acct}:user/hank").as_str())
    );
    // As for the API: a session cannot call GetSessionToken, and expires as asked.
    let e = sts.get_session_token().send().await.unwrap_err();
    assert_eq!(crate::sdk::error_parts(&e).0, 403);
    // With `--require-mfa`, a sign-in without MFA gets none (the API's message).
    let strict = Server::start_with(Opts::args(&["--console", "--require-mfa"]));
    let root = iam(&strict.endpoint(), &strict.root);
    console_user(&root, "hank", "Hank-Pass-1", false).await;
    let c = set_cookie(&sign_in(&strict, "hank", "Hank-Pass-1"));
    let token = csrf(&get_path(&strict, "/console/session", Some(&c)));
    let r = post(
        &strict,
        "/console/session",
        Some(&c),
        &format!("csrf={token}"),
    );
    assert!(
        r.body.contains("MultiFactorAuthentication required"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("export AWS_"));
}

#[tokio::test]
async fn new_key_csv_download_once_and_last_used() {
    let server = Server::start_with(Opts::args(&["--console"]));
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "ivy", "Ivy-Pass-12", true).await;
    let c = set_cookie(&sign_in(&server, "ivy", "Ivy-Pass-12"));
    let token = csrf(&get(&server, Some(&c)));
    let r = post(
        &server,
        "/console/keys",
        Some(&c),
        &format!("csrf={token}&op=create"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("name=\"op\" value=\"csv\""), "{}", r.body);
    let field = |label: &str| {
        let prefix = format!("<dt>{label}</dt><dd><code>");
        let at = r.body.find(&prefix).unwrap() + prefix.len();
        r.body[at..].split('<').next().unwrap().to_owned()
    };
    let (id, secret) = (field("Access key ID"), field("Secret access key"));
    // Another key id, or no CSRF token: nothing.
    let r = post(
        &server,
        "/console/keys",
        Some(&c),
        &format!("op=csv&id={id}"),
    );
    assert_eq!(r.status, 403);
    let r = post(
        &server,
        "/console/keys",
        Some(&c),
        &format!("csrf={token}&op=csv&id=AKIAOTHER"),
    );
    assert!(r.body.contains("can be downloaded only once"), "{}", r.body);
    let r = post(
        &server,
        "/console/keys",
        Some(&c),
        &format!("csrf={token}&op=csv&id={id}"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        format!("Access key ID,Secret access key\r\n{id},{secret}\r\n")
    );
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"ivy_accessKeys.csv\"")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Once only.
    let r = post(
        &server,
        "/console/keys",
        Some(&c),
        &format!("csrf={token}&op=csv&id={id}"),
    );
    assert!(!r.body.contains(&secret));
    assert!(r.body.contains("can be downloaded only once"));
    // Last used: N/A, then the date, service and region once the key signed a request.
    let page = get(&server, Some(&c));
    assert!(page.body.contains("<th scope=\"col\">Last used</th>"));
    assert!(
        page.body.contains("<td data-label=\"Last used\">N/A</td>"),
        "{}",
        page.body
    );
    let key = Creds {
        id: id.clone(),
        secret,
        token: None,
    };
    crate::sdk::client(&server.endpoint(), &key)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let page = get(&server, Some(&c));
    assert!(page.body.contains("(sts, us-east-1)"), "{}", page.body);
}

#[tokio::test]
async fn mfa_issuer_and_resync() {
    let server = Server::start_with(Opts::args(&["--console", "--mfa-issuer", "Acme <STS>"]));
    let acct = server.account.clone();
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "jill", "Jill-Pass-1", true).await;
    let c = set_cookie(&sign_in(&server, "jill", "Jill-Pass-1"));
    let token = csrf(&get(&server, Some(&c)));
    let r = post(
        &server,
        "/console/mfa/create",
        Some(&c),
        &format!("csrf={token}&name=jill"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!(
            "<strong class=\"issuer\">Acme &#60;STS&#62;</strong> (jill@{acct})"
        )),
        "{}",
        r.body
    );
    let seed = shown_seed(&r);
    let serial = format!("arn:aws:iam::{acct}:mfa/jill");
    let step = stsd_core::totp::step_at(crate::harness::unix_now());
    let code = |s: i64| stsd_core::totp::code(&seed, s);
    let r = enable(&server, &c, &token, &serial, &seed, step);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = get(&server, Some(&c));
    assert!(page.body.contains("action=\"/console/mfa/resync\""));
    // Wrong codes: IAM's message.
    let r = post(
        &server,
        "/console/mfa/resync",
        Some(&c),
        &format!("csrf={token}&serial={serial}&code1=000000&code2=000000"),
    );
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);
    assert!(!r.body.contains("was resynchronized"));
    let r = post(
        &server,
        "/console/mfa/resync",
        Some(&c),
        &format!(
            "csrf={token}&serial={serial}&code1={}&code2={}",
            code(step + 2),
            code(step + 3)
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("<p role=\"status\" class=\"note\">The MFA device was resynchronized.</p>"),
        "{}",
        r.body
    );
}

fn sign_in_with(server: &Server, user: &str, password: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![(
        "Content-Type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    h.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let form = format!("account={}&user={user}&password={password}", server.account);
    send(server.addr, "POST", "/console/signin", &h, form.as_bytes())
}

#[tokio::test]
async fn secure_cookies_behind_a_tls_proxy() {
    async fn with_kate(args: &[&str]) -> Server {
        let server = Server::start_with(Opts::args(args));
        let root = iam(&server.endpoint(), &server.root);
        console_user(&root, "kate", "Kate-Pass-1", false).await;
        server
    }
    // The setting: Secure and __Host- without TLS here; the origin expected is https.
    let server = with_kate(&["--console", "--console-secure-cookies"]).await;
    let host = server.addr.to_string();
    let r = sign_in_with(
        &server,
        "kate",
        "Kate-Pass-1",
        &[("Origin", &format!("http://{host}"))],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = sign_in_with(
        &server,
        "kate",
        "Kate-Pass-1",
        &[("Origin", &format!("https://{host}"))],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-stsd-console=") && cookie.ends_with("; Secure"),
        "{cookie}"
    );
    let value = cookie["__Host-stsd-console=".len()..]
        .split(';')
        .next()
        .unwrap();
    let headers = vec![("Cookie".to_owned(), format!("__Host-stsd-console={value}"))];
    let page = send(server.addr, "GET", "/console/", &headers, b"");
    assert!(
        page.body.contains("My security credentials"),
        "{}",
        page.body
    );
    // X-Forwarded-Proto is believed from a trusted proxy only.
    let untrusted = with_kate(&["--console"]).await;
    let r = sign_in_with(
        &untrusted,
        "kate",
        "Kate-Pass-1",
        &[("X-Forwarded-Proto", "https")],
    );
    assert!(r.header("set-cookie").unwrap().starts_with("stsd-console="));
    let trusted = with_kate(&["--console", "--trusted-proxy", "127.0.0.0/8"]).await;
    let r = sign_in_with(
        &trusted,
        "kate",
        "Kate-Pass-1",
        &[("X-Forwarded-Proto", "https")],
    );
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("__Host-stsd-console=") && cookie.ends_with("; Secure"),
        "{cookie}"
    );
    let r = sign_in_with(&trusted, "kate", "Kate-Pass-1", &[]);
    assert!(r.header("set-cookie").unwrap().starts_with("stsd-console="));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_prompts_for_a_device_when_a_policy_expects_mfa() {
    let server = Server::start_with(Opts::args(&["--console"]));
    let root = iam(&server.endpoint(), &server.root);
    console_user(&root, "ivy", "Ivy-Pass-12", false).await;
    let c = set_cookie(&sign_in(&server, "ivy", "Ivy-Pass-12"));
    let page = get(&server, Some(&c));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h2 id=\"h-mfa\">"), "{}", page.body);
    assert!(!page.body.contains("id=\"mfa-required\""), "{}", page.body);
    // AWS's "manage your own credentials, MFA required" policy tests aws:MultiFactorAuthPresent.
    root.attach_user_policy()
        .user_name("ivy")
        .policy_arn("arn:aws:iam::aws:policy/StsdSelfManageCredentialsWithMFA")
        .send()
        .await
        .unwrap();
    let page = get(&server, Some(&c));
    assert!(
        page.body.contains("id=\"mfa-required\"")
            && page
                .body
                .contains("Your account requires multi-factor authentication"),
        "{}",
        page.body
    );
}
