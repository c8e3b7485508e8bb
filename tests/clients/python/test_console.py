"""The web console (`stsd serve --console`) over plain HTTP: sign-in with password then an MFA code computed
by pyotp, the MFA state reaching policy evaluation (AWS's MFA example policy), the MFA failure path, and
a form without its CSRF token refused. Browser (WebDriver) tests are a later step."""

import http.client
import re
import urllib.parse

import pytest

from stsd_support import (
    SELF_SERVICE_MFA_POLICY,
    Creds,
    PrivateServer,
    create_mfa_user,
    totp_code,
    totp_step,
    wrong_code,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = PrivateServer(tmp_path_factory.mktemp("console") / "data", "--console").start()
    yield s
    assert s.stop() == 0


def request(server, method, path, form=None, cookie=None, headers=None):
    """One request without following redirects: (status, headers with lower-case names, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    h = dict(headers or {})
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        h["Content-Type"] = "application/x-www-form-urlencoded"
    if cookie:
        h["Cookie"] = f"stsd-console={cookie}"
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
    conn.close()
    return out


def new_cookie(headers):
    m = re.match(r"stsd-console=([A-Za-z0-9_-]+); Path=/; HttpOnly; SameSite=Strict$", headers["set-cookie"])
    assert m, headers["set-cookie"]
    return m.group(1)


def csrf_of(body):
    m = re.search(r'name="csrf" value="([^"]+)"', body)
    assert m, body
    return m.group(1)


def test_sign_in_with_mfa(server):
    iam = server.client("iam")
    m = create_mfa_user(iam, self_service=False)
    iam.attach_user_policy(UserName=m.name, PolicyArn=SELF_SERVICE_MFA_POLICY)
    iam.create_login_profile(UserName=m.name, Password="Correct-Horse-7")
    signin = {"account": server.account, "user": m.name, "password": "Correct-Horse-7"}

    status, headers, _ = request(server, "POST", "/console/signin", signin)
    assert status == 303
    pending = new_cookie(headers)
    status, _, body = request(server, "GET", "/console/", cookie=pending)
    assert "MFA code" in body and m.serial in body and "Access keys" not in body
    token = csrf_of(body)

    # Without the CSRF token: refused, and the code is not consumed.
    code = totp_code(m.seed, m.step + 1)
    status, _, _ = request(server, "POST", "/console/mfa", {"serial": m.serial, "code": code}, cookie=pending)
    assert status == 403
    # A wrong code: the MFA page again, with a message; nothing is unlocked.
    status, _, body = request(
        server, "POST", "/console/mfa",
        {"csrf": token, "serial": m.serial, "code": wrong_code(m.seed, m.step + 1)}, cookie=pending,
    )
    assert "The MFA code is not valid" in body and "Access keys" not in body
    status, headers, _ = request(
        server, "POST", "/console/mfa", {"csrf": token, "serial": m.serial, "code": code}, cookie=pending
    )
    assert status == 303
    cookie = new_cookie(headers)
    assert cookie != pending
    status, _, body = request(server, "GET", "/console/", cookie=pending)
    assert "Sign in" in body, "the cookie from before the MFA step is dead"

    # Signed in with MFA: AWS's MFA example policy lets the user see its devices and keys.
    status, _, body = request(server, "GET", "/console/", cookie=cookie)
    assert "My security credentials" in body
    assert "<dt>MFA at sign-in</dt><dd>yes</dd>" in body
    assert m.serial in body and m.creds.access_key_id in body
    assert "explicit deny" not in body

    # Session credentials from the console carry the sign-in's MFA, as GetSessionToken with a code
    # would: the MFA example policy lets them use IAM.
    status, headers, body = request(server, "POST", "/console/session", {"csrf": csrf_of(body)}, cookie=cookie)
    assert status == 200 and headers["cache-control"] == "no-store"
    assert "issued with the MFA of your sign-in" in body
    exports = dict(re.findall(r"export (AWS_[A-Z_]+)=([^\n<]+)", body))
    creds = Creds(exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"], exports["AWS_SESSION_TOKEN"])
    who = server.client("sts", creds).get_caller_identity()
    assert who["Arn"].endswith(f":user/{m.name}")
    keys = server.client("iam", creds).list_access_keys()["AccessKeyMetadata"]
    assert m.creds.access_key_id in [k["AccessKeyId"] for k in keys]


def test_sign_in_without_mfa_device_is_denied_by_the_mfa_policy(server):
    """Without an MFA device the sign-in completes with the password alone, so AWS's example policy's
    DenyAllExceptListedIfNoMFA denies listing access keys (aws:MultiFactorAuthPresent is false)."""
    iam = server.client("iam")
    m = create_mfa_user(iam, enable=False, self_service=False)
    iam.attach_user_policy(UserName=m.name, PolicyArn=SELF_SERVICE_MFA_POLICY)
    iam.create_login_profile(UserName=m.name, Password="Correct-Horse-7")
    status, headers, _ = request(
        server, "POST", "/console/signin",
        {"account": server.account, "user": m.name, "password": "Correct-Horse-7"},
    )
    assert status == 303
    status, _, body = request(server, "GET", "/console/", cookie=new_cookie(headers))
    assert "<dt>MFA at sign-in</dt><dd>no</dd>" in body
    assert (
        f"is not authorized to perform: iam:ListAccessKeys on resource: user {m.name} "
        f"with an explicit deny in an identity-based policy"
    ) in body


def test_root_sign_in_and_cross_site_refusal(server, tmp_path):
    import subprocess

    from stsd_support import required_env

    p = subprocess.run(
        [required_env("STSD_BIN"), "admin", "--data-dir", str(server.data_dir), "root", "password"],
        input="Root console pw 1\n", capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    form = {"account": server.account, "root": "on", "password": "Root console pw 1"}
    status, headers, body = request(
        server, "POST", "/console/signin", form, headers={"Origin": "https://elsewhere.example"}
    )
    assert status == 403 and "set-cookie" not in headers
    status, headers, _ = request(server, "POST", "/console/signin", form)
    assert status == 303
    status, _, body = request(server, "GET", "/console/", cookie=new_cookie(headers))
    assert f"arn:aws:iam::{server.account}:root" in body
    status, _, body = request(server, "POST", "/console/signin", dict(form, password="Root console pw 2"))
    assert status == 401


def test_root_assigns_its_own_mfa_device_and_gets_a_session(server):
    """The root assigns a virtual MFA device from the page (what `stsd admin mfa enroll --root` does);
    the next sign-in asks for its code; session credentials for the root last at most one hour."""
    import subprocess
    import time

    from stsd_support import required_env

    p = subprocess.run(
        [required_env("STSD_BIN"), "admin", "--data-dir", str(server.data_dir), "root", "password"],
        input="Root console pw 3\n", capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    form = {"account": server.account, "root": "on", "password": "Root console pw 3"}
    status, headers, _ = request(server, "POST", "/console/signin", form)
    assert status == 303
    cookie = new_cookie(headers)
    status, _, body = request(server, "GET", "/console/", cookie=cookie)
    assert "Assign MFA device" in body
    token = csrf_of(body)
    name = f"root-{int(time.time())}"
    status, _, body = request(server, "POST", "/console/mfa/create", {"csrf": token, "name": name}, cookie=cookie)
    assert status == 200, body
    seed = re.search(r"Secret key: <code>([A-Z2-7]+)</code>", body).group(1)
    serial = re.search(r'name="serial" value="([^"]+)"', body).group(1)
    step = totp_step()
    status, _, body = request(
        server, "POST", "/console/mfa/enable",
        {"csrf": token, "serial": serial, "code1": totp_code(seed, step - 1), "code2": totp_code(seed, step)},
        cookie=cookie,
    )
    assert status == 303, body
    status, _, body = request(server, "GET", "/console/", cookie=cookie)
    assert serial in body
    # Root session credentials: one hour at most, as GetSessionToken with root keys.
    status, _, body = request(server, "POST", "/console/session", {"csrf": token, "duration": "7200"}, cookie=cookie)
    assert status == 200 and "export AWS_SESSION_TOKEN=" in body, body
    exports = dict(re.findall(r"export (AWS_[A-Z_]+)=([^\n<]+)", body))
    creds = Creds(exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"], exports["AWS_SESSION_TOKEN"])
    assert server.client("sts", creds).get_caller_identity()["Arn"] == f"arn:aws:iam::{server.account}:root"
    expires = re.search(r'<time datetime="([^"]+)"', body).group(1)
    import datetime

    left = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) - datetime.datetime.now(datetime.timezone.utc)
    assert left.total_seconds() <= 3600 + 5, expires
    # The next sign-in asks for the device's code.
    status, headers, _ = request(server, "POST", "/console/signin", form)
    assert status == 303
    status, _, body = request(server, "GET", "/console/", cookie=new_cookie(headers))
    assert "MFA code" in body and serial in body
