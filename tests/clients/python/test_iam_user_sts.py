"""STS as an IAM user sees it. Users are created with boto3's IAM client (API version 2010-05-08) on the same
endpoint. These tests need stsd's IAM API; until it exists they fail (by design: they are not skipped)."""

import secrets

import pytest

from stsd_support import (
    LONG_TERM_KEY_RE,
    MSG_SESSION_CREDS_GST,
    SECRET_RE,
    USER_ID_RE,
    Creds,
    account_from_id,
    assert_error,
    assert_expiration,
    assert_session_token_response,
    expect_client_error,
    make_client,
    timed,
)


@pytest.fixture(scope="module")
def root_iam(endpoint, root_creds):
    return make_client("iam", endpoint, root_creds)


def _new_user(root_iam, path=None):
    name = "stsd-test-" + secrets.token_hex(4)
    kwargs = {"UserName": name}
    if path:
        kwargs["Path"] = path
    user = root_iam.create_user(**kwargs)["User"]
    key = root_iam.create_access_key(UserName=name)["AccessKey"]
    return name, user, Creds(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(scope="module")
def iam_user(root_iam):
    return _new_user(root_iam)


@pytest.fixture(scope="module")
def user_session(iam_user, sts_for):
    _, _, creds = iam_user
    return Creds.from_sts(sts_for(creds).get_session_token()["Credentials"])


def test_create_user_and_access_key_shapes(iam_user, account):
    name, user, creds = iam_user
    assert user["UserName"] == name
    assert user["Arn"] == f"arn:aws:iam::{account}:user/{name}"
    assert USER_ID_RE.match(user["UserId"]), user["UserId"]
    assert account_from_id(user["UserId"]) == account
    assert LONG_TERM_KEY_RE.match(creds.access_key_id), creds.access_key_id
    assert SECRET_RE.match(creds.secret_access_key)
    assert account_from_id(creds.access_key_id) == account


def test_user_long_term_key_caller_identity(iam_user, sts_for, account):
    name, user, creds = iam_user
    ident = sts_for(creds).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account}:user/{name}"
    assert USER_ID_RE.match(ident["UserId"]), ident["UserId"]
    assert ident["UserId"] == user["UserId"]
    assert ident["Account"] == account


def test_user_session_token_default_is_12_hours(iam_user, sts_for):
    _, _, creds = iam_user
    resp, t0, t1 = timed(sts_for(creds).get_session_token)
    c = assert_session_token_response(resp)
    assert_expiration(c["Expiration"], t0, t1, 43200)


@pytest.mark.parametrize("duration", [900, 3601, 129600])
def test_user_session_token_duration_is_honoured(iam_user, sts_for, duration):
    _, _, creds = iam_user
    resp, t0, t1 = timed(sts_for(creds).get_session_token, DurationSeconds=duration)
    c = assert_session_token_response(resp)
    assert_expiration(c["Expiration"], t0, t1, duration)


def test_user_session_credentials_caller_identity(iam_user, user_session, sts_for, account):
    name, user, _ = iam_user
    ident = sts_for(user_session).get_caller_identity()
    # Same ARN and UserId as the user itself (reference §2.3).
    assert ident["Arn"] == f"arn:aws:iam::{account}:user/{name}"
    assert USER_ID_RE.match(ident["UserId"]), ident["UserId"]
    assert ident["UserId"] == user["UserId"]
    assert ident["Account"] == account


def test_user_session_credentials_cannot_call_get_session_token(user_session, sts_for):
    err = expect_client_error(sts_for(user_session).get_session_token)
    assert_error(err, 403, "AccessDenied", MSG_SESSION_CREDS_GST)


def test_get_access_key_info_for_user_keys(iam_user, user_session, root_sts, account):
    _, _, creds = iam_user
    assert account_from_id(user_session.access_key_id) == account
    assert root_sts.get_access_key_info(AccessKeyId=creds.access_key_id)["Account"] == account
    assert root_sts.get_access_key_info(AccessKeyId=user_session.access_key_id)["Account"] == account


def test_user_with_path_has_path_in_arn(root_iam, sts_for, account):
    name, user, creds = _new_user(root_iam, path="/stsd/tests/")
    expected = f"arn:aws:iam::{account}:user/stsd/tests/{name}"
    assert user["Arn"] == expected
    assert sts_for(creds).get_caller_identity()["Arn"] == expected
