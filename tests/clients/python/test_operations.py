"""Operations end to end: the audit log, rate limits, /metrics, the configuration file and JSON logs of a
running stsd, through boto3."""

import json
import re
import signal
import subprocess
import time
import urllib.request

import botocore.exceptions
import pytest

from stsd_support import Creds, PrivateServer, assert_error, required_env, totp_code, totp_step


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def test_audit_log_records_calls_without_secrets(tmp_path):
    audit = tmp_path / "audit.log"
    s = PrivateServer(tmp_path / "data", "--audit-log", str(audit)).start()
    try:
        iam = s.client("iam")
        iam.create_user(UserName="aud-ann")
        key = iam.create_access_key(UserName="aud-ann")["AccessKey"]
        creds = Creds(key["AccessKeyId"], key["SecretAccessKey"])
        sts = s.client("sts", creds)
        got = sts.get_session_token(DurationSeconds=900)["Credentials"]
        dev = iam.create_virtual_mfa_device(VirtualMFADeviceName="aud-dev")["VirtualMFADevice"]
        seed = dev["Base32StringSeed"].decode()
        step = totp_step()
        iam.enable_mfa_device(UserName="aud-ann", SerialNumber=dev["SerialNumber"],
                              AuthenticationCode1=totp_code(seed, step - 1), AuthenticationCode2=totp_code(seed, step))
        bad_code = "1234567"
        nv = s.client("sts", creds, validate=False)
        with pytest.raises(botocore.exceptions.ClientError):
            nv.get_session_token(SerialNumber=dev["SerialNumber"], TokenCode=bad_code)
    finally:
        assert s.stop() == 0  # the writer is drained before exit
    text = audit.read_text()
    records = lines(audit)
    names = [r["eventName"] for r in records]
    assert names == ["CreateUser", "CreateAccessKey", "GetSessionToken", "CreateVirtualMFADevice",
                     "EnableMFADevice", "GetSessionToken"], names
    for secret in (key["SecretAccessKey"], got["SecretAccessKey"], got["SessionToken"], seed, bad_code,
                   totp_code(seed, step), totp_code(seed, step - 1)):
        assert secret not in text, "a secret or code reached the audit log"
    create_key = records[1]
    assert create_key["eventSource"] == "iam.amazonaws.com"
    assert create_key["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]
    assert create_key["userIdentity"]["type"] == "Root"
    assert create_key["requestParameters"] == {"userName": "aud-ann"}
    gst = records[2]
    assert gst["eventSource"] == "sts.amazonaws.com" and gst["awsRegion"] == "us-east-1"
    assert gst["userIdentity"]["arn"] == f"arn:aws:iam::{s.account}:user/aud-ann"
    assert gst["userIdentity"]["accessKeyId"] == key["AccessKeyId"]
    assert gst["responseElements"]["credentials"]["accessKeyId"] == got["AccessKeyId"]
    assert gst["requestParameters"] == {"durationSeconds": "900"}
    assert re.fullmatch(r"[0-9a-f-]{36}", gst["requestID"]) and gst["sourceIPAddress"] == "127.0.0.1"
    failed = records[5]
    assert failed["errorCode"] == "ValidationError" and "***" in failed["errorMessage"]
    assert "tokenCode" not in failed["requestParameters"]


def test_rate_limit_per_key_answers_throttling(tmp_path):
    s = PrivateServer(tmp_path / "data", "--rate-limit-per-key", "2", "--rate-limit-burst", "3").start()
    try:
        sts = s.client("sts")
        outcomes = []
        for _ in range(6):
            try:
                sts.get_caller_identity()
                outcomes.append("ok")
            except botocore.exceptions.ClientError as e:
                assert_error(e, 400, "Throttling", "Rate exceeded")
                outcomes.append("throttled")
        assert outcomes[:3] == ["ok"] * 3 and "throttled" in outcomes[3:], outcomes
        time.sleep(1.1)  # two tokens come back per second
        sts.get_caller_identity()
        metrics = urllib.request.urlopen(s.endpoint + "/metrics", timeout=5).read().decode()
        n = int(re.search(r"^stsd_throttled_total (\d+)$", metrics, re.M).group(1))
        assert n == outcomes.count("throttled")
    finally:
        assert s.stop() == 0


def test_metrics_count_requests_and_failures(tmp_path):
    s = PrivateServer(tmp_path / "data").start()
    try:
        sts = s.client("sts")
        sts.get_caller_identity()
        bad = s.client("sts", Creds(s.root.access_key_id, "wrong-secret-wrong-secret-wrong-secret00"))
        with pytest.raises(botocore.exceptions.ClientError):
            bad.get_caller_identity()
        r = urllib.request.urlopen(s.endpoint + "/metrics", timeout=5)
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
        assert 'stsd_requests_total{action="GetCallerIdentity",outcome="OK"} 1' in text
        assert 'stsd_requests_total{action="GetCallerIdentity",outcome="SignatureDoesNotMatch"} 1' in text
        assert 'stsd_auth_failures_total{reason="signature"} 1' in text
        assert 'stsd_request_duration_seconds_count{action="GetCallerIdentity"} 2' in text
        assert s.root.access_key_id not in text
    finally:
        assert s.stop() == 0


def test_config_file_json_logs_and_precedence(tmp_path):
    conf = tmp_path / "stsd.toml"
    conf.write_text('log_format = "json"\nmax_connections = 16\n[mfa]\nrequire = true\n')
    s = PrivateServer(tmp_path / "data", "--config", str(conf)).start()
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s.client("sts").get_session_token()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert e.value.response["Error"]["Message"].startswith("MultiFactorAuthentication required")
        s.client("iam").create_user(UserName="logged-user")
    finally:
        assert s.stop() == 0
    log = s.log_path.read_text().splitlines()
    parsed = [json.loads(l) for l in log if l.startswith("{")]
    assert parsed, "no JSON log lines"
    # A line logged while handling a request carries that request's id.
    created = [p for p in parsed if p.get("fields", {}).get("message") == "user created"]
    assert len(created) == 1 and re.fullmatch(r"[0-9a-f-]{36}", created[0]["span"]["request_id"]), created
    # A flag overrides the file; an unknown key is refused with its name.
    s2 = PrivateServer(tmp_path / "data2", "--config", str(conf), "--log-format", "human").start()
    assert s2.stop() == 0
    assert not s2.log_path.read_text().splitlines()[-1].startswith("{")
    conf.write_text('listen_adress = "127.0.0.1:1"\n')
    p = subprocess.run([required_env("STSD_BIN"), "serve", "--config", str(conf), "--data-dir", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "listen_adress" in p.stderr
