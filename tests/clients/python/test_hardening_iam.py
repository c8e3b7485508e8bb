"""Review findings in the IAM layer (issue 14, fixes 1, 7, 8 and the resync part of 10), each against a running
stsd: a key thief cannot enrol a second device (see also test_policies.py), device listings need permission,
device names cannot be hoarded or squatted, and failed resyncs count towards the lock-out."""

import os
import re
import subprocess
import time

import pytest

from stsd_support import (
    MSG_MFA_INVALID_CODE,
    PrivateServer,
    assert_error,
    create_iam_user,
    create_mfa_user,
    expect_client_error,
    iam_denied_message,
    required_env,
    totp_code,
    totp_step,
    unique_name,
    wrong_code,
)


def test_listing_devices_needs_permission(root_iam_client, iam_for, account):
    name, _, creds = create_iam_user(root_iam_client, self_service=False)
    err = expect_client_error(iam_for(creds).list_virtual_mfa_devices)
    assert_error(err, 403, "AccessDenied", iam_denied_message(account, f"/{name}", "ListVirtualMFADevices", "*"))
    assert "VirtualMFADevices" in root_iam_client.list_virtual_mfa_devices()


def test_unassigned_devices_are_bounded(root_iam_client, iam_for):
    name, _, creds = create_iam_user(root_iam_client)
    iam = iam_for(creds)
    made = [iam.create_virtual_mfa_device(VirtualMFADeviceName=unique_name("hoard"))["VirtualMFADevice"]
            for _ in range(4)]
    err = expect_client_error(iam.create_virtual_mfa_device, VirtualMFADeviceName=unique_name("hoard"))
    assert err.response["Error"]["Code"] == "LimitExceeded"
    iam.delete_virtual_mfa_device(SerialNumber=made[0]["SerialNumber"])
    iam.create_virtual_mfa_device(VirtualMFADeviceName=unique_name("hoard"))


@pytest.fixture
def server(tmp_path):
    s = PrivateServer(tmp_path / "data", "--mfa-max-failures", "3").start()
    yield s
    assert s.stop() == 0


def test_squatted_name_does_not_block_admin_enrolment(server):
    root = server.client("iam")
    victim = unique_name("victim")
    # mallory reserves the name the administrator's enrolment would use
    _, _, mallory = create_iam_user(root)
    server.client("iam", mallory).create_virtual_mfa_device(VirtualMFADeviceName=victim)
    root.create_user(UserName=victim)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STSD_", "AWS_"))}
    p = subprocess.Popen([required_env("STSD_BIN"), "admin", "--data-dir", str(server.data_dir), "mfa", "enroll", victim],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = ""
    deadline = time.monotonic() + 20
    while "First code" not in seen:
        assert time.monotonic() < deadline and p.poll() is None, seen
        seen += p.stderr.read(1)
    m = re.search(rf"otpauth://totp/stsd:({re.escape(victim)}-[0-9a-f]{{8}})@{re.escape(victim)}\?secret=([A-Z2-7]+)", seen)
    assert m, seen
    device, seed = m.group(1), m.group(2)
    step = totp_step()
    out, err = p.communicate(f"{totp_code(seed, step - 1)}\n{totp_code(seed, step)}\n", timeout=20)
    assert p.returncode == 0, err
    [d] = root.list_mfa_devices(UserName=victim)["MFADevices"]
    assert d["SerialNumber"] == f"arn:aws:iam::{server.account}:mfa/{device}"


def test_failed_resyncs_count_towards_lockout(server):
    root = server.client("iam")
    u = create_mfa_user(root)
    iam = server.client("iam", u.creds)
    for _ in range(3):
        bad = wrong_code(u.seed, totp_step())
        err = expect_client_error(iam.resync_mfa_device, UserName=u.name, SerialNumber=u.serial,
                                  AuthenticationCode1=bad, AuthenticationCode2=bad)
        assert err.response["Error"]["Code"] == "InvalidAuthenticationCode"
    # locked: even the right code is refused now
    err = expect_client_error(server.client("sts", u.creds).get_session_token,
                              SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1))
    assert_error(err, 403, "AccessDenied", MSG_MFA_INVALID_CODE)
