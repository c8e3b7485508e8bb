"""GetSessionToken with the root long-term key, through boto3 (reference §2.1, §2.2, §5)."""

from stsd_support import (
    MSG_SESSION_CREDS_GST,
    Creds,
    account_from_id,
    assert_error,
    assert_expiration,
    assert_session_token_response,
    expect_client_error,
    timed,
    utilization_for,
)


def test_root_default_duration_is_one_hour(root_sts):
    resp, t0, t1 = timed(root_sts.get_session_token)
    c = assert_session_token_response(resp)
    assert_expiration(c["Expiration"], t0, t1, 3600)


def test_root_duration_900_is_honoured(root_sts):
    resp, t0, t1 = timed(root_sts.get_session_token, DurationSeconds=900)
    c = assert_session_token_response(resp)
    assert_expiration(c["Expiration"], t0, t1, 900)


def test_root_duration_2000_is_honoured(root_sts):
    resp, t0, t1 = timed(root_sts.get_session_token, DurationSeconds=2000)
    c = assert_session_token_response(resp)
    assert_expiration(c["Expiration"], t0, t1, 2000)


def test_root_duration_above_one_hour_is_clamped_to_3600(root_sts):
    for duration in (3601, 7200, 129600):
        resp, t0, t1 = timed(root_sts.get_session_token, DurationSeconds=duration)
        c = assert_session_token_response(resp)
        assert_expiration(c["Expiration"], t0, t1, 3600)


def test_each_call_issues_new_credentials(root_sts):
    a = root_sts.get_session_token()["Credentials"]
    b = root_sts.get_session_token()["Credentials"]
    assert a["AccessKeyId"] != b["AccessKeyId"]
    assert a["SecretAccessKey"] != b["SecretAccessKey"]
    assert a["SessionToken"] != b["SessionToken"]


def test_session_key_id_encodes_the_account(root_sts, account):
    c = root_sts.get_session_token()["Credentials"]
    assert account_from_id(c["AccessKeyId"]) == account


def test_minimum_session_token_size_pads_token_and_it_still_works(root_sts, sts_for, account):
    resp = root_sts.get_session_token(MinimumSessionTokenSize=2000)
    c = assert_session_token_response(resp)
    size = len(c["SessionToken"])
    assert size >= 2000, f"token is {size} bytes, asked for at least 2000"
    assert resp["SessionTokenSize"] == size
    assert resp["SessionTokenUtilization"] == utilization_for(size) >= 49
    ident = sts_for(Creds.from_sts(c)).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account}:root"
    assert ident["Account"] == account


def test_default_token_is_smaller_than_padded_one(root_sts):
    plain = root_sts.get_session_token()
    padded = root_sts.get_session_token(MinimumSessionTokenSize=3000)
    assert len(padded["Credentials"]["SessionToken"]) >= 3000
    assert plain["SessionTokenSize"] < padded["SessionTokenSize"]
    assert plain["SessionTokenSize"] <= 4096


def test_session_credentials_cannot_call_get_session_token(root_session_creds, sts_for):
    sts = sts_for(root_session_creds)
    err = expect_client_error(sts.get_session_token)
    assert_error(err, 403, "AccessDenied", MSG_SESSION_CREDS_GST)


def test_session_credentials_cannot_call_get_session_token_even_with_duration(root_session_creds, sts_for):
    err = expect_client_error(sts_for(root_session_creds).get_session_token, DurationSeconds=900)
    assert_error(err, 403, "AccessDenied", MSG_SESSION_CREDS_GST)

