"""Fixtures for the stsd client-conformance suites; helpers live in stsd_support.py."""

import pytest

from stsd_support import ACCOUNT_RE, Creds, make_client, required_env



@pytest.fixture(scope="session")
def endpoint():
    return required_env("STSD_ENDPOINT").rstrip("/")


@pytest.fixture(scope="session")
def root_creds():
    return Creds(required_env("STSD_ROOT_ACCESS_KEY_ID"), required_env("STSD_ROOT_SECRET_ACCESS_KEY"))


@pytest.fixture(scope="session")
def root_sts(endpoint, root_creds):
    return make_client("sts", endpoint, root_creds)


@pytest.fixture(scope="session")
def root_sts_novalidate(endpoint, root_creds):
    """Root STS client with botocore's client-side validation off, so out-of-range values reach the server."""
    return make_client("sts", endpoint, root_creds, validate=False)


@pytest.fixture(scope="session")
def account(root_sts):
    acct = root_sts.get_caller_identity()["Account"]
    assert ACCOUNT_RE.match(acct), acct
    return acct


@pytest.fixture(scope="session")
def root_session_creds(root_sts):
    """Session credentials from a default root GetSessionToken (shared by tests that only use them)."""
    return Creds.from_sts(root_sts.get_session_token()["Credentials"])


@pytest.fixture(scope="session")
def sts_for(endpoint):
    def factory(creds, validate=True):
        return make_client("sts", endpoint, creds, validate)

    return factory


@pytest.fixture(scope="session")
def iam_for(endpoint):
    """IAM clients (API 2010-05-08) on the same endpoint, signed for service `iam`."""

    def factory(creds, validate=True):
        return make_client("iam", endpoint, creds, validate)

    return factory


@pytest.fixture(scope="session")
def root_iam_client(iam_for, root_creds):
    return iam_for(root_creds)


@pytest.fixture(scope="session")
def root_iam_novalidate(iam_for, root_creds):
    """Root IAM client with botocore's client-side validation off, so invalid values reach the server."""
    return iam_for(root_creds, validate=False)
