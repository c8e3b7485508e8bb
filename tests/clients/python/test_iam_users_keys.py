"""IAM users and access keys through boto3's IAM client (API 2010-05-08) on the stsd endpoint: shapes, IAM's
error texts (values omitted from validation messages, reference §3.3), key status on STS, last use, the
self-service rules for IAM users, no-MFA sessions refused (reference §6.3), and races."""

import datetime
import threading
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stsd_support import (
    LONG_TERM_KEY_RE,
    MSG_BAD_TOKEN,
    MSG_UNKNOWN_KEY,
    REGION,
    SECRET_RE,
    USER_ID_RE,
    Creds,
    account_from_id,
    assert_error,
    client_config,
    create_iam_user,
    expect_client_error,
    iam_denied_message,
    SELF_SERVICE_POLICY,
    iam_validation_message,
    signed_post,
    unique_name,
)

USER_NAME_PATTERN = r"[\w+=,.@-]+"


new_user = create_iam_user


def assert_recent(ts, t0, t1, slack=2):
    assert isinstance(ts, datetime.datetime), ts
    assert t0 - slack <= ts.timestamp() <= t1 + slack, (ts.isoformat(), t0, t1)


# ------------------------------------------------------------ users


def test_create_user_default_path(root_iam_client, account):
    name = unique_name()
    t0 = time.time()
    user = root_iam_client.create_user(UserName=name)["User"]
    t1 = time.time()
    assert user["UserName"] == name
    assert user["Path"] == "/"
    assert user["Arn"] == f"arn:aws:iam::{account}:user/{name}"
    assert USER_ID_RE.match(user["UserId"]), user["UserId"]
    assert account_from_id(user["UserId"]) == account
    assert_recent(user["CreateDate"], t0, t1)


def test_create_user_with_path_and_get_user(root_iam_client, account):
    name = unique_name()
    created = root_iam_client.create_user(UserName=name, Path="/eng/")["User"]
    assert created["Path"] == "/eng/"
    assert created["Arn"] == f"arn:aws:iam::{account}:user/eng/{name}"
    assert USER_ID_RE.match(created["UserId"]), created["UserId"]
    got = root_iam_client.get_user(UserName=name)["User"]
    assert got == created
    # Names are looked up case-insensitively, as IAM does; the stored spelling is returned.
    assert root_iam_client.get_user(UserName=name.upper())["User"]["UserName"] == name


def test_user_ids_are_distinct(root_iam_client):
    ids = {root_iam_client.create_user(UserName=unique_name())["User"]["UserId"] for _ in range(3)}
    assert len(ids) == 3, ids


def test_duplicate_user_name_case_insensitive(root_iam_client):
    name = unique_name("Dup-User")
    root_iam_client.create_user(UserName=name)
    err = expect_client_error(root_iam_client.create_user, UserName=name)
    assert_error(err, 409, "EntityAlreadyExists", f"User with name {name} already exists.")
    other_case = name.lower()
    err = expect_client_error(root_iam_client.create_user, UserName=other_case, Path="/other/")
    assert_error(err, 409, "EntityAlreadyExists", f"User with name {other_case} already exists.")


def test_get_unknown_user(root_iam_client):
    name = unique_name("nobody")
    err = expect_client_error(root_iam_client.get_user, UserName=name)
    assert_error(err, 404, "NoSuchEntity", f"The user with name {name} cannot be found.")


@pytest.mark.parametrize(
    "kwargs, member, rule",
    [
        ({"UserName": "a b"}, "userName", f"satisfy regular expression pattern: {USER_NAME_PATTERN}"),
        ({"UserName": "x" * 65}, "userName", "have length less than or equal to 64"),
        ({"UserName": "ok-name", "Path": "eng"}, "path",
         r"satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)"),
    ],
    ids=["name-pattern", "name-length", "path-pattern"],
)
def test_create_user_validation_omits_value(root_iam_novalidate, kwargs, member, rule):
    err = expect_client_error(root_iam_novalidate.create_user, **kwargs)
    assert_error(err, 400, "ValidationError", iam_validation_message(member, rule))
    assert "a b" not in err.response["Error"]["Message"]


def test_list_users_max_items_zero(root_iam_novalidate):
    err = expect_client_error(root_iam_novalidate.list_users, MaxItems=0)
    assert_error(err, 400, "ValidationError", iam_validation_message("maxItems", "have value greater than or equal to 1"))


def test_list_users_path_prefix_and_pagination(root_iam_client):
    base = "/" + unique_name("list") + "/"
    top = {new_user(root_iam_client, path=base, key=False)[0] for _ in range(3)}
    sub = {new_user(root_iam_client, path=base + "sub/", key=False)[0] for _ in range(2)}
    outside = new_user(root_iam_client, key=False)[0]

    seen, pages, marker = [], [], None
    while True:
        kwargs = {"PathPrefix": base, "MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        resp = root_iam_client.list_users(**kwargs)
        pages.append((len(resp["Users"]), resp["IsTruncated"]))
        seen.extend(u["UserName"] for u in resp["Users"])
        if not resp["IsTruncated"]:
            assert "Marker" not in resp, resp.get("Marker")
            break
        assert resp.get("Marker"), "a truncated page must carry a Marker"
        marker = resp["Marker"]
        assert len(pages) < 10, pages
    assert pages == [(2, True), (2, True), (1, False)], pages
    assert sorted(seen) == sorted(top | sub), seen  # every user exactly once
    assert outside not in seen

    only_sub = root_iam_client.list_users(PathPrefix=base + "sub/")
    assert {u["UserName"] for u in only_sub["Users"]} == sub
    assert only_sub["IsTruncated"] is False
    for u in only_sub["Users"]:
        assert u["Path"] == base + "sub/"
        assert u["Arn"].endswith(f":user{base}sub/{u['UserName']}"), u["Arn"]

    # boto3's paginator follows the markers too; without a prefix every user is listed.
    everyone = [
        u["UserName"]
        for page in root_iam_client.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 3})
        for u in page["Users"]
    ]
    assert len(everyone) == len(set(everyone)), "a user was listed twice"
    assert top | sub | {outside} <= set(everyone)


# ------------------------------------------------------------ access keys


def test_create_and_list_access_keys_limit(root_iam_client, account):
    name, _, _ = new_user(root_iam_client, key=False)
    t0 = time.time()
    keys = [root_iam_client.create_access_key(UserName=name)["AccessKey"] for _ in range(2)]
    t1 = time.time()
    for k in keys:
        assert k["UserName"] == name
        assert LONG_TERM_KEY_RE.match(k["AccessKeyId"]), k["AccessKeyId"]
        assert account_from_id(k["AccessKeyId"]) == account
        assert SECRET_RE.match(k["SecretAccessKey"]), k["SecretAccessKey"]
        assert k["Status"] == "Active"
        assert_recent(k["CreateDate"], t0, t1)
    assert keys[0]["AccessKeyId"] != keys[1]["AccessKeyId"]

    err = expect_client_error(root_iam_client.create_access_key, UserName=name)
    assert_error(err, 409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")

    listed = root_iam_client.list_access_keys(UserName=name)
    assert listed["IsTruncated"] is False
    meta = {m["AccessKeyId"]: m for m in listed["AccessKeyMetadata"]}
    assert set(meta) == {k["AccessKeyId"] for k in keys}
    for m in meta.values():
        assert m["UserName"] == name
        assert m["Status"] == "Active"
        assert "SecretAccessKey" not in m


def test_create_access_key_unknown_user(root_iam_client):
    name = unique_name("nobody")
    err = expect_client_error(root_iam_client.create_access_key, UserName=name)
    assert_error(err, 404, "NoSuchEntity", f"The user with name {name} cannot be found.")


def test_update_access_key_status_on_sts(root_iam_client, sts_for, account):
    name, user, creds = new_user(root_iam_client)
    sts = sts_for(creds)
    assert sts.get_caller_identity()["Arn"] == user["Arn"]

    root_iam_client.update_access_key(UserName=name, AccessKeyId=creds.access_key_id, Status="Inactive")
    [m] = root_iam_client.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert m["Status"] == "Inactive"
    err = expect_client_error(sts.get_caller_identity)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)
    err = expect_client_error(sts.get_session_token)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)

    root_iam_client.update_access_key(UserName=name, AccessKeyId=creds.access_key_id, Status="Active")
    [m] = root_iam_client.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert m["Status"] == "Active"
    ident = sts.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account}:user/{name}"
    assert ident["UserId"] == user["UserId"]


def test_delete_access_key_and_user(root_iam_client, sts_for):
    name, _, creds = new_user(root_iam_client)
    second = root_iam_client.create_access_key(UserName=name)["AccessKey"]
    sts_for(creds).get_caller_identity()

    err = expect_client_error(root_iam_client.delete_user, UserName=name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must delete access keys first.")

    root_iam_client.delete_access_key(UserName=name, AccessKeyId=creds.access_key_id)
    err = expect_client_error(sts_for(creds).get_caller_identity)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)
    ids = [m["AccessKeyId"] for m in root_iam_client.list_access_keys(UserName=name)["AccessKeyMetadata"]]
    assert ids == [second["AccessKeyId"]]
    err = expect_client_error(root_iam_client.delete_access_key, UserName=name, AccessKeyId=creds.access_key_id)
    assert_error(err, 404, "NoSuchEntity", f"The Access Key with id {creds.access_key_id} cannot be found.")

    err = expect_client_error(root_iam_client.delete_user, UserName=name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must delete access keys first.")
    root_iam_client.delete_access_key(UserName=name, AccessKeyId=second["AccessKeyId"])
    assert root_iam_client.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    err = expect_client_error(root_iam_client.delete_user, UserName=name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    root_iam_client.detach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_POLICY)

    root_iam_client.delete_user(UserName=name)
    err = expect_client_error(root_iam_client.get_user, UserName=name)
    assert_error(err, 404, "NoSuchEntity", f"The user with name {name} cannot be found.")
    err = expect_client_error(root_iam_client.delete_user, UserName=name)
    assert_error(err, 404, "NoSuchEntity", f"The user with name {name} cannot be found.")
    assert name not in {u["UserName"] for u in root_iam_client.list_users()["Users"]}
    # The name is free again.
    assert root_iam_client.create_user(UserName=name)["User"]["UserName"] == name


def test_get_access_key_last_used(root_iam_client, iam_for, sts_for):
    name, _, creds = new_user(root_iam_client)
    fresh = root_iam_client.get_access_key_last_used(AccessKeyId=creds.access_key_id)
    assert fresh["UserName"] == name
    assert fresh["AccessKeyLastUsed"]["ServiceName"] == "N/A"
    assert fresh["AccessKeyLastUsed"]["Region"] == "N/A"
    assert "LastUsedDate" not in fresh["AccessKeyLastUsed"], fresh

    t0 = time.time()
    sts_for(creds).get_caller_identity()
    t1 = time.time()
    used = root_iam_client.get_access_key_last_used(AccessKeyId=creds.access_key_id)
    assert used["UserName"] == name
    last = used["AccessKeyLastUsed"]
    assert last["ServiceName"] == "sts"
    assert last["Region"] == REGION
    assert_recent(last["LastUsedDate"], t0, t1)

    iam_for(creds).get_user()
    assert root_iam_client.get_access_key_last_used(AccessKeyId=creds.access_key_id)[
        "AccessKeyLastUsed"]["ServiceName"] == "iam"


# ------------------------------------------------------------ self-service rules for IAM users


@pytest.fixture(scope="module")
def self_user(root_iam_client):
    """A user with a path, acting with its own long-term key."""
    return new_user(root_iam_client, path="/self/")


def test_user_gets_itself(self_user, iam_for):
    name, user, creds = self_user
    iam = iam_for(creds)
    assert iam.get_user()["User"] == user
    assert iam.get_user(UserName=name)["User"] == user


def test_user_manages_own_access_keys(root_iam_client, iam_for, sts_for):
    name, user, creds = new_user(root_iam_client)
    iam = iam_for(creds)
    created = iam.create_access_key()["AccessKey"]
    assert created["UserName"] == name
    assert LONG_TERM_KEY_RE.match(created["AccessKeyId"]), created["AccessKeyId"]
    new_creds = Creds(created["AccessKeyId"], created["SecretAccessKey"])
    assert sts_for(new_creds).get_caller_identity()["Arn"] == user["Arn"]
    listed = {m["AccessKeyId"] for m in iam.list_access_keys()["AccessKeyMetadata"]}
    assert listed == {creds.access_key_id, created["AccessKeyId"]}
    assert {m["AccessKeyId"] for m in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]} == listed
    err = expect_client_error(iam.create_access_key)
    assert_error(err, 409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
    iam.delete_access_key(AccessKeyId=created["AccessKeyId"])
    err = expect_client_error(sts_for(new_creds).get_caller_identity)
    assert_error(err, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)


def test_user_may_not_list_users(self_user, iam_for, account):
    name, _, creds = self_user
    err = expect_client_error(iam_for(creds).list_users)
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(account, f"/self/{name}", "ListUsers", f"arn:aws:iam::{account}:user/"),
    )


def test_user_may_not_create_users(self_user, iam_for, root_iam_client, account):
    name, _, creds = self_user
    other = unique_name()
    err = expect_client_error(iam_for(creds).create_user, UserName=other)
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(account, f"/self/{name}", "CreateUser", f"arn:aws:iam::{account}:user/{other}"),
    )
    err = expect_client_error(root_iam_client.get_user, UserName=other)
    assert_error(err, 404, "NoSuchEntity", f"The user with name {other} cannot be found.")


TARGET_CALLS = {
    "GetUser": "get_user",
    "CreateAccessKey": "create_access_key",
    "ListAccessKeys": "list_access_keys",
    "DeleteUser": "delete_user",
    "ListMFADevices": "list_mfa_devices",
    "DeleteAccessKey": "delete_access_key",
    "UpdateAccessKey": "update_access_key",
}


@pytest.mark.parametrize("action", list(TARGET_CALLS))
def test_user_may_not_target_another_user(self_user, iam_for, root_iam_client, sts_for, account, action):
    name, _, creds = self_user
    other, _, other_creds = new_user(root_iam_client)
    kwargs = {"UserName": other}
    if action in ("DeleteAccessKey", "UpdateAccessKey"):
        kwargs["AccessKeyId"] = other_creds.access_key_id
    if action == "UpdateAccessKey":
        kwargs["Status"] = "Inactive"
    err = expect_client_error(getattr(iam_for(creds), TARGET_CALLS[action]), **kwargs)
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(account, f"/self/{name}", action, f"user {other}"),
    )
    [k] = root_iam_client.list_access_keys(UserName=other)["AccessKeyMetadata"]
    assert (k["AccessKeyId"], k["Status"]) == (other_creds.access_key_id, "Active")
    sts_for(other_creds).get_caller_identity()  # the other user's key still works


def test_user_access_key_last_used_own_and_other(self_user, iam_for, root_iam_client, account):
    # GetAccessKeyLastUsed is in IAM's "manage your own credentials" set: own keys only. For another user's
    # key the resource is that user (the key's owner), as for every other user-targeted action.
    name, _, creds = self_user
    own = iam_for(creds).get_access_key_last_used(AccessKeyId=creds.access_key_id)
    assert own["UserName"] == name
    assert own["AccessKeyLastUsed"]["ServiceName"] == "iam"  # this very call's own authentication
    other, _, other_creds = new_user(root_iam_client)
    err = expect_client_error(iam_for(creds).get_access_key_last_used, AccessKeyId=other_creds.access_key_id)
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(
            account, f"/self/{name}", "GetAccessKeyLastUsed", f"user {other}"
        ),
    )


def test_user_denied_before_existence_check(self_user, iam_for, account):
    # Authorization comes first: a user probing for another name learns nothing about whether it exists.
    name, _, creds = self_user
    ghost = unique_name("nobody")
    err = expect_client_error(iam_for(creds).get_user, UserName=ghost)
    assert_error(
        err, 403, "AccessDenied",
        iam_denied_message(account, f"/self/{name}", "GetUser", f"user {ghost}"),
    )


# ------------------------------------------------------------ session credentials without MFA


NO_MFA_CALLS = [
    ("list_users", {}),
    ("get_user", {}),
    ("create_user", {"UserName": "stsd-never-created"}),
    ("create_access_key", {}),
    ("list_access_keys", {}),
    ("list_mfa_devices", {}),
    ("list_virtual_mfa_devices", {}),
]


@pytest.mark.parametrize("method, kwargs", NO_MFA_CALLS, ids=[m for m, _ in NO_MFA_CALLS])
def test_root_session_without_mfa_cannot_call_iam(root_session_creds, iam_for, method, kwargs):
    err = expect_client_error(getattr(iam_for(root_session_creds), method), **kwargs)
    assert_error(err, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)


@pytest.fixture(scope="module")
def user_session_no_mfa(root_iam_client, sts_for):
    name, _, creds = new_user(root_iam_client)
    return name, Creds.from_sts(sts_for(creds).get_session_token()["Credentials"])


@pytest.mark.parametrize("method, kwargs", NO_MFA_CALLS, ids=[m for m, _ in NO_MFA_CALLS])
def test_user_session_without_mfa_cannot_call_iam(user_session_no_mfa, iam_for, method, kwargs):
    _, session = user_session_no_mfa
    err = expect_client_error(getattr(iam_for(session), method), **kwargs)
    assert_error(err, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)


def test_no_mfa_session_refused_before_validation(root_session_creds, iam_for, root_iam_client):
    # Even an invalid request is refused for the credentials first (authentication precedes validation).
    err = expect_client_error(iam_for(root_session_creds, validate=False).create_user, UserName="a b")
    assert_error(err, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)
    err = expect_client_error(root_iam_client.get_user, UserName="stsd-never-created")
    assert err.response["Error"]["Code"] == "NoSuchEntity"


# ------------------------------------------------------------ races


def race(n, fn):
    """Runs fn(i) in n threads released together; returns [(i, result or ClientError)]."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except ClientError as e:
            results[i] = e
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def pooled_client(service, endpoint, creds, size):
    """One client with enough pooled connections that `size` threads really send at once."""
    cfg = client_config().merge(Config(max_pool_connections=size))
    import boto3

    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token, config=cfg,
    )


def split(results):
    ok = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if not isinstance(r, dict)]
    unexpected = [r for r in errors if not isinstance(r, ClientError)]
    assert not unexpected, unexpected
    return ok, errors


def test_concurrent_create_user_same_name(endpoint, root_creds, root_iam_client):
    name = unique_name("race-user")
    iam = pooled_client("iam", endpoint, root_creds, 20)
    results = race(20, lambda i: iam.create_user(UserName=name, Path=f"/race{i}/"))
    ok, errors = split(results)
    assert len(ok) == 1, f"{len(ok)} successes: {[e.response['Error'] for e in errors][:3]}"
    for e in errors:
        assert_error(e, 409, "EntityAlreadyExists", f"User with name {name} already exists.")
    assert root_iam_client.get_user(UserName=name)["User"] == ok[0]["User"]
    winners = [u for u in root_iam_client.list_users()["Users"] if u["UserName"].lower() == name.lower()]
    assert len(winners) == 1, winners


def test_concurrent_create_access_key_respects_limit(endpoint, root_creds, root_iam_client, sts_for):
    name, _, _ = new_user(root_iam_client, key=False)
    iam = pooled_client("iam", endpoint, root_creds, 10)
    results = race(10, lambda i: iam.create_access_key(UserName=name))
    ok, errors = split(results)
    assert len(ok) == 2, f"{len(ok)} successes: {[e.response['Error'] for e in errors][:3]}"
    for e in errors:
        assert_error(e, 409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
    listed = {m["AccessKeyId"] for m in root_iam_client.list_access_keys(UserName=name)["AccessKeyMetadata"]}
    assert listed == {r["AccessKey"]["AccessKeyId"] for r in ok}
    for r in ok:
        k = r["AccessKey"]
        assert sts_for(Creds(k["AccessKeyId"], k["SecretAccessKey"])).get_caller_identity()["Arn"].endswith(
            f":user/{name}")


# ------------------------------------------------------------ wire form


IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def test_iam_bodies_on_the_wire(endpoint, root_creds, account):
    name = unique_name()
    ok = signed_post(
        endpoint, {"Action": "CreateUser", "Version": "2010-05-08", "UserName": name}, root_creds, service="iam"
    )
    assert ok.status == 200, ok.body
    assert ok.header("content-type") == "text/xml"
    root = ok.xml()
    assert root.tag == f"{{{IAM_NS}}}CreateUserResponse", ok.body
    user = root.find(f"{{{IAM_NS}}}CreateUserResult/{{{IAM_NS}}}User")
    assert [c.tag.split("}")[1] for c in user] == ["Path", "UserName", "UserId", "Arn", "CreateDate"]
    assert user.findtext(f"{{{IAM_NS}}}Arn") == f"arn:aws:iam::{account}:user/{name}"
    assert root.findtext(f"{{{IAM_NS}}}ResponseMetadata/{{{IAM_NS}}}RequestId") == ok.header("x-amzn-requestid")

    err = signed_post(
        endpoint, {"Action": "CreateUser", "Version": "2010-05-08", "UserName": name}, root_creds, service="iam"
    )
    assert err.status == 409, err.body
    assert err.header("content-type") == "text/xml"
    root = err.xml()
    assert root.tag == f"{{{IAM_NS}}}ErrorResponse", err.body
    e = root.find(f"{{{IAM_NS}}}Error")
    assert [(c.tag.split("}")[1], c.text) for c in e] == [
        ("Type", "Sender"),
        ("Code", "EntityAlreadyExists"),
        ("Message", f"User with name {name} already exists."),
    ]
    assert root.findtext(f"{{{IAM_NS}}}RequestId") == err.header("x-amzn-requestid")
    assert err.body.endswith(b"</ErrorResponse>\n"), err.body
