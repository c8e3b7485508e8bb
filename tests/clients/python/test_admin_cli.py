"""`stsd admin` end to end: on the data directory of a running server (local mode) and through the IAM API
(--endpoint-url), including the interactive MFA enrolment with its prompts answered by the test."""

import json
import os
import re
import subprocess
import time

import botocore.exceptions
import pytest

from stsd_support import Creds, PrivateServer, assert_error, required_env, totp_code, totp_step


def admin(server, *args, remote=False, creds=None, stdin=None, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STSD_", "AWS_"))}
    base = [required_env("STSD_BIN"), "admin"]
    if remote:
        c = creds or server.root
        env.update(AWS_ACCESS_KEY_ID=c.access_key_id, AWS_SECRET_ACCESS_KEY=c.secret_access_key)
        base += ["--endpoint-url", server.endpoint]
    else:
        base += ["--data-dir", str(server.data_dir)]
    p = subprocess.run(base + list(args), input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert p.returncode == 0, f"stsd admin {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    return p


@pytest.fixture
def server(tmp_path):
    s = PrivateServer(tmp_path / "data").start()
    yield s
    assert s.stop() == 0


def wait_until(fn, timeout=7.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fn():
                return time.monotonic()
        except botocore.exceptions.ClientError:
            pass
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_users_and_keys(server, remote):
    out = admin(server, "--json", "user", "create", "ops-anna", "--path", "/ops/", remote=remote).stdout
    user = json.loads(out)
    assert user["Arn"] == f"arn:aws:iam::{server.account}:user/ops/ops-anna"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    dup = admin(server, "user", "create", "ops-anna", remote=remote, check=False)
    assert dup.returncode == 1
    assert "EntityAlreadyExists: User with name ops-anna already exists." in dup.stderr
    key = json.loads(admin(server, "--json", "key", "create", "--user", "ops-anna", remote=remote).stdout)
    creds = Creds(key["AccessKeyId"], key["SecretAccessKey"])
    sts = server.client("sts", creds)
    assert sts.get_caller_identity()["Arn"] == user["Arn"]
    listed = json.loads(admin(server, "--json", "key", "list", "--user", "ops-anna", remote=remote).stdout)
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    # Deactivation made beside the running server reaches it within the cache bound (5 s).
    admin(server, "key", "deactivate", key["AccessKeyId"], "--user", "ops-anna", remote=remote)
    t0 = time.monotonic()

    def refused():
        try:
            sts.get_caller_identity()
            return False
        except botocore.exceptions.ClientError as e:
            assert_error(e, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
            return True

    assert wait_until(refused) - t0 < 6.5
    conflict = admin(server, "user", "delete", "ops-anna", remote=remote, check=False)
    assert "DeleteConflict" in conflict.stderr and conflict.returncode == 1
    admin(server, "key", "delete", key["AccessKeyId"], "--user", "ops-anna", remote=remote)
    admin(server, "user", "delete", "ops-anna", remote=remote)
    gone = admin(server, "user", "get", "ops-anna", remote=remote, check=False)
    assert "NoSuchEntity: The user with name ops-anna cannot be found." in gone.stderr


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_mfa_enrol_answering_the_prompts(server, remote):
    admin(server, "user", "create", "mfa-bo", remote=remote)
    key = json.loads(admin(server, "--json", "key", "create", "--user", "mfa-bo", remote=remote).stdout)
    creds = Creds(key["AccessKeyId"], key["SecretAccessKey"])
    base = [required_env("STSD_BIN"), "admin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STSD_", "AWS_"))}
    if remote:
        env.update(AWS_ACCESS_KEY_ID=server.root.access_key_id, AWS_SECRET_ACCESS_KEY=server.root.secret_access_key)
        base += ["--endpoint-url", server.endpoint]
    else:
        base += ["--data-dir", str(server.data_dir)]
    p = subprocess.Popen(base + ["mfa", "enroll", "mfa-bo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    seen = ""
    deadline = time.monotonic() + 20
    while "First code" not in seen:
        assert time.monotonic() < deadline and p.poll() is None, seen
        seen += p.stderr.read(1)
    assert "█" in seen, "no QR code shown"
    seed = re.search(r"otpauth://totp/stsd:mfa-bo@mfa-bo\?secret=([A-Z2-7]{64})", seen).group(1)
    step = totp_step()
    out, err = p.communicate(f"{totp_code(seed, step - 1)}\n{totp_code(seed, step)}\n", timeout=20)
    assert p.returncode == 0, err
    serial = f"arn:aws:iam::{server.account}:mfa/mfa-bo"
    assert f"MFA device {serial} enabled" in out
    sts = server.client("sts", creds)
    got = sts.get_session_token(SerialNumber=serial, TokenCode=totp_code(seed, step + 1))
    assert got["Credentials"]["AccessKeyId"].startswith("ASIA")
    listed = admin(server, "mfa", "list", "--user", "mfa-bo", remote=remote).stdout
    assert serial in listed


def test_failed_enrolment_leaves_nothing_behind(server):
    admin(server, "user", "create", "mfa-cy")
    p = admin(server, "mfa", "enroll", "mfa-cy", stdin="000000\n000001\n", check=False)
    assert p.returncode == 1
    assert "InvalidAuthenticationCode: Authentication code for device is not valid." in p.stderr
    devices = json.loads(admin(server, "--json", "mfa", "list", "--all").stdout)
    assert devices == [], "the unassigned device of a failed enrolment must be deleted"
    # And the name is free again.
    p = admin(server, "mfa", "enroll", "mfa-cy", stdin="", check=False)
    assert p.returncode == 1 and "no input" in p.stderr


def test_hardware_token_import_and_enable(server, tmp_path):
    seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    (tmp_path / "seed").write_text(seed + "\n")
    admin(server, "user", "create", "hw-dan")
    admin(server, "mfa", "import-hardware", "--serial", "GAHT12345678", "--seed-file", str(tmp_path / "seed"))
    again = admin(server, "mfa", "import-hardware", "--serial", "GAHT12345678", "--seed-file",
                  str(tmp_path / "seed"), check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    step = totp_step()
    iam = server.client("iam")
    iam.enable_mfa_device(UserName="hw-dan", SerialNumber="GAHT12345678",
                          AuthenticationCode1=totp_code(seed, step - 1), AuthenticationCode2=totp_code(seed, step))
    key = iam.create_access_key(UserName="hw-dan")["AccessKey"]
    sts = server.client("sts", Creds(key["AccessKeyId"], key["SecretAccessKey"]))
    assert sts.get_session_token(SerialNumber="GAHT12345678", TokenCode=totp_code(seed, step + 1))["Credentials"]
    bad = admin(server, "mfa", "import-hardware", "--serial", "short", "--seed-file", str(tmp_path / "seed"), check=False)
    assert bad.returncode == 1 and "9 to 256" in bad.stderr


def test_root_show_and_rotate(server):
    shown = admin(server, "root", "show").stdout
    assert f"aws_access_key_id = {server.root.access_key_id}" in shown
    rotated = admin(server, "--json", "root", "rotate").stdout
    new = json.loads(rotated)
    assert new["AccessKeyId"] != server.root.access_key_id
    creds_file = (server.data_dir / "root-credentials").read_text()
    assert new["AccessKeyId"] in creds_file and new["SecretAccessKey"] in creds_file
    assert oct((server.data_dir / "root-credentials").stat().st_mode & 0o777) == "0o600"
    new_sts = server.client("sts", Creds(new["AccessKeyId"], new["SecretAccessKey"]))
    assert new_sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{server.account}:root"
    old_sts = server.client("sts")
    t0 = time.monotonic()

    def old_refused():
        try:
            old_sts.get_caller_identity()
            return False
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidClientTokenId"
            return True

    assert wait_until(old_refused) - t0 < 6.5
    remote = admin(server, "root", "show", remote=True, check=False)
    assert remote.returncode == 1 and "drop --endpoint-url" in remote.stderr


def test_clear_errors(server, tmp_path):
    p = subprocess.run([required_env("STSD_BIN"), "admin", "--data-dir", str(tmp_path / "nothing"), "user", "list"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "no stsd database" in p.stderr
    p = admin(server, "user", "create", "a b", check=False)
    assert p.returncode == 1
    assert "ValidationError: 1 validation error detected: Value at 'userName' failed to satisfy constraint" in p.stderr


def test_mfa_required_per_user(server):
    admin(server, "user", "create", "req-eve")
    key = json.loads(admin(server, "--json", "key", "create", "--user", "req-eve").stdout)
    sts = server.client("sts", Creds(key["AccessKeyId"], key["SecretAccessKey"]))
    assert sts.get_session_token(DurationSeconds=900)["Credentials"]
    admin(server, "mfa", "require", "req-eve", "on")
    t0 = time.monotonic()

    def required():
        try:
            sts.get_session_token(DurationSeconds=900)
            return False
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDenied"
            assert e.response["Error"]["Message"].startswith("MultiFactorAuthentication required")
            return True

    # The flag travels with the cached key: it takes effect within the cache bound (5 s).
    assert wait_until(required) - t0 < 6.5
    admin(server, "mfa", "require", "req-eve", "off")
    assert wait_until(lambda: not required())
    missing = admin(server, "mfa", "require", "nobody", "on", check=False)
    assert missing.returncode == 1 and "NoSuchEntity" in missing.stderr
