"""GetCallerIdentity and GetAccessKeyInfo through boto3 (reference §2.3, §4)."""

import boto3

from stsd_support import (
    ACCOUNT_RE,
    LONG_TERM_KEY_RE,
    Creds,
    account_from_id,
    client_config,
    expect_client_error,
    random_key_id,
)


def test_root_long_term_key_identity(root_sts, root_creds):
    ident = root_sts.get_caller_identity()
    acct = ident["Account"]
    assert ACCOUNT_RE.match(acct), acct
    assert ident["Arn"] == f"arn:aws:iam::{acct}:root"
    assert ident["UserId"] == acct


def test_root_key_id_shape_and_account_encoding(root_creds, account):
    # run.sh generates the root key so that it encodes a 12-digit account, as AWS key ids do.
    assert LONG_TERM_KEY_RE.match(root_creds.access_key_id)
    assert account_from_id(root_creds.access_key_id) == account


def test_root_session_credentials_identity(root_session_creds, sts_for, account):
    ident = sts_for(root_session_creds).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account}:root"
    assert ident["UserId"] == account
    assert ident["Account"] == account


def test_session_credentials_from_non_default_duration_work(root_sts, sts_for, account):
    creds = Creds.from_sts(root_sts.get_session_token(DurationSeconds=900)["Credentials"])
    ident = sts_for(creds).get_caller_identity()
    assert (ident["Arn"], ident["UserId"], ident["Account"]) == (f"arn:aws:iam::{account}:root", account, account)


def test_get_access_key_info_root_key(root_sts, root_creds, account):
    resp = root_sts.get_access_key_info(AccessKeyId=root_creds.access_key_id)
    assert resp["Account"] == account


def test_get_access_key_info_session_key(root_sts, root_session_creds, account):
    resp = root_sts.get_access_key_info(AccessKeyId=root_session_creds.access_key_id)
    assert resp["Account"] == account


def test_get_access_key_info_is_denied_to_session_credentials(root_session_creds, root_creds, sts_for):
    # GetSessionToken credentials "cannot call any STS API except AssumeRole or GetCallerIdentity"
    # (GetSessionToken docs, reference 6.3). The exact message for this action is not captured, so only the
    # status and code are pinned.
    err = expect_client_error(sts_for(root_session_creds).get_access_key_info, AccessKeyId=root_creds.access_key_id)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert err.response["Error"]["Type"] == "Sender"


def test_get_access_key_info_decodes_foreign_key_ids(root_sts):
    # AWS answers for any well-formed key id: the account is read from the id itself (reference §4).
    # The key id from the reference's real capture:
    assert root_sts.get_access_key_info(AccessKeyId="ASIAUH3H6EGKJI4NP6V5")["Account"] == "291738886548"
    key = random_key_id("AKIA", account="123456789012")
    assert root_sts.get_access_key_info(AccessKeyId=key)["Account"] == "123456789012"


def test_other_signing_region_is_accepted(endpoint, root_creds, account):
    # With a custom endpoint, SDKs sign with the configured region (reference §1.3); stsd accepts any region
    # in the credential scope unless --region pins some (run.sh does not).
    sts = boto3.session.Session().client(
        "sts",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id=root_creds.access_key_id,
        aws_secret_access_key=root_creds.secret_access_key,
        config=client_config(),
    )
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{account}:root"
