"""Virtual MFA end to end (reference §6): devices created, enabled, listed, deactivated and deleted through
boto3's IAM client; codes computed by pyotp from the returned Base32StringSeed; GetSessionToken with
SerialNumber/TokenCode, the MFA session's IAM access, and the replay, window and race rules.

Time steps: EnableMFADevice anchors the device on its two codes and consumes both steps; GetSessionToken accepts
a step only once, only if it is later than the last accepted one, and only within ±1 step of the server's
clock. Right after enrolment (create_mfa_user) exactly one code is therefore usable: the NEXT step's. Tests that
need more successes on one device run a private server whose clock is moved forward by a restart with
--clock-offset-seconds instead of waiting for step boundaries.
"""

import base64
import datetime
import re
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stsd_support import (
    MSG_BAD_TOKEN,
    MSG_IAM_INVALID_AUTH_CODE,
    MSG_MFA_INVALID_CODE,
    MSG_MFA_NO_DEVICE,
    MSG_SESSION_CREDS_GST,
    REGION,
    Creds,
    PrivateServer,
    assert_error,
    assert_error_code,
    assert_expiration,
    assert_session_token_response,
    avoid_step_boundary,
    client_config,
    create_iam_user,
    create_mfa_user,
    expect_client_error,
    iam_denied_message,
    SELF_SERVICE_POLICY,
    iam_validation_message,
    png_info,
    timed,
    totp_code,
    totp_step,
    unique_name,
    wrong_code,
)

SEED_RE = re.compile(r"^[A-Z2-7]{64}$")


def all_virtual_devices(iam, **kwargs):
    return [
        d
        for page in iam.get_paginator("list_virtual_mfa_devices").paginate(**kwargs)
        for d in page["VirtualMFADevices"]
    ]


def serials(devices):
    return {d["SerialNumber"] for d in devices}


def assert_recent(ts, t0, t1, slack=2):
    assert isinstance(ts, datetime.datetime), ts
    assert t0 - slack <= ts.timestamp() <= t1 + slack, (ts.isoformat(), t0, t1)


# ------------------------------------------------------------ devices


def test_create_virtual_mfa_device(root_iam_client, account):
    name = unique_name("mfa")
    dev = root_iam_client.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    assert dev["SerialNumber"] == f"arn:aws:iam::{account}:mfa/{name}"
    assert "User" not in dev and "EnableDate" not in dev, dev

    # Blobs on the wire: botocore has already base64-decoded them.
    seed = dev["Base32StringSeed"]
    assert isinstance(seed, bytes), type(seed)
    seed = seed.decode("ascii")
    assert SEED_RE.match(seed), seed
    assert len(base64.b32decode(seed)) == 40
    assert re.fullmatch(r"[0-9]{6}", totp_code(seed, totp_step()))

    png = dev["QRCodePNG"]
    assert isinstance(png, bytes), type(png)
    width, height, _depth, _colour = png_info(png)
    assert width == height and width >= 21, (width, height)  # a QR code is square, version 1 is 21 modules

    with_path = root_iam_client.create_virtual_mfa_device(
        VirtualMFADeviceName=name, Path="/team/ops/"
    )["VirtualMFADevice"]
    assert with_path["SerialNumber"] == f"arn:aws:iam::{account}:mfa/team/ops/{name}"
    assert with_path["Base32StringSeed"].decode() != seed, "two devices got the same seed"

    err = expect_client_error(root_iam_client.create_virtual_mfa_device, VirtualMFADeviceName=name)
    assert_error(err, 409, "EntityAlreadyExists", "MFADevice entity at the same path and name already exists.")

    unassigned = serials(all_virtual_devices(root_iam_client, AssignmentStatus="Unassigned"))
    assert {dev["SerialNumber"], with_path["SerialNumber"]} <= unassigned

    root_iam_client.delete_virtual_mfa_device(SerialNumber=with_path["SerialNumber"])
    err = expect_client_error(root_iam_client.delete_virtual_mfa_device, SerialNumber=with_path["SerialNumber"])
    assert_error_code(err, 404, "NoSuchEntity")
    assert with_path["SerialNumber"] not in serials(all_virtual_devices(root_iam_client))


def test_create_virtual_mfa_device_validation(root_iam_novalidate):
    err = expect_client_error(root_iam_novalidate.create_virtual_mfa_device, VirtualMFADeviceName="a b")
    assert_error(
        err, 400, "ValidationError",
        iam_validation_message("virtualMFADeviceName", r"satisfy regular expression pattern: [\w+=,.@-]+"),
    )


def test_enable_mfa_device_codes(root_iam_client, root_iam_novalidate):
    u = create_mfa_user(root_iam_client, enable=False)
    n = totp_step()
    code = lambda s: totp_code(u.seed, s)  # noqa: E731
    bad = wrong_code(u.seed, n, spread=12)
    for c1, c2 in [
        (bad, wrong_code(u.seed, n + 20, spread=12)),  # not codes of this device
        (code(n), code(n - 1)),  # consecutive, but in the wrong order
        (code(n - 2), code(n)),  # not consecutive
        (code(n), code(n)),  # the same code twice
    ]:
        err = expect_client_error(
            root_iam_client.enable_mfa_device,
            UserName=u.name, SerialNumber=u.serial, AuthenticationCode1=c1, AuthenticationCode2=c2,
        )
        assert_error(err, 403, "InvalidAuthenticationCode", MSG_IAM_INVALID_AUTH_CODE)
    assert root_iam_client.list_mfa_devices(UserName=u.name)["MFADevices"] == []

    err = expect_client_error(
        root_iam_novalidate.enable_mfa_device,
        UserName=u.name, SerialNumber=u.serial, AuthenticationCode1="12345", AuthenticationCode2=code(n),
    )
    assert_error(
        err, 400, "ValidationError",
        iam_validation_message("authenticationCode1", "have length greater than or equal to 6"),
    )

    t0 = time.time()
    root_iam_client.enable_mfa_device(
        UserName=u.name, SerialNumber=u.serial, AuthenticationCode1=code(n - 1), AuthenticationCode2=code(n)
    )
    t1 = time.time()
    [listed] = root_iam_client.list_mfa_devices(UserName=u.name)["MFADevices"]
    assert listed["UserName"] == u.name
    assert listed["SerialNumber"] == u.serial
    assert_recent(listed["EnableDate"], t0, t1)

    # Already assigned: enabling again (for anyone) is refused.
    other, _, _ = create_iam_user(root_iam_client, key=False)
    err = expect_client_error(
        root_iam_client.enable_mfa_device,
        UserName=other, SerialNumber=u.serial, AuthenticationCode1=code(n + 1), AuthenticationCode2=code(n + 2),
    )
    assert_error_code(err, 409, "EntityAlreadyExists")
    assert root_iam_client.list_mfa_devices(UserName=other)["MFADevices"] == []


def test_list_and_get_mfa_devices(root_iam_client, iam_for, account):
    t0 = time.time()
    u = create_mfa_user(root_iam_client)
    t1 = time.time()
    spare = create_mfa_user(root_iam_client, enable=False)

    resp = root_iam_client.list_mfa_devices(UserName=u.name)
    assert resp["IsTruncated"] is False
    [d] = resp["MFADevices"]
    assert (d["UserName"], d["SerialNumber"]) == (u.name, u.serial)
    assert_recent(d["EnableDate"], t0, t1)
    # The user lists its own devices with its own key.
    [own] = iam_for(u.creds).list_mfa_devices()["MFADevices"]
    assert own == d
    assert root_iam_client.list_mfa_devices(UserName=spare.name)["MFADevices"] == []

    got = root_iam_client.get_mfa_device(SerialNumber=u.serial, UserName=u.name)
    assert got["SerialNumber"] == u.serial
    assert got["UserName"] == u.name
    assert got["EnableDate"] == d["EnableDate"]
    err = expect_client_error(
        root_iam_client.get_mfa_device, SerialNumber=f"arn:aws:iam::{account}:mfa/{unique_name('ghost')}"
    )
    assert_error_code(err, 404, "NoSuchEntity")

    assigned = {x["SerialNumber"]: x for x in all_virtual_devices(root_iam_client, AssignmentStatus="Assigned")}
    unassigned_entries = all_virtual_devices(root_iam_client, AssignmentStatus="Unassigned")
    unassigned = serials(unassigned_entries)
    for entry in unassigned_entries:
        assert "User" not in entry and "EnableDate" not in entry, entry
    anything = serials(all_virtual_devices(root_iam_client, AssignmentStatus="Any"))
    default = serials(all_virtual_devices(root_iam_client))
    assert u.serial in assigned and u.serial not in unassigned
    assert spare.serial in unassigned and spare.serial not in assigned
    assert {u.serial, spare.serial} <= anything
    assert anything == default
    assert set(assigned) | unassigned == anything
    entry = assigned[u.serial]
    assert entry["User"]["UserName"] == u.name
    assert entry["User"]["Arn"] == f"arn:aws:iam::{account}:user/{u.name}"
    assert entry["User"]["UserId"] == u.user["UserId"]
    assert entry["EnableDate"] == d["EnableDate"]


# ------------------------------------------------------------ GetSessionToken with MFA


def test_get_session_token_with_mfa_and_iam_access(root_iam_client, iam_for, sts_for, account):
    u = create_mfa_user(root_iam_client)
    sts = sts_for(u.creds)
    resp, t0, t1 = timed(sts.get_session_token, SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1))
    c = assert_session_token_response(resp)
    assert_expiration(c["Expiration"], t0, t1, 43200)
    mfa_session = Creds.from_sts(c)

    ident = sts_for(mfa_session).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account}:user/{u.name}"
    assert ident["UserId"] == u.user["UserId"]

    # MFA session credentials may call IAM, as the user (the self-service rules still apply).
    iam = iam_for(mfa_session)
    assert iam.get_user()["User"] == u.user
    assert serials(iam.list_mfa_devices()["MFADevices"]) == {u.serial}
    assert {m["AccessKeyId"] for m in iam.list_access_keys()["AccessKeyMetadata"]} == {u.creds.access_key_id}
    err = expect_client_error(iam.list_users)
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(account, f"/{u.name}", "ListUsers", f"arn:aws:iam::{account}:user/"),
    )
    err = expect_client_error(sts_for(mfa_session).get_session_token)
    assert_error(err, 403, "AccessDenied", MSG_SESSION_CREDS_GST)

    # A session of the same user obtained without MFA may not use IAM at all.
    plain = Creds.from_sts(sts.get_session_token()["Credentials"])
    err = expect_client_error(iam_for(plain).get_user)
    assert_error(err, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)


def test_mfa_code_replay(root_iam_client, sts_for):
    u = create_mfa_user(root_iam_client)
    s = u.step
    sts = sts_for(u.creds)

    def refused(code):
        err = expect_client_error(sts.get_session_token, SerialNumber=u.serial, TokenCode=code)
        assert_error(err, 403, "AccessDenied", MSG_MFA_INVALID_CODE)

    refused(totp_code(u.seed, s))  # the enrolment codes are used up
    refused(totp_code(u.seed, s - 1))
    refused(wrong_code(u.seed, s))
    # The next step's code is accepted at once (±1 step).
    ok = sts.get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, s + 1))
    assert_session_token_response(ok)
    refused(totp_code(u.seed, s + 1))  # replay of the accepted code
    refused(totp_code(u.seed, s))  # an older step's code
    # Three steps ahead is outside the window (the server is in step s, or s+1 if a boundary just passed).
    refused(totp_code(u.seed, s + 3))
    # The session obtained before is unaffected.
    assert sts_for(Creds.from_sts(ok["Credentials"])).get_caller_identity()["Arn"] == u.user["Arn"]


def test_mfa_serial_not_the_callers(root_iam_client, root_sts, sts_for, account):
    a = create_mfa_user(root_iam_client)
    b = create_mfa_user(root_iam_client)
    loose = create_mfa_user(root_iam_client, enable=False)
    sts_a = sts_for(a.creds)
    n = a.step + 1

    def unable(sts, serial, code):
        err = expect_client_error(sts.get_session_token, SerialNumber=serial, TokenCode=code)
        assert_error(err, 403, "AccessDenied", MSG_MFA_NO_DEVICE)

    unable(sts_a, b.serial, totp_code(b.seed, b.step + 1))  # another user's device, with its valid code
    unable(sts_a, f"arn:aws:iam::{account}:mfa/{unique_name('ghost')}", totp_code(a.seed, n))  # no such device
    unable(sts_a, loose.serial, totp_code(loose.seed, n))  # a device enabled for nobody
    unable(root_sts, a.serial, totp_code(a.seed, n))  # the root does not own the user's device
    # None of that touched a's or b's device: their next codes still work.
    assert_session_token_response(sts_a.get_session_token(SerialNumber=a.serial, TokenCode=totp_code(a.seed, n)))
    assert_session_token_response(
        sts_for(b.creds).get_session_token(SerialNumber=b.serial, TokenCode=totp_code(b.seed, b.step + 1))
    )


def test_mfa_serial_without_token_code(root_iam_client, sts_for):
    u = create_mfa_user(root_iam_client)
    sts = sts_for(u.creds, validate=False)
    err = expect_client_error(sts.get_session_token, SerialNumber=u.serial)
    # Only one of the two: AWS's own text for it (roles-and-sessions reference §3, [R]).
    assert_error(
        err,
        403,
        "AccessDenied",
        "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code.",
    )
    # The device was not charged for it: its next code works.
    assert_session_token_response(
        sts.get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1))
    )


def test_concurrent_get_session_token_same_code(root_iam_client, endpoint, sts_for):
    u = create_mfa_user(root_iam_client)
    code = totp_code(u.seed, u.step + 1)
    threads_n = 50
    sts = boto3.session.Session().client(
        "sts", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=u.creds.access_key_id, aws_secret_access_key=u.creds.secret_access_key,
        config=client_config().merge(Config(max_pool_connections=threads_n)),
    )
    barrier = threading.Barrier(threads_n)
    results = [None] * threads_n

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = sts.get_session_token(SerialNumber=u.serial, TokenCode=code)
        except Exception as e:  # noqa: BLE001 - ClientError expected, anything else reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if not isinstance(r, dict)]
    summary = sorted({repr(e.response["Error"]) if isinstance(e, ClientError) else repr(e) for e in errors})
    assert len(ok) == 1, f"{len(ok)} of {threads_n} calls with one code succeeded; errors: {summary}"
    for e in errors:
        assert isinstance(e, ClientError), e
        assert_error(e, 403, "AccessDenied", MSG_MFA_INVALID_CODE)
    session = Creds.from_sts(ok[0]["Credentials"])
    assert sts_for(session).get_caller_identity()["Arn"] == u.user["Arn"]


# ------------------------------------------------------------ the ±1 window, with the clock moved forward


@pytest.fixture
def offset_server(tmp_path):
    server = PrivateServer(tmp_path / "data", "--clock-offset-seconds=-60").start()
    yield server
    rc = server.stop()
    assert rc in (0, None), f"private stsd exited with {rc} after SIGTERM:\n{server.log_tail()}"


def test_mfa_window_previous_current_next(offset_server):
    """Devices enrolled while the server's clock is 60 s (two steps) behind; then the server restarts with the
    right time, so the steps just before, at and after now are all unused."""
    server = offset_server
    n = avoid_step_boundary(10)  # everything below must happen inside step n
    iam = server.client("iam")
    x = create_mfa_user(iam, clock_offset=-60)
    y = create_mfa_user(iam, clock_offset=-60)
    assert x.step == y.step == n - 2, (x.step, y.step, n)
    server.restart("--clock-offset-seconds=0")
    sts_x, sts_y = server.client("sts", x.creds), server.client("sts", y.creds)

    def accepted(sts, u, step):
        assert_session_token_response(sts.get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, step)))

    def refused(sts, u, step):
        err = expect_client_error(sts.get_session_token, SerialNumber=u.serial, TokenCode=totp_code(u.seed, step))
        assert_error(err, 403, "AccessDenied", MSG_MFA_INVALID_CODE)

    # Previous, current and next step, in increasing order: all accepted, each once.
    accepted(sts_x, x, n - 1)
    accepted(sts_x, x, n)
    accepted(sts_x, x, n + 1)
    refused(sts_x, x, n + 2)  # outside the window
    refused(sts_x, x, n - 1)  # replay
    # A step inside the window that was never used, but is older than the last accepted one.
    accepted(sts_y, y, n)
    refused(sts_y, y, n - 1)
    accepted(sts_y, y, n + 1)
    assert totp_step() == n, "a step boundary passed during the test: its step arithmetic no longer holds"


# ------------------------------------------------------------ deactivation and deletion


def test_deactivate_then_delete_device(root_iam_client, sts_for):
    u = create_mfa_user(root_iam_client)
    sts = sts_for(u.creds)

    err = expect_client_error(root_iam_client.delete_virtual_mfa_device, SerialNumber=u.serial)
    assert_error_code(err, 409, "DeleteConflict")
    assert u.serial in serials(all_virtual_devices(root_iam_client, AssignmentStatus="Assigned"))

    root_iam_client.deactivate_mfa_device(UserName=u.name, SerialNumber=u.serial)
    assert root_iam_client.list_mfa_devices(UserName=u.name)["MFADevices"] == []
    assert u.serial in serials(all_virtual_devices(root_iam_client, AssignmentStatus="Unassigned"))
    # Its valid, never used code no longer validates: the device is not the user's any more.
    next_code = totp_code(u.seed, u.step + 1)
    err = expect_client_error(sts.get_session_token, SerialNumber=u.serial, TokenCode=next_code)
    assert_error(err, 403, "AccessDenied", MSG_MFA_NO_DEVICE)
    err = expect_client_error(root_iam_client.deactivate_mfa_device, UserName=u.name, SerialNumber=u.serial)
    assert_error_code(err, 404, "NoSuchEntity")

    root_iam_client.delete_virtual_mfa_device(SerialNumber=u.serial)
    assert u.serial not in serials(all_virtual_devices(root_iam_client))
    err = expect_client_error(root_iam_client.delete_virtual_mfa_device, SerialNumber=u.serial)
    assert_error_code(err, 404, "NoSuchEntity")
    err = expect_client_error(sts.get_session_token, SerialNumber=u.serial, TokenCode=next_code)
    assert_error(err, 403, "AccessDenied", MSG_MFA_NO_DEVICE)
    # Without MFA the user still gets sessions.
    assert_session_token_response(sts.get_session_token())


def test_delete_user_with_assigned_device(root_iam_client):
    u = create_mfa_user(root_iam_client, key=False)
    err = expect_client_error(root_iam_client.delete_user, UserName=u.name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must delete MFA device first.")
    root_iam_client.deactivate_mfa_device(UserName=u.name, SerialNumber=u.serial)
    root_iam_client.detach_user_policy(UserName=u.name, PolicyArn=SELF_SERVICE_POLICY)
    root_iam_client.delete_user(UserName=u.name)
    err = expect_client_error(root_iam_client.get_user, UserName=u.name)
    assert_error(err, 404, "NoSuchEntity", f"The user with name {u.name} cannot be found.")
    root_iam_client.delete_virtual_mfa_device(SerialNumber=u.serial)


# ------------------------------------------------------------ self-service


def test_user_enrols_own_device(root_iam_client, iam_for, sts_for, account):
    name, user, creds = create_iam_user(root_iam_client)
    other, _, _ = create_iam_user(root_iam_client, key=False)
    iam = iam_for(creds)
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    assert dev["SerialNumber"] == f"arn:aws:iam::{account}:mfa/{name}"
    seed = dev["Base32StringSeed"].decode()
    png_info(dev["QRCodePNG"])
    n = totp_step()

    err = expect_client_error(
        iam.enable_mfa_device, UserName=other, SerialNumber=dev["SerialNumber"],
        AuthenticationCode1=totp_code(seed, n - 1), AuthenticationCode2=totp_code(seed, n),
    )
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(account, f"/{name}", "EnableMFADevice", f"user {other}"),
    )
    iam.enable_mfa_device(
        UserName=name, SerialNumber=dev["SerialNumber"],
        AuthenticationCode1=totp_code(seed, n - 1), AuthenticationCode2=totp_code(seed, n),
    )
    assert serials(iam.list_mfa_devices()["MFADevices"]) == {dev["SerialNumber"]}
    resp = sts_for(creds).get_session_token(SerialNumber=dev["SerialNumber"], TokenCode=totp_code(seed, n + 1))
    assert iam_for(Creds.from_sts(resp["Credentials"])).get_user()["User"] == user

    # Once the device is enabled, the long-term key alone cannot remove it (stsd's stricter rule: a stolen
    # key must not disable MFA); the MFA session can.
    err = expect_client_error(iam.deactivate_mfa_device, SerialNumber=dev["SerialNumber"])
    assert err.response["Error"]["Code"] == "AccessDenied"
    miam = iam_for(Creds.from_sts(resp["Credentials"]))
    miam.deactivate_mfa_device(SerialNumber=dev["SerialNumber"])
    assert iam.list_mfa_devices()["MFADevices"] == []
    iam.delete_virtual_mfa_device(SerialNumber=dev["SerialNumber"])
    assert dev["SerialNumber"] not in serials(all_virtual_devices(root_iam_client))
