"""The web console in a real browser (issue 19): headless Chromium driven through Debian's chromedriver
(Selenium), against a private `stsd serve --console` of this module.

Covered: sign-in with password then an MFA code (pyotp), the forced password change
(PasswordResetRequired), enrolling a virtual MFA device from the page (secret read from the page, two
consecutive codes typed), an access key created in the page and used with boto3, then deactivated in the
page and refused, a password change then sign-in with the new password, sign-out (the old cookie is dead),
the idle and absolute session timeouts, the sign-in lock-out, a form posted without its CSRF token, and
`/console/admin/users` denied by policy / allowed for an administrator.

Elements are found by form action, field name and id (the contract the page templates keep), never by
visible text or layout. Screenshots of the main pages go to artifacts/screenshots/ (git-ignored);
scripts/console-screenshots copies some to docs/images/.

Needs chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`, done by .ci/run) and
selenium (requirements.txt). Without them the tests are skipped, except when CI is set: then they fail.

TOTP: a device enabled with the codes of steps (s-1, s) accepts the code of step s+1 at once (window of one
step), and each step's code once only, so every test that signs in with MFA has a device of its own and
no test waits for a step boundary except where it reuses a device.
"""

import http.client
import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from stsd_support import (
    LONG_TERM_KEY_RE,
    SECRET_RE,
    SELF_SERVICE_MFA_POLICY,
    SELF_SERVICE_POLICY,
    Creds,
    PrivateServer,
    create_iam_user,
    create_mfa_user,
    expect_client_error,
    make_client,
    png_info,
    required_env,
    seconds_left_in_step,
    totp_code,
    totp_step,
    wrong_code,
)

HERE = pathlib.Path(__file__).resolve().parent
SCREENSHOTS = HERE / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("STSD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("STSD_CHROMEDRIVER") or "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (390, 844)

MAX_FAILURES = 3  # --mfa-max-failures: failed sign-ins that lock the console sign-in
LOCKOUT = 4  # --mfa-lockout, seconds
IDLE = 3  # --console-idle-timeout of the timeout server
LIFETIME = 7  # --console-session-lifetime of the timeout server
PASSWORD = "Correct-Horse-7"
SIGN_IN_FAILED = "Your authentication information is incorrect. Please try again."


def unavailable(reason):
    """No browser here: a skip on a developer's machine, a failure in CI (a skip must not pass CI)."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        unavailable(f"selenium is not installed ({e}): tests/clients/run.sh installs requirements.txt")
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            unavailable(f"{what} not found at {path}: apt-get install -y chromium chromium-driver")
    # Selenium Manager must not fetch anything: the driver and the browser are given explicitly.
    os.environ["SE_OFFLINE"] = "true"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    opts.add_argument("--headless=new")
    opts.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    opts.add_argument("--disable-gpu")
    opts.add_argument("--disable-dev-shm-usage")
    opts.add_argument("--no-first-run")
    opts.add_argument("--password-store=basic")
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(SCREENSHOTS.parent / "chromedriver.log"))
    d = webdriver.Chrome(service=service, options=opts)
    d.set_page_load_timeout(30)
    d.set_window_size(*DESKTOP)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = PrivateServer(
        tmp_path_factory.mktemp("browser") / "data",
        "--console",
        "--mfa-max-failures", str(MAX_FAILURES),
        "--mfa-lockout", str(LOCKOUT),
    ).start()
    yield s
    assert s.stop() == 0


@pytest.fixture
def b(driver, server):
    """The browser with no cookie (each test signs in afresh), pointed at the module's server."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.set_window_size(*DESKTOP)
    return Browser(driver, server)


# ---------------------------------------------------------------- page helpers


class Browser:
    def __init__(self, driver, server):
        self.d = driver
        self.server = server

    def url(self, path):
        return self.server.endpoint + path

    def get(self, path):
        self.d.get(self.url(path))
        return self

    def css(self, selector):
        return self.d.find_element("css selector", selector)

    def all(self, selector):
        return self.d.find_elements("css selector", selector)

    def has(self, selector):
        return bool(self.all(selector))

    def text(self):
        return self.css("body").text

    def status(self):
        """The HTTP status of the page shown (Navigation Timing's responseStatus)."""
        return self.d.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : null;"
        )

    def fill(self, selector, value):
        e = self.css(selector)
        e.clear()
        e.send_keys(value)

    def submit(self, form_selector):
        """Clicks the form's submit button and waits for the next page."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.css("html")

        def replaced(_driver):
            # Selenium's staleness_of, plus the answer Chromium sometimes gives instead of "stale" for a
            # node of the document the navigation just replaced.
            try:
                old.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as e:
                if "does not belong to the document" in str(e):
                    return True
                raise

        self.css(f"{form_selector} button[type=submit]").click()
        WebDriverWait(self.d, 30).until(replaced)
        WebDriverWait(self.d, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        return self

    def shot(self, name):
        path = SCREENSHOTS / f"{name}.png"
        assert self.d.save_screenshot(str(path)), path
        png_info(path.read_bytes())
        return path

    def cookie(self):
        c = self.d.get_cookie("stsd-console")
        return c and c["value"]

    # pages (recognised by their forms, not by wording)
    def on_sign_in(self):
        return self.has("form[action='/console/signin'] input[name=password]")

    def on_mfa(self):
        return self.has("form[action='/console/mfa'] select[name=serial]")

    def on_password_change_only(self):
        return self.has("form[action='/console/password']") and not self.has("form[action='/console/keys']")

    def on_credentials(self):
        return self.has("form[action='/console/signout']") and self.has("form[action='/console/keys']")

    def alert(self):
        return " ".join(e.text for e in self.all("[role=alert]"))

    def sign_in(self, user, password, account=None):
        self.get("/console/")
        assert self.on_sign_in(), self.text()
        self.fill("form[action='/console/signin'] input[name=account]", account or self.server.account)
        self.fill("form[action='/console/signin'] input[name=user]", user)
        self.fill("form[action='/console/signin'] input[name=password]", password)
        return self.submit("form[action='/console/signin']")

    def mfa(self, serial, code):
        assert self.on_mfa(), self.text()
        from selenium.webdriver.support.ui import Select

        Select(self.css("form[action='/console/mfa'] select[name=serial]")).select_by_value(serial)
        self.fill("form[action='/console/mfa'] input[name=code]", code)
        return self.submit("form[action='/console/mfa']")

    def sign_out(self):
        return self.submit("form[action='/console/signout']")

    def key_form(self, key_id, op):
        return (
            f"form[action='/console/keys']:has(input[name=id][value='{key_id}'])"
            f":has(input[name=op][value='{op}'])"
        )


def user_with_password(server, policy=SELF_SERVICE_POLICY, reset=False, key=False):
    iam = server.client("iam")
    name, _user, creds = create_iam_user(iam, key=key, self_service=False)
    if policy:
        iam.attach_user_policy(UserName=name, PolicyArn=policy)
    iam.create_login_profile(UserName=name, Password=PASSWORD, PasswordResetRequired=reset)
    return name, creds


def mfa_user_with_password(server):
    iam = server.client("iam")
    m = create_mfa_user(iam, self_service=False)
    iam.attach_user_policy(UserName=m.name, PolicyArn=SELF_SERVICE_MFA_POLICY)
    iam.create_login_profile(UserName=m.name, Password=PASSWORD)
    return m


def raw_get(server, path, cookie):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", path, headers={"Cookie": f"stsd-console={cookie}"})
    r = conn.getresponse()
    out = r.status, r.read().decode()
    conn.close()
    return out


def wait_for_next_step(after_step):
    """Sleeps until the TOTP step after `after_step` has begun (for a second use of one device)."""
    while totp_step() <= after_step:
        time.sleep(min(seconds_left_in_step() + 0.1, 1.0))


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def mfa_user(server):
    """A user with an enabled virtual device, shared by the first test (sign-in with MFA) and the last (the
    device used again in a later step), so the module's other tests run while its clock moves on."""
    m = mfa_user_with_password(server)
    return {"user": m, "used_step": None}


def test_sign_in_with_password_and_mfa(b, server, mfa_user):
    m = mfa_user["user"]
    b.get("/console/")
    assert b.status() == 200 and b.on_sign_in()
    b.shot("signin")

    b.sign_in(m.name, PASSWORD)
    assert b.on_mfa() and not b.on_credentials(), b.text()
    options = [o.get_attribute("value") for o in b.all("form[action='/console/mfa'] select[name=serial] option")]
    assert options == [m.serial]
    b.shot("mfa-prompt")

    # A wrong code: the MFA page again, with a message; nothing unlocked.
    b.mfa(m.serial, wrong_code(m.seed, m.step + 1))
    assert b.on_mfa() and not b.on_credentials() and b.alert(), b.text()
    b.mfa(m.serial, totp_code(m.seed, m.step + 1))
    mfa_user["used_step"] = m.step + 1
    assert b.status() == 200 and b.on_credentials(), b.alert() or b.text()
    page = b.d.page_source
    assert m.serial in page and m.creds.access_key_id in page
    assert "is not authorized" not in b.text(), "the MFA sign-in must satisfy the MFA policy"
    b.shot("security-credentials")
    b.d.set_window_size(*PHONE)
    b.d.refresh()
    assert b.on_credentials()
    assert b.d.execute_script("return window.innerWidth") <= PHONE[0]
    b.shot("security-credentials-phone")
    b.d.set_window_size(*DESKTOP)


def test_forced_password_change(b, server):
    name, _ = user_with_password(server, reset=True)
    b.sign_in(name, PASSWORD)
    assert b.on_password_change_only(), b.text()
    # Nothing else is reachable before the change.
    assert not b.has("form[action='/console/keys']") and not b.has("form[action='/console/mfa/create']")
    b.fill("form[action='/console/password'] input[name=old]", PASSWORD)
    b.fill("form[action='/console/password'] input[name=new]", "Brand-New-Horse-8")
    b.fill("form[action='/console/password'] input[name=confirm]", "Brand-New-Horse-8")
    b.submit("form[action='/console/password']")
    assert b.on_credentials(), b.text()
    b.sign_out()
    b.sign_in(name, "Brand-New-Horse-8")
    assert b.on_credentials(), "no second forced change after the password was changed"
    login = server.client("iam").get_login_profile(UserName=name)["LoginProfile"]
    assert not login.get("PasswordResetRequired")


def test_enrol_virtual_mfa_device_in_the_page(b, server):
    name, _ = user_with_password(server, policy=SELF_SERVICE_POLICY)
    b.sign_in(name, PASSWORD)
    assert b.on_credentials(), b.text()
    b.fill("form[action='/console/mfa/create'] input[name=name]", name)
    b.submit("form[action='/console/mfa/create']")
    assert b.status() == 200 and b.has("form[action='/console/mfa/enable']"), b.text()

    qr = b.css("img[src^='data:image/png;base64,']")
    assert qr.size["width"] >= 128 and qr.size["height"] >= 128, qr.size
    import base64

    png_info(base64.b64decode(qr.get_attribute("src").split(",", 1)[1]))
    seeds = [e.text.strip() for e in b.all("code") if re.fullmatch(r"[A-Z2-7]{32,}=*", e.text.strip())]
    assert len(seeds) == 1, [e.text for e in b.all("code")]
    seed = seeds[0]
    serial = b.css("form[action='/console/mfa/enable'] input[name=serial]").get_attribute("value")
    assert serial == f"arn:aws:iam::{server.account}:mfa/{name}"
    b.shot("mfa-enrolment")

    # Two consecutive codes, as the authenticator shows them (previous and current step).
    if seconds_left_in_step() < 3:
        time.sleep(seconds_left_in_step() + 0.2)
    step = totp_step()
    b.fill("form[action='/console/mfa/enable'] input[name=code1]", totp_code(seed, step - 1))
    b.fill("form[action='/console/mfa/enable'] input[name=code2]", totp_code(seed, step))
    b.submit("form[action='/console/mfa/enable']")
    assert b.on_credentials() and serial in b.d.page_source, b.alert() or b.text()
    devices = server.client("iam").list_mfa_devices(UserName=name)["MFADevices"]
    assert [d["SerialNumber"] for d in devices] == [serial]

    # The next sign-in asks for the new device's code.
    b.sign_out()
    b.sign_in(name, PASSWORD)
    b.mfa(serial, totp_code(seed, step + 1))
    assert b.on_credentials(), b.alert() or b.text()


def test_access_key_created_used_and_deactivated_in_the_page(b, server):
    name, _ = user_with_password(server, policy=SELF_SERVICE_POLICY)
    b.sign_in(name, PASSWORD)
    assert b.on_credentials()
    assert not b.has("form[action='/console/keys'] input[name=id]"), "a new user has no key"
    b.submit("form[action='/console/keys']:has(input[name=op][value=create])")
    assert b.status() == 200
    codes = [e.text.strip() for e in b.all("code")]
    key_ids = [c for c in codes if LONG_TERM_KEY_RE.match(c)]
    secrets_ = [c for c in codes if SECRET_RE.match(c)]
    assert len(key_ids) == 1 and len(secrets_) == 1, codes
    creds = Creds(key_ids[0], secrets_[0])
    b.shot("new-access-key")

    ident = make_client("sts", server.endpoint, creds).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{server.account}:user/{name}"

    b.get("/console/")
    assert creds.access_key_id in b.d.page_source
    assert creds.secret_access_key not in b.d.page_source, "the secret is shown once only"
    b.submit(b.key_form(creds.access_key_id, "deactivate"))
    assert b.on_credentials() and b.has(b.key_form(creds.access_key_id, "activate")), b.alert() or b.text()
    err = expect_client_error(make_client("sts", server.endpoint, creds).get_caller_identity)
    assert err.response["Error"]["Code"] == "InvalidClientTokenId", err.response
    keys = server.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(creds.access_key_id, "Inactive")]


def test_change_password_then_sign_in_with_the_new_one(b, server):
    name, _ = user_with_password(server)
    b.sign_in(name, PASSWORD)
    assert b.on_credentials()
    # Mismatched confirmation: refused in the page, nothing changed.
    b.fill("form[action='/console/password'] input[name=old]", PASSWORD)
    b.fill("form[action='/console/password'] input[name=new]", "Other-Horse-9a")
    b.fill("form[action='/console/password'] input[name=confirm]", "Other-Horse-9b")
    b.submit("form[action='/console/password']")
    assert b.alert(), b.text()
    b.fill("form[action='/console/password'] input[name=old]", PASSWORD)
    b.fill("form[action='/console/password'] input[name=new]", "Other-Horse-9a")
    b.fill("form[action='/console/password'] input[name=confirm]", "Other-Horse-9a")
    b.submit("form[action='/console/password']")
    assert b.on_credentials() and not b.alert(), b.alert()
    b.sign_out()
    b.sign_in(name, PASSWORD)
    assert b.on_sign_in() and b.status() == 401 and SIGN_IN_FAILED in b.alert()
    b.sign_in(name, "Other-Horse-9a")
    assert b.on_credentials(), b.alert() or b.text()


def test_sign_out_ends_the_session(b, server):
    name, _ = user_with_password(server)
    b.sign_in(name, PASSWORD)
    assert b.on_credentials()
    old = b.cookie()
    assert old, "signed in without a session cookie?"
    b.sign_out()
    assert b.on_sign_in(), b.text()
    assert not b.cookie(), "sign-out clears the cookie"
    # The old cookie, put back, no longer works: in the browser and over plain HTTP.
    b.d.add_cookie({"name": "stsd-console", "value": old, "path": "/"})
    b.get("/console/")
    assert b.on_sign_in() and not b.on_credentials()
    status, body = raw_get(server, "/console/", old)
    assert status == 200 and "action=\"/console/keys\"" not in body and "/console/signin" in body


def test_sign_in_lockout_after_failed_passwords(b, server):
    name, _ = user_with_password(server)
    for _ in range(MAX_FAILURES):
        b.sign_in(name, "Wrong-Horse-0")
        assert b.status() == 401 and SIGN_IN_FAILED in b.alert()
    # Locked: the right password is refused too, with the same words (nothing tells it is a lock).
    locked_at = time.monotonic()
    b.sign_in(name, PASSWORD)
    assert b.on_sign_in() and b.status() == 401 and SIGN_IN_FAILED in b.alert()
    # Another user is not affected.
    other, _ = user_with_password(server)
    b.sign_in(other, PASSWORD)
    assert b.on_credentials()
    b.sign_out()
    time.sleep(max(0.0, LOCKOUT + 1.2 - (time.monotonic() - locked_at)))
    b.sign_in(name, PASSWORD)
    assert b.on_credentials(), "the lock ends after --mfa-lockout seconds"


def test_form_without_csrf_token_is_refused(b, server):
    name, _ = user_with_password(server)
    b.sign_in(name, PASSWORD)
    assert b.on_credentials()
    form = "form[action='/console/keys']:has(input[name=op][value=create])"
    removed = b.d.execute_script(
        "const f = document.querySelector(arguments[0]); const c = f.querySelector('input[name=csrf]');"
        "if (!c) return false; c.remove(); return true;",
        form,
    )
    assert removed, "the form has a hidden csrf field"
    b.submit(form)
    assert b.status() == 403, b.text()
    assert "csrf" in b.text().lower(), b.text()
    assert server.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"] == [], "no key was created"
    # A token of another session is refused too.
    b.get("/console/")
    b.d.execute_script(
        "document.querySelector(arguments[0]).querySelector('input[name=csrf]').value = arguments[1];",
        form,
        "x" * 43,
    )
    b.submit(form)
    assert b.status() == 403
    assert server.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    # With the token, it works (the session is intact).
    b.get("/console/")
    b.submit(form)
    assert b.status() == 200 and len(server.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"]) == 1


def test_admin_users_page_denied_by_policy_and_allowed_for_an_administrator(b, server):
    """Written to the admin pages' contract (`/console/admin/users`: 403 with AWS's AccessDenied text in a
    role="alert" element without iam:ListUsers; the users listed with it)."""
    plain, _ = user_with_password(server)
    b.sign_in(plain, PASSWORD)
    assert b.on_credentials()
    b.get("/console/admin/users")
    assert b.status() == 403, (b.status(), b.text())
    assert "is not authorized to perform: iam:ListUsers" in b.alert(), b.text()
    assert f"user/{plain}" in b.alert()

    iam = server.client("iam")
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName=f"Admin-{plain}", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    admin, _ = user_with_password(server, policy=arn)
    b.sign_out()
    b.sign_in(admin, PASSWORD)
    assert b.on_credentials()
    b.get("/console/admin/users")
    assert b.status() == 200, (b.status(), b.text())
    assert not b.alert(), b.alert()
    text = b.text()
    assert plain in text and admin in text, text
    b.shot("admin-users")


# ---------------------------------------------------------------- session timeouts (a server of their own)


@pytest.fixture(scope="module")
def short_server(tmp_path_factory):
    s = PrivateServer(
        tmp_path_factory.mktemp("browser-timeouts") / "data",
        "--console",
        "--console-idle-timeout", str(IDLE),
        "--console-session-lifetime", str(LIFETIME),
    ).start()
    yield s
    assert s.stop() == 0


def test_idle_and_absolute_session_timeouts(driver, short_server):
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    b = Browser(driver, short_server)
    name, _ = user_with_password(short_server)

    # Idle: requests less than IDLE apart keep the session; IDLE without one ends it.
    b.sign_in(name, PASSWORD)
    assert b.on_credentials()
    time.sleep(IDLE - 1.5)
    b.get("/console/")
    assert b.on_credentials(), "activity within the idle timeout keeps the session"
    time.sleep(IDLE + 1)
    b.fill("form[action='/console/password'] input[name=old]", PASSWORD)
    b.fill("form[action='/console/password'] input[name=new]", "Never-Set-Horse-1")
    b.fill("form[action='/console/password'] input[name=confirm]", "Never-Set-Horse-1")
    b.submit("form[action='/console/password']")
    assert b.status() == 403 and not b.on_credentials(), b.text()
    b.get("/console/")
    assert b.on_sign_in(), "the idle session has ended"

    # Absolute: activity every IDLE/2 seconds does not keep a session past LIFETIME.
    b.sign_in(name, PASSWORD)  # the password was not changed above
    signed_in = time.monotonic()
    assert b.on_credentials()
    while time.monotonic() - signed_in < LIFETIME - 1:
        time.sleep(IDLE / 2)
        b.get("/console/")
        if time.monotonic() - signed_in < LIFETIME - 1.2:  # the server counts whole seconds
            assert b.on_credentials(), f"signed out {time.monotonic() - signed_in:.1f}s after sign-in"
    time.sleep(max(0.0, LIFETIME + 1 - (time.monotonic() - signed_in)))
    b.get("/console/")
    assert b.on_sign_in(), "the session ends LIFETIME seconds after sign-in"


def test_bad_session_timeouts_are_refused_at_start(tmp_path):
    for args, words in [
        (["--console-idle-timeout", "0"], "must be more than 0"),
        (["--console-session-lifetime=-1"], "must be more than 0"),
        (["--console-idle-timeout", "100", "--console-session-lifetime", "50"], "must not exceed"),
    ]:
        p = subprocess.run(
            [required_env("STSD_BIN"), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
             "--console", *args],
            capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("STSD_")},
        )
        assert p.returncode != 0 and words in p.stderr, (args, p.returncode, p.stderr)


def test_mfa_device_used_again_in_a_later_step(b, server, mfa_user):
    """Last in the module, so its step has usually moved on already: the authenticator's current code signs
    in again; the same code a second time is refused (replay), the next step's is not needed."""
    m, used = mfa_user["user"], mfa_user["used_step"]
    assert used is not None, "runs after test_sign_in_with_password_and_mfa"
    wait_for_next_step(used)
    if seconds_left_in_step() < 3:
        time.sleep(seconds_left_in_step() + 0.2)
    code = totp_code(m.seed, totp_step())
    b.sign_in(m.name, PASSWORD)
    b.mfa(m.serial, code)
    assert b.on_credentials(), b.alert() or b.text()
    b.sign_out()
    b.sign_in(m.name, PASSWORD)
    b.mfa(m.serial, code)
    assert b.on_mfa() and not b.on_credentials() and b.alert(), "a used code must be refused"
