"""Error answers as boto3 sees them: code, exact message, HTTP status (reference §3.2, §3.3, §5)."""

import datetime
import re
import time

import pytest

from stsd_support import (
    MSG_BAD_SIGNATURE,
    MSG_BAD_TOKEN,
    MSG_MFA_NO_DEVICE,
    MSG_UNKNOWN_KEY,
    Creds,
    assert_error,
    error_fields,
    expect_client_error,
    flip_char,
    http_request,
    random_key_id,
    random_secret,
    signed_post,
)

VALID_SERIAL = "arn:aws:iam::123456789012:mfa/stsd-test-device"


def validation_message(*clauses):
    n = len(clauses)
    prefix = "1 validation error detected: " if n == 1 else f"{n} validation errors detected: "
    return prefix + "; ".join(clauses)


def dur_min_clause(v):
    return f"Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"


def dur_max_clause(v):
    return f"Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600"


def token_len_clause(v):
    return f"Value '{v}' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6"


# ------------------------------------------------------------ authentication


def test_unknown_access_key(sts_for):
    sts = sts_for(Creds(random_key_id("AKIA"), random_secret()))
    err = expect_client_error(sts.get_caller_identity)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)


def test_unknown_access_key_on_get_session_token(sts_for):
    sts = sts_for(Creds(random_key_id("AKIA"), random_secret()))
    err = expect_client_error(sts.get_session_token)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)


def test_wrong_secret(sts_for, root_creds):
    sts = sts_for(Creds(root_creds.access_key_id, random_secret()))
    err = expect_client_error(sts.get_caller_identity)
    assert_error(err, 403, "SignatureDoesNotMatch", MSG_BAD_SIGNATURE)


def test_wrong_secret_on_get_session_token(sts_for, root_creds):
    sts = sts_for(Creds(root_creds.access_key_id, random_secret()))
    err = expect_client_error(sts.get_session_token)
    assert_error(err, 403, "SignatureDoesNotMatch", MSG_BAD_SIGNATURE)


def test_session_key_with_wrong_secret(sts_for, root_session_creds):
    c = root_session_creds
    sts = sts_for(Creds(c.access_key_id, random_secret(), c.session_token))
    err = expect_client_error(sts.get_caller_identity)
    assert_error(err, 403, "SignatureDoesNotMatch", MSG_BAD_SIGNATURE)


def test_tampered_session_token(sts_for, root_session_creds):
    c = root_session_creds
    token = flip_char(c.session_token, len(c.session_token) // 2)
    assert token != c.session_token
    sts = sts_for(Creds(c.access_key_id, c.secret_access_key, token))
    err = expect_client_error(sts.get_caller_identity)
    assert_error(err, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)


def test_session_token_of_another_session(sts_for, root_sts, root_session_creds):
    other = root_sts.get_session_token()["Credentials"]["SessionToken"]
    c = root_session_creds
    sts = sts_for(Creds(c.access_key_id, c.secret_access_key, other))
    err = expect_client_error(sts.get_caller_identity)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.response["Error"]["Code"] in ("InvalidClientTokenId", "SignatureDoesNotMatch")


def test_session_key_without_its_token_is_an_unknown_key(sts_for, root_session_creds):
    c = root_session_creds
    sts = sts_for(Creds(c.access_key_id, c.secret_access_key))
    err = expect_client_error(sts.get_caller_identity)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)


def test_signature_is_checked_before_validation(sts_for, root_creds):
    # Coral order (reference §3.3): a bad signature wins over a bad DurationSeconds.
    sts = sts_for(Creds(root_creds.access_key_id, random_secret()), validate=False)
    err = expect_client_error(sts.get_session_token, DurationSeconds=899)
    assert_error(err, 403, "SignatureDoesNotMatch", MSG_BAD_SIGNATURE)


def test_missing_authentication(endpoint):
    raw = http_request(endpoint + "/?Action=GetCallerIdentity&Version=2011-06-15")
    assert raw.status == 403, raw.body
    assert error_fields(raw) == ("MissingAuthenticationToken", "Request is missing Authentication Token")


def test_unknown_action(endpoint, root_creds):
    raw = signed_post(endpoint, {"Action": "NoSuchAction", "Version": "2011-06-15"}, root_creds)
    assert raw.status == 400, raw.body
    assert error_fields(raw) == ("InvalidAction", "Could not find operation NoSuchAction for version 2011-06-15")


# ------------------------------------------------------------ request time (reference §3.2, §7: +-15 minutes)

AMZ_TS = r"([0-9]{8}T[0-9]{6}Z)"
GCI = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}


def _ts(s):
    return datetime.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _sent_date(offset):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)).strftime("%Y%m%dT%H%M%SZ")


def test_request_signed_20_minutes_ago_is_expired(endpoint, root_creds):
    t0 = time.time()
    raw = signed_post(endpoint, GCI, root_creds, clock_offset=-1200)
    assert raw.status == 403, raw.body
    code, msg = error_fields(raw)
    assert code == "SignatureDoesNotMatch", raw.body
    m = re.fullmatch(rf"Signature expired: {AMZ_TS} is now earlier than {AMZ_TS} \({AMZ_TS} - 15 min\.\)", msg)
    assert m, msg
    sent, limit, now = (_ts(g) for g in m.groups())
    assert abs((sent - _ts(_sent_date(-1200))).total_seconds()) <= 3, msg
    assert abs(now.timestamp() - t0) <= 3, msg
    assert now - limit == datetime.timedelta(minutes=15), msg


def test_request_signed_20_minutes_ahead_is_not_yet_current(endpoint, root_creds):
    t0 = time.time()
    raw = signed_post(endpoint, GCI, root_creds, clock_offset=1200)
    assert raw.status == 403, raw.body
    code, msg = error_fields(raw)
    assert code == "SignatureDoesNotMatch", raw.body
    m = re.fullmatch(rf"Signature not yet current: {AMZ_TS} is still later than {AMZ_TS} \({AMZ_TS} \+ 15 min\.\)", msg)
    assert m, msg
    sent, limit, now = (_ts(g) for g in m.groups())
    assert abs((sent - _ts(_sent_date(1200))).total_seconds()) <= 3, msg
    assert abs(now.timestamp() - t0) <= 3, msg
    assert limit - now == datetime.timedelta(minutes=15), msg


@pytest.mark.parametrize("offset", [-600, 600])
def test_request_within_15_minutes_is_accepted(endpoint, root_creds, offset):
    raw = signed_post(endpoint, GCI, root_creds, clock_offset=offset)
    assert raw.status == 200, raw.body


# ------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "value, clause",
    [
        (899, dur_min_clause(899)),
        (0, dur_min_clause(0)),
        (129601, dur_max_clause(129601)),
        (345600, dur_max_clause(345600)),
    ],
)
def test_duration_out_of_range(root_sts_novalidate, value, clause):
    err = expect_client_error(root_sts_novalidate.get_session_token, DurationSeconds=value)
    assert_error(err, 400, "ValidationError", validation_message(clause))


def test_token_code_too_short(root_sts_novalidate):
    err = expect_client_error(root_sts_novalidate.get_session_token, SerialNumber=VALID_SERIAL, TokenCode="12345")
    assert_error(err, 400, "ValidationError", validation_message(token_len_clause("12345")))


def test_token_code_too_long(root_sts_novalidate):
    err = expect_client_error(
        root_sts_novalidate.get_session_token, SerialNumber=VALID_SERIAL, TokenCode="11111111111111"
    )
    assert_error(
        err,
        400,
        "ValidationError",
        validation_message(
            "Value '11111111111111' at 'tokenCode' failed to satisfy constraint: "
            "Member must have length less than or equal to 6"
        ),
    )


def test_token_code_not_digits(root_sts_novalidate):
    err = expect_client_error(root_sts_novalidate.get_session_token, SerialNumber=VALID_SERIAL, TokenCode="abcdef")
    assert_error(
        err,
        400,
        "ValidationError",
        validation_message(
            "Value 'abcdef' at 'tokenCode' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\d]*"
        ),
    )


def test_serial_number_too_short(root_sts_novalidate):
    err = expect_client_error(root_sts_novalidate.get_session_token, SerialNumber="abc", TokenCode="123456")
    assert_error(
        err,
        400,
        "ValidationError",
        validation_message(
            "Value 'abc' at 'serialNumber' failed to satisfy constraint: "
            "Member must have length greater than or equal to 9"
        ),
    )


def test_minimum_session_token_size_too_large(root_sts_novalidate):
    err = expect_client_error(root_sts_novalidate.get_session_token, MinimumSessionTokenSize=5000)
    assert_error(
        err,
        400,
        "ValidationError",
        validation_message(
            "Value '5000' at 'minimumSessionTokenSize' failed to satisfy constraint: "
            "Member must have value less than or equal to 4096"
        ),
    )


def test_two_violations_at_once(root_sts_novalidate):
    err = expect_client_error(
        root_sts_novalidate.get_session_token, DurationSeconds=899, SerialNumber=VALID_SERIAL, TokenCode="12345"
    )
    msg = err.response["Error"]["Message"]
    assert msg.startswith("2 validation errors detected: "), msg
    # Clause order is not pinned (reference §3.3), the clauses and the "; " join are.
    a, b = dur_min_clause(899), token_len_clause("12345")
    assert msg in (validation_message(a, b), validation_message(b, a)), msg
    assert_error(err, 400, "ValidationError", msg)


# ------------------------------------------------------------ MFA


def test_mfa_device_that_does_not_exist(root_sts, account):
    err = expect_client_error(
        root_sts.get_session_token, SerialNumber=f"arn:aws:iam::{account}:mfa/no-such-device", TokenCode="123456"
    )
    assert_error(err, 403, "AccessDenied", MSG_MFA_NO_DEVICE)


def test_mfa_hardware_style_serial_that_does_not_exist(root_sts):
    err = expect_client_error(root_sts.get_session_token, SerialNumber="GAHT12345678", TokenCode="654321")
    assert_error(err, 403, "AccessDenied", MSG_MFA_NO_DEVICE)
