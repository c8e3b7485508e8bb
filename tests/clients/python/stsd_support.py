"""Helpers for the stsd client-conformance suites (boto3 / botocore / awscli).

The server is started by tests/clients/run.sh, which exports:
  STSD_ENDPOINT                  http://127.0.0.1:PORT
  STSD_ROOT_ACCESS_KEY_ID        the root long-term key id (AKIA...)
  STSD_ROOT_SECRET_ACCESS_KEY    its secret
  STSD_BIN, STSD_DATA_DIR        the binary under test and its data dir

Expected values come from shared/reference/aws-sts-wire.md (the wire contract), not from the server.
"""

import base64
import datetime
import math
import os
import re
import secrets
import time
import unittest.mock
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Optional

import boto3
import botocore.compat
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = "us-east-1"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
NS = {"s": STS_NS}
B32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

# Identity formats (reference §4).
LONG_TERM_KEY_RE = re.compile(r"^AKIA[A-Z2-7]{16}$")
SESSION_KEY_RE = re.compile(r"^ASIA[A-Z2-7]{16}$")
USER_ID_RE = re.compile(r"^AIDA[A-Z2-7]{17}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9+/]{40}$")
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
REQUEST_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WIRE_TIMESTAMP_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")

# Exact messages (reference §3.2).
MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
MSG_BAD_TOKEN = "The security token included in the request is invalid"
MSG_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
MSG_SESSION_CREDS_GST = "Cannot call GetSessionToken with session credentials"
MSG_MFA_NO_DEVICE = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)

# Expiration tolerance, seconds. Expiration has whole seconds, so it may be up to 1 s before issue+duration.
EXPIRY_SLACK = 3


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    session_token: Optional[str] = None

    @classmethod
    def from_sts(cls, credentials):
        return cls(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])


def required_env(name):
    value = os.environ.get(name)
    if not value:
        pytest.exit(
            f"{name} is not set: run `tests/clients/run.sh <path-to-stsd>` or see tests/clients/README.md",
            returncode=2,
        )
    return value


def client_config(validate=True):
    # One attempt only: a test must see the server's first answer, and a retry would hide or double effects.
    # (botocore's `max_attempts` counts retries, not attempts: max_attempts=1 would allow one retry on 5xx.)
    return Config(
        region_name=REGION,
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=30,
        parameter_validation=validate,
    )


def make_client(service, endpoint, creds, validate=True):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        config=client_config(validate),
    )


def account_from_id(key_or_unique_id):
    """Account id encoded in an AKIA/ASIA/AIDA id (reference §4): base32-decode the chars after the 4-char
    prefix, take the first 6 bytes big-endian as x, account = (x & 0x7fffffffff80) >> 7."""
    raw = base64.b32decode(key_or_unique_id[4:20])
    x = int.from_bytes(raw[:6], "big")
    return "%012d" % ((x & 0x7FFFFFFFFF80) >> 7)


def random_key_id(prefix="AKIA", account=None):
    """A well-formed key id (optionally encoding `account`) that the server has never issued."""
    if account is None:
        return prefix + "".join(secrets.choice(B32_ALPHABET) for _ in range(16))
    raw = bytearray(secrets.token_bytes(10))
    x = ((int(account) & 0xFFFFFFFFFF) << 7) | (raw[5] & 0x7F)
    raw[:6] = x.to_bytes(6, "big")
    return prefix + base64.b32encode(bytes(raw)).decode()[:16]


def random_secret():
    return base64.b64encode(secrets.token_bytes(30)).decode()


def utilization_for(size):
    """ceil(size * 100 / 4096), in integers."""
    return -(-size * 100 // 4096)


def timed(fn, *args, **kwargs):
    """Runs fn and returns (result, t_before, t_after) in epoch seconds."""
    t0 = time.time()
    result = fn(*args, **kwargs)
    t1 = time.time()
    return result, t0, t1


def assert_expiration(expiration, t0, t1, duration):
    exp = expiration.timestamp()
    low = math.floor(t0) + duration - EXPIRY_SLACK
    high = math.ceil(t1) + duration + EXPIRY_SLACK
    assert low <= exp <= high, (
        f"Expiration {expiration.isoformat()} is not issue time + {duration}s "
        f"(expected epoch in [{low}, {high}], got {exp})"
    )


def assert_session_token_response(resp):
    """Shape checks shared by every successful GetSessionToken answer."""
    c = resp["Credentials"]
    assert SESSION_KEY_RE.match(c["AccessKeyId"]), c["AccessKeyId"]
    assert SECRET_RE.match(c["SecretAccessKey"]), c["SecretAccessKey"]
    assert isinstance(c["SessionToken"], str) and c["SessionToken"], "SessionToken is empty"
    size = len(c["SessionToken"].encode())
    assert "SessionTokenSize" in resp, f"SessionTokenSize missing from {sorted(resp)}"
    assert "SessionTokenUtilization" in resp, f"SessionTokenUtilization missing from {sorted(resp)}"
    assert resp["SessionTokenSize"] == size
    assert resp["SessionTokenUtilization"] == utilization_for(size), (
        f"SessionTokenUtilization {resp['SessionTokenUtilization']} != ceil({size}*100/4096)"
    )
    return c


def expect_client_error(fn, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        fn(*args, **kwargs)
    return info.value


def assert_error(err, status, code, message):
    """Checks a botocore ClientError against the exact wire contract."""
    e = err.response.get("Error", {})
    meta = err.response.get("ResponseMetadata", {})
    got = (meta.get("HTTPStatusCode"), e.get("Code"), e.get("Message"))
    assert got == (status, code, message), f"expected {(status, code, message)!r}, got {got!r}"
    assert e.get("Type") == "Sender", f"Error/Type should be Sender for a {status}, got {e.get('Type')!r}"
    assert REQUEST_ID_RE.match(meta.get("RequestId") or ""), f"bad RequestId {meta.get('RequestId')!r}"


# ---------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-cased names
    body: bytes

    def header(self, name):
        return self.headers.get(name.lower())

    def xml(self):
        return ET.fromstring(self.body)


def http_request(url, data=None, headers=None, method=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return RawResponse(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def signed_post(endpoint, params, creds, region=REGION, service="sts", clock_offset=0):
    """A POST signed with botocore's own SigV4 signer and sent with urllib, so the raw answer can be inspected.
    clock_offset (seconds) moves the signing time (X-Amz-Date) away from now."""
    body = urllib.parse.urlencode(params)
    req = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    signer = SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), service, region)
    if clock_offset:
        shifted = botocore.compat.get_current_datetime() + datetime.timedelta(seconds=clock_offset)
        with unittest.mock.patch("botocore.auth.get_current_datetime", lambda *a, **k: shifted):
            signer.add_auth(req)
    else:
        signer.add_auth(req)
    prepared = req.prepare()
    return http_request(prepared.url, data=body.encode(), headers=dict(prepared.headers.items()), method="POST")


def error_fields(raw):
    """(Code, Message) of an awsQuery ErrorResponse body."""
    root = raw.xml()
    assert root.tag == f"{{{STS_NS}}}ErrorResponse", raw.body
    return root.findtext("s:Error/s:Code", namespaces=NS), root.findtext("s:Error/s:Message", namespaces=NS)


def flip_char(s, index):
    c = s[index]
    repl = "A" if c != "A" else "B"
    if c.isdigit():
        repl = "0" if c != "0" else "1"
    return s[:index] + repl + s[index + 1 :]


# ---------------------------------------------------------------- IAM and MFA

IAM_USER_ARN_RE = re.compile(r"^arn:aws:iam::[0-9]{12}:user/")
MSG_IAM_INVALID_AUTH_CODE = "Authentication code for device is not valid."
MSG_MFA_INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code. "
MSG_MFA_REQUIRED_PREFIX = "MultiFactorAuthentication required"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOTP_STEP = 30


def unique_name(prefix="stsd-test"):
    return f"{prefix}-{secrets.token_hex(4)}"


def iam_denied_message(account, caller_path_and_name, action, resource):
    """IAM's AccessDenied text for a user whose policies do not allow the action (caller ARN keeps its path).
    `resource` as IAM shows it: `user NAME` for actions on a user, the ARN otherwise (policy reference 6.2)."""
    return (
        f"User: arn:aws:iam::{account}:user{caller_path_and_name} is not authorized to perform: "
        f"iam:{action} on resource: {resource} because no identity-based policy allows the iam:{action} action"
    )


def iam_validation_message(member, rule):
    """IAM's validation grammar: like STS's, but the value is omitted (reference §3.3)."""
    return f"1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must {rule}"


def assert_error_code(err, status, code):
    """Like assert_error, for answers whose exact message the reference does not pin."""
    e = err.response.get("Error", {})
    meta = err.response.get("ResponseMetadata", {})
    got = (meta.get("HTTPStatusCode"), e.get("Code"))
    assert got == (status, code), f"expected {(status, code)!r}, got {got!r} ({e.get('Message')!r})"
    assert e.get("Message"), f"empty Message for {code}"
    assert e.get("Type") == "Sender", f"Error/Type should be Sender for a {status}, got {e.get('Type')!r}"
    assert REQUEST_ID_RE.match(meta.get("RequestId") or ""), f"bad RequestId {meta.get('RequestId')!r}"


def totp_step(t=None):
    """The RFC 6238 time step (30 s) containing epoch second t (default: now)."""
    return int(time.time() if t is None else t) // TOTP_STEP


def totp_code(seed, step):
    """The 6-digit code of a Base32 seed for one time step, computed by pyotp (not by the server)."""
    import pyotp

    return pyotp.TOTP(seed).at(step * TOTP_STEP)


def wrong_code(seed, around_step, spread=3):
    """A 6-digit code that is not the code of any step within `spread` of `around_step`."""
    taken = {totp_code(seed, s) for s in range(around_step - spread, around_step + spread + 1)}
    n = int(totp_code(seed, around_step))
    while True:
        n = (n + 1) % 1_000_000
        candidate = "%06d" % n
        if candidate not in taken:
            return candidate


def seconds_left_in_step(t=None):
    t = time.time() if t is None else t
    return TOTP_STEP - (t % TOTP_STEP)


def avoid_step_boundary(margin):
    """Sleeps past the next step boundary if fewer than `margin` seconds of the current step remain, so a short
    sequence of requests sees one server step. Returns the step to compute codes from."""
    left = seconds_left_in_step()
    if left < margin:
        time.sleep(left + 0.2)
    return totp_step()


# ---------------------------------------------------------------- a private stsd


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_root_creds():
    """Root credentials as run.sh makes them: (account, Creds) with the account encoded in the key id."""
    account = "%012d" % (100_000_000_000 + secrets.randbelow(900_000_000_000))
    return account, Creds(random_key_id("AKIA", account), random_secret())


class PrivateServer:
    """An stsd of the test's own (`STSD_BIN serve` on a free loopback port and its own data dir), for server
    options the shared server does not have. `restart()` keeps the data dir; `stop()` sends SIGTERM."""

    def __init__(self, data_dir, *args):
        import pathlib

        self.bin = required_env("STSD_BIN")
        self.data_dir = pathlib.Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / (self.data_dir.name + ".log")
        self.args = list(args)
        self.account, self.root = new_root_creds()
        self.proc = None
        self.port = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _healthy(self):
        try:
            with urllib.request.urlopen(self.endpoint + "/healthz", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def start(self, timeout=30):
        import subprocess

        # Only what this server needs: no STSD_* from the suite's own environment (STSD_DATA_DIR etc.).
        env = {k: v for k, v in os.environ.items() if not k.startswith("STSD_")}
        env.update(
            STSD_ACCOUNT_ID=self.account,
            STSD_ROOT_ACCESS_KEY_ID=self.root.access_key_id,
            STSD_ROOT_SECRET_ACCESS_KEY=self.root.secret_access_key,
        )
        for _attempt in range(3):
            self.port = self.port or free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [self.bin, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir), *self.args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._healthy():
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.stop()
                raise AssertionError(f"private stsd not healthy within {timeout}s:\n{self.log_tail()}")
            if "in use" not in self.log_tail(5).lower():
                raise AssertionError(f"private stsd exited with {self.proc.returncode}:\n{self.log_tail()}")
            self.port = None  # taken meanwhile: pick another
        raise AssertionError(f"private stsd could not bind a port:\n{self.log_tail()}")

    def stop(self, timeout=10):
        import signal
        import subprocess

        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"private stsd ignored SIGTERM for {timeout}s:\n{self.log_tail()}")
        return proc.returncode

    def restart(self, *args):
        """Stops (SIGTERM, exit status 0 expected) and starts again on the same data dir; `args`, when given,
        replace the extra command-line arguments (e.g. another --clock-offset-seconds)."""
        rc = self.stop()
        assert rc == 0, f"private stsd exited with {rc} after SIGTERM:\n{self.log_tail()}"
        if args:
            self.args = list(args)
        return self.start()

    def client(self, service, creds=None, validate=True):
        return make_client(service, self.endpoint, creds or self.root, validate)


SELF_SERVICE_POLICY = "arn:aws:iam::aws:policy/StsdSelfManageCredentials"
SELF_SERVICE_MFA_POLICY = "arn:aws:iam::aws:policy/StsdSelfManageCredentialsWithMFA"


def create_iam_user(iam, path=None, key=True, name=None, self_service=True):
    """Creates a user (and one access key) with `iam` (root); returns (name, user, Creds or None). New users
    have no policies, as in AWS; with `self_service` (the default) the user gets stsd's built-in policy that
    lets it manage its own keys and MFA devices, as an operator would grant it."""
    name = name or unique_name()
    kwargs = {"UserName": name}
    if path:
        kwargs["Path"] = path
    user = iam.create_user(**kwargs)["User"]
    if self_service:
        iam.attach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_POLICY)
    creds = None
    if key:
        k = iam.create_access_key(UserName=name)["AccessKey"]
        creds = Creds(k["AccessKeyId"], k["SecretAccessKey"])
    return name, user, creds


@dataclass
class MfaUser:
    name: str
    user: dict
    creds: Optional[Creds]
    serial: str
    seed: str
    step: Optional[int]  # the step of the second enrolment code (None: device not enabled)


def create_mfa_user(iam, enable=True, key=True, clock_offset=0, self_service=True):
    """A user with a virtual MFA device named after it, enabled for the user (unless enable=False) with the codes
    of the previous and the current step, as an authenticator shows them. The server anchors the device's clock
    on the second code and consumes both steps, so right after this only the NEXT step's code (step + 1) is
    usable. `clock_offset`: seconds the server's clock is ahead of this machine's."""
    name, user, creds = create_iam_user(iam, key=key, self_service=self_service)
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    seed = dev["Base32StringSeed"].decode("ascii")
    step = None
    if enable:
        step = totp_step(time.time() + clock_offset)
        iam.enable_mfa_device(
            UserName=name,
            SerialNumber=dev["SerialNumber"],
            AuthenticationCode1=totp_code(seed, step - 1),
            AuthenticationCode2=totp_code(seed, step),
        )
    return MfaUser(name, user, creds, dev["SerialNumber"], seed, step)


def png_info(data):
    """Parses a PNG with the standard library only: signature, chunk CRCs, IHDR first, IEND last, and the
    inflated image data size matching IHDR. Returns (width, height, bit_depth, colour_type)."""
    import struct
    import zlib

    assert data[:8] == PNG_MAGIC, f"not a PNG signature: {data[:8]!r}"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        assert pos + 12 <= len(data), "truncated PNG chunk"
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(ctype + body) == crc, f"bad CRC in {ctype!r} chunk"
        chunks.append(ctype)
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND", chunks
    assert b"IDAT" in chunks, chunks
    width, height, depth, colour, _comp, _filter, interlace = ihdr
    assert width > 0 and height > 0, ihdr
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    if interlace == 0:
        row = 1 + (width * depth * channels + 7) // 8
        assert len(zlib.decompress(idat)) == row * height, "image data does not match IHDR"
    return width, height, depth, colour
