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
    return Config(
        region_name=REGION,
        retries={"mode": "standard", "max_attempts": 1},
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
