"""The authorizer behind REAL nginx (`auth_request`) and REAL Caddy (`forward_auth`), configured with the exact
snippets of README.md's "Protect your own API with stsd" (only ports and the host name substituted), in front of
a small upstream that echoes the identity headers; called with `awscurl` and botocore-signed requests."""

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from stsd_support import (
    Creds,
    PrivateServer,
    create_iam_user,
    create_mfa_user,
    free_port,
    http_request,
    totp_code,
)

REPO = pathlib.Path(__file__).resolve().parents[3]
REGION = "us-east-1"

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:orders/prod/GET/orders/*"},
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:*:*:orders/prod/POST/orders/*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        },
        {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:orders/prod/GET/orders/secret"},
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:*:*:orders/prod/GET/lan/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
        },
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:*:*:orders/prod/GET/office/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        },
    ],
}


def readme_block(lang):
    """The first ```{lang} block of the README's authorizer section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Protect your own API with stsd", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```" + re.escape(lang) + r"\n(.*?)```", section, re.S)
    assert m, f"no {lang} block in the README section"
    return m.group(1)


class Echo(BaseHTTPRequestHandler):
    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-stsd-")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


def wait_port(port, proc, log, timeout=15):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"not listening on {port}:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authorizer")
    (tmp / "stsd.toml").write_text(
        '[authz]\ntrusted_proxies = ["127.0.0.1/32", "::1/128"]\n'
        '[[authz.api]]\nid = "orders"\nstage = "prod"\nhosts = ["orders.internal", "127.0.0.1"]\n'
    )
    server = PrivateServer(tmp / "data", "--config", str(tmp / "stsd.toml")).start()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = upstream.server_address[1]
    procs = {}

    def subst(text, port):
        return (
            text.replace("127.0.0.1:8754", f"127.0.0.1:{server.port}")
            .replace("127.0.0.1:9000", f"127.0.0.1:{up_port}")
            .replace("8080", str(port))
            .replace("orders.internal", "127.0.0.1")
        )

    if shutil.which("nginx"):
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(
            f"daemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log;\nevents {{}}\n"
            f"http {{\n access_log off;\n client_body_temp_path {tmp}/nb;\n proxy_temp_path {tmp}/np;\n"
            f" fastcgi_temp_path {tmp}/nf;\n uwsgi_temp_path {tmp}/nu;\n scgi_temp_path {tmp}/ns;\n"
            + subst(readme_block("nginx"), port)
            + "}\n"
        )
        log = tmp / "nginx.log"
        p = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(tmp)], stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        wait_port(port, p, log)
        procs["nginx"] = (p, port)
    if shutil.which("caddy"):
        port = free_port()
        conf = tmp / "Caddyfile"
        conf.write_text("{\n\tadmin off\n\tauto_https off\n}\n" + subst(readme_block("caddyfile"), port))
        log = tmp / "caddy.log"
        env = dict(os.environ, HOME=str(tmp), XDG_DATA_HOME=str(tmp / "xd"), XDG_CONFIG_HOME=str(tmp / "xc"))
        p = subprocess.Popen(
            ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_port(port, p, log)
        procs["caddy"] = (p, port)

    iam = server.client("iam")
    name, _user, alice = create_iam_user(iam, self_service=False)
    iam.put_user_policy(UserName=name, PolicyName="api", PolicyDocument=json.dumps(POLICY))
    mfa = create_mfa_user(iam)
    iam.put_user_policy(UserName=mfa.name, PolicyName="api", PolicyDocument=json.dumps(POLICY))
    # One MFA session for the module (a TOTP step is accepted once).
    code = totp_code(mfa.seed, mfa.step + 1)
    sts = server.client("sts", mfa.creds)
    with_mfa = Creds.from_sts(sts.get_session_token(DurationSeconds=900, SerialNumber=mfa.serial, TokenCode=code)["Credentials"])
    yield {"server": server, "procs": procs, "alice": alice, "alice_name": name, "with_mfa": with_mfa}
    for p, _ in procs.values():
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    upstream.shutdown()
    server.stop()


PROXIES = ["nginx", "caddy"]


def proxy_url(stack, proxy, path):
    if proxy not in stack["procs"]:
        pytest.skip(f"{proxy} is not installed (apt-get install nginx-light caddy; .ci/run installs them)")
    return f"http://127.0.0.1:{stack['procs'][proxy][1]}{path}"


def signed(url, creds, method="GET", body=b"", headers=None, presign=False, unsigned_headers=None):
    headers = dict(headers or {})
    if body:
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, data=body or None, headers=headers)
    c = Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    (SigV4QueryAuth(c, "execute-api", REGION, expires=300) if presign else SigV4Auth(c, "execute-api", REGION)).add_auth(req)
    prepared = req.prepare()
    sent = dict(prepared.headers.items())
    sent.update(unsigned_headers or {})
    return http_request(prepared.url, data=body or None, headers=sent, method=method)


def session(stack, creds):
    sts = stack["server"].client("sts", creds)
    return Creds.from_sts(sts.get_session_token(DurationSeconds=900)["Credentials"])


@pytest.mark.parametrize("proxy", PROXIES)
def test_awscurl_with_long_term_keys_reaches_the_upstream_with_the_identity(stack, proxy):
    url = proxy_url(stack, proxy, "/orders/42?b=2&a=1")
    alice = stack["alice"]
    awscurl = shutil.which("awscurl") or str(pathlib.Path(os.sys.executable).parent / "awscurl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run(
        [awscurl, "--service", "execute-api", "--region", REGION,
         "--access_key", alice.access_key_id, "--secret_key", alice.secret_access_key, url],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    seen = json.loads(out.stdout)
    account = stack["server"].account
    assert seen["x-stsd-principal-arn"] == f"arn:aws:iam::{account}:user/{stack['alice_name']}"
    assert seen["x-stsd-account"] == account
    assert seen["x-stsd-access-key-id"] == alice.access_key_id
    assert seen["x-stsd-mfa-authenticated"] == "false"
    assert alice.secret_access_key not in out.stdout


@pytest.mark.parametrize("proxy", PROXIES)
def test_botocore_signed_denials_carry_api_gateway_bodies(stack, proxy):
    alice = stack["alice"]
    account = stack["server"].account
    r = signed(proxy_url(stack, proxy, "/orders/secret"), alice)
    assert r.status == 403
    assert r.header("x-amzn-errortype") == "AccessDeniedException"
    body = json.loads(r.body)
    assert body["Message"] == (
        f"User: arn:aws:iam::{account}:user/{stack['alice_name']} is not authorized to perform: execute-api:Invoke "
        f"on resource: arn:aws:execute-api:{REGION}:{account}:orders/prod/GET/orders/secret with an explicit deny"
    )
    # Not signed at all.
    r = http_request(proxy_url(stack, proxy, "/orders/1"))
    assert r.status == 403
    assert json.loads(r.body) == {"message": "Missing Authentication Token"}
    # Wrong secret.
    wrong = Creds(alice.access_key_id, "x" * 40)
    r = signed(proxy_url(stack, proxy, "/orders/1"), wrong)
    assert r.status == 403 and r.header("x-amzn-errortype") == "InvalidSignatureException"
    # A client-sent identity header never reaches the upstream.
    r = signed(proxy_url(stack, proxy, "/orders/1"), alice, headers={"X-Stsd-Principal-Arn": "arn:aws:iam::1:root"})
    assert r.status == 200
    assert json.loads(r.body)["x-stsd-principal-arn"].endswith(stack["alice_name"])


@pytest.mark.parametrize("proxy", PROXIES)
def test_sessions_with_and_without_mfa_and_an_mfa_required_policy(stack, proxy):
    plain = session(stack, stack["alice"])
    url = proxy_url(stack, proxy, "/orders/7")
    r = signed(url, plain)
    assert r.status == 200, r.body
    seen = json.loads(r.body)
    assert seen["x-stsd-mfa-authenticated"] == "false" and not seen.get("x-stsd-mfa-age")
    assert seen["x-stsd-session-expires"].endswith("Z")
    # MFA required for POST: refused without MFA...
    r = signed(url, plain, method="POST", body=b'{"qty": 1}')
    assert r.status == 403 and r.header("x-amzn-errortype") == "AccessDeniedException", r.body
    # ...allowed with it.
    with_mfa = stack["with_mfa"]
    r = signed(url, with_mfa, method="POST", body=b'{"qty": 1}')
    assert r.status == 200, r.body
    seen = json.loads(r.body)
    assert seen["x-stsd-mfa-authenticated"] == "true"
    assert int(seen["x-stsd-mfa-age"]) >= 0
    # Tampered token.
    t = plain.session_token
    bad = Creds(plain.access_key_id, plain.secret_access_key, t[:20] + ("A" if t[20] != "A" else "B") + t[21:])
    r = signed(url, bad)
    assert r.status == 403
    assert json.loads(r.body) == {"message": "The security token included in the request is invalid."}


@pytest.mark.parametrize("proxy", PROXIES)
def test_source_ip_through_the_trusted_proxy_and_forged_forwarded_for(stack, proxy):
    alice = stack["alice"]
    assert signed(proxy_url(stack, proxy, "/lan/printer"), alice).status == 200
    # The client claims an office address: the proxy reports the real one, so nothing changes.
    r = signed(proxy_url(stack, proxy, "/office/report"), alice, unsigned_headers={"X-Forwarded-For": "203.0.113.7"})
    assert r.status == 403 and r.header("x-amzn-errortype") == "AccessDeniedException"


@pytest.mark.parametrize("proxy", PROXIES)
def test_unsigned_payload_is_refused_and_presigned_urls_work(stack, proxy):
    alice = stack["alice"]
    url = proxy_url(stack, proxy, "/orders/9")
    req = AWSRequest(method="GET", url=url, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(alice.access_key_id, alice.secret_access_key), "execute-api", REGION).add_auth(req)
    p = req.prepare()
    r = http_request(p.url, headers=dict(p.headers.items()))
    assert r.status == 403 and r.header("x-amzn-errortype") == "InvalidSignatureException"
    r = signed(proxy_url(stack, proxy, "/orders/9?x=1"), alice, presign=True)
    assert r.status == 200, r.body


@pytest.mark.parametrize("proxy", PROXIES)
def test_role_sessions_are_authorized_by_role_and_session_policies(stack, proxy):
    """A role session is never treated as the root: the role's policies ∩ its session policies decide."""
    server = stack["server"]
    account = server.account
    iam = server.client("iam")
    role = f"api-role-{proxy}"
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:user/{stack['alice_name']}"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    sts = server.client("sts", stack["alice"])
    arn = f"arn:aws:iam::{account}:role/{role}"
    url = proxy_url(stack, proxy, "/orders/9")
    # No role policy yet: denied (a role session has no root powers).
    bare = Creds.from_sts(sts.assume_role(RoleArn=arn, RoleSessionName="bare")["Credentials"])
    r = signed(url, bare)
    assert r.status == 403 and r.header("x-amzn-errortype") == "AccessDeniedException", r.body
    iam.put_role_policy(RoleName=role, PolicyName="api", PolicyDocument=json.dumps(POLICY))
    full = Creds.from_sts(sts.assume_role(RoleArn=arn, RoleSessionName="full")["Credentials"])
    r = signed(url, full)
    assert r.status == 200, r.body
    assert json.loads(r.body)["x-stsd-principal-arn"] == f"arn:aws:sts::{account}:assumed-role/{role}/full"
    # A session policy narrows it.
    narrow = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:orders/prod/GET/lan/*"}
        ],
    }
    scoped = Creds.from_sts(
        sts.assume_role(RoleArn=arn, RoleSessionName="narrow", Policy=json.dumps(narrow))["Credentials"]
    )
    r = signed(url, scoped)
    assert r.status == 403, r.body
    iam.delete_role_policy(RoleName=role, PolicyName="api")
    iam.delete_role(RoleName=role)
