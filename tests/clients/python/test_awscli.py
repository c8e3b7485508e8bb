"""AWS CLI v1 (from PyPI, installed in the test venv) against stsd."""

import calendar
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from stsd_support import (
    EXPIRY_SLACK,
    MSG_UNKNOWN_KEY,
    SECRET_RE,
    SESSION_KEY_RE,
    WIRE_TIMESTAMP_RE,
    random_key_id,
    random_secret,
)


def wire_epoch(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture(scope="module")
def aws_exe():
    exe = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    assert exe, "the aws CLI is not installed in the test venv"
    return exe


def run_aws(aws_exe, endpoint, key, secret, *args):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    return subprocess.run(
        [aws_exe, "sts", *args, "--endpoint-url", endpoint, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_get_session_token(aws_exe, endpoint, root_creds):
    t0 = time.time()
    p = run_aws(aws_exe, endpoint, root_creds.access_key_id, root_creds.secret_access_key, "get-session-token")
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    c = out["Credentials"]
    assert SESSION_KEY_RE.match(c["AccessKeyId"]), c
    assert SECRET_RE.match(c["SecretAccessKey"]), c
    assert c["SessionToken"]
    # CLI v1 prints the wire timestamp unchanged: whole seconds, UTC, no milliseconds.
    assert WIRE_TIMESTAMP_RE.match(c["Expiration"]), c["Expiration"]
    exp = wire_epoch(c["Expiration"])
    assert t0 + 3600 - EXPIRY_SLACK <= exp <= t1 + 3600 + EXPIRY_SLACK, (c["Expiration"], t0, t1)


def test_cli_get_session_token_with_duration(aws_exe, endpoint, root_creds):
    t0 = time.time()
    p = run_aws(
        aws_exe, endpoint, root_creds.access_key_id, root_creds.secret_access_key,
        "get-session-token", "--duration-seconds", "900",
    )
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    exp_s = json.loads(p.stdout)["Credentials"]["Expiration"]
    exp = wire_epoch(exp_s)
    assert t0 + 900 - EXPIRY_SLACK <= exp <= t1 + 900 + EXPIRY_SLACK, (exp_s, t0, t1)


def test_cli_get_caller_identity(aws_exe, endpoint, root_creds, account):
    p = run_aws(aws_exe, endpoint, root_creds.access_key_id, root_creds.secret_access_key, "get-caller-identity")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["Arn"] == f"arn:aws:iam::{account}:root"
    assert out["UserId"] == account
    assert out["Account"] == account


def test_cli_unknown_key_reports_invalid_client_token_id(aws_exe, endpoint):
    p = run_aws(aws_exe, endpoint, random_key_id(), random_secret(), "get-caller-identity")
    assert p.returncode in (254, 255), (p.returncode, p.stderr)
    assert "InvalidClientTokenId" in p.stderr, p.stderr
    assert MSG_UNKNOWN_KEY in p.stderr, p.stderr
    assert p.stdout == ""


def test_cli_duration_above_maximum_is_a_server_validation_error(aws_exe, endpoint, root_creds):
    # The CLI checks only the lower bound (900) locally, so 129601 reaches the server.
    p = run_aws(
        aws_exe, endpoint, root_creds.access_key_id, root_creds.secret_access_key,
        "get-session-token", "--duration-seconds", "129601",
    )
    assert p.returncode in (254, 255), (p.returncode, p.stderr)
    assert "(ValidationError)" in p.stderr, p.stderr
    assert (
        "1 validation error detected: Value '129601' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 129600"
    ) in p.stderr, p.stderr
